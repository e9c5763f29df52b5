"""The numpy frontend, end to end: every supported numpy function, Tracer method,
operator and indexing form is traced, compiled and run, and the result is compared
with the same Python function called eagerly on the numpy arrays.

The reference is always eager numpy: the compiled result must have numpy's dtype
(numpy 2 / NEP 50 promotion, Python scalars weak) and shape, and the same values.
(conftest.py additionally checks every compiled call against the reference
interpreter and round-trips every traced graph through the text IR.)
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import graphc

FLOATS = ["float32", "float64"]
ALL_DTYPES = ["float32", "float64", "int32", "int64", "bool"]
# numpy's own results may differ in the last bits when graphc reorders a
# contraction (tensordot -> reshape + matmul); elementwise code is bit-identical.
TOL = {"float16": (1e-3, 1e-3), "float32": (1e-5, 1e-6), "float64": (1e-12, 1e-12)}


# ---- helpers ------------------------------------------------------------------------

def make(shape, dtype, domain="real", seed=0):
    """A test array: `real` is signed, `pos` strictly positive (log, sqrt)."""
    rng = np.random.default_rng(seed)
    if dtype == "bool":  # `pos` bools are all True: log(False) is -inf with a warning
        return rng.random(shape) < (2.0 if domain == "pos" else 0.5)
    if np.dtype(dtype).kind == "i":
        lo = 1 if domain == "pos" else -5
        return rng.integers(lo, 6, size=shape).astype(dtype)
    if domain == "pos":
        return rng.uniform(0.1, 3.0, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def assert_same(got, want, path="result"):
    """Same pytree structure; every array leaf has numpy's dtype, shape and values."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want), path
        for k in want:
            assert_same(got[k], want[k], f"{path}[{k!r}]")
        return
    if isinstance(want, (list, tuple)):
        assert type(got) is type(want) and len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{path}[{i}]")
        return
    if not isinstance(want, (np.ndarray, np.generic)):  # a static Python value
        assert got == want and type(got) is type(want), path
        return
    g, w = np.asarray(got), np.asarray(want)
    assert g.dtype == w.dtype, f"{path}: dtype {g.dtype}, numpy gives {w.dtype}"
    assert g.shape == w.shape, f"{path}: shape {g.shape}, numpy gives {w.shape}"
    if w.dtype.kind == "f":
        rtol, atol = TOL[w.dtype.name]
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=path)
    else:
        np.testing.assert_array_equal(g, w, err_msg=path)


def check(fn, *args, **kwargs):
    """Compile `fn`, call it, compare with eager numpy; returns the compiled function."""
    compiled = graphc.compile(fn)
    got = compiled(*args, **kwargs)
    with np.errstate(all="ignore"):
        want = fn(*args, **kwargs)
    assert_same(got, want)
    return compiled


def numpy_rejects(fn, *args):
    """True when eager numpy raises, or gives a dtype graphc has not (int8, ...)."""
    try:
        with np.errstate(all="ignore"):
            out = np.asarray(fn(*args))
    except (TypeError, ValueError):
        return True
    return out.dtype.name not in graphc.dtypes.DTYPES


def check_or_rejected(fn, *args):
    """Where numpy accepts the inputs graphc must match it; elsewhere graphc refuses
    at trace time (rather than returning something numpy would not)."""
    if numpy_rejects(fn, *args):
        with pytest.raises((graphc.GraphcError, TypeError)):
            graphc.compile(fn)(*args)
    else:
        check(fn, *args)


# ---- elementwise math ---------------------------------------------------------------

UNARY = [
    ("exp", np.exp, "real"), ("log", np.log, "pos"), ("log1p", np.log1p, "pos"),
    ("expm1", np.expm1, "real"), ("tanh", np.tanh, "real"), ("sqrt", np.sqrt, "pos"),
    ("abs", np.abs, "real"), ("sign", np.sign, "real"), ("square", np.square, "real"),
    ("sin", np.sin, "real"), ("cos", np.cos, "real"), ("negative", np.negative, "real"),
    ("positive", np.positive, "real"),
]


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("name,fn,domain", UNARY, ids=[u[0] for u in UNARY])
def test_unary(name, fn, domain, dtype):
    # int inputs of float-only math give float64, bool gives float16 (numpy's loops);
    # np.sign / np.negative of bool are TypeErrors and np.square(bool) is int8
    check_or_rejected(lambda x: fn(x), make((3, 4), dtype, domain))


