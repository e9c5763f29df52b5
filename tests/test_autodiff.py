"""Reverse-mode autodiff (passes/autodiff.py): every VJP rule, checked two ways.

* Against central finite differences in float64, along a random direction, as JAX's
  `check_grads` does: for L(x) = sum(op(x) * W) with fixed random weights W,
  <grad L(x), dx> must equal (L(x + eps dx) - L(x - eps dx)) / (2 eps). The function
  is ordinary numpy code, so the finite differences run it eagerly with numpy while
  `graphc.grad` traces it; no graphc code computes the reference.
* Against torch.autograd in float32, for the ops torch has.

Then ties (graphc splits the gradient evenly among tied maxima, as torch's amax and
maximum do) and second derivatives (Hessian-vector products) against torch's double
backward. Models and the API surface are in tests/test_autodiff_models.py.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import graphc
from graphc.frontend.tracer import Tracer
from graphc import nn
from graphc.ops import OPS
from graphc.passes.autodiff import VJP

RNG = np.random.default_rng(20240611)
T = torch.from_numpy


# ---- coverage ----------------------------------------------------------------------------

def test_every_differentiable_primitive_has_a_vjp_rule():
    missing = sorted(n for n, op in OPS.items() if op.differentiable and n not in VJP)
    assert not missing, f"differentiable primitives without a rule in VJP: {missing}"


def test_no_vjp_rule_for_unknown_or_non_differentiable_ops():
    # a stale rule (an op renamed, or marked non-differentiable) would never run
    stale = sorted(n for n in VJP if n not in OPS or not OPS[n].differentiable)
    assert not stale, f"VJP rules for ops that are not differentiable primitives: {stale}"


# ---- inputs, kept inside each op's domain ------------------------------------------------

def normal(*shape):
    return RNG.standard_normal(shape)


def uniform(lo, hi, *shape):
    return RNG.uniform(lo, hi, shape)


def positive(*shape):
    """For log, sqrt, rsqrt and pow's base: far enough from 0 that eps steps stay in."""
    return uniform(0.3, 3.0, *shape)


def away_from_zero(*shape):
    """|x| in [0.25, 2): abs and the where(x > 0, ...) condition have their kink at 0."""
    return np.where(RNG.random(shape) < 0.5, -1.0, 1.0) * uniform(0.25, 2.0, *shape)


def distinct(*shape):
    """Values at least ~0.2 apart, shuffled: max and min have no ties to step across."""
    n = int(np.prod(shape))
    values = (np.arange(n) - n / 2) * 0.3 + uniform(-0.05, 0.05, n)
    return RNG.permutation(values).reshape(shape)


def interleaved(parity: int, *shape):
    """Integers (parity 0) or half-integers (parity 1), jittered by < 0.1: the two
    operands of maximum/minimum differ by >= 0.3 everywhere and each side wins."""
    return RNG.integers(-3, 3, shape) + 0.5 * parity + uniform(-0.1, 0.1, *shape)


def dyadic(shape, dtype=np.float64):
    """Multiples of 2**-10 in (-2, 2): with eps = 2**-20 and the quarter-integer
    directions below, x +- eps*dx is exact in float32, so a cast's finite difference
    has no rounding in it."""
    return (RNG.integers(-2047, 2048, shape) * 2.0 ** -10).astype(dtype)


def prim(op: str, *xs, **attrs):
    """Primitive `op` without a numpy spelling (rsqrt, pad, scatter_add, a raw gather):
    a graph node while tracing, its numpy reference implementation eagerly."""
    tracer = next((x for x in xs if isinstance(x, Tracer)), None)
    if tracer is None:
        return OPS[op].impl(*xs, **attrs)
    ctx = tracer.ctx
    return ctx.emit(op, *(x if isinstance(x, Tracer) else ctx.const(x) for x in xs), **attrs)


