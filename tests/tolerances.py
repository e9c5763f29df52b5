"""Tolerances from documented error bounds, for tests of computed math functions.

A float32 result of `np.tanh(x) + 1.0` is checked against the same expression in
float64 (exact enough to stand in for the true value), and the tolerance comes from
what each step may lose: a math function may be off by its documented bound in ulp of
*its own result*, an IEEE operation by half an ulp of its result. An error made at one
step reaches the output multiplied by how much the rest of the expression amplifies an
absolute error there (its "gain": 1 through an addition, c through a product with c).
So for tanh(x) + 1.0 the budget is 4 ulp of |tanh(x)| plus half an ulp of the sum,
which near x = -4 is large relative to the sum: an rtol that fits one CPU's tanh does
not fit another's, and this budget fits both.

An ulp of v lies between 2**-24 |v| and 2**-23 |v| (float32), so a relative error r
of one value is up to 2 r / 2**-23 ulp of another: a step carried as a relative error
onto a different value takes a gain of 2.

>>> import numpy as np
>>> x = np.linspace(-5, 5, 101, dtype=np.float32)
>>> exact = np.tanh(x.astype(np.float64)) + 1.0
>>> assert_within_bounds(np.tanh(x) + np.float32(1.0), exact, np.float32,
...                      ("tanh", exact - 1.0), ("add", exact))
"""
from __future__ import annotations

import numpy as np

# Max error of each step, in ulp of the step's result, for float32 and float64 alike.
# - IEEE 754 operations (+ - * /, sqrt) are correctly rounded: 0.5 ulp.
# - glibc's libmvec (the vector functions native kernels call): "maximum relative error
#   of 4 ulp" (sourceware.org/glibc/wiki/libmvec, "Accuracy"), which also covers
#   glibc's scalar libm (its manual's "Known Maximum Errors" table lists at most 2-3
#   ulp for these on x86-64).
# - numpy's own SIMD float32 functions (AVX2/AVX-512 exp, log, tanh, sin, cos ...) are
#   tested by numpy to 4 ulp (numpy/_core/tests/test_umath_accuracy.py with the
#   umath-validation-set files), the same bound.
# A composite such as sigmoid or rsqrt is listed as the steps it is made of.
ULP_BOUNDS = {
    "add": 0.5, "sub": 0.5, "mul": 0.5, "div": 0.5, "sqrt": 0.5, "round": 0.5,
    "exp": 4.0, "expm1": 4.0, "log": 4.0, "log1p": 4.0, "tanh": 4.0, "sin": 4.0,
    "cos": 4.0, "erf": 4.0, "pow": 4.0,
}


def ulp(magnitude, dtype) -> np.ndarray:
    """The spacing of `dtype` at |magnitude| (an ulp there), elementwise, as float64."""
    m = np.abs(np.asarray(magnitude, np.float64)).astype(dtype)
    return np.spacing(m).astype(np.float64)


def bound(dtype, *steps) -> np.ndarray:
    """The absolute error budget of a computation at `dtype`, elementwise.

    Each step is (primitive, value) or (primitive, value, gain): the primitive's bound
    in ulp of |value| (the step's own result, exact), times |gain|, the factor by which
    the rest of the expression scales an absolute error made there.
    """
    total = np.float64(0.0)
    for step in steps:
        name, value, gain = (*step, 1.0) if len(step) == 2 else step
        total = total + ULP_BOUNDS[name] * ulp(value, dtype) * np.abs(gain)
    return total


def assert_within_bounds(got, exact, dtype, *steps, reference_steps=()) -> None:
    """Assert |got - exact| <= bound(dtype, *steps) everywhere (NaN where exact is NaN).

    `exact` is the expression in float64 (or the same-precision reference, whose own
    error is then budgeted by `reference_steps`, as `steps` are).
    """
    got = np.asarray(got)
    assert got.dtype == np.dtype(dtype), f"dtype {got.dtype}, expected {np.dtype(dtype)}"
    exact = np.asarray(exact, np.float64)
    tol = np.broadcast_to(bound(dtype, *steps) + bound(dtype, *reference_steps), got.shape)
    err = np.abs(got.astype(np.float64) - exact)
    nan = np.isnan(exact)
    bad = ~nan & ~(err <= tol) | (nan & ~np.isnan(got))
    if bad.any():
        i = np.unravel_index(np.argmax(np.where(bad, err / np.maximum(tol, 1e-300), 0)),
                             got.shape)
        raise AssertionError(
            f"{int(bad.sum())} of {got.size} elements beyond their error bound; worst at "
            f"{tuple(int(k) for k in i)}: got {got[i]!r}, exact {exact[i]!r}, error "
            f"{err[i]:.3g} > bound {tol[i]:.3g} ({err[i] / ulp(exact[i], dtype):.1f} ulp "
            f"of the result)")