BINARY = [
    ("add", np.add), ("subtract", np.subtract), ("multiply", np.multiply),
    ("true_divide", np.true_divide), ("maximum", np.maximum), ("minimum", np.minimum),
    ("power", np.power),
]


@pytest.mark.parametrize("dtype_b", ALL_DTYPES)
@pytest.mark.parametrize("dtype_a", ALL_DTYPES)
@pytest.mark.parametrize("name,fn", BINARY, ids=[b[0] for b in BINARY])
def test_binary_dtype_pairs(name, fn, dtype_a, dtype_b):
    # strong-strong promotion: int32 + float32 -> float64, bool + int32 -> int32, ...
    # positive divisors and bases (no inf/nan); other operands signed, random bools
    a = make((2, 3), dtype_a, "pos" if name == "power" else "real")
    b = make((3,), dtype_b, "pos" if name in ("power", "true_divide") else "real", seed=1)
    if name == "power" and np.dtype(dtype_b).kind != "f":
        b = np.abs(b) % 3  # integer powers must be non-negative in numpy
    check_or_rejected(lambda x, y: fn(x, y), a, b)


@settings(max_examples=50, deadline=None)
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4,
                                                max_side=4),
       op=st.sampled_from(BINARY[:6]), dtype=st.sampled_from(FLOATS))
def test_binary_broadcasting_property(shapes, op, dtype):
    # any pair of broadcastable shapes gives numpy's result shape and values
    a = make(shapes.input_shapes[0], dtype, "pos")
    b = make(shapes.input_shapes[1], dtype, "pos", seed=1)
    check(lambda x, y: op[1](x, y), a, b)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", [
    pytest.param(lambda x: np.clip(x, -0.5, 0.5), id="both"),
    pytest.param(lambda x: np.clip(x, None, 0.5), id="lo-None"),
    pytest.param(lambda x: np.clip(x, -0.5, None), id="hi-None"),
    pytest.param(lambda x: np.clip(x, min=-0.5, max=0.5), id="min-max-kw"),
    pytest.param(lambda x: np.clip(x, max=0.25), id="max-kw-only"),
    pytest.param(lambda x: np.clip(x, min=-0.25), id="min-kw-only"),
    pytest.param(lambda x: x.clip(-0.5, 0.5), id="method"),
    pytest.param(lambda x: np.clip(x, x[0], 1.0), id="array-bound"),
])
def test_clip(case, dtype):
    check(case, make((4, 5), dtype))


def test_clip_int32_keeps_dtype():
    check(lambda x: np.clip(x, -2, 3), make((10,), "int32"))


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_where(dtype):
    x, y = make((3, 4), dtype), make((4,), dtype, seed=1)
    check(lambda c, a, b: np.where(c, a, b), make((3, 4), "bool", seed=2), x, y)
    # a comparison as the condition, a weak scalar as one branch
    check(lambda a: np.where(a > 0, a, 0), x)


# ---- reductions ---------------------------------------------------------------------

AXES = [None, 0, 1, -1, (0, 2), (-1, 0)]
REDUCTIONS = [
    ("sum", lambda x, **k: np.sum(x, **k)), ("mean", lambda x, **k: np.mean(x, **k)),
    ("var", lambda x, **k: np.var(x, **k)), ("std", lambda x, **k: np.std(x, **k)),
    ("max", lambda x, **k: np.max(x, **k)), ("min", lambda x, **k: np.min(x, **k)),
    ("amax", lambda x, **k: np.amax(x, **k)),
]