def torch_slice(t, key):
    """t[key] for Python slices with any step (torch refuses negative steps)."""
    for axis, k in enumerate(key):
        idx = torch.from_numpy(np.arange(t.shape[axis])[k].copy())
        t = t.index_select(axis, idx)
    return t


def torch_gather(t, idx, axis):
    """np.take(t, idx, axis) for any index shape, negative indices wrapping."""
    flat = torch.from_numpy(np.asarray(idx).ravel() % t.shape[axis])
    out = t.index_select(axis, flat)
    return out.reshape(t.shape[:axis] + np.shape(idx) + t.shape[axis + 1:])


def torch_scatter_add(t, idx, upd, axis):
    flat = torch.from_numpy(np.asarray(idx).ravel() % t.shape[axis])
    return t.index_add(axis, flat, upd.reshape(t.shape[:axis] + (flat.numel(),)
                                               + t.shape[axis + 1:]))


# ---- the per-op table --------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    id: str
    op: str          # the primitive whose rule this checks: it must be in the trace
    fn: Callable     # numpy code: runs eagerly (finite differences) and traces (grad)
    inputs: tuple    # float arrays; every one is differentiated
    torch_fn: Callable | None = None  # the same function on torch tensors


CASES: list[Case] = []


def case(id, op, fn, inputs, torch_fn=None):
    CASES.append(Case(id, op, fn, tuple(inputs), torch_fn))


def domain(op: str, i: int = 0):
    """A sampler of input `i` of `op` from its record's sample domain (the one the op
    tests of tests/op_samples.py use), in float64."""
    return lambda *shape: OPS[op].domain_of(i).sample(RNG, shape)


UNARY = {  # op -> (numpy code, torch); inputs from the op's sample domain
    "neg": (np.negative, torch.neg),
    "abs": (np.abs, torch.abs),
    "exp": (np.exp, torch.exp),
    "expm1": (np.expm1, torch.expm1),
    "log": (np.log, torch.log),
    "log1p": (np.log1p, torch.log1p),
    "sqrt": (np.sqrt, torch.sqrt),
    "rsqrt": (lambda x: prim("rsqrt", x), torch.rsqrt),
    "reciprocal": (np.reciprocal, torch.reciprocal),
    "tanh": (np.tanh, torch.tanh),
    "sigmoid": (nn.sigmoid, torch.sigmoid),
    "sin": (np.sin, torch.sin),
    "cos": (np.cos, torch.cos),
    "erf": (nn.erf, torch.erf),
}
for _op, (_fn, _tfn) in UNARY.items():
    for _shape in [(3, 4), (), (2, 1, 3)]:
        case(f"{_op}-{list(_shape)}", _op, _fn, [domain(_op)(*_shape)], _tfn)

BINARY = {  # op -> (numpy code, torch, sampler of a, sampler of b)
    **{op: (fn, tfn, domain(op, 0), domain(op, 1)) for op, fn, tfn in [
        ("add", np.add, torch.add), ("sub", np.subtract, torch.sub),
        ("mul", np.multiply, torch.mul), ("div", np.divide, torch.div),
        ("pow", np.power, torch.pow)]},
    # the kink where a == b: operands kept apart, not drawn from the sample domain
    "maximum": (np.maximum, torch.maximum, lambda *s: interleaved(0, *s),
                lambda *s: interleaved(1, *s)),
    "minimum": (np.minimum, torch.minimum, lambda *s: interleaved(0, *s),
                lambda *s: interleaved(1, *s)),
}
# equal shapes; both operands broadcast; a 0-d operand on either side; 1 against n
BINARY_SHAPES = [((3, 4), (3, 4)), ((2, 1, 4), (3, 4)), ((), (2, 3)), ((2, 3), ()),
                 ((3, 1), (1, 5))]
for _op, (_fn, _tfn, _sa, _sb) in BINARY.items():
    for _a, _b in BINARY_SHAPES:
        case(f"{_op}-{list(_a)},{list(_b)}", _op, _fn, [_sa(*_a), _sb(*_b)], _tfn)


