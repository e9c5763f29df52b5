"""graphc's own float32 math functions (backends/numpy/vmath.c): their accuracy over
the whole float32 range at the bound cmath documents, numpy's NaN/inf/signed-zero
results, and the float32 division computed in double, against numpy's IEEE one."""
import numpy as np
import pytest

import graphc
from graphc.backends import toolchain
from graphc.backends.numpy import cmath
from graphc.bench import ulp
from graphc.fuzz import mode_options

pytestmark = pytest.mark.skipif(toolchain.compiler() is None, reason="no C compiler")

# x86-64 has no FMA: the functions' other form (a * b + c), on every machine
MARCHES = [m for m in ("native", "x86-64-v3", "x86-64") if toolchain.runnable(m)]
# the ulp-table name of each of graphc's own functions
NAMES = {c_name: name for name, c_name in
         [("exp", "gc_expf"), ("log", "gc_logf"), ("log1p", "gc_log1pf"),
          ("expm1", "gc_expm1f"), ("tanh", "gc_tanhf"), ("sigmoid", "gc_sigmoidf")]}
SPECIALS = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1.0, -1.0,
                     np.finfo(np.float32).max, -np.finfo(np.float32).max,
                     np.finfo(np.float32).tiny, -np.finfo(np.float32).tiny,
                     np.finfo(np.float32).smallest_subnormal,
                     -np.finfo(np.float32).smallest_subnormal], np.float32)


def test_every_own_function_is_tested_here():
    assert sorted(NAMES) == sorted(cmath.OWN.values())
    assert set(cmath.BOUNDS) == set(NAMES.values())


@pytest.mark.parametrize("march", MARCHES)
@pytest.mark.parametrize("c_name", sorted(NAMES))
def test_own_functions_keep_their_bound_over_the_whole_range(c_name, march):
    # 1024 significands per exponent and sign: 522,240 inputs, subnormals included
    name = NAMES[c_name]
    row = ulp.measure(name, ulp.sweep(1024), [march])
    way = f"native -march={march}"
    assert row.errors[way] <= cmath.BOUNDS[name], row
    assert row.mismatched_specials[way] == 0, row


@pytest.mark.parametrize("c_name", sorted(NAMES))
def test_own_functions_give_numpys_special_values(c_name):
    fn = ulp.FUNCTIONS[NAMES[c_name]][0]
    compiled = graphc.compile(fn, check=False, options=mode_options("native"))
    assert c_name in compiled.lower(SPECIALS).executable.rendered.c_source
    with np.errstate(all="ignore"):
        want = np.asarray(fn(SPECIALS), np.float32)
    got = compiled(SPECIALS)
    same_kind = (np.isnan(got) == np.isnan(want)) & (np.isinf(got) == np.isinf(want))
    assert same_kind.all(), (SPECIALS, got, want)
    exact = ~np.isfinite(want) | (want == 0)  # inf, nan and zeros: exactly, sign too
    np.testing.assert_array_equal(got[exact], want[exact])
    assert (np.signbit(got) == np.signbit(want))[exact & ~np.isnan(want)].all()


def test_float64_kernels_keep_glibcs_functions():
    x = np.linspace(-5, 5, 64)
    compiled = graphc.compile(lambda x: np.exp(x) + 1.0, check=False,
                              options=mode_options("native"))
    source = compiled.lower(x).executable.rendered.c_source
    assert "gc_expf" not in source and "exp(" in source


def _subnormal_heavy(rng, n):
    """Quotients whose operands or results are subnormal, normal or special."""
    tiny = np.finfo(np.float32).tiny
    a = np.concatenate([rng.standard_normal(n) * tiny, rng.standard_normal(n),
                        rng.standard_normal(n) * 1e30, [0.0, -0.0, np.inf, np.nan, 1.0]])
    b = np.concatenate([rng.standard_normal(n) * 10, rng.standard_normal(n) * 1e37,
                        rng.standard_normal(n) * 1e-30, [0.0, 1.0, np.inf, 1.0, -0.0]])
    return a.astype(np.float32), b.astype(np.float32)


@pytest.mark.parametrize("march", MARCHES)
def test_float32_division_in_double_is_ieee_division(rng, march):
    # IEEE division is correctly rounded, so numpy's quotient is the only right one: the
    # double quotient rounded again to float must be it bit for bit, subnormals included
    a, b = _subnormal_heavy(rng, 20000)
    compiled = graphc.compile(lambda a, b: a / b * 0.5, check=False,
                              options=mode_options("native", march=march))
    assert "(double)" in compiled.lower(a, b).executable.rendered.c_source
    with np.errstate(all="ignore"):
        want = a / b * np.float32(0.5)  # (both correctly rounded, in C too)
    got = compiled(a, b)
    np.testing.assert_array_equal(got.view(np.uint32)[~np.isnan(want)],
                                  want.view(np.uint32)[~np.isnan(want)])
    assert np.isnan(got[np.isnan(want)]).all()


def test_float32_division_in_double_over_a_whole_binade():
    # every float in [1, 2) over divisors whose quotients come nearest to a midpoint
    # of the float grid (odd, near 1, near 2**24, irrational)
    a = np.arange(127 << 23, 128 << 23, dtype=np.uint32).view(np.float32)
    compiled = graphc.compile(lambda a, b: a / b * 0.5, check=False,
                              options=mode_options("native"))
    for b in [3.0, 7.0, 0.9999999, 1.0000001, 16777215.0, 1.9999999, np.pi]:
        divisor = np.full(1, b, np.float32)
        want = a / divisor * np.float32(0.5)
        np.testing.assert_array_equal(compiled(a, divisor).view(np.uint32),
                                      want.view(np.uint32))