@pytest.mark.parametrize("keepdims", [False, True], ids=["drop", "keepdims"])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("name,fn", REDUCTIONS, ids=[r[0] for r in REDUCTIONS])
def test_reductions(name, fn, dtype, axis, keepdims):
    # int32/bool sums are int64, a bool array's mean/var is float64, max keeps dtype
    check(lambda x: fn(x, axis=axis, keepdims=keepdims), make((2, 3, 4), dtype))


@pytest.mark.parametrize("ddof", [0, 1, 2])
@pytest.mark.parametrize("dtype", FLOATS + ["int32"])
def test_var_std_ddof(dtype, ddof):
    x = make((5, 3), dtype)
    check(lambda a: (np.var(a, ddof=ddof), np.std(a, axis=0, ddof=ddof),
                     a.std(axis=-1, ddof=ddof, keepdims=True), a.var(ddof=ddof)), x)


def test_sum_and_mean_with_dtype_argument():
    # dtype=int32 keeps an int32 sum int32 (numpy's default would be int64)
    x = make((3, 4), "int32")
    check(lambda a: (np.sum(a, dtype=np.float32), np.mean(a, dtype=np.float32),
                     np.sum(a, axis=1, dtype=np.int32), np.mean(a, dtype=np.float64)), x)


@pytest.mark.parametrize("keepdims", [False, True], ids=["drop", "keepdims"])
@pytest.mark.parametrize("axis", [None, 0, 1, -1], ids=str)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_argmax(dtype, axis, keepdims):
    # ties (ints, bools) must pick the first maximum, as numpy does
    x = make((4, 5), dtype)
    check(lambda a: np.argmax(a, axis=axis, keepdims=keepdims), x)
    check(lambda a: a.argmax(axis=axis, keepdims=keepdims), x)


# ---- contractions -------------------------------------------------------------------

MATMUL_SHAPES = [
    ((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)),
    ((2, 3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 2)),
    ((4,), (2, 4, 5)), ((2, 3, 4), (4,)),
]


@pytest.mark.parametrize("dtype", FLOATS + ["int32", "int64"])
@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_matmul_one_d_rules(sa, sb, dtype):
    # 1-d operands gain an axis that is removed again from the result
    a, b = make(sa, dtype), make(sb, dtype, seed=1)
    check(lambda x, y: (x @ y, np.matmul(x, y)), a, b)


def test_matmul_mixed_dtypes_and_constant_operand():
    a, b = make((3, 4), "float32"), make((4, 2), "int64", seed=1)
    check(lambda x, y: x @ y, a, b)  # float32 @ int64 -> float64
    w = make((4, 2), "float64", seed=2)
    check(lambda x: x @ w, a)   # a numpy array captured as a constant
    check(lambda x: w.T @ x.T, a)  # ... and on the left (reflected matmul)


DOT_SHAPES = [
    ((), (3, 4)), ((3,), (3,)), ((3, 4), (4,)), ((4,), (4, 5)), ((3, 4), (4, 5)),
    ((2, 3, 4), (4, 5)), ((2, 3, 4), (5, 4, 6)), ((3, 4), (2, 4, 5)), ((2, 3, 4), (4,)),
    ((4,), (2, 4, 5)),
]


@pytest.mark.parametrize("dtype", FLOATS + ["int64"])
@pytest.mark.parametrize("sa,sb", DOT_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_dot(sa, sb, dtype):
    # N-d dot M-d contracts a's last axis with b's second-to-last: (2,3,4).(5,4,6)->(2,3,5,6)
    a, b = make(sa, dtype), make(sb, dtype, seed=1)
    check(lambda x, y: (np.dot(x, y), x.dot(y)), a, b)


EINSUM = [
    ("ij,jk->ik", [(3, 4), (4, 5)]), ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]), ("i,j->ij", [(3,), (4,)]),
    ("ij,jk", [(3, 4), (4, 5)]), ("ij->ji", [(3, 4)]), ("ij->i", [(3, 4)]),
    ("ij,ij->i", [(3, 4), (3, 4)]), ("ij,kj->ik", [(3, 4), (5, 4)]),
    ("i,i->", [(4,), (4,)]), ("ij,jk->ki", [(3, 4), (4, 5)]), ("ijk->kj", [(2, 3, 4)]),
    ("ij,k->ik", [(3, 4), (5,)]),
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("spec,shapes", EINSUM, ids=[e[0] for e in EINSUM])
def test_einsum(spec, shapes, dtype):
    xs = [make(s, dtype, seed=i) for i, s in enumerate(shapes)]
    check(lambda *a: np.einsum(spec, *a), *xs)


