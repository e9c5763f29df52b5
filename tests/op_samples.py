"""Sample inputs for every primitive in `graphc.ops.OPS`, with independent references.

`SAMPLES[op]` is a list of cases `(inputs, attrs, reference)`:

* `inputs`: the list of numpy arrays the one-node graph takes (empty for const/iota);
* `attrs`: the node's attributes, already in the normalized form the IR expects;
* `reference(*inputs, **attrs)`: the expected output, computed WITHOUT the op's
  `OpDef.impl`: Python's `math` in float64, numpy in float64 (rounded once to the
  output dtype), plain Python loops, or torch.

The reference also fixes the expected dtype: it is what numpy gives for the op
(a comparison gives bool, a float32 exp gives float32, ...), except where the
primitive's documented contract differs from numpy (an int32 `sum` primitive stays
int32: the frontend casts before summing where numpy would widen).

Inputs come from one seeded generator, so the table is the same on every run.
`tests/test_ops.py` runs each case through the interpreter and the numpy backend.
"""
from __future__ import annotations

import itertools
import math
import operator
from collections import defaultdict
from typing import Any, Callable

import numpy as np
import torch

from graphc.ops import OPS

RNG = np.random.default_rng(20240607)
F64 = np.float64

Case = tuple[list[np.ndarray], dict[str, Any], Callable[..., np.ndarray]]
SAMPLES: dict[str, list[Case]] = defaultdict(list)

FLOATS = ["float16", "float32", "float64"]
INTS = ["int32", "int64"]
NUMERIC = FLOATS + INTS
ALL = NUMERIC + ["bool"]


def case(op: str, inputs, reference, **attrs) -> None:
    SAMPLES[op].append((list(inputs), attrs, reference))


def data(shape, dtype: str, lo: float = -3.0, hi: float = 3.0) -> np.ndarray:
    """Random array: uniform floats in [lo, hi), ints in [lo, hi], fair bools."""
    if dtype == "bool":
        return np.array(RNG.random(shape) < 0.5)
    if dtype in INTS:
        return np.array(RNG.integers(int(lo), int(hi), size=shape, endpoint=True), dtype)
    return np.array(RNG.uniform(lo, hi, size=shape), dtype)


def nonzero(shape, dtype: str, lo: float = 0.25, hi: float = 4.0) -> np.ndarray:
    """Random floats with lo <= |x| < hi and random signs (divisors, reciprocals)."""
    sign = np.where(RNG.random(shape) < 0.5, -1.0, 1.0)
    return np.array(sign * RNG.uniform(lo, hi, size=shape), dtype)


def ties(shape, dtype: str) -> np.ndarray:
    """Small integers in any dtype: comparisons and argmax then meet equal values."""
    return np.array(RNG.integers(-2, 3, size=shape), dtype)


# ---------------------------------------------------------------- reference builders

def math_ref(fn: Callable[[float], float]):
    """Float unary op: `fn` from Python's math, element by element in float64, then
    rounded once to the input's dtype."""
    def ref(x):
        flat = [fn(v) for v in x.astype(F64).ravel().tolist()]
        return np.array(flat, F64).reshape(x.shape).astype(x.dtype)
    return ref


def in_f64(fn):
    """Arithmetic in float64 rounded once to the (common) dtype of the data inputs.

    Exact for the small integers the int cases use, so it serves ints too."""
    def ref(*xs):
        out = np.asarray(fn(*(x.astype(F64) for x in xs)))
        return out.astype(xs[-1].dtype)
    return ref


def compare_ref(fn):
    """Comparison: numpy's operator on float64 copies (exact for every dtype here)."""
    return lambda a, b: np.asarray(fn(a.astype(F64), b.astype(F64)))


def rows_ref(row_fn, out_dtype=None):
    """Reduction: move the reduced axes last, flatten them into rows, and apply the
    plain-Python `row_fn` (math.fsum, sum, max, ...) to each row's list of values."""
    def ref(x, axes, keepdims):
        kept = [d for i, d in enumerate(x.shape) if i not in axes]
        red = [x.shape[a] for a in axes]
        moved = np.moveaxis(x, axes, range(x.ndim - len(axes), x.ndim))
        rows = moved.reshape(math.prod(kept), math.prod(red))
        values = np.array([row_fn(r.tolist()) for r in rows], dtype=out_dtype or x.dtype)
        shape = [1 if i in axes else d for i, d in enumerate(x.shape)] if keepdims else kept
        return values.reshape(shape)
    return ref


# ---------------------------------------------------------------- elementwise

UNARY_SHAPES = [(), (7,), (3, 4), (2, 1, 5), (0, 3)]
# pairs that broadcast: rank mismatch, 0-d on either side, 1 against n, size 0
BINARY_SHAPES = [((3, 1, 4), (5, 4)), ((), (2, 3)), ((2, 3), ()), ((4, 1), (1, 5)),
                 ((1, 3), (0, 3)), ((2, 3), (2, 3))]

