"""numpy's rounding, floored division (// and %), isnan/isinf/isfinite, logaddexp,
all/any and argmin, traced (frontend/numpy_math.py), against eager numpy.

Each function runs compiled and eagerly on edge values (signed zeros, .5 ties, inf,
nan, negative divisors, a zero divisor, INT_MIN and INT_MAX, both operand orders,
broadcasting, every dtype numpy gives a graphc dtype for): the results must have
numpy's dtype and numpy's bits (the sign of a zero included), since each of these is
exactly rounded; logaddexp, made of exp and log1p, must be within their documented
error bounds (tests/tolerances.py). The suite runs this file with plain numpy calls,
with numpy block kernels and with native kernels; the last tests force native kernels
and check that C, not numpy, computed the result.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import graphc
from graphc.backends import toolchain
from graphc.errors import UnsupportedError
from tolerances import assert_within_bounds

EDGES = [0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 3.0, -3.0, 7.25, -0.75, 1e30, -1e-30,
         np.inf, -np.inf, np.nan]


def assert_same(got, want) -> None:
    """numpy's dtype, shape and values, NaN where numpy's is, zeros of numpy's sign."""
    got, want = np.asarray(got), np.asarray(want)
    assert (got.dtype, got.shape) == (want.dtype, want.shape), \
        f"got {got.dtype}{list(got.shape)}, numpy gives {want.dtype}{list(want.shape)}"
    np.testing.assert_array_equal(got, want, strict=True)
    if want.dtype.kind == "f":
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


def check(fn, *args, options=None) -> None:
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's divide-by-zero
        want = fn(*args)
        got = graphc.compile(fn, options=options)(*args)
    want = want if isinstance(want, tuple) else (want,)
    got = got if isinstance(got, tuple) else (got,)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert_same(g, w)


def grid(dtype, values=EDGES):
    """Every value against every other: (n, 1) and (1, n), broadcast (1e30 is inf in
    float16)."""
    with np.errstate(over="ignore"):
        v = np.array(values, dtype)
    return v[:, None], v[None, :]


