"""The one table from ATen ops to graphc primitives, and the walk over an FX graph.

`frontend.torch_capture` hands `translate` a functional ATen graph (what make_fx gives
after functionalization and torch's core decompositions). Each FX node is looked up
in `ATEN` by its overload's printed name (`"aten.addmm.default"`); the entry builds
primitives with a `NodeBuilder`. Composites (softmax, layer norm, gelu, batch norm)
decompose into primitives here and fusion fuses them back. The FX node's fake value
(`meta["val"]`) gives each result's dtype, so torch's type promotion is read, not
re-derived: operands are cast to the result's dtype before the primitive.

Every node carries the source line of the user's code that made it, read from the FX
node's stack trace; an op with no entry is an `UnsupportedOpError` naming the op and
that line.

>>> import torch
>>> from torch.fx.experimental.proxy_tensor import make_fx
>>> gm = make_fx(lambda x: torch.ops.aten.relu.default(x) * 2)(torch.ones(3))
>>> graph, _ = translate(gm, ["x"])
>>> [n.op for n in graph.nodes]
['const', 'maximum', 'const', 'mul']
"""
from __future__ import annotations

import math
import operator
import os
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.fx

from graphc import dtypes
from graphc.errors import GraphcError, SourceLoc, UnsupportedError, is_compiler_file
from graphc.frontend import torch_sizes
from graphc.frontend.prims import resolve_shape
from graphc.ir import Graph, NodeBuilder, TensorType, Value
from graphc.ir import symbols
from graphc.ir.sizes import settle_in_place
from graphc.ir.symbols import Sym
from graphc.ops.shape import slice_length

TORCH_DTYPES: dict[torch.dtype, str] = {
    torch.float32: "float32", torch.float64: "float64", torch.int32: "int32",
    torch.int64: "int64", torch.bool: "bool",
}


class UnsupportedOpError(UnsupportedError):
    """An ATen op with no entry in `ATEN`; `.op` is its name (torch.compile's backend
    falls back to eager on it, naming the op)."""

    default_hint = ("rewrite that line with other torch operations, or add an entry for "
                    "the op to ATEN in graphc/frontend/aten.py")

    def __init__(self, op: str, loc: SourceLoc | None):
        self.op = op
        super().__init__(f"the ATen op {op} has no translation to graphc", loc=loc or False)


def graphc_dtype(dtype: torch.dtype, loc: SourceLoc | None = None) -> str:
    """graphc's name for a torch dtype; a GraphcError for the others."""
    name = TORCH_DTYPES.get(dtype)
    if name is None:
        raise GraphcError(f"torch dtype {dtype} is not supported by graphc",
                          hint="supported: " + ", ".join(map(str, TORCH_DTYPES))
                               + "; convert with .float() or .long() first",
                          loc=loc or False)
    return name


# ---- where in the user's code a node came from ------------------------------------

_TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__)) + os.sep
_FRAME = re.compile(r'^\s*File "(.+)", line (\d+), in (.+)$', re.M)


def _is_library(filename: str) -> bool:
    if filename.startswith("<"):
        return True  # FX's generated code, <frozen ...>, graphc's own
    return filename.startswith(_TORCH_DIR) or is_compiler_file(filename)


def node_loc(node: torch.fx.Node) -> SourceLoc | None:
    """The innermost frame of `node`'s stack trace outside torch and graphc."""
    trace = node.meta.get("stack_trace") or ""
    frames = [(f, int(n), fn) for f, n, fn in _FRAME.findall(trace) if not _is_library(f)]
    return SourceLoc(*frames[-1]) if frames else None


# ---- the emitter an entry builds with ----------------------------------------------