def off_the_jumps(b):
    """a with a / b an integer plus a fraction in [0.2, 0.8]: floor(a / b) is constant
    within eps, so a % b and a // b have no jump to step across."""
    k = RNG.integers(-3, 4, np.shape(b)) + uniform(0.2, 0.8, *np.shape(b))
    return k * b


for _a, _b in [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 3), ())]:  # b broadcasts
    _div = away_from_zero(*_b)
    case(f"remainder-{list(_a)},{list(_b)}", "remainder", np.remainder,
         [off_the_jumps(np.broadcast_to(_div, _a)), _div], torch.remainder)
_num = away_from_zero(3, 1)  # a broadcasts: b = a / (integer + fraction)
case("remainder-[3, 1],[3, 5]", "remainder", np.remainder,
     [_num, _num / off_the_jumps(np.ones((3, 5)))], torch.remainder)
# floor, ceil, round and // carry no gradient: only the other factor's path does
_x = off_the_jumps(np.ones((3, 4)))
for _op, _fn, _tfn in [("floor", np.floor, torch.floor), ("ceil", np.ceil, torch.ceil),
                       ("round", np.round, torch.round)]:
    case(f"{_op}-times-x", _op, lambda x, f=_fn: f(x) * x, [_x], lambda t, f=_tfn: f(t) * t)