@pytest.mark.parametrize("dtype", FLOATS + ["int32"])
def test_outer(dtype):
    check(lambda a, b: np.outer(a, b), make((3,), dtype), make((4,), dtype, seed=1))
    # np.outer flattens n-d inputs first
    check(lambda a, b: np.outer(a, b), make((2, 3), dtype), make((4,), dtype, seed=1))


TENSORDOT = [
    ((3, 4), (4, 5), 1), ((2, 3, 4), (3, 4, 5), 2), ((3, 4), (5, 6), 0),
    ((2, 3, 4), (4, 3, 5), ([1, 2], [1, 0])), ((3, 4), (5, 3), (0, 1)),
    ((2, 3, 4), (4, 2), ([-1, 0], [0, 1])),
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("sa,sb,axes", TENSORDOT, ids=lambda v: str(v).replace(" ", ""))
def test_tensordot(sa, sb, axes, dtype):
    a, b = make(sa, dtype), make(sb, dtype, seed=1)
    check(lambda x, y: np.tensordot(x, y, axes=axes), a, b)


# ---- shape functions ----------------------------------------------------------------

SHAPE_FUNCS = [
    ("transpose", lambda x: np.transpose(x)),
    ("transpose-axes", lambda x: np.transpose(x, (1, 0, 2))),
    ("reshape", lambda x: np.reshape(x, (6, 4))),
    ("reshape-minus1", lambda x: np.reshape(x, (-1, 2))),
    ("reshape-flat", lambda x: np.reshape(x, -1)),
    ("concatenate-0", lambda x: np.concatenate([x, x * 2], axis=0)),
    ("concatenate-neg", lambda x: np.concatenate((x, x[:, :1]), axis=1)),
    ("concatenate-None", lambda x: np.concatenate([x, x[0]], axis=None)),
    ("stack-0", lambda x: np.stack([x, x + 1])),
    ("stack-last", lambda x: np.stack([x, x], axis=-1)),
    ("expand_dims", lambda x: np.expand_dims(x, 1)),
    ("expand_dims-tuple", lambda x: np.expand_dims(x, (0, -1))),
    ("squeeze", lambda x: np.squeeze(x[:, :1, None])),
    ("squeeze-axis", lambda x: np.squeeze(x[:1], axis=0)),
    ("broadcast_to", lambda x: np.broadcast_to(x[0], (5, 3, 4))),
    ("broadcast_to-same", lambda x: np.broadcast_to(x, x.shape)),
    ("zeros_like", lambda x: np.zeros_like(x)),
    ("ones_like", lambda x: np.ones_like(x)),
    ("ones_like-dtype", lambda x: np.ones_like(x, dtype=np.int32)),
    ("full_like", lambda x: np.full_like(x, 7)),
    ("full_like-dtype", lambda x: np.full_like(x, 2.5, dtype=np.float64)),
    ("ravel", lambda x: np.ravel(x)),
    ("swapaxes", lambda x: np.swapaxes(x, 0, -1)),
]


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("fn", [f for _, f in SHAPE_FUNCS], ids=[n for n, _ in SHAPE_FUNCS])
def test_shape_functions(fn, dtype):
    check_or_rejected(fn, make((2, 3, 4), dtype))


def test_concatenate_promotes_mixed_dtypes():
    check(lambda a, b: np.concatenate([a, b]), make((2,), "int32"), make((3,), "float32"))
    check(lambda a, b: np.stack([a, b]), make((2,), "bool"), make((2,), "int64"))


# ---- Tracer methods and operators ---------------------------------------------------

METHODS = [
    ("T", lambda x: x.T),
    ("shape-ndim-size", lambda x: (x.shape, x.ndim, x.size, len(x))),
    ("dtype", lambda x: x.astype(x.dtype) * (x.dtype == np.float32)),
    ("reshape-args", lambda x: x.reshape(4, 6)),
    ("reshape-tuple", lambda x: x.reshape((4, -1))),
    ("reshape-from-shape", lambda x: x.reshape(x.shape[0], -1)),
    ("transpose-no-args", lambda x: x.transpose()),
    ("transpose-args", lambda x: x.transpose(2, 0, 1)),
    ("transpose-tuple", lambda x: x.transpose((2, 0, 1))),
    ("transpose-None", lambda x: x.transpose(None)),
    ("sum", lambda x: (x.sum(), x.sum(axis=1), x.sum(axis=(0, 2), keepdims=True))),
    ("mean", lambda x: (x.mean(), x.mean(axis=-1), x.mean(0, keepdims=True))),
    ("max", lambda x: (x.max(), x.max(axis=1), x.max(axis=-1, keepdims=True))),
    ("min", lambda x: (x.min(), x.min(axis=0), x.min(axis=(1, 2), keepdims=True))),
    ("argmax", lambda x: (x.argmax(), x.argmax(axis=1), x.argmax(-1, keepdims=True))),
    ("astype-f32", lambda x: x.astype(np.float32)),
    ("astype-int", lambda x: (x * 3).astype(np.int32)),
    ("astype-bool", lambda x: x.astype(bool)),
    ("astype-str", lambda x: x.astype("float64")),
    ("ravel-flatten", lambda x: (x.ravel(), x.flatten())),
    ("matmul-op", lambda x: x @ x.transpose(0, 2, 1)),
    ("pow-int", lambda x: x ** 2),
    ("pow-float", lambda x: abs(x) ** 0.5),
    ("rpow", lambda x: 2.0 ** x),
    ("neg", lambda x: -x),
    ("abs", lambda x: abs(x)),
    ("iter", lambda x: [row * i for i, row in enumerate(x)]),
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("fn", [f for _, f in METHODS], ids=[n for n, _ in METHODS])
def test_tracer_methods(fn, dtype):
    check(fn, make((2, 3, 4), dtype))


COMPARISONS = [
    ("eq", lambda a, b: a == b), ("ne", lambda a, b: a != b), ("lt", lambda a, b: a < b),
    ("le", lambda a, b: a <= b), ("gt", lambda a, b: a > b), ("ge", lambda a, b: a >= b),
]


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("fn", [f for _, f in COMPARISONS], ids=[n for n, _ in COMPARISONS])
def test_comparisons(fn, dtype):
    a, b = make((3, 4), dtype), make((4,), dtype, seed=1)
    check(fn, a, b)
    check(lambda x: (fn(x, 0), fn(0.5, x), fn(b, x)), a)  # scalar / array on the left


@pytest.mark.parametrize("dtype", FLOATS + ["int32", "int64"])
def test_reflected_operators(dtype):
    # a Python scalar or a numpy array on the left defers to the Tracer
    c = make((4,), dtype, "pos", seed=3)
    check(lambda x: (2.0 - x, 3 + x, 2 * x, 1.5 / (abs(x) + 1), c + x, c - x, c * x,
                     c / (abs(x) + 1), c ** 2 + x, 2 ** abs(x), c ** abs(x),
                     np.float32(2) * x), make((3, 4), dtype))


def test_bool_arithmetic_follows_numpy_bool_loops():
    # numpy: bool + bool and maximum are `or`, * and minimum are `and` (still bool),
    # bool / bool is float64 (not float16), abs(bool) is the array itself
    a, b, ones = make((3, 4), "bool"), make((3, 4), "bool", seed=1), make(4, "bool", "pos")
    check(lambda x, y, t: (x + y, x * y, np.maximum(x, y), np.minimum(x, y), x / t,
                           abs(x), np.abs(x), x * True, x + False), a, b, ones)
    for fn in (lambda x: +x, lambda x: -x, lambda x: x - x, lambda x: np.square(x)):
        assert numpy_rejects(fn, a)  # TypeError in numpy, or int8 (np.square)
        with pytest.raises(graphc.GraphcError):
            graphc.compile(fn)(a)


def test_bool_masks_and_logic():
    check(lambda a, b: ((a > 0) & (b > 0), (a > 0) | (b > 0), ~(a > 0),
                        np.logical_and(a > 0, b < 0), np.logical_not(a > b)),
          make((3, 4), "float32"), make((3, 4), "float32", seed=1))


@pytest.mark.parametrize("dtype,scalar,want", [
    ("float32", 2.0, "float32"),   # a float scalar does not widen a float array
    ("float32", 2, "float32"),
    ("int32", 1, "int32"),         # nor an int scalar an int array
    ("int64", 0.5, "float64"),     # a float scalar lifts an int array to float64
    ("int32", 0.5, "float64"),
    ("bool", 1, "int64"),
    ("bool", True, "bool"),
    ("float16", 2.0, "float16"),
])
def test_weak_scalar_promotion(dtype, scalar, want):
    x = np.ones((3,), dtype)
    for fn in (lambda a: a * scalar, lambda a: scalar * a, lambda a: a + scalar):
        compiled = check(fn, x)
        assert compiled(x).dtype == np.dtype(want)  # spelled out as well as vs numpy


def test_strong_numpy_scalars_promote():
    # numpy scalars are strong: float32 array * np.float64(2) -> float64
    check(lambda a: (a * np.float64(2), a + np.int64(1)), make((3,), "float32"))
    check(lambda a: a + np.int64(1), make((3,), "int32"))


# ---- indexing -----------------------------------------------------------------------

BASIC_INDEX = [
    ("int", lambda x: x[1]), ("neg-int", lambda x: x[-1]), ("ints", lambda x: x[1, -2, 3]),
    ("slice", lambda x: x[1:3]), ("slice-step", lambda x: x[::2, 1::2]),
    ("reverse", lambda x: x[::-1]), ("neg-step", lambda x: x[5:1:-2]),
    ("neg-step-neg-bounds", lambda x: x[-1:-5:-3, ::-2]),
    ("empty-slice", lambda x: x[3:1]), ("clamped", lambda x: x[-100:100]),
    ("empty-neg-step", lambda x: x[-7::-1]),  # slice.indices gives start -1 here
    ("none", lambda x: x[None]), ("none-mid", lambda x: x[:, None, 2]),
    ("ellipsis", lambda x: x[..., 1]), ("ellipsis-none", lambda x: x[None, ..., None]),
    ("mix", lambda x: x[1:, ..., None, ::-1]), ("all", lambda x: x[:, :, :]),
    ("int-then-slice", lambda x: x[-2, 1:4:2]),
]


@pytest.mark.parametrize("dtype", FLOATS + ["int32", "bool"])
@pytest.mark.parametrize("fn", [f for _, f in BASIC_INDEX], ids=[n for n, _ in BASIC_INDEX])
def test_basic_indexing(fn, dtype):
    check(fn, make((6, 5, 4), dtype))


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 8),
       start=st.none() | st.integers(-10, 10), stop=st.none() | st.integers(-10, 10),
       step=st.none() | st.integers(-4, 4).filter(lambda s: s != 0))