def in_domain(op: str, i: int = 0) -> Callable:
    """A sampler `(shape, dtype) -> array` of input `i` of `op`, from the sample domain
    its record states (`graphc.ops.Domain`); the gradient checks draw from it too."""
    dom = OPS[op].domain_of(i)
    if dom.kind == "nonzero":
        return lambda s, d: nonzero(s, d, dom.lo, dom.hi)
    return lambda s, d: data(s, d, dom.lo, dom.hi)


# op -> scalar function in float64; inputs from the op's sample domain
FLOAT_UNARY = {
    "exp": math.exp, "expm1": math.expm1, "log": math.log, "log1p": math.log1p,
    "sqrt": math.sqrt, "rsqrt": lambda v: 1 / math.sqrt(v), "reciprocal": lambda v: 1 / v,
    "tanh": math.tanh, "sigmoid": lambda v: 1 / (1 + math.exp(-v)), "sin": math.sin,
    "cos": math.cos, "erf": math.erf,
}
for _op, _fn in FLOAT_UNARY.items():
    for _dt in FLOATS:
        for _shape in UNARY_SHAPES:
            case(_op, [in_domain(_op)(_shape, _dt)], math_ref(_fn))

# Values where a naive formula loses: expm1/log1p of tiny x (exp(x) - 1 cancels),
# sigmoid of large |x| (exp(-x) overflows in float32 for x < -89).
for _dt in ("float32", "float64"):
    case("expm1", [data((6,), _dt, -1e-6, 1e-6)], math_ref(math.expm1))
    case("log1p", [data((6,), _dt, -1e-6, 1e-6)], math_ref(math.log1p))
    case("sigmoid", [data((8,), _dt, -40, 40)], math_ref(lambda v: 1 / (1 + math.exp(-v))))
    case("exp", [data((5,), _dt, -80, 80)], math_ref(math.exp))

NUMERIC_UNARY = {
    "neg": lambda v: -v,
    "abs": lambda v: np.where(v < 0, -v, v),
    "sign": lambda v: (v > 0) * 1.0 - (v < 0) * 1.0,
}
for _op, _fn in NUMERIC_UNARY.items():
    for _dt in NUMERIC:
        for _shape in UNARY_SHAPES:
            case(_op, [data(_shape, _dt)], in_f64(_fn))
    case(_op, [np.array([0.0, -0.0, 3.5, -2.25], np.float32)], in_f64(_fn))

for _shape in UNARY_SHAPES:
    case("logical_not", [data(_shape, "bool")], lambda x: x == False)  # noqa: E712

# op -> (float64 reference, dtypes, sampler for the second operand)
BINARY = {
    "add": (operator.add, NUMERIC, data),
    "sub": (operator.sub, NUMERIC, data),
    "mul": (operator.mul, NUMERIC, data),
    "div": (operator.truediv, FLOATS, in_domain("div", 1)),
    "maximum": (np.maximum, NUMERIC, ties),  # ties: equal operands happen
    "minimum": (np.minimum, NUMERIC, ties),
}
for _op, (_fn, _dtypes, _sample) in BINARY.items():
    for _dt in _dtypes:
        for _sa, _sb in BINARY_SHAPES:
            first = ties(_sa, _dt) if _sample is ties else data(_sa, _dt)
            case(_op, [first, _sample(_sb, _dt)], in_f64(_fn))

# pow: float bases must be positive for float exponents; int exponents non-negative
for _dt in NUMERIC:
    for _sa, _sb in BINARY_SHAPES:
        if _dt in INTS:
            base, expo = data(_sa, _dt, -3, 3), data(_sb, _dt, 0, 3)
        else:
            base, expo = in_domain("pow", 0)(_sa, _dt), in_domain("pow", 1)(_sb, _dt)
        case("pow", [base, expo], in_f64(operator.pow))

COMPARISONS = {"eq": operator.eq, "ne": operator.ne, "lt": operator.lt,
               "le": operator.le, "gt": operator.gt, "ge": operator.ge}
for _op, _fn in COMPARISONS.items():
    for _dt in ALL:
        for _sa, _sb in BINARY_SHAPES:
            case(_op, [ties(_sa, _dt), ties(_sb, _dt)], compare_ref(_fn))
    # NaN compares unequal to everything, itself included (ne is true)
    case(_op, [np.array([np.nan, 1.0, np.nan], np.float32),
               np.array([np.nan, np.nan, 1.0], np.float32)], compare_ref(_fn))

for _op, _fn in {"logical_and": operator.and_, "logical_or": operator.or_}.items():
    for _sa, _sb in BINARY_SHAPES:
        case(_op, [data(_sa, "bool"), data(_sb, "bool")],
             lambda a, b, f=_fn: np.asarray(f(a, b)))


def where_ref(cond, a, b):
    """Broadcast the three operands, then copy `a` where cond holds into a copy of `b`."""
    cond, a, b = np.broadcast_arrays(cond, a, b)
    out = np.array(b)
    out[cond] = a[cond]
    return out


WHERE_SHAPES = [((3, 1, 4), (5, 4), (1, 4)), ((), (2, 3), (2, 3)), ((2, 3), (), ()),
                ((0, 3), (1, 3), (3,)), ((2, 1), (1, 3), (2, 3))]
