"""frontend/numpy_more.py end to end: np.pad, np.flip (fliplr, flipud), np.tril/triu,
np.cumsum (and x.cumsum), np.linalg.norm, np.asarray/np.array of traced arrays, static
constructors (np.arange, np.eye, ...) inside a trace, and the hints for what stays
unsupported. The reference is eager numpy on the same arrays, as in
tests/test_numpy_frontend.py (same helpers: numpy's dtype, shape and values)."""
import numpy as np
import pytest

import graphc
from graphc.backends import toolchain
from test_numpy_frontend import ALL_DTYPES, check, make

SHAPES_AXES = [((5,), 0), ((5,), -1), ((3, 4), 0), ((3, 4), 1), ((3, 4), -2),
               ((2, 3, 4), 1), ((2, 3, 4), -1), ((0, 3), 0), ((0, 3), 1), ((3, 1), 1),
               ((1, 4), 0), ((2, 1, 3), 1)]


# ---- cumsum ----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ALL_DTYPES + ["float16"])
@pytest.mark.parametrize("shape,axis", SHAPES_AXES)
def test_cumsum_along_an_axis(shape, axis, dtype):
    # bool and int32 accumulate as int64, as numpy does on 64-bit Linux
    check(lambda x: np.cumsum(x, axis=axis), make(shape, dtype))


@pytest.mark.parametrize("shape", [(), (5,), (3, 4), (0, 2)])
def test_cumsum_without_axis_flattens(shape):
    check(lambda x: np.cumsum(x), make(shape, "float32"))
    check(lambda x: x.cumsum(), make(shape, "int32"))


@pytest.mark.parametrize("src,dtype", [("float32", "float64"), ("int32", "int32"),
                                       ("bool", "float32"), ("int64", "float32"),
                                       ("float64", "float16")])
def test_cumsum_dtype_argument_and_method(src, dtype):
    check(lambda x: np.cumsum(x, axis=-1, dtype=dtype), make((3, 5), src))
    check(lambda x: x.cumsum(axis=0, dtype=dtype), make((3, 5), src))


def test_cumsum_dtype_casts_first_and_bool_is_refused():
    # numpy casts the input to dtype (float to int truncates), then accumulates
    check(lambda x: np.cumsum(x * 3, axis=1, dtype=np.int32), make((3, 4), "float32"))
    with pytest.raises(graphc.DtypeError, match="dtype=bool"):  # numpy: a running `or`
        graphc.compile(lambda x: np.cumsum(x, dtype=bool))(make((4,), "bool"))


def test_cumsum_native_kernel_matches_numpy_bit_for_bit():
    # the C loop adds in index order, as np.add.accumulate does: identical floats
    if toolchain.compiler() is None:
        pytest.skip("no C compiler: cumsum runs through numpy")
    fn = lambda x, n: (np.cumsum(x, axis=0), np.cumsum(x, axis=-1),  # noqa: E731
                       np.cumsum(n, axis=1))
    x = make((300, 257), "float32")
    n = np.full((5, 7), 2**62, np.int64)  # wraps around, as numpy's int64 does
    f = graphc.compile(fn, options={"small_group": 0, "native": True}, backend="numpy")
    assert f.lower(x, n).source.count("_runc(") == 3
    with np.errstate(over="ignore"):
        want = fn(x, n)
    for got, w in zip(f(x, n), want):
        np.testing.assert_array_equal(got, w, strict=True)


def test_cumsum_gradient_is_a_reverse_running_sum():
    # finite differences in float64 along a random direction
    rng = np.random.default_rng(3)
    x, w, d = (rng.standard_normal((3, 5)) for _ in range(3))
    loss = lambda x: np.sum(np.cumsum(x, axis=1) * w)  # noqa: E731
    eps = 1e-6
    fd = (loss(x + eps * d) - loss(x - eps * d)) / (2 * eps)
    g = graphc.grad(loss)(x)
    np.testing.assert_allclose(np.vdot(g, d), fd, rtol=1e-7)


# ---- pad -------------------------------------------------------------------------------

PADS = [(2, {}), ((1, 2), {}), (((1, 0), (2, 3)), {}), (((0, 0), (1, 1)), {"constant_values": 7}),
        (1, {"constant_values": -1.5}), (((1, 2), (3, 4)), {"constant_values": ((1, 2), (3, 4))}),
        ((2, 1), {"constant_values": (5, 6)}), (((1,), (2,)), {"constant_values": np.nan})]


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "bool"])
@pytest.mark.parametrize("width,kwargs", PADS)
def test_pad_constant(width, kwargs, dtype):
    if dtype == "bool" and "constant_values" in kwargs:
        kwargs = {"constant_values": True}
    if dtype in ("int32", "bool") and np.isnan(kwargs.get("constant_values", 0)).any():
        with pytest.raises(ValueError):  # numpy cannot fill ints with NaN: nor graphc
            np.pad(make((3, 4), dtype), width, **kwargs)
        with pytest.raises(graphc.DtypeError):
            graphc.compile(lambda x: np.pad(x, width, **kwargs))(make((3, 4), dtype))
        return
    check(lambda x: np.pad(x, width, **kwargs), make((3, 4), dtype))