case("floor_divide-times-a", "floor_divide", lambda a, b: (a // b) * a,
     [off_the_jumps(np.full((3, 4), 1.5)), np.full((3, 4), 1.5)],
     lambda a, b: torch.floor(a / b) * a)  # torch's floor_divide has no derivative
# logaddexp (a composite): softmax weights, a tie included (0.5 each, and smooth there)
_ab = normal(3, 4)
case("logaddexp", "log1p", np.logaddexp, [normal(3, 4), normal(3, 4)], torch.logaddexp)
case("logaddexp-tie", "log1p", np.logaddexp, [_ab, _ab.copy()], torch.logaddexp)
case("logaddexp-broadcast", "log1p", np.logaddexp, [normal(2, 1, 4), normal(3, 4)],
     torch.logaddexp)

COND = RNG.random((2, 1, 4)) < 0.5
case("where-const-cond-broadcast", "where", lambda a, b: np.where(COND, a, b),
     [normal(3, 4), normal(4)], lambda a, b: torch.where(torch.from_numpy(COND), a, b))
case("where-scalar-branch", "where", lambda a, b: np.where(COND, a, b),
     [normal(), normal(3, 1)], lambda a, b: torch.where(torch.from_numpy(COND), a, b))
# the condition is computed from x: the comparison itself must pass no gradient
case("where-cond-from-x", "where", lambda x: np.where(x > 0, x * x, -2.0 * x),
     [away_from_zero(3, 4)], lambda x: torch.where(x > 0, x * x, -2.0 * x))

case("cast-f64-to-f32", "cast", lambda x: x.astype(np.float32), [dyadic((3, 4))],
     lambda x: x.to(torch.float32))
case("cast-f32-to-f64", "cast", lambda x: x.astype(np.float64),
     [dyadic((3, 4), np.float32)], lambda x: x.to(torch.float64))

REDUCE_TORCH = {"sum": torch.sum, "max": torch.amax, "min": torch.amin}
# (shape, axis, keepdims): all axes, one, several, negative, a size-1 axis, a 0-d input
REDUCTIONS = [((2, 3, 4), None, False), ((2, 3, 4), 1, False), ((2, 3, 4), (0, 2), True),
              ((2, 3, 4), -1, True), ((3, 1, 4), 1, False), ((3, 1, 4), (1, 2), True),
              ((), None, False)]
for _op, _tfn in REDUCE_TORCH.items():
    for _shape, _axis, _keep in REDUCTIONS:
        _dims = tuple(range(len(_shape))) if _axis is None else _axis
        case(f"{_op}-{list(_shape)}-axis={_axis}-keepdims={_keep}", _op,
             lambda x, f=getattr(np, _op), a=_axis, k=_keep: f(x, axis=a, keepdims=k),
             [distinct(*_shape) if _shape else normal()],
             lambda t, f=_tfn, d=_dims, k=_keep: f(t, dim=d, keepdim=k) if d else t)

case("reshape-merge", "reshape", lambda x: x.reshape(6, 4), [normal(2, 3, 4)],
     lambda t: t.reshape(6, 4))
case("reshape-size-1-axes", "reshape", lambda x: x.reshape(3, 1, 4, 1), [normal(3, 4)],
     lambda t: t.reshape(3, 1, 4, 1))
case("transpose-3d", "transpose", lambda x: x.transpose(2, 0, 1), [normal(2, 3, 4)],
     lambda t: t.permute(2, 0, 1))
case("transpose-T", "transpose", lambda x: x.T, [normal(3, 5)], lambda t: t.T)
case("broadcast_to-lead-and-1", "broadcast_to", lambda x: np.broadcast_to(x, (2, 3, 4)),
     [normal(3, 1)], lambda t: torch.broadcast_to(t, (2, 3, 4)))
case("broadcast_to-0d", "broadcast_to", lambda x: np.broadcast_to(x, (2, 3)), [normal()],
     lambda t: torch.broadcast_to(t, (2, 3)))

SLICES = {  # id -> (input shape, key): steps 1, 2, -1, -3, mixed on several axes
    "step-1": ((5, 4), (slice(1, 4), slice(None))),
    "step-2": ((7, 4), (slice(None, None, 2), slice(1, None))),
    "step-minus-1": ((6,), (slice(None, None, -1),)),
    "step-minus-3": ((10,), (slice(8, 1, -3),)),
    "step-minus-3-whole": ((10, 3), (slice(None, None, -3), slice(1, 3))),
    "mixed-3d": ((4, 5, 6), (slice(1, None, 2), slice(None, None, -2), slice(5, 0, -1))),
}
for _name, (_shape, _key) in SLICES.items():
    case(f"slice-{_name}", "slice", lambda x, k=_key: x[k], [normal(*_shape)],
         lambda t, k=_key: torch_slice(t, k))

case("concat-axis-1", "concat", lambda a, b, c: np.concatenate([a, b, c], axis=1),
     [normal(2, 1), normal(2, 3), normal(2, 2)], lambda a, b, c: torch.cat([a, b, c], 1))
# the same array twice: its two cotangent slices must add up
case("concat-same-input-twice", "concat", lambda x: np.concatenate([x, 2.0 * x], axis=0),
     [normal(2, 3)], lambda t: torch.cat([t, 2.0 * t], 0))

for _widths, _value in [(((1, 2), (0, 3)), 0.0), (((0, 1), (2, 2)), 1.5), (((2, 0),), -1.0)]:
    _shape = (2, 3) if len(_widths) == 2 else (4,)
    _flat = tuple(w for pair in reversed(_widths) for w in pair)  # F.pad: last axis first
    case(f"pad-{_widths}-value={_value}", "pad",
         lambda x, w=_widths, v=_value: prim("pad", x, widths=w, value=v), [normal(*_shape)],
         lambda t, f=_flat, v=_value: F.pad(t, f, value=v))

# gather: repeated and negative indices (each repeat adds into the same row)
for _id, _shape, _idx, _axis in [
        ("repeated-negative", (5, 3), np.array([0, -1, 2, 0, 2, -1]), 0),
        ("2d-index-axis-1", (4, 5), np.array([[0, 4], [-5, 1], [4, 4]]), 1),
        ("0d-index", (3, 4), np.array(-2), 0)]:
    case(f"gather-{_id}", "gather", lambda x, i=_idx, a=_axis: prim("gather", x, i, axis=a),
         [normal(*_shape)], lambda t, i=_idx, a=_axis: torch_gather(t, i, a))
IDX = np.array([0, -1, 2, 0, 2])
case("gather-np.take", "gather", lambda x: np.take(x, IDX, axis=0), [normal(5, 3)],
     lambda t: torch_gather(t, IDX, 0))
case("gather-fancy-index", "gather", lambda x: x[:, np.array([[0, 2], [-1, 0]])],
     [normal(2, 3)], lambda t: torch_gather(t, np.array([[0, 2], [-1, 0]]), 1))

for _id, _shape, _idx, _axis in [("repeated-negative", (5, 3), np.array([0, -1, 2, 0]), 0),
                                  ("2d-index-axis-1", (2, 4), np.array([[3, 1], [-1, 1]]), 1)]:
    _upd = _shape[:_axis] + _idx.shape + _shape[_axis + 1:]
    case(f"scatter_add-{_id}", "scatter_add",
         lambda x, u, i=_idx, a=_axis: prim("scatter_add", x, i, u, axis=a),
         [normal(*_shape), normal(*_upd)],
         lambda t, u, i=_idx, a=_axis: torch_scatter_add(t, i, u, a))

# cumsum: the cotangent is a running sum from the end; size-1 axes and the flattening
# form (axis=None) too
for _shape, _axis in [((5,), 0), ((3, 4), 0), ((3, 4), -1), ((2, 3, 4), 1), ((1, 3), 0),
                      ((2, 3), None)]:
    case(f"cumsum-{list(_shape)}-axis={_axis}", "cumsum",
         lambda x, a=_axis: np.cumsum(x, axis=a), [normal(*_shape)],
         lambda t, a=_axis: torch.cumsum(t.flatten() if a is None else t, 0 if a is None else a))

for _a, _b in [((3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 6)),
               ((3, 4), (2, 4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)),
               ((2, 3, 4), (4,)), ((3,), (2, 3, 4)),  # the 1-d ones follow np.matmul's rules
               ((2, 3, 4), (4, 5)), ((2, 2, 3, 4), (4, 5))]:  # a 2-d b: one GEMM for its grad
    case(f"matmul-{list(_a)}@{list(_b)}", "matmul", np.matmul, [normal(*_a), normal(*_b)],
         torch.matmul)

for _a, _b, _ta, _tb in [((4, 3), (4, 5), True, False), ((2, 3, 4), (5, 4), False, True),
                         ((2, 4, 3), (2, 5, 4), True, True)]:
    case(f"matmul-flags-{_ta:d}{_tb:d}-{list(_a)}@{list(_b)}", "matmul",
         lambda a, b, ta=_ta, tb=_tb: prim("matmul", a, b, transpose_a=ta, transpose_b=tb),
         [normal(*_a), normal(*_b)],
         lambda a, b, ta=_ta, tb=_tb: torch.matmul(a.transpose(-1, -2) if ta else a,
                                                   b.transpose(-1, -2) if tb else b))


# ---- finite differences ------------------------------------------------------------------

EPS = 2.0 ** -20  # ~1e-6, a power of two (see `dyadic`)
RTOL = 1e-6


def weighted_loss(fn, w):
    """L(*xs) = sum(fn(*xs) * w): a scalar whose gradient is the VJP of fn at w."""
    return lambda *xs: np.sum(fn(*xs) * w)


def case_rng(c: Case):
    return np.random.default_rng(zlib.crc32(c.id.encode()))


def assert_vjp_matches_finite_differences(fn, inputs, rng):
    """grad of sum(fn(*inputs) * w), dotted with a random direction, against the
    central difference of the same numpy code along that direction."""
    w = rng.standard_normal(np.shape(fn(*inputs)))
    loss = weighted_loss(fn, w)
    grads = graphc.grad(loss, argnums=tuple(range(len(inputs))))(*inputs)
    for g, x in zip(grads, inputs):
        assert g.shape == x.shape and g.dtype == x.dtype, \
            f"gradient {g.dtype}{g.shape} for an input {x.dtype}{x.shape}"

    # quarter-integer directions: exact steps for the dyadic inputs of the casts
    dirs = [(rng.integers(-8, 9, np.shape(x)) / 4).astype(x.dtype) for x in inputs]
    analytic = sum(float(np.vdot(g, d)) for g, d in zip(grads, dirs))
    plus = loss(*(x + EPS * d for x, d in zip(inputs, dirs)))
    minus = loss(*(x - EPS * d for x, d in zip(inputs, dirs)))
    numeric = float(plus - minus) / (2 * EPS)
    # the absolute floor only matters if a directional derivative happens to be ~0
    np.testing.assert_allclose(analytic, numeric, rtol=RTOL, atol=RTOL * 1e-2)


@pytest.mark.parametrize("c", [pytest.param(c, id=c.id) for c in CASES])
def test_vjp_matches_finite_differences(c: Case):
    ops = {n.op for n in graphc.trace(lambda *xs: np.sum(c.fn(*xs)), *c.inputs).nodes}
    assert c.op in ops, f"the traced function does not use {c.op}: this case checks nothing"
    assert_vjp_matches_finite_differences(c.fn, c.inputs, case_rng(c))


@settings(max_examples=40, deadline=None)
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3,
                                                max_side=3),
       op=st.sampled_from([np.add, np.subtract, np.multiply, np.divide, np.maximum]),
       seed=st.integers(0, 2 ** 32 - 1))