class Emitter:
    """The builder, the FX node being translated and its location, and the random
    stream's state (the seed input, made on first use, and the elements drawn)."""

    def __init__(self, builder: NodeBuilder, seed_name: str = "seed"):
        self.b = builder
        self.node: torch.fx.Node | None = None
        self.loc: SourceLoc | None = None
        self.seed: Value | None = None
        self.seed_name = seed_name
        self.drawn = 0

    def emit(self, op: str, *inputs: Value, **attrs: Any) -> Value:
        return self.b.emit(op, inputs, attrs, self.loc)

    def emit_many(self, op: str, *inputs: Value, **attrs: Any) -> tuple[Value, ...]:
        return self.b.add(op, inputs, attrs, self.loc).outputs

    def const(self, value: Any, dtype: str) -> Value:
        return self.b.const(np.asarray(value, dtypes.to_numpy(dtype)), self.loc)

    def out(self, i: int | None = None) -> torch.Tensor:
        """The fake value of the node's result (of output `i` for several)."""
        val = self.node.meta["val"]
        return val if i is None else val[i]

    def out_dtype(self, i: int | None = None) -> str:
        return graphc_dtype(self.out(i).dtype, self.loc)

    def out_shape(self, i: int | None = None) -> tuple[int, ...]:
        return torch_sizes.shape(self.out(i).shape)

    def cast(self, v: Value, dtype: str) -> Value:
        return v if v.type.dtype == dtype else self.emit("cast", v, dtype=dtype)

    def tensor(self, x: Value | bool | int | float, dtype: str) -> Value:
        """`x` (a value, a Python scalar or a symbolic size) as a value of `dtype`."""
        if isinstance(x, Sym):  # known per call: the size primitive
            return self.emit("size", dims=(x,), dtype=dtype)
        return self.cast(x, dtype) if isinstance(x, Value) else self.const(x, dtype)

    def reshape(self, v: Value, shape: Sequence[int]) -> Value:
        shape = tuple(shape)
        return v if v.type.shape == shape else self.emit("reshape", v, shape=shape)

    def broadcast(self, v: Value, shape: Sequence[int]) -> Value:
        shape = tuple(shape)
        return v if v.type.shape == shape else self.emit("broadcast_to", v, shape=shape)

    def transpose(self, v: Value, perm: Sequence[int]) -> Value:
        perm = tuple(perm)
        return v if perm == tuple(range(len(perm))) else self.emit("transpose", v, perm=perm)

    def fill(self, value: Any, shape: Sequence[int], dtype: str) -> Value:
        return self.broadcast(self.const(value, dtype), shape)

    def reduce(self, op: str, v: Value, axes: Sequence[int], keepdims: bool) -> Value:
        return self.emit(op, v, axes=tuple(sorted(axes)), keepdims=bool(keepdims))

    def uniform(self, shape: Sequence[int], dtype: str) -> Value:
        """Uniform [0, 1) numbers of `shape`: the next range of the graph's stream."""
        if self.seed is None:
            self.seed = self.b.input(self.b.unique_name(self.seed_name),
                                     TensorType((), "int64"))
        shape = tuple(shape)
        u = self.emit("philox_uniform", self.seed, shape=shape, offset=self.drawn,
                      dtype=dtype)
        self.drawn += int(np.prod(shape, dtype=np.int64))
        return u


# ---- small helpers shared by entries --------------------------------------------------

def _axis(dim: int, ndim: int) -> int:
    return dim % ndim if ndim else 0


def _axes(dims, ndim: int) -> tuple[int, ...]:
    if dims is None or (isinstance(dims, (list, tuple)) and not dims):
        return tuple(range(ndim))
    dims = dims if isinstance(dims, (list, tuple)) else [dims]
    return tuple(sorted({_axis(d, ndim) for d in dims}))


def _binary_dtype(e: Emitter) -> str:
    """The dtype torch computes a comparison in (its inputs' promotion)."""
    a, b = (x.meta["val"] if isinstance(x, torch.fx.Node) else x for x in e.node.args[:2])
    return graphc_dtype(torch.result_type(a, b), e.loc)


def _arith(op: str, bool_op: str | None = None):
    """add/sub/mul/maximum...: operands cast to the result's dtype (bools: logic)."""
    def entry(e: Emitter, a, b, alpha=1):
        dt = e.out_dtype()
        if alpha != 1:
            b = _arith("mul")(e, b, alpha)
        if dt == "bool" and bool_op:
            return e.emit(bool_op, e.tensor(a, dt), e.tensor(b, dt))
        return e.emit(op, e.tensor(a, dt), e.tensor(b, dt))
    return entry


def _compare(op: str):
    def entry(e: Emitter, a, b):
        dt = _binary_dtype(e)
        return e.emit(op, e.tensor(a, dt), e.tensor(b, dt))
    return entry


def _unary(op: str):
    def entry(e: Emitter, x):
        return e.emit(op, e.cast(x, e.out_dtype()))
    return entry


def _same(e: Emitter, x, *args, **kwargs):
    """clone, alias, detach and the other identities of a functional graph."""
    return x


def _zeros(e: Emitter, *args, **kwargs):
    """empty*: its contents are unspecified, and functional graphs overwrite it."""
    return e.fill(0, e.out_shape(), e.out_dtype())


# ---- matmul family ----------------------------------------------------------------------

def _mm(e: Emitter, a, b):
    return e.emit("matmul", a, b)


def _addmm(e: Emitter, bias, a, b, beta=1, alpha=1):
    dt = e.out_dtype()
    prod = e.emit("matmul", a, b)
    if alpha != 1:
        prod = e.emit("mul", prod, e.const(alpha, dt))
    if beta == 0:
        return prod
    if beta != 1:
        bias = e.emit("mul", bias, e.const(beta, dt))
    return e.emit("add", prod, bias)