def test_pad_of_size_0_size_1_and_0_d_arrays():
    check(lambda x: np.pad(x, 1, constant_values=2.0), make((0, 3), "float32"))
    check(lambda x: np.pad(x, (0, 2)), make((1,), "int64"))
    check(lambda x: np.pad(x, ((1, 1), (0, 0), (2, 0))), make((2, 1, 3), "float64"))
    check(lambda x: np.pad(x, 3), make((), "float32"))


@pytest.mark.parametrize("mode", ["edge", "reflect", "wrap", "symmetric", "mean"])
def test_other_pad_modes_are_refused_by_name(mode):
    with pytest.raises(graphc.UnsupportedError, match=f"mode='{mode}'") as info:
        graphc.compile(lambda x: np.pad(x, 1, mode=mode))(make((3,), "float32"))
    assert "np.concatenate" in str(info.value)  # the hint: how to build it


def test_pad_widths_must_be_non_negative_and_fit():
    with pytest.raises(graphc.ShapeError):
        graphc.compile(lambda x: np.pad(x, -1))(make((3,), "float32"))
    with pytest.raises(graphc.ShapeError):
        graphc.compile(lambda x: np.pad(x, ((1, 1), (1, 1), (1, 1))))(make((3, 2), "float32"))


# ---- flip, tril, triu ------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "int64", "bool"])
@pytest.mark.parametrize("shape,axis", SHAPES_AXES + [((2, 3, 4), None), ((2, 3, 4), (0, 2)),
                                                      ((0, 3), None), ((), None)])
def test_flip(shape, axis, dtype):
    check(lambda x: np.flip(x, axis), make(shape, dtype))


def test_fliplr_flipud():
    for shape in [(3, 4), (2, 3, 4), (1, 0)]:
        check(np.fliplr, make(shape, "float32"))
        check(np.flipud, make(shape, "int32"))
    check(np.flipud, make((5,), "float64"))
    with pytest.raises(graphc.ShapeError):
        graphc.compile(np.fliplr)(make((5,), "float64"))


@pytest.mark.parametrize("fn", [np.tril, np.triu])
@pytest.mark.parametrize("k", [-2, -1, 0, 1, 3])
@pytest.mark.parametrize("shape,dtype", [((4, 4), "float32"), ((3, 5), "int32"),
                                         ((2, 4, 3), "float64"), ((4,), "float32"),
                                         ((0, 3), "float32"), ((3, 3), "bool")])
def test_tril_triu(fn, k, shape, dtype):
    check(lambda x: fn(x, k), make(shape, dtype))


def test_tril_gradient_masks_the_cotangent():
    x = make((3, 3), "float64")
    g = graphc.grad(lambda x: np.sum(np.tril(x) * x))(x)
    np.testing.assert_allclose(g, 2 * np.tril(x), rtol=1e-15)  # d/dx sum(tril(x) x)


# ---- np.linalg.norm --------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
@pytest.mark.parametrize("ord", [None, 2, 1, np.inf, -np.inf, 0, 3, 0.5, -1])
@pytest.mark.parametrize("shape,axis", [((5,), 0), ((3, 4), 1), ((3, 4), -2), ((2, 3, 4), 1),
                                        ((3, 1), 1), ((0, 3), 1), ((0, 3), 0)])
def test_vector_norms(shape, axis, ord, dtype):
    if shape[axis] == 0 and ord == -np.inf:
        x = make(shape, dtype)  # min of an empty axis: numpy raises, and so does graphc
        with pytest.raises(ValueError):
            np.linalg.norm(x, ord, axis=axis)
        with pytest.raises(graphc.ShapeError):
            graphc.compile(lambda x: np.linalg.norm(x, ord, axis=axis))(x)
        return
    # a negative ord of a zero is inf with a warning (numpy's too): nonzero inputs there
    x = make(shape, dtype, "pos" if ord == -1 else "real")
    with np.errstate(divide="ignore"):  # an empty axis: 0 ** -1, inf (numpy's too)
        check(lambda x: np.linalg.norm(x, ord, axis=axis), x)
        check(lambda x: np.linalg.norm(x, ord, axis=axis, keepdims=True), x)


@pytest.mark.parametrize("ord", [None, "fro", 1, -1, np.inf, -np.inf])
@pytest.mark.parametrize("shape,axis", [((3, 4), None), ((3, 4), (0, 1)), ((3, 4), (1, 0)),
                                        ((2, 3, 4), (-1, -2)), ((2, 3, 4), (0, 2))])
def test_matrix_norms(shape, axis, ord):
    check(lambda x: np.linalg.norm(x, ord, axis=axis), make(shape, "float32"))
    check(lambda x: np.linalg.norm(x, ord, axis=axis, keepdims=True), make(shape, "float64"))


def test_norm_without_ord_or_axis_is_the_flat_2_norm():
    for shape in [(), (5,), (3, 4), (2, 3, 4)]:
        check(lambda x: np.linalg.norm(x), make(shape, "float32"))
        check(lambda x: np.linalg.norm(x, keepdims=True), make(shape, "int64"))