for _dt in ALL:
    for _sc, _sa, _sb in WHERE_SHAPES:
        case("where", [data(_sc, "bool"), data(_sa, _dt), data(_sb, _dt)], where_ref)

# cast: ndarray.astype is the definition (float -> int truncates toward zero)
CASTS = [("float32", "float16", (3, 4)), ("float64", "float32", (5,)),
         ("float32", "int32", (2, 3)), ("float64", "int64", ()), ("int64", "float64", (4,)),
         ("int32", "int64", (0, 2)), ("bool", "float32", (6,)), ("float16", "float64", (2, 2)),
         ("int32", "float16", (3,)), ("float32", "float32", (2,))]
for _src, _dst, _shape in CASTS:
    case("cast", [data(_shape, _src)], lambda x, dtype: x.astype(dtype), dtype=_dst)
# to bool: zero -> False, anything else -> True
for _src in ("float32", "int32"):
    case("cast", [ties((7,), _src)], lambda x, dtype: x != 0, dtype="bool")

# floor, ceil, round, floor_divide, remainder: Python's math and operators (floored,
# half-to-even round, the divisor's sign for %) element by element in float64 or in
# Python ints, on the edges: signed zeros, .5 ties, inf, nan, negative divisors, b = 0.
EDGES = [0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 2.0, -3.7, 7.25, np.inf, -np.inf, np.nan]


def elementwise_ref(fn, out_dtype=None):
    """fn(float or int, ...) per element of the broadcast inputs, stored in the inputs'
    dtype (or out_dtype)."""
    def ref(*xs, **attrs):
        xs = np.broadcast_arrays(*xs)
        flat = [fn(*vs, **attrs) for vs in zip(*(x.ravel().tolist() for x in xs))]
        return np.array(flat, out_dtype or xs[0].dtype).reshape(xs[0].shape)
    return ref


def _finite_or_same(fn):
    return lambda v, **attrs: fn(v, **attrs) if math.isfinite(v) else v