# ---- shapes ------------------------------------------------------------------------------

def _view(e: Emitter, x, shape):
    return e.reshape(x, resolve_shape(list(shape), x.type.size, x.type.shape))


def _permute(e: Emitter, x, dims):
    return e.transpose(x, [_axis(d, x.type.ndim) for d in dims])


def _t(e: Emitter, x):
    return e.transpose(x, list(range(x.type.ndim))[::-1])


def _transpose(e: Emitter, x, d0, d1):
    perm = list(range(x.type.ndim))
    a, b = _axis(d0, x.type.ndim), _axis(d1, x.type.ndim)
    perm[a], perm[b] = perm[b], perm[a]
    return e.transpose(x, perm)


def _expand(e: Emitter, x, sizes, implicit=False):
    lead = len(sizes) - x.type.ndim
    shape = [x.type.shape[i - lead] if d == -1 else d for i, d in enumerate(sizes)]
    return e.broadcast(x, shape)


def _unsqueeze(e: Emitter, x, dim):
    shape = list(x.type.shape)
    shape.insert(dim % (x.type.ndim + 1), 1)
    return e.reshape(x, shape)


def _squeeze(e: Emitter, x, dims=None):
    axes = _axes(dims, x.type.ndim)
    return e.reshape(x, [d for i, d in enumerate(x.type.shape) if i not in axes or d != 1])


def _slice_axis(e: Emitter, x: Value, axis: int, start, stop, step=1) -> Value:
    starts, stops, steps = [0] * x.type.ndim, list(x.type.shape), [1] * x.type.ndim
    bounds = symbols.slice_indices(start, stop, step, x.type.shape[axis])
    starts[axis], stops[axis], steps[axis] = bounds if slice_length(*bounds) else (0, 0, 1)
    if (starts, stops, steps) == ([0] * x.type.ndim, list(x.type.shape), [1] * x.type.ndim):
        return x
    return e.emit("slice", x, starts=tuple(starts), stops=tuple(stops), steps=tuple(steps))


def _slice(e: Emitter, x, dim=0, start=None, end=None, step=1):
    return _slice_axis(e, x, _axis(dim, x.type.ndim), start, end, step)


def _select(e: Emitter, x, dim, index):
    axis = _axis(dim, x.type.ndim)
    i = index if index >= 0 else index + x.type.shape[axis]  # (torch's % on a Sym)
    part = _slice_axis(e, x, axis, i, i + 1)
    return e.reshape(part, x.type.shape[:axis] + x.type.shape[axis + 1:])


def _split_with_sizes(e: Emitter, x, sizes, dim=0):
    axis, start, parts = _axis(dim, x.type.ndim), 0, []
    for size in sizes:
        parts.append(_slice_axis(e, x, axis, start, start + size))
        start += size
    return tuple(parts)


def _split(e: Emitter, x, size, dim=0):
    n = x.type.shape[_axis(dim, x.type.ndim)]
    return _split_with_sizes(e, x, [min(size, n - s) for s in range(0, n, size)] or [0], dim)


def _cat(e: Emitter, tensors, dim=0):
    dt = e.out_dtype()
    # torch still accepts the legacy empty 1-d tensor beside tensors of any rank
    parts = [e.cast(t, dt) for t in tensors if t.type.shape != (0,)] or [e.cast(tensors[0], dt)]
    if len(parts) == 1:
        return parts[0]
    return e.emit("concat", *parts, axis=_axis(dim, parts[0].type.ndim))


# ---- sources -------------------------------------------------------------------------

def _full(e: Emitter, size, value, **kwargs):
    return e.fill(value, e.out_shape(), e.out_dtype())


def _full_like(e: Emitter, x, value, **kwargs):
    return e.fill(value, e.out_shape(), e.out_dtype())


def _scalar_tensor(e: Emitter, value, **kwargs):
    return e.const(value, e.out_dtype())


def _arange(e: Emitter, start, end=None, step=1, **kwargs):
    if end is None:
        start, end = 0, start
    dt, (n,) = e.out_dtype(), e.out_shape()
    # torch computes start + i * step (in double for floats), then rounds once
    work = "float64" if dtypes.is_float(dt) else "int64"
    ramp = e.emit("iota", shape=(n,), axis=0, dtype=work)
    ramp = e.emit("add", e.emit("mul", ramp, e.const(step, work)), e.const(start, work))
    return e.cast(ramp, dt)


def _to_copy(e: Emitter, x, **kwargs):
    return e.cast(x, e.out_dtype())


# ---- math ----------------------------------------------------------------------------

def _relu(e: Emitter, x):
    return e.emit("maximum", x, e.const(0, x.type.dtype))