def test_random_slices_property(n, start, stop, step):
    # any slice triple, in range or not, gives numpy's elements in numpy's order
    check(lambda x: x[start:stop:step], np.arange(n * 2, dtype=np.float64).reshape(n, 2))


def test_constant_out_of_bounds_index_raises_at_trace_time():
    x = np.ones((5, 3))
    for fn in (lambda a: a[5], lambda a: a[-6], lambda a: a[:, 3],
               lambda a: a[np.array([0, 5])], lambda a: a[np.array([-6])]):
        with pytest.raises(IndexError):
            graphc.trace(fn, x)


def test_traced_out_of_bounds_index_raises_when_run():
    f = graphc.compile(lambda e, t: e[t])
    with pytest.raises(IndexError):
        f(np.ones((5, 3)), np.array([0, 5]))
    with pytest.raises(IndexError):  # not silently wrapped into the next row
        graphc.compile(lambda e, t: e[np.arange(2), t])(np.ones((2, 3)), np.array([0, 3]))


@pytest.mark.parametrize("tokens", [
    np.array([0, 3, 3, 1]), np.array([-1, -4, 2]), np.array([[0, 1, 2], [4, -2, 0]]),
    np.array(3), np.array([], dtype=np.int64), np.array([1, 2], dtype=np.int32),
], ids=["1d", "negative", "2d", "0d", "empty", "int32"])
@pytest.mark.parametrize("how", ["traced", "constant", "list"])
def test_embedding_lookup(tokens, how):
    # E[tokens]: rows of an embedding table, with tokens traced or a constant
    table = make((5, 3), "float32")
    if how == "traced":
        check(lambda e, t: e[t], table, tokens)
    elif how == "constant":
        check(lambda e: e[tokens], table)
    else:
        check(lambda e: e[tokens.tolist()], table)