def test_broadcasting_binary_ops_match_finite_differences(shapes, op, seed):
    # undoing broadcasting (summing the cotangent back to each input's shape) on any
    # pair of shapes numpy accepts; integers vs half-integers (jittered by < 0.1) keep
    # the divisor away from 0 and maximum away from ties
    rng = np.random.default_rng(seed)
    a, b = shapes.input_shapes
    xs = (rng.integers(-3, 3, a) + rng.uniform(-0.1, 0.1, a),
          rng.integers(-3, 3, b) + 0.5 + rng.uniform(-0.1, 0.1, b))
    assert_vjp_matches_finite_differences(op, xs, rng)


def _window_op(name: str) -> bool:
    # conv2d, pooling and their gradient primitives live in graphc/ops/linalg.py next to
    # matmul; their rules are checked in tests/test_conv_grad.py
    return name != "matmul" and OPS[name].impl.__module__ == "graphc.ops.linalg"


def test_every_vjp_rule_has_a_finite_difference_case():
    checked = {c.op for c in CASES}
    unchecked = sorted(n for n in VJP if n not in checked and not _window_op(n))
    assert not unchecked, f"VJP rules without a case in CASES: {unchecked}"


# ---- torch, float32 ----------------------------------------------------------------------

# float32: a few hundred units in the last place (2**-23 ~ 1.2e-7) for O(1) values
TORCH_RTOL, TORCH_ATOL = 1e-5, 1e-6