def _gelu(e: Emitter, x, approximate="none"):
    dt = x.type.dtype
    half = e.emit("mul", x, e.const(0.5, dt))
    if approximate == "tanh":
        cube = e.emit("mul", e.emit("mul", x, x), x)
        inner = e.emit("add", x, e.emit("mul", cube, e.const(0.044715, dt)))
        s = e.emit("tanh", e.emit("mul", inner, e.const(math.sqrt(2 / math.pi), dt)))
    else:
        s = e.emit("erf", e.emit("mul", x, e.const(1 / math.sqrt(2), dt)))
    return e.emit("mul", half, e.emit("add", s, e.const(1, dt)))


def _div(e: Emitter, a, b, rounding_mode=None):
    dt = e.out_dtype()
    if rounding_mode is None:
        return e.emit("div", e.tensor(a, dt), e.tensor(b, dt))
    if rounding_mode == "floor":
        return e.emit("floor_divide", e.tensor(a, dt), e.tensor(b, dt))
    raise UnsupportedError(f"division with rounding_mode={rounding_mode!r} is not "
                           "supported", hint="use rounding_mode='floor' or None",
                           loc=e.loc or False)


def _rsub(e: Emitter, a, b, alpha=1):
    return _arith("sub")(e, b, a, alpha)


def _pow(e: Emitter, x, exponent):
    dt = e.out_dtype()
    x = e.tensor(x, dt)
    if exponent == 2:  # exact, and its gradient needs no pow
        return e.emit("mul", x, x)
    if exponent == 1:
        return x
    if exponent == 0.5:
        return e.emit("sqrt", x)
    return e.emit("pow", x, e.tensor(exponent, dt))


def _round(e: Emitter, x, decimals=0):
    return e.emit("round", x, decimals=decimals)


def _logical_not(e: Emitter, x):
    return e.emit("logical_not", e.cast(x, "bool"))


def _logical(op: str):
    def entry(e: Emitter, a, b):
        return e.emit(op, e.cast(a, "bool"), e.cast(b, "bool"))
    return entry


def _bitwise(op: str):
    def entry(e: Emitter, a, b):
        if e.out_dtype() != "bool":
            raise UnsupportedOpError(str(e.node.target), e.loc)
        return e.emit(op, e.tensor(a, "bool"), e.tensor(b, "bool"))
    return entry


def _any_all(op: str):
    def entry(e: Emitter, x, dim=None, keepdim=False):
        axes = _axes(dim, x.type.ndim)
        if any(x.type.shape[a] == 0 for a in axes):  # any() of nothing is False
            return e.fill(op == "min", e.out_shape(), "bool")
        return e.reduce(op, e.cast(x, "bool"), axes, keepdim)
    return entry


def _where(e: Emitter, cond, a, b):
    dt = e.out_dtype()
    return e.emit("where", e.cast(cond, "bool"), e.tensor(a, dt), e.tensor(b, dt))


def _sum(e: Emitter, x, dim=None, keepdim=False, dtype=None):
    return e.reduce("sum", e.cast(x, e.out_dtype()), _axes(dim, x.type.ndim), keepdim)


def _mean(e: Emitter, x, dim=None, keepdim=False, dtype=None):
    dt, axes = e.out_dtype(), _axes(dim, x.type.ndim)
    total = e.reduce("sum", e.cast(x, dt), axes, keepdim)
    count = math.prod(x.type.shape[a] for a in axes)  # (symbolic: a size node)
    return e.emit("div", total, e.tensor(count, dt))


def _amax(op: str):
    def entry(e: Emitter, x, dim=(), keepdim=False):
        return e.reduce(op, x, _axes(dim, x.type.ndim), keepdim)
    return entry


def _shifted(e: Emitter, x: Value, axis: int) -> Value:
    """x minus its max along `axis`: exp of it cannot overflow."""
    return e.emit("sub", x, e.reduce("max", x, (axis,), True))


def _softmax(e: Emitter, x, dim, half_to_float=False):
    ex = e.emit("exp", _shifted(e, x, _axis(dim, x.type.ndim)))
    return e.emit("div", ex, e.reduce("sum", ex, (_axis(dim, x.type.ndim),), True))


def _log_softmax(e: Emitter, x, dim, half_to_float=False):
    axis = _axis(dim, x.type.ndim)
    s = _shifted(e, x, axis)
    return e.emit("sub", s, e.emit("log", e.reduce("sum", e.emit("exp", s), (axis,), True)))


def _normalize(e: Emitter, x: Value, axes: tuple[int, ...], eps: float):
    """(x - mean) * rstd over `axes`, with mean and rstd (kept dims); biased var."""
    dt = x.type.dtype
    n = e.tensor(math.prod(x.type.shape[a] for a in axes), dt)
    mean = e.emit("div", e.reduce("sum", x, axes, True), n)
    centered = e.emit("sub", x, mean)
    var = e.emit("div", e.reduce("sum", e.emit("mul", centered, centered), axes, True), n)
    rstd = e.emit("rsqrt", e.emit("add", var, e.const(eps, dt)))
    return e.emit("mul", centered, rstd), mean, rstd, var