@pytest.mark.parametrize("labels_dtype", ["int64", "int32"])
def test_paired_index_picks_one_per_row(labels_dtype):
    # logp[np.arange(n), labels]: the log-probability of each row's label
    logp = make((4, 6), "float64")
    labels = np.array([5, 0, -1, 2], dtype=labels_dtype)
    check(lambda lp, y: lp[np.arange(lp.shape[0]), y], logp, labels)
    check(lambda lp: lp[np.arange(4), labels], logp)


ADVANCED_INDEX = [
    ("cols", lambda x, i: x[:, i]),
    ("last-axis", lambda x, i: x[..., i]),
    ("int-and-array", lambda x, i: x[1, i]),
    ("array-and-int", lambda x, i: x[i, -1]),
    ("array-slice", lambda x, i: x[i, 1:3]),
    ("int-slice-array", lambda x, i: x[1, :, i]),    # int and array apart: axes first
    ("two-arrays-apart", lambda x, i: x[i, :, i]),   # separated: result axes go first
    ("two-arrays-broadcast", lambda x, i: x[i[:, None], i[None, :]]),
    ("slice-then-arrays", lambda x, i: x[::-1, i, i]),
    ("array-then-ellipsis", lambda x, i: x[i, ...]),  # ... found by identity, not ==
    ("arrays-ellipsis-int", lambda x, i: x[i, i[::-1], ..., 2]),
]