def f32(x):
    return x.astype(np.float32) if x.dtype == np.float64 else x


@pytest.mark.parametrize("c", [pytest.param(c, id=c.id) for c in CASES if c.torch_fn])
def test_vjp_matches_torch_float32(c: Case):
    xs = [f32(x) for x in c.inputs]
    w = case_rng(c).standard_normal(np.shape(c.fn(*xs))).astype(np.float32)
    grads = graphc.grad(weighted_loss(c.fn, w), argnums=tuple(range(len(xs))))(*xs)

    ts = [torch.tensor(x, requires_grad=True) for x in xs]
    (c.torch_fn(*ts) * T(w)).sum().backward()
    for g, t in zip(grads, ts):
        assert g.dtype == t.grad.numpy().dtype and g.shape == tuple(t.shape)
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=TORCH_RTOL, atol=TORCH_ATOL)


# ---- ties: the gradient is split evenly among equal maxima, as torch does ----------------

def torch_grads(tfn, xs, w):
    ts = [torch.tensor(x, requires_grad=True) for x in xs]
    (tfn(*ts) * T(w)).sum().backward()
    return [t.grad.numpy() for t in ts]


def graphc_grads(fn, xs, w):
    return graphc.grad(weighted_loss(fn, w), argnums=tuple(range(len(xs))))(*xs)