def _native_layer_norm(e: Emitter, x, normalized_shape, weight, bias, eps):
    axes = tuple(range(x.type.ndim - len(normalized_shape), x.type.ndim))
    out, mean, rstd, _ = _normalize(e, x, axes, eps)
    if weight is not None:
        out = e.emit("mul", out, weight)
    if bias is not None:
        out = e.emit("add", out, bias)
    return out, mean, rstd


def _channel(e: Emitter, v: Value, ndim: int) -> Value:
    """A per-channel (C,) vector shaped to broadcast against (N, C, ...)."""
    return e.reshape(v, (1, v.type.shape[0]) + (1,) * (ndim - 2))


def _affine(e: Emitter, out: Value, weight, bias) -> Value:
    if weight is not None:
        out = e.emit("mul", out, _channel(e, weight, out.type.ndim))
    if bias is not None:
        out = e.emit("add", out, _channel(e, bias, out.type.ndim))
    return out


def _batch_norm_eval(e: Emitter, x, weight, bias, mean, var, momentum, eps):
    dt = x.type.dtype
    rstd = e.emit("rsqrt", e.emit("add", var, e.const(eps, dt)))
    centered = e.emit("sub", x, _channel(e, mean, x.type.ndim))
    out = _affine(e, e.emit("mul", centered, _channel(e, rstd, x.type.ndim)), weight, bias)
    return out, e.fill(0, e.out_shape(1), dt), e.fill(0, e.out_shape(2), dt)


def _batch_norm_functional(e: Emitter, x, weight, bias, running_mean, running_var,
                           training, momentum, eps):
    """out, save_mean, save_rstd, new running mean and var: the unbiased variance
    goes into the running estimate, the biased one normalizes, as torch does."""
    if not training:
        out, m, r = _batch_norm_eval(e, x, weight, bias, running_mean, running_var,
                                     momentum, eps)
        return out, m, r, running_mean, running_var
    dt, c = x.type.dtype, x.type.shape[1]
    axes = (0,) + tuple(range(2, x.type.ndim))
    normed, mean, rstd, var = _normalize(e, x, axes, eps)
    count = x.type.size // c
    m = e.const(momentum, dt)
    keep = e.const(1 - momentum, dt)
    mean, var, rstd = (e.reshape(v, (c,)) for v in (mean, var, rstd))
    unbiased = e.emit("mul", var, e.const(count / max(count - 1, 1), dt))
    new_mean = e.emit("add", e.emit("mul", running_mean, keep), e.emit("mul", mean, m))
    new_var = e.emit("add", e.emit("mul", running_var, keep), e.emit("mul", unbiased, m))
    return _affine(e, normed, weight, bias), mean, rstd, new_mean, new_var


# ---- indexing ------------------------------------------------------------------------

def _embedding(e: Emitter, weight, indices, padding_idx=-1, *args):
    return e.emit("gather", weight, indices, axis=0)


def _flat_position(e: Emitter, coords: list[Value], sizes: Sequence[int]) -> Value:
    """sum_k coords[k] * stride_k (row-major over `sizes`), int64, broadcasting."""
    pos, stride = None, 1
    for coord, size in reversed(list(zip(coords, sizes))):
        term = e.cast(coord, "int64")
        if stride != 1:
            term = e.emit("mul", term, e.tensor(stride, "int64"))
        pos = term if pos is None else e.emit("add", term, pos)
        stride *= size
    return pos


def _gather(e: Emitter, x, dim, index, sparse_grad=False):
    """torch.gather: out[i, j] = x[index[i, j], j] (dim 0), as one flat np.take."""
    axis, shape = _axis(dim, x.type.ndim), index.type.shape
    coords = [index if k == axis else e.emit("iota", shape=shape, axis=k, dtype="int64")
              for k in range(x.type.ndim)]
    flat = e.reshape(x, (x.type.size,))
    return e.emit("gather", flat, _flat_position(e, coords, x.type.shape), axis=0)


def _wrapped(e: Emitter, idx: Value, size: int) -> Value:
    """Negative indices counted from the end, as torch reads them."""
    idx = e.cast(idx, "int64")
    neg = e.emit("lt", idx, e.const(0, "int64"))
    return e.emit("where", neg, e.emit("add", idx, e.tensor(size, "int64")), idx)