@pytest.mark.parametrize("fn", [f for _, f in ADVANCED_INDEX],
                         ids=[n for n, _ in ADVANCED_INDEX])
def test_advanced_indexing_forms(fn):
    x, idx = make((4, 4, 4), "float32"), np.array([3, 0, -2])
    check(fn, x, idx)               # traced indices
    check(lambda a: fn(a, idx), x)  # constant indices


# ---- pytrees, static arguments, constants -------------------------------------------

def mlp(params, x):
    h = np.maximum(x @ params["layers"][0]["w"] + params["layers"][0]["b"], 0)
    out = h @ params["layers"][1]["w"] + params["layers"][1]["b"]
    return {"out": out, "aux": [np.mean(h), (out.shape, np.argmax(out, axis=-1))]}


def test_nested_dict_list_tuple_arguments_and_results():
    params = {"layers": [{"w": make((4, 8), "float32"), "b": make((8,), "float32", seed=1)},
                         {"w": make((8, 3), "float32", seed=2), "b": np.zeros(3, np.float32)}]}
    f = check(mlp, params, make((5, 4), "float32", seed=3))
    graph = f.lower(params, make((5, 4), "float32", seed=3)).graph
    assert len(graph.inputs) == 5  # every array leaf is an input


def test_tuple_and_list_arguments_keep_their_kind():
    check(lambda pair, items: (pair[0] + pair[1], [i * 2 for i in items]),
          (make((3,), "float64"), make((3,), "float64", seed=1)),
          [make((2,), "int32"), make((2,), "int64")])


def test_kwargs_and_none_leaves():
    check(lambda x, bias=None, scale=1.0: x * scale if bias is None else x * scale + bias,
          make((3,), "float32"), bias=None, scale=2.0)
    check(lambda x, bias=None: x + bias, make((3,), "float32"), bias=make((3,), "float32"))