def _floored(op: str, v, w):
    if isinstance(v, int):  # numpy: an integer divisor of 0 gives 0
        return 0 if w == 0 else (v // w if op == "floor_divide" else v % w)
    if w == 0:  # IEEE a / 0 for //, fmod's nan for %
        return math.nan if op == "remainder" or v == 0 or math.isnan(v) else \
            math.copysign(math.inf, v) * math.copysign(1.0, w)
    if math.isnan(v) or math.isnan(w) or math.isinf(v):
        return math.nan
    return v // w if op == "floor_divide" else v % w


for _dt in FLOATS:
    _edge = np.array(EDGES, _dt)
    for _op, _fn in [("floor", math.floor), ("ceil", math.ceil),
                     ("round", lambda v, decimals: round(v))]:  # Python's: half to even
        _ref = elementwise_ref(_finite_or_same(lambda v, f=_fn, **at: float(f(v, **at))))
        for _shape in UNARY_SHAPES:
            case(_op, [data(_shape, _dt, -6, 6)], _ref, **({"decimals": 0} if _op == "round"
                                                          else {}))
        case(_op, [_edge], _ref, **({"decimals": 0} if _op == "round" else {}))
    for _dec in (1, 2, -1):  # random values: no decimal ties, where rounding x * 10**d
        case("round", [data((3, 4), _dt, -60, 60)],  # first may differ from Python's
             elementwise_ref(_finite_or_same(lambda v, decimals: round(v, decimals))),
             decimals=_dec)
for _op in ("floor_divide", "remainder"):
    _ref = elementwise_ref(lambda v, w, op=_op: _floored(op, v, w))
    for _dt in NUMERIC:
        for _sa, _sb in BINARY_SHAPES:  # small integers: exact quotients, zeros, signs
            case(_op, [ties(_sa, _dt) * 3 + ties(_sa, _dt), ties(_sb, _dt)], _ref)
    for _dt in ("float32", "float64"):
        _a, _b = np.meshgrid(np.array(EDGES, _dt), np.array(EDGES[:11] + [-0.75, 3.0], _dt))
        case(_op, [_a, _b], _ref)
        case(_op, [data((4, 5), _dt, -9, 9), nonzero((5,), _dt)], _ref)
    for _dt in INTS:  # INT_MIN // -1 wraps to INT_MIN; % -1 and % 0 give 0
        _info = np.iinfo(_dt)
        _wrap = elementwise_ref(lambda v, w, op=_op, lo=_info.min: (
            (_floored(op, v, w) - lo) % (2 * -lo) + lo))
        case(_op, [np.array([_info.min, _info.min, _info.max, -7, 7, _info.min], _dt),
                   np.array([-1, 1, -1, _info.min, 0, _info.max], _dt)], _wrap)

# ---------------------------------------------------------------- reductions

_fsum = rows_ref(math.fsum)  # exactly rounded float sum
_isum = rows_ref(sum)        # Python ints: no overflow, then stored in x's dtype
_max, _min = rows_ref(max), rows_ref(min)
AXES = [(), (0,), (1,), (2,), (0, 2), (1, 2), (0, 1, 2)]
for _op, _ref_f, _ref_i in [("sum", _fsum, _isum), ("max", _max, _max), ("min", _min, _min)]:
    for _dt in NUMERIC + ([] if _op == "sum" else ["bool"]):
        _ref = _ref_i if _dt in INTS + ["bool"] else _ref_f
        # every axis set on float32; two representative ones on the other dtypes
        for _axes in AXES if _dt == "float32" else [(1,), (0, 2)]:
            for _keep in (False, True):
                case(_op, [data((2, 3, 4), _dt)], _ref, axes=_axes, keepdims=_keep)
    for _keep in (False, True):
        case(_op, [data((), "float64")], _ref_f, axes=(), keepdims=_keep)
    # a zero-size input reduced over a non-empty axis gives a zero-size result
    case(_op, [data((0, 3), "float32")], _ref_f, axes=(1,), keepdims=False)
# the empty sum is 0 (max and min have no identity: see the error tests)
case("sum", [data((0, 3), "float32")], _fsum, axes=(0,), keepdims=False)
case("sum", [data((0, 3), "int64")], _isum, axes=(0, 1), keepdims=True)
case("sum", [data((4, 0), "float64")], _fsum, axes=(0, 1), keepdims=False)
# many terms: float32 accumulation error must stay within float32's tolerance
case("sum", [data((64, 50), "float32", 0, 1)], _fsum, axes=(0, 1), keepdims=False)

_argmax_ref = rows_ref(lambda r: r.index(max(r)), out_dtype=np.int64)  # first maximum
for _dt in ALL:
    for _axis in (0, 1):
        for _keep in (False, True):
            case("argmax", [ties((4, 5), _dt)],
                 lambda x, axis, keepdims: _argmax_ref(x, (axis,), keepdims),
                 axis=_axis, keepdims=_keep)
case("argmax", [data((0, 3), "float32")],
     lambda x, axis, keepdims: _argmax_ref(x, (axis,), keepdims), axis=1, keepdims=False)
case("argmax", [data((2, 3, 4), "float64")],
     lambda x, axis, keepdims: _argmax_ref(x, (axis,), keepdims), axis=2, keepdims=True)



def cumsum_ref(x, axis):
    """Running sums along `axis` by a Python loop: exact (math.fsum of each prefix, or
    Python ints), rounded once to x's dtype. A float32 result added in order is within
    (n - 1) u sum|x| of it: the float cases keep n <= 5 so that this stays under the
    float32 tolerance, and float16 sums small integers, which it adds exactly."""
    moved = np.moveaxis(x, axis, -1)
    rows = moved.reshape(math.prod(moved.shape[:-1]), moved.shape[-1]).tolist()
    exact = math.fsum if x.dtype.kind == "f" else sum
    # the first place is x[0] itself (fsum would turn a -0.0 into 0.0)
    out = [[r[0] if k == 0 else exact(r[:k + 1]) for k in range(len(r))] for r in rows]
    return np.moveaxis(np.array(out, x.dtype).reshape(moved.shape), -1, axis)


for _shape, _axis, _dt in [((5,), 0, "float32"), ((3, 4), 0, "float32"), ((3, 4), 1, "float64"),
                           ((2, 3, 4), 1, "float32"), ((2, 3, 4), 2, "int32"),
                           ((4, 3), 0, "int64"), ((1, 4), 0, "float64"),   # size-1 axis
                           ((0, 3), 0, "float32"), ((2, 0), 0, "int32"),   # size 0
                           ((3, 1, 2), 2, "float64")]:
    case("cumsum", [data(_shape, _dt)], cumsum_ref, axis=_axis)
case("cumsum", [ties((4, 5), "float16")], cumsum_ref, axis=1)
# many terms, integer-valued: every partial sum is exact in float32 too
case("cumsum", [ties((3, 200), "float32")], cumsum_ref, axis=1)
# -0.0 stays -0.0 in the first place (numpy starts from x[0], not from 0 + x[0])
case("cumsum", [np.array([-0.0, 1.0, -1.0], np.float32)], cumsum_ref, axis=0)
# int32 wraps around as numpy's int32 additions do
case("cumsum", [np.array([2**31 - 1, 1, 1], np.int32)],
     lambda x, axis: np.array([v - 2**32 if v >= 2**31 else v for v in
                               itertools.accumulate(x.tolist())], np.int32), axis=0)

# ---------------------------------------------------------------- shape ops

for _src, _shape, _dt in [((2, 3, 4), (6, 4), "float32"), ((4, 6), (2, 2, 6), "int32"),
                          ((), (1, 1), "float64"), ((1,), (), "bool"),
                          ((0, 3), (3, 0), "float32"), ((2, 3), (6,), "float16")]:
    case("reshape", [data(_src, _dt)],
         lambda x, shape: np.array(x.ravel().tolist(), x.dtype).reshape(shape), shape=_shape)

for _src, _perm, _dt in [((3, 4), (1, 0), "float32"), ((2, 3, 4), (2, 0, 1), "int64"),
                         ((2, 3, 4), (0, 2, 1), "bool"), ((), (), "float64"),
                         ((0, 2, 1), (1, 2, 0), "float32")]:
    # out[i0, i1, ...] = x[...] with out axis k taken from x's axis perm[k]
    case("transpose", [data(_src, _dt)],
         lambda x, perm: np.einsum(x, list(range(x.ndim)), list(perm)) if x.dtype != bool
         else np.moveaxis(x, perm, range(x.ndim)), perm=_perm)

for _src, _shape, _dt in [((3, 1), (2, 3, 4), "float32"), ((), (2, 2), "int32"),
                          ((1,), (0,), "float64"), ((2, 3), (2, 3), "bool"),
                          ((1, 4), (3, 1, 4), "float16")]:
    case("broadcast_to", [data(_src, _dt)],
         lambda x, shape: x + np.zeros(shape, x.dtype), shape=_shape)


def normalize(k: slice, n: int) -> tuple[int, int, int]:
    """The primitive's form of k on an axis of size n, as the frontend writes it:
    `slice.indices`, except that an empty range is 0:0:1 (indices() may give a start
    of -1 there, which the rule refuses)."""
    a, b, s = k.indices(n)
    return (a, b, s) if len(range(a, b, s)) else (0, 0, 1)


def slice_case(shape, key: tuple, dtype: str = "float32") -> None:
    """x[key] with `key` a tuple of Python slices: the attrs are what the frontend
    emits, the reference is Python indexing itself."""
    norm = [normalize(k, n) for k, n in zip(key, shape)]
    case("slice", [data(shape, dtype)], lambda x, **_: x[key],
         starts=tuple(a for a, _, _ in norm), stops=tuple(b for _, b, _ in norm),
         steps=tuple(s for _, _, s in norm))


slice_case((3, 4), (slice(1, 3), slice(None)))
slice_case((10,), (slice(None, None, -1),))              # reverse: stop normalizes to -1
slice_case((10,), (slice(-30, 30),))                     # clamped to the axis
slice_case((10,), (slice(8, 1, -3),))
slice_case((10,), (slice(None, None, 100),))             # step larger than the axis
slice_case((10,), (slice(None, None, -100),))
slice_case((10,), (slice(-20, None, -1),), "int32")     # starts before 0: empty
slice_case((10,), (slice(None, -20),))                   # stops before 0: empty
slice_case((0, 3), (slice(None, None, -1), slice(None, None, 2)))  # size-0 axis
slice_case((4, 5, 6), (slice(1, None, 2), slice(None, None, -2), slice(5, 0, -1)), "int64")
slice_case((5, 2), (slice(7, -7, -2), slice(0, 1)), "bool")
slice_case((), ())


def concat_ref(*xs, axis):
    """Copy each piece into its place along `axis` of a preallocated output."""
    shape = list(xs[0].shape)
    shape[axis] = sum(x.shape[axis] for x in xs)
    out, at = np.empty(shape, xs[0].dtype), 0
    for x in xs:
        out[(slice(None),) * axis + (slice(at, at + x.shape[axis]),)] = x
        at += x.shape[axis]
    return out


for _shapes, _axis, _dt in [([(2, 3), (1, 3), (4, 3)], 0, "float32"),
                            ([(2, 1, 4), (2, 3, 4), (2, 2, 4)], 1, "int32"),
                            ([(3, 2), (3, 0), (3, 1)], 1, "float64"),  # a size-0 piece
                            ([(2,), (2,), (2,)], 0, "bool"),
                            ([(1, 2, 2), (1, 2, 1), (1, 2, 3)], 2, "float16")]:
    case("concat", [data(s, _dt) for s in _shapes], concat_ref, axis=_axis)


def pad_ref(x, widths, value):
    """Fill the padded shape with `value`, then copy x into the interior."""
    out = np.full([d + lo + hi for d, (lo, hi) in zip(x.shape, widths)], value, x.dtype)
    out[tuple(slice(lo, lo + d) for d, (lo, _) in zip(x.shape, widths))] = x
    return out


for _shape, _widths, _value, _dt in [
        ((2, 3), ((1, 2), (0, 3)), 0.0, "float32"),
        ((2, 2), ((0, 1), (2, 2)), 7, "int32"),
        ((3,), ((2, 0),), -math.inf, "float32"),     # what max pooling pads with
        ((2,), ((1, 1),), math.nan, "float64"),
        ((0, 2), ((1, 1), (0, 0)), 2.5, "float64"),   # padding a size-0 axis
        ((), (), 1.0, "float32"),
        ((2, 1), ((0, 0), (1, 3)), True, "bool"),
        ((1, 2, 2), ((0, 0), (1, 0), (0, 1)), -1.5, "float16")]:
    case("pad", [data(_shape, _dt)], pad_ref, widths=_widths, value=_value)


def gather_ref(x, idx, axis):
    """Integer-array indexing on `axis` (negative indices count from the end)."""
    return x[(slice(None),) * axis + (idx,)]


for _shape, _idx, _axis, _dt in [
        ((5, 3), np.array([0, -1, 2, 4], np.int64), 0, "float32"),
        ((5, 3), np.array([[0, 2], [-3, 1]], np.int64), 1, "int32"),   # 2-d indices
        ((2, 3, 4), np.array([[3, -4], [-1, 0]], np.int32), 2, "float64"),
        ((4,), np.array(-2, np.int64), 0, "float16"),                 # 0-d index
        ((3, 2), np.zeros((0,), np.int32), 0, "float32"),             # no indices
        ((0, 3), np.zeros((0,), np.int64), 0, "float32"),             # empty axis, no indices
        ((3, 4), np.array([[1, 1, -1]], np.int64), 1, "bool")]:
    case("gather", [data(_shape, _dt), _idx], gather_ref, axis=_axis)

def scatter_add_ref(x, idx, upd, axis):
    """Add the update of each index position into its row, one at a time."""
    out = x.astype(np.float64)
    lead = (slice(None),) * axis
    for pos in np.ndindex(*np.shape(idx)):
        out[lead + (np.asarray(idx)[pos],)] += upd[lead + pos]
    return out.astype(x.dtype)


for _shape, _idx, _axis, _dt in [
        ((5, 3), np.array([0, -1, 2, 0], np.int64), 0, "float32"),     # 0 twice: accumulates
        ((2, 4), np.array([[3, 1], [-1, 1]], np.int32), 1, "float64"),
        ((3,), np.zeros((0,), np.int64), 0, "float32")]:
    _upd_shape = _shape[:_axis] + _idx.shape + _shape[_axis + 1:]
    case("scatter_add", [data(_shape, _dt), _idx, data(_upd_shape, _dt)], scatter_add_ref,
         axis=_axis)

for _shape, _axis, _dt in [((5,), 0, "int32"), ((2, 3), 1, "int64"), ((3, 4, 2), 0, "float32"),
                           ((0, 3), 1, "int32"), ((2, 3), 0, "float64")]:
    case("iota", [], lambda shape, axis, dtype: np.indices(shape)[axis].astype(dtype),
         shape=_shape, axis=_axis, dtype=_dt)

# size: the product of its dims as a 0-d array (symbolic dims get theirs per call,
# tests/test_dynamic.py); an empty product is 1, a 0 makes 0
for _dims, _dt in [((4,), "float32"), ((3, 5), "float64"), ((), "int64"), ((2, 0), "float32"),
                   ((7, 6), "int32")]:
    case("size", [], lambda dims, dtype: np.asarray(float(np.prod(dims)) if "float" in dtype
                                                    else int(np.prod(dims)), dtype=dtype),
         dims=_dims, dtype=_dt)

# philox_uniform: one Philox4x32-10 block per element in plain Python integers,
# following Salmon et al.'s definition (not the op's vectorized lanes)
def _philox_block(counter: int, seed: int, stream: int) -> list[int]:
    m32 = 0xFFFFFFFF
    x = [counter & m32, counter >> 32, stream, 0]
    k = [seed % 2**64 & m32, seed % 2**64 >> 32]
    for _ in range(10):
        p0, p1 = 0xD2511F53 * x[0], 0xCD9E8D57 * x[2]
        x = [(p1 >> 32) ^ x[1] ^ k[0], p1 & m32, (p0 >> 32) ^ x[3] ^ k[1], p0 & m32]
        k = [(k[0] + 0x9E3779B9) & m32, (k[1] + 0xBB67AE85) & m32]
    return x


def philox_uniform_ref(seed, shape, offset, dtype):
    out = []
    for j in range(offset, offset + math.prod(shape)):
        if dtype == "float32":
            out.append((_philox_block(j // 4, int(seed), 0)[j % 4] >> 8) / 2**24)
        else:
            a, b = _philox_block(j // 2, int(seed), 1)[2 * (j % 2):2 * (j % 2) + 2]
            out.append(((a >> 5) * 2**26 + (b >> 6)) / 2**53)
    return np.array(out, dtype).reshape(shape)


for _seed, _shape, _offset, _dt in [
        (0, (2, 3), 0, "float32"), (-5, (7,), 3, "float32"), (123, (3, 2), 1, "float64"),
        (2**62 + 7, (), 10, "float64"), (1, (0, 4), 5, "float32"),
        (9, (6,), 4 * 2**32 - 3, "float32"), (9, (3,), 2 * 2**32 - 1, "float64")]:
    case("philox_uniform", [np.array(_seed, np.int64)], philox_uniform_ref,
         shape=_shape, offset=_offset, dtype=_dt)

# const: the output is the literal (> 16 elements print as base64 in the text IR)
for _value in [data((2, 3), "float32"), np.array(-7, np.int32), data((4,), "bool"),
               data((20,), "float64"), np.array([[0.1, -2.5], [1e-4, 65504]], np.float16),
               np.array([-(2**40), 3], np.int64), np.zeros((0, 3), np.float32),
               np.array([np.nan, np.inf, -np.inf, -0.0, 1e-300], np.float64)]:
    case("const", [], lambda value: np.array(value), value=_value)

# ---------------------------------------------------------------- linalg


def matmul_ref(a, b):
    """Batched a @ b as an explicit float64 (int64 for ints) sum of products."""
    wide = np.int64 if a.dtype.kind == "i" else F64
    prod = a.astype(wide)[..., :, :, None] * b.astype(wide)[..., None, :, :]
    return prod.sum(axis=-2).astype(a.dtype)


for _sa, _sb, _dt in [((3, 4), (4, 5), "float32"), ((3, 4), (4, 5), "float64"),
                      ((3, 4), (4, 2), "float16"), ((2, 3, 4), (2, 4, 5), "float32"),
                      ((2, 1, 3, 4), (5, 4, 6), "float64"),   # batch dims broadcast
                      ((1, 3, 4), (3, 4, 2), "float32"),
                      ((3, 4), (2, 4, 5), "float32"),         # 2-d against batched
                      ((3, 4), (4, 5), "int32"), ((2, 3, 4), (4, 2), "int64"),
                      ((0, 4), (4, 3), "float32"), ((3, 0), (0, 2), "float64")]:  # size 0
    case("matmul", [data(_sa, _dt), data(_sb, _dt)], matmul_ref)


def matmul_flags_ref(a, b, transpose_a=False, transpose_b=False):
    """matmul with its transpose flags: the reference on swapped operands."""
    return matmul_ref(a.swapaxes(-1, -2) if transpose_a else a,
                      b.swapaxes(-1, -2) if transpose_b else b)


for _sa, _sb, _ta, _tb in [((4, 3), (4, 5), True, False), ((3, 4), (5, 4), False, True),
                           ((2, 4, 3), (5, 4), True, True), ((3, 4), (2, 5, 4), False, True)]:
    case("matmul", [data(_sa, "float32"), data(_sb, "float32")], matmul_flags_ref,
         **{k: v for k, v in (("transpose_a", _ta), ("transpose_b", _tb)) if v})


def conv2d_ref(x, w, stride, padding, dilation, groups):
    out = torch.nn.functional.conv2d(torch.from_numpy(x.astype(F64)),
                                     torch.from_numpy(w.astype(F64)), stride=stride,
                                     padding=padding, dilation=dilation, groups=groups)
    return out.numpy().astype(x.dtype)


# (input shape, weight shape, stride, padding, dilation, groups, dtype)
CONVS = [((2, 3, 7, 7), (4, 3, 3, 3), (1, 1), (0, 0), (1, 1), 1, "float64"),
         ((1, 3, 8, 9), (5, 3, 3, 2), (2, 1), (1, 2), (1, 1), 1, "float64"),
         ((1, 2, 9, 9), (3, 2, 3, 3), (1, 2), (0, 1), (2, 3), 1, "float64"),
         ((2, 4, 6, 6), (6, 2, 3, 3), (1, 1), (1, 1), (1, 1), 2, "float64"),    # groups=2
         ((1, 3, 6, 5), (6, 1, 3, 3), (2, 2), (1, 1), (1, 1), 3, "float64"),    # depthwise
         ((1, 4, 11, 10), (4, 2, 2, 3), (2, 3), (2, 1), (2, 2), 2, "float64"),
         ((1, 1, 1, 1), (2, 1, 1, 1), (1, 1), (0, 0), (1, 1), 1, "float64"),
         ((1, 2, 5, 5), (2, 2, 3, 3), (1, 1), (1, 1), (1, 1), 1, "float32")]
for _sx, _sw, _st, _pad, _dil, _g, _dt in CONVS:
    case("conv2d", [data(_sx, _dt), data(_sw, _dt)], conv2d_ref,
         stride=_st, padding=_pad, dilation=_dil, groups=_g)


def pool_ref(fn):
    """Pooling via torch in float64 (exact for the small ints of the int cases)."""
    def ref(x, kernel, stride, padding):
        out = fn(torch.from_numpy(x.astype(F64)), kernel, stride, padding)
        return out.numpy().astype(x.dtype)
    return ref


_max_pool = pool_ref(lambda t, k, s, p: torch.nn.functional.max_pool2d(t, k, s, p))
_avg_pool = pool_ref(lambda t, k, s, p: torch.nn.functional.avg_pool2d(
    t, k, s, p, count_include_pad=True))
# (input shape, kernel, stride, padding, dtype); padding at most half the kernel
POOLS = [((2, 3, 6, 6), (2, 2), (2, 2), (0, 0), "float64"),
         ((1, 2, 7, 7), (3, 3), (2, 2), (1, 1), "float64"),   # padded, overlapping windows
         ((1, 1, 5, 8), (3, 2), (1, 3), (1, 0), "float64"),
         ((1, 2, 5, 5), (5, 5), (1, 1), (2, 2), "float32"),   # window as large as the input
         ((1, 2, 6, 5), (2, 3), (3, 1), (1, 1), "float16")]
for _shape, _k, _s, _p, _dt in POOLS:
    case("max_pool2d", [data(_shape, _dt)], _max_pool, kernel=_k, stride=_s, padding=_p)
    case("avg_pool2d", [data(_shape, _dt)], _avg_pool, kernel=_k, stride=_s, padding=_p)
# max pooling of ints: padding must never win, negative values included
case("max_pool2d", [data((1, 2, 5, 5), "int32", -9, -1)], _max_pool,
     kernel=(3, 3), stride=(2, 2), padding=(1, 1))
case("max_pool2d", [data((1, 1, 4, 4), "int64")], _max_pool,
     kernel=(2, 2), stride=(1, 1), padding=(1, 1))

# ---------------------------------------------------------------- conv/pool gradients
# references: torch.autograd through F.conv2d / F.max_pool2d / F.avg_pool2d in float64


def _torch_vjp(fn, primals, cotangent, wrt):
    """d<fn(*primals), cotangent>/d primals[wrt], by torch autograd in float64."""
    ts = [torch.tensor(p.astype(F64), requires_grad=(i == wrt)) for i, p in enumerate(primals)]
    fn(*ts).backward(torch.from_numpy(cotangent.astype(F64)))
    return ts[wrt].grad.numpy()


def _conv(stride, padding, dilation, groups):
    return lambda x, w: torch.nn.functional.conv2d(x, w, stride=stride, padding=padding,
                                                   dilation=dilation, groups=groups)


def conv2d_grad_input_ref(g, w, stride, padding, dilation, groups, input_shape):
    x = np.zeros(input_shape)  # conv2d is linear in x: the point does not matter
    conv = _conv(stride, padding, dilation, groups)
    return _torch_vjp(conv, [x, w], g, 0).astype(g.dtype)


def conv2d_grad_weight_ref(x, g, stride, padding, dilation, groups, weight_shape):
    conv = _conv(stride, padding, dilation, groups)
    return _torch_vjp(conv, [x, np.zeros(weight_shape)], g, 1).astype(g.dtype)


# (input shape, weight shape, stride, padding, dilation, groups, dtype)
CONV_GRADS = CONVS + [
    ((1, 2, 8, 7), (3, 2, 3, 3), (2, 2), (0, 0), (1, 1), 1, "float64"),   # stride 2, odd W
    ((2, 2, 9, 9), (2, 2, 2, 2), (3, 3), (0, 0), (1, 1), 1, "float64"),   # last rows unread
    ((1, 2, 9, 10), (2, 2, 3, 3), (2, 3), (2, 1), (2, 1), 1, "float32"),
    ((2, 4, 7, 7), (4, 1, 3, 3), (2, 2), (1, 1), (1, 1), 4, "float64")]   # depthwise
for _sx, _sw, _st, _pad, _dil, _g, _dt in CONV_GRADS:
    _x, _w = data(_sx, _dt), data(_sw, _dt)
    _y = conv2d_ref(_x, _w, _st, _pad, _dil, _g)
    _attrs = dict(stride=_st, padding=_pad, dilation=_dil, groups=_g)
    case("conv2d_grad_input", [data(_y.shape, _dt), _w], conv2d_grad_input_ref,
         input_shape=_sx, **_attrs)
    case("conv2d_grad_weight", [_x, data(_y.shape, _dt)], conv2d_grad_weight_ref,
         weight_shape=_sw, **_attrs)


def max_pool2d_grad_ref(x, g, kernel, stride, padding):
    pool = lambda t: torch.nn.functional.max_pool2d(t, kernel, stride, padding)  # noqa: E731
    return _torch_vjp(pool, [x], g, 0).astype(g.dtype)


def max_pool2d_gather_ref(x, h, kernel, stride, padding):
    """h at torch's argmax of each window (max_pool2d's return_indices)."""
    _, idx = torch.nn.functional.max_pool2d(torch.from_numpy(x.astype(F64)), kernel, stride,
                                            padding, return_indices=True)
    flat = torch.from_numpy(h.astype(F64)).flatten(2)
    return torch.gather(flat, 2, idx.flatten(2)).reshape(idx.shape).numpy().astype(h.dtype)


def avg_pool2d_grad_ref(g, kernel, stride, padding, input_shape):
    pool = lambda t: torch.nn.functional.avg_pool2d(t, kernel, stride, padding)  # noqa: E731
    return _torch_vjp(pool, [np.zeros(input_shape)], g, 0).astype(g.dtype)


_edge = ties((1, 2, 5, 5), "float64")  # torch's choice among ties, NaNs and -infs
_edge[0, 0, 0, :2], _edge[0, 0, 3:, 3:] = np.nan, -np.inf
POOL_GRADS = [(s, k, st, p, dt) for s, k, st, p, dt in POOLS if dt != "float16"] + [
    ((2, 2, 7, 9), (2, 2), (2, 2), (0, 0), "float64"),   # odd sizes: last row/col unread
    ((1, 2, 8, 8), (3, 3), (3, 3), (1, 1), "float32")]
_POOL_XS = [ties(shape, dt) for shape, _, _, _, dt in POOL_GRADS] + [_edge]  # many ties
for _x, (_shape, _k, _s, _p, _dt) in zip(
        _POOL_XS, POOL_GRADS + [(_edge.shape, (3, 3), (2, 2), (1, 1), "float64")]):
    _y = _max_pool(_x, _k, _s, _p)
    _attrs = dict(kernel=_k, stride=_s, padding=_p)
    case("max_pool2d_grad", [_x, data(_y.shape, _dt)], max_pool2d_grad_ref, **_attrs)
    case("max_pool2d_gather", [_x, data(_shape, _dt)], max_pool2d_gather_ref, **_attrs)
    case("avg_pool2d_grad", [data(_y.shape, _dt)], avg_pool2d_grad_ref, input_shape=_shape,
         **_attrs)

SAMPLES = dict(SAMPLES)