def _index(e: Emitter, x, indices):
    """x[i0, i1, ...] with index tensors on some axes (None: the whole axis)."""
    picked = [k for k, i in enumerate(indices) if i is not None]
    if any(indices[k].type.dtype == "bool" for k in picked):
        raise UnsupportedError("indexing with a boolean mask gives a shape that depends "
                               "on the data", hint="use torch.where(mask, x, 0) instead",
                               loc=e.loc or False)
    rest = [k for k in range(x.type.ndim) if k not in picked]
    sizes = [x.type.shape[k] for k in picked]
    xt = e.transpose(x, picked + rest)
    xt = e.reshape(xt, (math.prod(sizes),)
                   + tuple(x.type.shape[k] for k in rest))
    coords = [_wrapped(e, indices[k], x.type.shape[k]) for k in picked]
    out = e.emit("gather", xt, _flat_position(e, coords, sizes), axis=0)
    first = picked[0]
    if picked == list(range(first, first + len(picked))) and first > 0:
        # adjacent index tensors keep their place: their axes go where the first was
        nb = out.type.ndim - len(rest)
        perm = list(range(nb, nb + first)) + list(range(nb)) + list(range(nb + first, out.type.ndim))
        out = e.transpose(out, perm)
    return out


# ---- windows -------------------------------------------------------------------------

def _convolution(e: Emitter, x, w, bias, stride, padding, dilation, transposed,
                 output_padding, groups):
    if transposed or x.type.ndim not in (3, 4):
        raise UnsupportedError("only 1-d and 2-d convolutions (not transposed) are "
                               "supported", hint="use nn.Conv1d or nn.Conv2d",
                               loc=e.loc or False)
    one_d = x.type.ndim == 3
    if one_d:  # a 1-d convolution is a 2-d one over a height of 1
        x = _unsqueeze(e, x, 2)
        w = _unsqueeze(e, w, 2)
        stride, dilation = ([1] + list(v) for v in (stride, dilation))
        padding = [0] + list(padding)
    out = e.emit("conv2d", x, w, stride=tuple(stride), padding=tuple(padding),
                 dilation=tuple(dilation), groups=groups)
    if bias is not None:
        out = e.emit("add", out, _channel(e, bias, 4))
    return _squeeze(e, out, [2]) if one_d else out


