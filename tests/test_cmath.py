"""graphc's own float32 math functions (backends/numpy/vmath.c): their accuracy over
the whole float32 range at the bound cmath documents, numpy's NaN/inf/signed-zero
results, and the float32 division computed in double, against numpy's IEEE one."""
import re

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
          ("expm1", "gc_expm1f"), ("tanh", "gc_tanhf"), ("sigmoid", "gc_sigmoidf"),
          ("erf", "gc_erff"), ("pow", "gc_powf"), ("sin", "gc_sinf"), ("cos", "gc_cosf")]}
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


# pow's special cases (C99's, numpy's): every base against every exponent
POW_BASES = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 0.5, -0.5, 2.0, -2.0,
                      3.0, -3.0, 10.0, -10.0, 0.999999, 1.000001, -0.999999,
                      np.finfo(np.float32).max, -np.finfo(np.float32).max,
                      np.finfo(np.float32).tiny, -np.finfo(np.float32).tiny,
                      np.finfo(np.float32).smallest_subnormal,
                      -np.finfo(np.float32).smallest_subnormal, 1e-40, -1e-40], np.float32)
POW_EXPONENTS = np.array([0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 3.0, -3.0, 0.5, -0.5, 1.5, -1.5,
                          np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1e-40, 0.1, 5.0, -5.0,
                          127.0, -127.0, 149.0, -149.0, 150.0, -150.0, 2.0**24,
                          2.0**24 + 2, 2.0**24 - 1, -(2.0**24 - 1), 2.0**31, -(2.0**31),
                          2.0**31 + 256, 1e30, -1e30, np.finfo(np.float32).max,
                          -np.finfo(np.float32).max], np.float32)


def _power(march):
    return graphc.compile(lambda x, y: np.power(x, y), check=False,
                          options=mode_options("native", march=march))


@pytest.mark.parametrize("march", MARCHES)
def test_pow_gives_numpys_special_values(march):
    x, y = (a.ravel().copy() for a in np.meshgrid(POW_BASES, POW_EXPONENTS))
    compiled = _power(march)
    assert "gc_powf" in compiled.lower(x, y).executable.rendered.c_source
    with np.errstate(all="ignore"):
        want = np.power(x, y)
        got = compiled(x, y)
        err, mismatched = ulp.ulp_errors(got, np.power(x.astype(np.float64),
                                                       y.astype(np.float64)))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    special = ~np.isfinite(want) | (want == 0)  # inf, nan and zeros: exactly, sign too
    np.testing.assert_array_equal(got[special], want[special])
    assert (np.signbit(got) == np.signbit(want))[~np.isnan(want)].all()
    assert mismatched == 0 and err[~special].max() <= cmath.BOUNDS["pow"]


@pytest.mark.parametrize("march", MARCHES)
def test_pow_keeps_its_bound_over_exponents(march):
    # the ulp table's pow is x ** 2.5; here x of every sign and exponent against small,
    # large, integer (negative x) and fractional y, results subnormal and overflowing too
    ys = [0.5, -1.5, 3.0, -2.0, 0.1, 7.0, 1e-3, 30.0, -0.75, 1 / 3, 11.0, -23.0, 150.0,
          -149.5, 1e-7, 31.78, -21.98, 0.0601, 2.0**20 + 1, -(2.0**20 + 1)]
    x = np.tile(ulp.sweep(256), len(ys))
    y = np.repeat(np.array(ys, np.float32), x.size // len(ys))
    with np.errstate(all="ignore"):
        exact = np.power(x.astype(np.float64), y.astype(np.float64))
        err, mismatched = ulp.ulp_errors(_power(march)(x, y), exact)
    assert mismatched == 0
    assert err.max() <= cmath.BOUNDS["pow"], (x[np.argmax(err)], y[np.argmax(err)])


def test_sin_cos_table_holds_one_over_pi():
    # gc_inv_pi_hi/lo[e - 115]: V rounded to double and V - hi rounded, V = 2^(e-150)/pi
    # mod 2 (x/pi = m V mod 2 for x = m 2^(e-150))
    mpmath = pytest.importorskip("mpmath")
    tables = {name: [float.fromhex(v) for v in re.findall(r"-?0x[0-9a-f.]+p[-+]\d+", body)]
              for name, body in re.findall(r"gc_inv_pi_(hi|lo)\[140\] = \{(.*?)\};",
                                           cmath.source(), re.S)}
    assert len(tables["hi"]) == len(tables["lo"]) == 140
    with mpmath.workprec(1000):
        for i, e in enumerate(range(115, 255)):
            v = mpmath.mpf(2) ** (e - 150) / mpmath.pi
            v -= 2 * mpmath.floor(v / 2)
            assert tables["hi"][i] == float(v)
            assert tables["lo"][i] == float(v - mpmath.mpf(tables["hi"][i]))


@pytest.mark.parametrize("march", MARCHES)
def test_sin_cos_reduce_the_hardest_inputs(march):
    # the float32 values nearest a multiple of pi/2, sin's or cos's zeros (x/pi within
    # 2^-30.9 of an integer or a half: the most cancellation), the largest ones, where
    # the reduction's table ends, and the edges of the tiny inputs (x itself, 1)
    x = np.array([16367173 * 2.0**72, 10741887 * 2.0**11, 16573937 * 2.0**-16,
                  10057457 * 2.0**62, 11617958 * 2.0**17, np.finfo(np.float32).max,
                  2.0**127, 2.0**126 * 1.5, 2.0**24, 2.0**24 - 1, 2.0**-12, 2.0**-12 * 0.999,
                  np.pi / 2, np.pi, 3 * np.pi / 2, 1e4, 1e6, 1e10], np.float32)
    x = np.concatenate([x, -x])
    for fn in (np.sin, np.cos):
        compiled = graphc.compile(fn, check=False, options=mode_options("native", march=march))
        err, mismatched = ulp.ulp_errors(compiled(x), fn(x.astype(np.float64)))
        assert mismatched == 0
        assert err.max() <= cmath.BOUNDS[fn.__name__], (x[np.argmax(err)], err.max())


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


@pytest.mark.parametrize("march", MARCHES)
def test_sigmoid_is_one_ieee_division_of_graphcs_own_exp(march):
    """gc_sigmoidf divides once in float32 and keeps subnormals out of the division:
    its result is numpy's float32 quotient of the same exp, bit for bit, everywhere."""
    from graphc import nn
    options = mode_options("native", march=march)
    sigmoid = graphc.compile(lambda x: nn.sigmoid(x), check=False, options=options)
    exp = graphc.compile(lambda x: np.exp(-np.abs(x)), check=False, options=options)
    x = np.concatenate([ulp.sweep(1024), SPECIALS]).astype(np.float32)
    e = exp(x)
    with np.errstate(all="ignore"):
        want = np.where(x >= 0, np.float32(1) / (np.float32(1) + e), e / (np.float32(1) + e))
    np.testing.assert_array_equal(sigmoid(x), want.astype(np.float32), strict=True)