# small integers: every row has repeated values, and often a repeated maximum
TIES = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [-1.0, 0.0, -1.0, 0.0]])


@pytest.mark.parametrize("np_fn, torch_fn", [
    pytest.param(lambda x: np.max(x, axis=1), lambda t: torch.amax(t, dim=1), id="max-axis-1"),
    pytest.param(lambda x: np.max(x, axis=0, keepdims=True),
                 lambda t: torch.amax(t, dim=0, keepdim=True), id="max-axis-0-keepdims"),
    pytest.param(lambda x: np.max(x), lambda t: torch.amax(t), id="max-all"),
    pytest.param(lambda x: np.min(x, axis=1), lambda t: torch.amin(t, dim=1), id="min-axis-1"),
    pytest.param(lambda x: np.min(x), lambda t: torch.amin(t), id="min-all"),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reduction_ties_match_torch(np_fn, torch_fn, dtype):
    x = TIES.astype(dtype)
    w = np.random.default_rng(1).standard_normal(np.shape(np_fn(x))).astype(dtype)
    (got,), (want,) = graphc_grads(np_fn, [x], w), torch_grads(torch_fn, [x], w)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)


@pytest.mark.parametrize("np_fn, torch_fn, b", [
    pytest.param(np.maximum, torch.maximum, TIES[::-1].copy(), id="maximum"),
    pytest.param(np.minimum, torch.minimum, TIES[::-1].copy(), id="minimum"),
    # a broadcast operand collects the half-gradients of several ties
    pytest.param(np.maximum, torch.maximum, np.array([2.0, 0.0, 3.0, 0.0]),
                 id="maximum-broadcast"),
    # relu written as np.maximum(x, 0): torch.maximum gives 1/2 at x == 0 (torch.relu 0)
    pytest.param(np.maximum, torch.maximum, np.zeros(()), id="maximum-with-0"),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_elementwise_ties_match_torch(np_fn, torch_fn, b, dtype):
    xs = [TIES.astype(dtype), b.astype(dtype)]
    w = np.random.default_rng(2).standard_normal(np_fn(*xs).shape).astype(dtype)
    for got, want in zip(graphc_grads(np_fn, xs, w), torch_grads(torch_fn, xs, w)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)


# ---- second derivatives: Hessian-vector products against torch's double backward ---------

def graphc_hvp(f, xs, vs):
    """H v as the gradient of <grad f(x), v>: grad of a function that calls grad."""
    nums = tuple(range(len(xs)))

    def grad_dot_v(*xs):
        return sum(np.sum(g * v) for g, v in zip(graphc.grad(f, argnums=nums)(*xs), vs))
    return graphc.grad(grad_dot_v, argnums=nums)(*xs)


def torch_hvp(f, xs, vs):
    ts = [torch.tensor(x, requires_grad=True) for x in xs]
    gs = torch.autograd.grad(f(*ts), ts, create_graph=True)
    dot = sum((g * T(v)).sum() for g, v in zip(gs, vs))
    return [h.numpy() for h in torch.autograd.grad(dot, ts)]


X45, W45, W55 = normal(5, 4), normal(5, 4), normal(5, 5)
LABELS = np.array([0, 3, 1, 1, 2])
LN_W, LN_B = normal(4), normal(4)

HVP_CASES = [  # id, graphc function, torch function, inputs
    ("tanh-chain",
     lambda x: np.sum(np.tanh(np.tanh(x) * x + 0.5) * W45),
     lambda x: (torch.tanh(torch.tanh(x) * x + 0.5) * T(W45)).sum(), [normal(5, 4)]),
    ("softmax-cross-entropy",
     lambda z: nn.cross_entropy(z, LABELS),
     lambda z: F.cross_entropy(z, T(LABELS)), [normal(5, 4)]),
    ("layer-norm",
     lambda x: np.sum(nn.layer_norm(x, LN_W, LN_B) * W45),
     lambda x: (F.layer_norm(x, (4,), T(LN_W), T(LN_B), eps=1e-5) * T(W45)).sum(),
     [normal(5, 4)]),
    ("matmul-chain",
     lambda w: np.sum(np.tanh(X45 @ w) @ w.T @ X45.T * W55),
     lambda w: ((torch.tanh(T(X45) @ w) @ w.T @ T(X45).T) * T(W55)).sum(), [normal(4, 3)]),
    ("polynomial",
     lambda x: np.sum(x ** 4 / 4 - 2 * x ** 3 + 3 * x * x[::-1] - x),
     lambda x: (x ** 4 / 4 - 2 * x ** 3 + 3 * x * x.flip(0) - x).sum(), [normal(6)]),
    ("pow-base-and-exponent",
     lambda a, b: np.sum(a ** b),
     lambda a, b: (a ** b).sum(), [positive(3, 4), uniform(-2, 2, 3, 4)]),
    ("softmax-attention-scores",  # max reduction, exp, div and matmul together
     lambda q, k: np.sum(nn.softmax(q @ k.T / 2.0) * W55),
     lambda q, k: (torch.softmax(q @ k.T / 2.0, -1) * T(W55)).sum(),
     [normal(5, 4), normal(5, 4)]),
]


@pytest.mark.parametrize("f, tf, xs", [pytest.param(f, tf, xs, id=i)
                                       for i, f, tf, xs in HVP_CASES])
def test_hessian_vector_product_matches_torch(f, tf, xs):
    vs = [np.random.default_rng(3).standard_normal(x.shape) for x in xs]
    for got, want in zip(graphc_hvp(f, xs, vs), torch_hvp(tf, xs, vs)):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def _all_float64(c: Case) -> bool:  # tight tolerances need float64 all the way through
    return all(x.dtype == np.float64 for x in c.inputs + (c.fn(*c.inputs),))


@pytest.mark.parametrize("c", [pytest.param(c, id=c.id) for c in CASES
                               if c.torch_fn and _all_float64(c)])
def test_every_rule_differentiates_again(c: Case):
    # The backward of each rule is IR too; differentiating it once more must work and
    # agree with torch. sin() around the op makes the Hessian non-zero for linear ops.
    rng = case_rng(c)
    w = rng.standard_normal(np.shape(c.fn(*c.inputs)))
    vs = [rng.standard_normal(x.shape) for x in c.inputs]
    got = graphc_hvp(weighted_loss(lambda *xs: np.sin(c.fn(*xs)), w), c.inputs, vs)
    want = torch_hvp(lambda *ts: (torch.sin(c.torch_fn(*ts)) * T(w)).sum(), c.inputs, vs)
    for g, h in zip(got, want):
        np.testing.assert_allclose(g, h, rtol=1e-9, atol=1e-12)


def test_second_derivative_of_a_scalar_function():
    # d2/dx2 x**3 = 6x, elementwise: grad of sum(grad) when the Hessian is diagonal
    x = positive(4)
    got = graphc.grad(lambda x: np.sum(graphc.grad(lambda x: np.sum(x ** 3))(x)))(x)
    t = torch.tensor(x, requires_grad=True)
    (g,) = torch.autograd.grad((t ** 3).sum(), t, create_graph=True)
    (want,) = torch.autograd.grad(g.sum(), t)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-12)