def test_static_python_numbers_retrace_on_new_values():
    def scaled(x, scale, n):
        return np.reshape(x, (n, -1)) * scale
    f = graphc.compile(scaled)
    x = make((6,), "float32")
    assert_same(f(x, 2.0, 2), scaled(x, 2.0, 2))
    assert_same(f(x, 2.0, 2), scaled(x, 2.0, 2))
    assert f.cache_info() == (1, 1, 1)       # same static values: a cache hit
    assert_same(f(x, 3.0, 2), scaled(x, 3.0, 2))
    assert_same(f(x, 3.0, 3), scaled(x, 3.0, 3))
    assert f.cache_info() == (1, 3, 3)       # each new value traced again
    assert_same(f(x, 2.0, 2), scaled(x, 2.0, 2))
    assert f.cache_info() == (2, 3, 3)
    # a Python number is weak (float32 stays float32), a numpy scalar is a traced input
    assert_same(f(x, np.float64(2.0), 2), scaled(x, np.float64(2.0), 2))
    assert f.cache_info().misses == 4


def test_new_shape_or_dtype_retraces():
    f = graphc.compile(lambda x: x * 2)
    for x in (np.ones(3, np.float32), np.ones(3, np.float32), np.ones(4, np.float32),
              np.ones(3, np.int32)):
        assert_same(f(x), x * 2)
    assert f.cache_info() == (1, 3, 3)


def test_python_constants_and_constant_arrays_in_results():
    table = np.arange(4.0)
    check(lambda x: (x + 1, 42, "label", None, 2.5, table), make((3,), "float32"))
    check(lambda x: {"n": x.shape[0], "y": x.sum(), "flag": True}, make((3,), "int32"))


def test_numpy_scalar_arguments_are_traced():
    check(lambda x, s: x * s, make((3,), "float32"), np.float32(0.5))
    check(lambda x, s: x * s, make((3,), "float32"), np.float64(0.5))


# ---- what graphc refuses, and how -----------------------------------------------------

def _setitem(x):
    x[0] = 1.0
    return x


ERRORS = [  # (id, function, argument shapes, the error graphc raises)
    ("no-broadcast", lambda x, y: x + y, [(2, 3), (4,)], graphc.ShapeError),
    ("matmul-inner", lambda x, y: x @ y, [(2, 3), (4, 2)], graphc.ShapeError),
    ("reshape-size", lambda x: x.reshape(5, -1), [(2, 3)], graphc.ShapeError),
    ("squeeze-non-1", lambda x: np.squeeze(x, axis=0), [(2, 3)], graphc.ShapeError),
    ("where-1-arg", lambda x: np.where(x > 0), [(3,)], graphc.UnsupportedError),
    ("bool-mask", lambda x: x[x > 0], [(3,)], graphc.UnsupportedError),
    ("setitem", _setitem, [(3,)], graphc.UnsupportedError),
    ("if-on-tracer", lambda x: x if x.sum() > 0 else -x, [(3,)], graphc.TracerBoolError),
    ("float()", lambda x: float(x[0]), [(3,)], graphc.TracerBoolError),
    ("sort", lambda x: np.sort(x), [(3,)], graphc.UnsupportedError),
]


@pytest.mark.parametrize("fn,shapes,error", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors(fn, shapes, error):
    with pytest.raises(error):
        graphc.compile(fn)(*[np.ones(s) for s in shapes])


def test_unsupported_function_is_named_and_big_int_is_refused():
    with pytest.raises(graphc.UnsupportedError, match="np.sort") as info:
        graphc.compile(lambda x: np.sort(x))(np.ones(3))
    # the hint names what does the job, not a look-alike name (np.sum)
    assert "graphc has no sort" in str(info.value) and "np.sum" not in str(info.value)
    with pytest.raises(graphc.GraphcError):  # 2**40 does not fit an int32 array
        graphc.compile(lambda a: a + 2**40)(np.ones(3, np.int32))