def _max_pool2d(e: Emitter, x, kernel, stride=(), padding=0, dilation=1, ceil_mode=False):
    pair = lambda v: tuple(v) * (2 // len(v)) if isinstance(v, (list, tuple)) else (v, v)
    if ceil_mode or pair(dilation) != (1, 1) or x.type.ndim != 4:
        raise UnsupportedError("max_pool2d supports (N, C, H, W) input without dilation "
                               "or ceil_mode", loc=e.loc or False)
    attrs = {"kernel": pair(kernel), "stride": pair(stride or kernel),
             "padding": pair(padding)}
    out = e.emit("max_pool2d", x, **attrs)
    # the indices: each window's max position in H*W, read through the same choice of
    # max the pooling's gradient makes (exact in the input's float type up to 2**24)
    h, w = x.type.shape[2:]
    plane = e.emit("iota", shape=(h * w,), axis=0, dtype=x.type.dtype)
    plane = e.broadcast(e.reshape(plane, (1, 1, h, w)), x.type.shape)
    where = e.emit("max_pool2d_gather", x, plane, **attrs)
    return out, e.cast(where, "int64")


# ---- random --------------------------------------------------------------------------

def _native_dropout(e: Emitter, x, p, train):
    if not train or p == 0:
        return x, e.fill(True, x.type.shape, "bool")
    dt = x.type.dtype
    if p >= 1:
        return e.fill(0, x.type.shape, dt), e.fill(False, x.type.shape, "bool")
    keep = e.emit("ge", e.uniform(x.type.shape, dt), e.const(p, dt))
    kept = e.emit("mul", x, e.cast(keep, dt))
    return e.emit("mul", kept, e.const(1 / (1 - p), dt)), keep


def _bernoulli(e: Emitter, x, p, generator=None):
    dt = e.out_dtype()
    work = dt if dtypes.is_float(dt) else "float64"
    hit = e.emit("lt", e.uniform(x.type.shape, work), e.const(p, work))
    return e.cast(hit, dt)


# ---- FX plumbing ----------------------------------------------------------------------

def _getitem(e: Emitter, seq, i):
    return seq[i]


def _sym_size(e: Emitter, x, dim):
    return x.type.shape[dim]


def _nothing(e: Emitter, *args, **kwargs):
    return None


_VIEWS = {  # functionalization writes views as *_copy ops; both spellings mean the same
    "view": _view, "_unsafe_view": _view, "reshape": _view, "permute": _permute,
    "expand": _expand, "unsqueeze": _unsqueeze, "alias": _same, "t": _t,
}

ATEN: dict[str, Callable[..., Any]] = {
    "aten.addmm.default": _addmm, "aten.mm.default": _mm, "aten.bmm.default": _mm,
    "aten.matmul.default": _mm,
    **{f"aten.{n}.default": f for n, f in _VIEWS.items()},
    **{f"aten.{n}_copy.default": f for n, f in _VIEWS.items()},
    "aten.transpose.int": _transpose, "aten.transpose_copy.int": _transpose,
    "aten.squeeze.dims": _squeeze, "aten.squeeze.dim": _squeeze,
    "aten.squeeze.default": _squeeze, "aten.squeeze_copy.dims": _squeeze,
    "aten.squeeze_copy.dim": _squeeze, "aten.squeeze_copy.default": _squeeze,
    "aten.select.int": _select, "aten.select_copy.int": _select,
    "aten.slice.Tensor": _slice, "aten.slice_copy.Tensor": _slice,
    "aten.cat.default": _cat,
    "aten.split_with_sizes.default": _split_with_sizes,
    "aten.split_with_sizes_copy.default": _split_with_sizes,
    "aten.split.Tensor": _split, "aten.split_copy.Tensor": _split,
    "aten.clone.default": _same, "aten.detach.default": _same,
    "aten.lift_fresh_copy.default": _same, "aten.contiguous.default": _same,
    "aten.full.default": _full, "aten.full_like.default": _full_like,
    "aten.zeros_like.default": _zeros, "aten.empty.memory_format": _zeros,
    "aten.empty_permuted.default": _zeros, "aten.empty_like.default": _zeros,
    "aten.zeros.default": _zeros, "aten.new_zeros.default": _zeros,
    "aten.new_empty.default": _zeros,
    "aten.scalar_tensor.default": _scalar_tensor,
    "aten.arange.start_step": _arange, "aten.arange.start": _arange,
    "aten.arange.default": _arange,
    "aten._to_copy.default": _to_copy,
    "aten.relu.default": _relu, "aten.gelu.default": _gelu,
    **{f"aten.{n}.default": _unary(n) for n in (
        "tanh", "sigmoid", "exp", "log", "sqrt", "rsqrt", "neg", "abs", "erf", "sin",
        "cos", "log1p", "expm1", "reciprocal")},
    "aten.add.Tensor": _arith("add", "logical_or"), "aten.add.Scalar": _arith("add", "logical_or"),
    "aten.sub.Tensor": _arith("sub"), "aten.sub.Scalar": _arith("sub"),
    "aten.rsub.Scalar": _rsub, "aten.rsub.Tensor": _rsub,
    "aten.mul.Tensor": _arith("mul", "logical_and"),
    "aten.mul.Scalar": _arith("mul", "logical_and"),
    "aten.div.Tensor": _div, "aten.div.Scalar": _div, "aten.div.Tensor_mode": _div,
    "aten.maximum.default": _arith("maximum", "logical_or"),
    "aten.minimum.default": _arith("minimum", "logical_and"),
    "aten.pow.Tensor_Scalar": _pow,
    **{f"aten.{n}.{k}": _compare(n) for n in ("eq", "ne", "lt", "le", "gt", "ge")
       for k in ("Scalar", "Tensor")},
    "aten.round.default": _round, "aten.round.decimals": _round,
    "aten.logical_not.default": _logical_not,
    "aten.logical_and.default": _logical("logical_and"),
    "aten.logical_or.default": _logical("logical_or"),
    "aten.bitwise_and.Tensor": _bitwise("logical_and"),
    "aten.bitwise_or.Tensor": _bitwise("logical_or"),
    "aten.bitwise_not.default": _logical_not,
    "aten.any.dim": _any_all("max"), "aten.any.dims": _any_all("max"),
    "aten.any.default": _any_all("max"), "aten.all.dim": _any_all("min"),
    "aten.all.default": _any_all("min"),
    "aten.where.self": _where,
    "aten.sum.dim_IntList": _sum, "aten.sum.default": _sum,
    "aten.mean.dim": _mean, "aten.mean.default": _mean,
    "aten.amax.default": _amax("max"), "aten.amin.default": _amax("min"),
    "aten._softmax.default": _softmax, "aten._log_softmax.default": _log_softmax,
    "aten.native_layer_norm.default": _native_layer_norm,
    "aten._native_batch_norm_legit_no_training.default": _batch_norm_eval,
    "aten._native_batch_norm_legit_functional.default": _batch_norm_functional,
    "aten.embedding.default": _embedding, "aten.gather.default": _gather,
    "aten.index.Tensor": _index,
    "aten.convolution.default": _convolution,
    "aten.max_pool2d_with_indices.default": _max_pool2d,
    "aten.native_dropout.default": _native_dropout, "aten.bernoulli.p": _bernoulli,
    "getitem": _getitem, "aten.sym_size.int": _sym_size,
    "aten._assert_tensor_metadata.default": _nothing,
}


def op_name(node: torch.fx.Node) -> str:
    """The key of `node`'s op in ATEN: the overload as torch prints it."""
    return "getitem" if node.target is operator.getitem else str(node.target)


# ---- the walk ----------------------------------------------------------------------

def _fx_input_type(node: torch.fx.Node) -> TensorType:
    val = node.meta["val"]
    return TensorType(torch_sizes.shape(val.shape), graphc_dtype(val.dtype, node_loc(node)))


def translate(gm: torch.fx.GraphModule, names: Sequence[str], graph_name: str = "forward",
              shape_env=None) -> tuple[Graph, dict[str, Any]]:
    """Graph of `gm` (a functional ATen graph), its placeholders named `names`.

    `names` name the tensor placeholders; other placeholders (Dynamo's SymInts) are
    baked in. Returns the graph, whose outputs are the flat tensor outputs of `gm`, and facts
    for the caller: `"outputs"` (the FX output values, with None where one is not a
    tensor), `"copies"` (placeholder index -> new value, from the trailing `copy_`
    nodes functionalization leaves on mutated inputs) and `"seed"` (the random
    stream's seed input, or None).

    A graph with symbolic sizes (SymInts: `shape_env` is the torch ShapeEnv of its
    fake tensors) translates to a symbolic graph (frontend/torch_sizes.py): its rules
    answer questions of sizes from the sizes torch traced it at, keeping each answer as
    a guard, beside torch's own guards.
    """
    hints = torch_sizes.hints(gm)
    if not hints:
        return _translate(gm, names, graph_name)
    env = symbols.ShapeEnv(hints, torch_sizes.guards(shape_env))
    with env.tracing():
        graph, facts = _translate(gm, names, graph_name)
    settle_in_place(graph, env.guards)  # (equal sizes one symbol: the values stay)
    return graph, facts


def _translate(gm: torch.fx.GraphModule, names: Sequence[str], graph_name: str
               ) -> tuple[Graph, dict[str, Any]]:
    b = NodeBuilder(graph_name)
    e = Emitter(b)
    env: dict[torch.fx.Node, Any] = {}
    placeholders: list[torch.fx.Node] = []
    tensor_names = iter(names)
    copies: dict[int, Value] = {}
    result = None
    for node in gm.graph.nodes:
        e.node, e.loc = node, node_loc(node)
        if node.op == "placeholder":
            val = node.meta.get("val")
            if isinstance(val, torch.Tensor):
                env[node] = b.input(next(tensor_names), _fx_input_type(node))
            else:  # an int Dynamo passes (baked in), or a SymInt (its symbolic size)
                env[node] = torch_sizes.dim(val) if val is not None else None
            placeholders.append(node)
        elif node.op == "call_function":
            args, kwargs = torch.fx.node.map_arg((node.args, node.kwargs), env.__getitem__)
            if node.target in torch_sizes.SIZE_OPS:  # arithmetic on sizes
                env[node] = torch_sizes.SIZE_OPS[node.target](*args)
                continue
            if node.target is torch.ops.aten.sym_size.int:
                env[node] = args[0].type.shape[args[1]]
                continue
            if node.target is torch.ops.aten.copy_.default and node.args[0] in placeholders:
                copies[placeholders.index(node.args[0])] = _copy_value(e, args[1], args[0])
                env[node] = args[0]
                continue
            entry = ATEN.get(op_name(node))
            if entry is None:
                raise UnsupportedOpError(op_name(node), e.loc)
            try:
                env[node] = entry(e, *args, **kwargs)
            except GraphcError as err:  # a rule refused it: point at the user's line
                raise err.with_loc(e.loc)
        elif node.op == "get_attr":  # a tensor the traced code closed over
            env[node] = _constant(e, getattr(gm, node.target))
        elif node.op == "output":
            result = torch.fx.node.map_arg(node.args[0], env.__getitem__)
        else:
            raise UnsupportedOpError(f"{node.op} {node.target}", e.loc)
    flat = list(result) if isinstance(result, (list, tuple)) else [result]
    outs = [v for v in flat if isinstance(v, Value)]
    return b.finish(outs), {"outputs": flat, "copies": copies, "seed": e.seed}


def _constant(e: Emitter, t: torch.Tensor) -> Value:
    dt = graphc_dtype(t.dtype, e.loc)
    return e.b.const(t.detach().cpu().numpy().astype(dtypes.to_numpy(dt)), e.loc)


def _copy_value(e: Emitter, src: Value, dst: Value) -> Value:
    """copy_'s source as the destination's type (copy_ broadcasts and casts)."""
    return e.broadcast(e.cast(src, dst.type.dtype), dst.type.shape)