@pytest.mark.parametrize("ord,axis,shape", [("nuc", None, (3, 3)), (2, None, (3, 3)),
                                            (-2, (0, 1), (3, 3)), ("fro", 0, (3, 3)),
                                            (1, None, (2, 3, 3))])
def test_unsupported_norms_are_refused_by_name(ord, axis, shape):
    with pytest.raises((graphc.UnsupportedError, graphc.ShapeError), match=repr(ord)):
        graphc.compile(lambda x: np.linalg.norm(x, ord, axis=axis))(make(shape, "float32"))


def test_norm_gradient_against_finite_differences():
    rng = np.random.default_rng(5)
    x, d = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    for loss in (lambda x: np.sum(np.linalg.norm(x, axis=1)),
                 lambda x: np.linalg.norm(x, "fro"), lambda x: np.linalg.norm(x, 3, axis=0).sum()):
        eps = 1e-6
        fd = (loss(x + eps * d) - loss(x - eps * d)) / (2 * eps)
        np.testing.assert_allclose(np.vdot(graphc.grad(loss)(x), d), fd, rtol=1e-7)


# ---- np.asarray / np.array and static constructors -------------------------------------

@pytest.mark.parametrize("fn", [
    lambda x: np.asarray(x) * 2, lambda x: np.asarray(x, dtype=np.float64),
    lambda x: np.asarray(x, dtype="int32", copy=True), lambda x: np.asarray(x, copy=False),
    lambda x: np.array(x), lambda x: np.array(x, dtype=np.float16, copy=True),
    lambda x: np.array(x, ndmin=4), lambda x: np.array(x, copy=False),
    lambda x: np.asanyarray(x), lambda x: np.ascontiguousarray(x.T),
    lambda x: np.array([x[0], x[1] * 2, x[2]]),
    lambda x: np.array([[x[0, 0], 1.5], [x[1, 1], x[2, 0]]]),
    lambda x: np.asarray([1.0, 2.0]) + x[0],  # not traced: numpy's own asarray
], ids=["asarray", "asarray-dtype", "asarray-copy", "asarray-nocopy", "array",
        "array-dtype", "array-ndmin", "array-nocopy", "asanyarray", "ascontiguous",
        "array-of-rows", "array-nested-with-scalar", "untraced"])
def test_asarray_and_array_of_traced_arrays(fn):
    check(fn, make((3, 2), "float32"))


def test_asarray_with_copy_false_and_a_new_dtype_is_refused_as_numpy_does():
    x = make((3,), "float32")
    with pytest.raises(ValueError):
        np.asarray(x, dtype=np.float64, copy=False)
    with pytest.raises(graphc.UnsupportedError, match="copy=False"):
        graphc.compile(lambda x: np.asarray(x, dtype=np.float64, copy=False))(x)


def test_numpy_conversions_are_numpys_own_outside_a_trace():
    real = (np.asarray, np.array, np.asanyarray, np.ascontiguousarray)
    with pytest.raises(graphc.ShapeError):  # a failing trace restores them too
        graphc.compile(lambda x: np.array([x, x[:1]]))(make((3,), "float32"))
    check(lambda x: np.asarray(x) + 1, make((3,), "float32"))
    assert (np.asarray, np.array, np.asanyarray, np.ascontiguousarray) == real
    assert all(not hasattr(f, "__wrapped__") for f in real)


def test_static_constructors_inside_a_trace():
    def f(x):
        n, m = x.shape
        return (x + np.arange(m), x[:, :n] @ np.eye(n, dtype=np.float32),
                np.zeros_like(x) + np.ones((n, m)), np.full((n, m), 2.5) * x,
                np.arange(1, 2 * m, 2, dtype=np.float32) * x, np.eye(n, m, k=1) + x)
    check(f, make((3, 4), "float32"))


# ---- what stays unsupported: hints that do the job -------------------------------------

@pytest.mark.parametrize("fn,name,hint", [
    (np.sort, "np.sort", "graphc has no sort"),
    (np.argsort, "np.argsort", "graphc has no sort"),
    (np.median, "np.median", "graphc has no sort"),
    (np.unique, "np.unique", "depends on the data"),
    (np.linalg.inv, "np.linalg.inv", "no matrix factorizations"),
    (np.cumprod, "np.cumprod", "np.exp(np.cumsum(np.log(x)))"),
    (np.diff, "np.diff", "x[..., 1:] - x[..., :-1]"),
    (np.log2, "np.log2", "np.log(x) / math.log(2)"),
    (np.sinc, "np.sinc", "graphc has no np.sinc"),  # no entry: the honest fallback
])
def test_unsupported_functions_suggest_what_does_the_job(fn, name, hint):
    with pytest.raises(graphc.UnsupportedError) as info:
        graphc.compile(fn)(make((3, 3), "float32"))
    text = str(info.value)
    assert f"{name} is not supported" in text and hint in text, text
    assert "closest" not in text