# ---- floor_divide and remainder ------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_floored_division_of_floats_matches_numpy_on_edge_values(dtype):
    a, b = grid(dtype)
    check(lambda a, b: (a // b, a % b, np.floor_divide(b, a), np.remainder(b, a),
                        np.mod(a, b)), a, b)
    check(lambda a, b: divmod(a, b), a, b)


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_floored_division_of_ints_matches_numpy(dtype):
    v = np.arange(-7, 8).astype(dtype)
    check(lambda a, b: (a // b, a % b, np.floor_divide(b, a), np.remainder(b, a)),
          v[:, None], v[None, :])  # b = 0 gives 0, as numpy does
    info = np.iinfo(dtype)
    a = np.array([info.min, info.min, info.max, info.min, -1, 0, info.max], dtype)
    b = np.array([-1, 1, -1, info.max, info.min, info.min, info.min], dtype)
    check(lambda a, b: (a // b, a % b), a, b)  # INT_MIN // -1 wraps to INT_MIN


def test_floored_division_with_python_scalars_and_mixed_dtypes():
    x = np.array([-7.5, -2.0, -0.0, 0.0, 3.25, 8.0], np.float32)
    i = np.array([-7, -2, 0, 3, 8], np.int32)
    check(lambda x: (x // 2, x % -3, 7 // x, -7.5 % x, x // 0.0, x % 0), x)
    check(lambda i: (i // 3, i % -3, 9 // i, -9 % i, i // 2.5, i % 1.5, i // 0), i)
    check(lambda i, x: (i[:, None] // x, x % i[:, None]), i, x)  # int32 and float32
    check(lambda m, i: (m // i, m % i), np.array([True, False, True, False, True]), i)


def test_bool_floored_division_is_refused():
    f = graphc.compile(lambda a, b: a // b)
    with pytest.raises(UnsupportedError, match="int8"):
        f(np.array([True]), np.array([True]))


# ---- floor, ceil, round --------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_rounding_floats_matches_numpy(dtype):
    with np.errstate(over="ignore"):
        v = np.array(EDGES + [0.49999997, -1.5000001, 4.5, 5.5, -4.5], dtype)
    check(lambda x: (np.floor(x), np.ceil(x), np.round(x), np.around(x), x.round(),
                     np.rint(x)), v)
    x = np.random.default_rng(0).uniform(-60, 60, (5, 7)).astype(dtype)
    check(lambda x: (np.round(x, 1), np.round(x, 2), np.around(x, -1), x.round(3),
                     x.round(decimals=-2)), np.concatenate([x.ravel(), v]))


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_rounding_ints_keeps_them_ints(dtype):
    x = np.array([-155, -150, -145, -5, 0, 5, 15, 25, 149, 250], dtype)
    check(lambda x: (np.floor(x), np.ceil(x), np.round(x), np.round(x, 2), x.round(-1),
                     np.round(x, -2), np.rint(x)), x)


def test_rounding_bools_as_numpy_does():
    m = np.array([[True, False], [False, True]])
    check(lambda m: (np.floor(m), np.ceil(m), np.round(m), np.rint(m)), m)
    with pytest.raises(UnsupportedError, match="bool"):
        graphc.compile(lambda m: np.round(m, 1))(m)


def test_round_needs_static_integer_decimals():
    with pytest.raises(UnsupportedError, match="decimals"):
        graphc.compile(lambda x: np.round(x, 1.5))(np.ones(3))


# ---- isnan, isinf, isfinite ----------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int32", "int64", "bool"])
def test_float_tests_match_numpy(dtype):
    with np.errstate(over="ignore"):
        v = np.array(EDGES, np.float64).astype(dtype) if dtype.startswith("float") else None
    x = v if v is not None else np.arange(-3, 4).astype(dtype)
    check(lambda x: (np.isnan(x), np.isinf(x), np.isfinite(x), np.isnan(x * 2) | (x > 1)), x)


def test_isnan_is_not_folded_away():
    # x != x is false for every value but nan: no pass may simplify it to False
    f = graphc.compile(lambda x: np.where(np.isnan(x), 0.0, x) + np.sum(np.isnan(x)))
    x = np.array([1.0, np.nan, 3.0])
    assert_same(f(x), np.where(np.isnan(x), 0.0, x) + 1)


# ---- logaddexp -----------------------------------------------------------------------

def test_logaddexp_special_values_match_numpy():
    # exact results: equal infinities (inf - inf is nan inside), nan, and pairs so far
    # apart that exp(lo - hi) is 0
    for dtype in ("float16", "float32", "float64"):
        a, b = grid(dtype, [np.inf, -np.inf, np.nan, 1e30, -1e30])
        check(lambda a, b: (np.logaddexp(a, b), np.logaddexp(b, 2)), a, b)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_logaddexp_within_the_error_bounds_of_its_steps(dtype):
    # y = hi + log1p(exp(lo - hi)): exp and log1p within their bounds, the subtraction
    # and the addition rounded, an error in exp(gap) reaching y through 1 / (1 + e)
    rng = np.random.default_rng(1)
    scale = rng.choice([1e-3, 1.0, 30.0, 1e3], (2, 5000))
    a, b = (rng.standard_normal((2, 5000)) * scale).astype(dtype)
    wide = np.longdouble if dtype == "float64" else np.float64
    a_, b_ = a.astype(wide), b.astype(wide)
    exact = np.logaddexp(a_, b_)
    gap = -np.abs(a_ - b_)
    e = np.exp(gap)
    got = graphc.compile(np.logaddexp)(a, b)
    assert_within_bounds(got, exact, dtype, ("sub", gap, e / (1 + e)), ("exp", e, 1 / (1 + e)),
                         ("log1p", np.log1p(e)), ("add", exact),
                         reference_steps=[("round", exact)] if dtype == "float64" else ())


def test_logaddexp_dtypes_follow_numpy():
    check(lambda i, m: (np.logaddexp(i, 1), np.logaddexp(m, m), np.logaddexp(i, 0.5)),
          np.array([-3, 0, 4], np.int32), np.array([True, False, True]))


def test_logaddexp_gradient_is_the_softmax_weights():
    a, b = np.array([0.3, -2.0, 5.0, 1.0]), np.array([0.3, 1.0, -1.0, 1.0])
    ga, gb = graphc.grad(lambda a, b: np.sum(np.logaddexp(a, b)), argnums=(0, 1))(a, b)
    w = np.exp(a) / (np.exp(a) + np.exp(b))
    # weights in [0, 1] made by a few float64 roundings of numbers <= 1: a few eps
    np.testing.assert_allclose(ga, w, rtol=0, atol=8 * np.finfo(np.float64).eps)
    np.testing.assert_allclose(gb, 1 - w, rtol=0, atol=8 * np.finfo(np.float64).eps)


# ---- all, any, argmin ----------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "int64", "bool"])
def test_all_and_any_match_numpy(dtype):
    x = np.random.default_rng(2).integers(0, 3, (3, 4, 5)).astype(dtype)
    if dtype == "float32":
        x[0, 0, 0], x[1, 2, 3] = np.nan, -0.0  # nan is true, -0.0 false
    check(lambda x: (np.all(x), np.any(x), np.all(x, axis=1), np.any(x, axis=(0, 2)),
                     np.all(x, axis=-1, keepdims=True), np.any(x, keepdims=True),
                     x.all(), x.any(axis=0), x.all(axis=(1, 2), keepdims=True),
                     x.any(axis=()), (x > 1).all(axis=2)), x)


def test_all_and_any_of_empty_axes_are_their_identities():
    z = np.zeros((0, 3), np.float32)
    check(lambda z: (np.all(z), np.any(z), np.all(z, axis=0), np.any(z, axis=0),
                     z.all(axis=0, keepdims=True), np.any(z, axis=1)), z)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "bool"])
def test_argmin_matches_numpy(dtype):
    x = np.random.default_rng(3).integers(-2, 3, (4, 6)).astype(dtype)  # many ties
    if dtype.startswith("float"):
        x[1, 3], x[1, 4], x[2, 0], x[2, 1] = np.nan, np.nan, -0.0, 0.0
    elif dtype.startswith("int"):
        x[3, 2], x[3, 4] = np.iinfo(dtype).min, np.iinfo(dtype).max
    check(lambda x: (np.argmin(x), np.argmin(x, axis=0), x.argmin(axis=1),
                     np.argmin(x, axis=-1, keepdims=True), x.argmin(keepdims=True)), x)


# ---- native kernels: C computes these with numpy's semantics -------------------------

needs_cc = pytest.mark.skipif(toolchain.compiler() is None, reason="no C compiler")


@needs_cc
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
def test_native_kernels_give_numpy_bits(dtype):
    forced = {"small_group": 0, "native": True}  # every group a native kernel
    if dtype.startswith("float"):
        a, b = grid(dtype)
    else:
        info = np.iinfo(dtype)
        v = np.array(list(range(-7, 8)) + [info.min, info.max], dtype)
        a, b = v[:, None], v[None, :]

    def fn(a, b):  # one fused group: division, rounding and their consumers
        q, r = a // b, a % b
        return q, r, np.floor(a * 0.5) + np.ceil(b), np.round(a * 1.5), np.round(a, 1), \
            np.round(a, -1), np.isnan(r) | np.isinf(q)

    check(fn, a, b, options=forced)
    source = graphc.compile(fn, options=forced, backend="numpy").lower(a, b).source
    assert "gc_floor_divide" in source and "gc_remainder" in source, \
        "the division did not run as a native kernel"
