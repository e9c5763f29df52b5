"""matmul, dot, tensordot, einsum and outer, all lowered to the batched matmul primitive
(plus transposes and reshapes), with numpy's rules for 1-d operands."""
from __future__ import annotations

import math

import numpy as np

from graphc.errors import ShapeError, UnsupportedError
from graphc.frontend import prims
from graphc.frontend.prims import Operand
from graphc.frontend.tracer import Tracer


def _lift_pair(a: Operand, b: Operand) -> tuple[Tracer, Tracer]:
    ctx = prims.ctx_of(a, b)
    dt = prims.result_type(a, b)
    if dt == "bool":
        raise UnsupportedError("matmul of bool arrays is not supported",
                               hint="cast to an integer or float dtype first")
    return prims.lift(a, dt, ctx), prims.lift(b, dt, ctx)


def matmul(a: Operand, b: Operand) -> Tracer:
    """numpy's matmul: 1-d operands gain an axis that is removed from the result."""
    a, b = _lift_pair(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError("matmul: an operand is 0-d (a scalar)",
                         hint="use * to multiply by a scalar")
    a2 = prims.reshape(a, (1,) + a.shape) if a.ndim == 1 else a
    b2 = prims.reshape(b, b.shape + (1,)) if b.ndim == 1 else b
    if a2.shape[-1] != b2.shape[-2]:
        raise ShapeError(f"matmul: inner dimensions differ: {list(a.shape)} @ "
                         f"{list(b.shape)} ({a2.shape[-1]} != {b2.shape[-2]})",
                         hint="the last axis of the left operand must match the "
                              "second-to-last of the right one; transpose with .T?")
    out = a.ctx.emit("matmul", a2, b2)
    shape = out.shape
    if a.ndim == 1:
        shape = shape[:-2] + shape[-1:]
    if b.ndim == 1:
        shape = shape[:-1]
    return prims.reshape(out, shape)


def tensordot(a: Operand, b: Operand, axes=2) -> Tracer:
    a, b = _lift_pair(a, b)
    if isinstance(axes, (int, np.integer)):
        ax_a = list(range(a.ndim - axes, a.ndim))
        ax_b = list(range(axes))
    else:
        ax_a, ax_b = axes
        ax_a = [ax_a] if isinstance(ax_a, (int, np.integer)) else list(ax_a)
        ax_b = [ax_b] if isinstance(ax_b, (int, np.integer)) else list(ax_b)
    ax_a = [prims.norm_axis(x, a.ndim) for x in ax_a]
    ax_b = [prims.norm_axis(x, b.ndim) for x in ax_b]
    if len(ax_a) != len(ax_b) or any(a.shape[i] != b.shape[j] for i, j in zip(ax_a, ax_b)):
        raise ShapeError(f"tensordot: contracted axes of {list(a.shape)} and "
                         f"{list(b.shape)} differ in size")
    free_a = [i for i in range(a.ndim) if i not in ax_a]
    free_b = [i for i in range(b.ndim) if i not in ax_b]
    k = math.prod([a.shape[i] for i in ax_a])
    m_shape = [a.shape[i] for i in free_a]
    n_shape = [b.shape[i] for i in free_b]
    a2 = prims.reshape(prims.transpose(a, free_a + ax_a), (math.prod(m_shape), k))
    b2 = prims.reshape(prims.transpose(b, ax_b + free_b), (k, math.prod(n_shape)))
    return prims.reshape(a.ctx.emit("matmul", a2, b2), m_shape + n_shape)


def dot(a: Operand, b: Operand) -> Tracer:
    """numpy's dot: scalars multiply, 1-d x 1-d is an inner product, N-d x M-d
    contracts a's last axis with b's second-to-last."""
    if prims.shape_of(a) == () or prims.shape_of(b) == ():
        return prims.binary("mul", a, b)
    nb = len(prims.shape_of(b))
    if nb == 1:
        return matmul(a, b)
    return tensordot(a, b, axes=([-1], [nb - 2]))


def outer(a: Operand, b: Operand) -> Tracer:
    a, b = (prims.lift(x, None, prims.ctx_of(a, b)) for x in (a, b))
    return prims.binary("mul", prims.reshape(a, (-1, 1)), prims.reshape(b, (1, -1)))


def _parse_einsum(spec: str, ndims: list[int]) -> tuple[list[str], str]:
    spec = spec.replace(" ", "")
    if "." in spec:
        raise UnsupportedError("einsum with '...' is not supported yet",
                               hint="name every axis with a letter")
    lhs, arrow, out = spec.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ndims):
        raise ShapeError(f"einsum: {len(terms)} terms in {spec!r} for {len(ndims)} operands")
    for term, nd in zip(terms, ndims):
        if len(term) != nd:
            raise ShapeError(f"einsum: term {term!r} has {len(term)} letters for an array "
                             f"of rank {nd}")
        if len(set(term)) != len(term):
            raise UnsupportedError(f"einsum: repeated index in {term!r} (diagonals) is "
                                   "not supported")
    if not arrow:
        letters = "".join(terms)
        out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    return terms, out


def einsum(spec: str, *operands: Operand) -> Tracer:
    """One- and two-operand einsum (no '...', no repeated index within a term)."""
    if len(operands) not in (1, 2):
        raise UnsupportedError(f"einsum with {len(operands)} operands is not supported",
                               hint="split it into two-operand einsums")
    ctx = prims.ctx_of(*operands)
    dt = prims.result_type(*operands)
    xs = [prims.lift(x, dt, ctx) for x in operands]
    terms, out = _parse_einsum(spec, [x.ndim for x in xs])
    sizes: dict[str, int] = {}
    for term, x in zip(terms, xs):
        for c, d in zip(term, x.shape):
            if sizes.setdefault(c, d) != d:
                raise ShapeError(f"einsum: index {c!r} has sizes {sizes[c]} and {d}")
    # sum away letters that appear in one operand only and not in the output
    for i, (term, x) in enumerate(zip(terms, xs)):
        others = "".join(t for j, t in enumerate(terms) if j != i) + out
        drop = tuple(k for k, c in enumerate(term) if c not in others)
        if drop:
            xs[i] = prims.reduce("sum", x, drop, False)
            terms[i] = "".join(c for c in term if c in others)  # the kept letters
    if len(xs) == 1:
        return prims.transpose(xs[0], [terms[0].index(c) for c in out])
    (ta, tb), (a, b) = terms, xs
    batch = [c for c in out if c in ta and c in tb]
    contract = [c for c in ta if c in tb and c not in out]
    free_a = [c for c in ta if c not in tb]
    free_b = [c for c in tb if c not in ta]

    def prod(cs):
        return math.prod([sizes[c] for c in cs])

    a2 = prims.transpose(a, [ta.index(c) for c in batch + free_a + contract])
    a2 = prims.reshape(a2, [sizes[c] for c in batch] + [prod(free_a), prod(contract)])
    b2 = prims.transpose(b, [tb.index(c) for c in batch + contract + free_b])
    b2 = prims.reshape(b2, [sizes[c] for c in batch] + [prod(contract), prod(free_b)])
    res = prims.reshape(ctx.emit("matmul", a2, b2),
                        [sizes[c] for c in batch + free_a + free_b])
    order = batch + free_a + free_b
    return prims.transpose(res, [order.index(c) for c in out])
