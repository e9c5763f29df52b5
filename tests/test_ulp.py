"""`python -m graphc ulp` (graphc/bench/ulp.py): the measure of each math function's
error in float32 ulp against float64, and the documented bounds it is held to."""
import numpy as np
import pytest

from graphc.backends import toolchain
from graphc.__main__ import main
from graphc.bench import ulp
from tolerances import ULP_BOUNDS


def test_an_error_of_one_spacing_is_one_ulp_and_specials_count_apart():
    exact = np.array([1.0, 3.0, 1e-40, 1e39, np.nan, 2.0])
    got = np.array([np.nextafter(np.float32(1), np.float32(2)), 3.0, 1e-40, np.inf,
                    np.nan, np.nan], np.float32)
    err, bad = ulp.ulp_errors(got, exact)
    assert err[0] == 1.0 and err[1] == 0.0
    # a subnormal's ulp is 2**-149; float32(1e-40) is itself 1e-40 rounded to that grid
    assert err[2] <= 0.5
    assert err[3] == 0.0 and err[4] == 0.0  # overflow to inf and NaN for NaN are right
    assert bad == 1                          # NaN where 2.0 is exact is not


def test_the_sweep_covers_every_exponent_of_both_signs():
    x = ulp.sweep(3)
    bits = x.view(np.uint32)
    assert set((bits >> 23) & 0xFF) == set(range(255)) and (x < 0).sum() == (x > 0).sum()
    assert np.nextafter(np.float32(0), np.float32(1)) in x  # the smallest subnormal
    assert np.finfo(np.float32).max in x


# Composites, from their steps' bounds: a relative error r of a step is up to 2r/2**-23
# ulp of a result at the bottom of its binade. rsqrt: sqrt's and the division's 2**-24
# each, 2 ulp. sigmoid: exp's 4 ulp (relative 4 * 2**-23, scaled by 1 - s <= 1) is up to
# 8 ulp of s, and 1 + e and the division round to 2**-24 each: 9.5 ulp in all.
COMPOSITE_BOUNDS = {"rsqrt": 2.0, "sigmoid": 9.5}


@pytest.mark.parametrize("name", sorted(ulp.FUNCTIONS))
def test_numpy_and_native_kernels_keep_the_documented_bound(name):
    marches = ("native",) if toolchain.compiler() is not None else ()
    row = ulp.measure(name, ulp.sweep(64), marches)
    limit = COMPOSITE_BOUNDS.get(name) or ULP_BOUNDS[name]
    assert all(e <= limit for e in row.errors.values()), row
    assert not any(row.mismatched_specials.values()), row


def test_a_wrong_function_shows_as_a_large_error():
    ulp.FUNCTIONS["wrong"] = (lambda x: np.float32(1.0001) * np.tanh(x), np.tanh)
    try:
        row = ulp.measure("wrong", ulp.sweep(16), ())
    finally:
        del ulp.FUNCTIONS["wrong"]
    assert row.errors["numpy"] > 100


def test_the_command_prints_a_table(capsys):
    assert main(["ulp", "--only", "tanh", "--per-binade", "8", "--march", "none"]) == 0
    out = capsys.readouterr().out
    assert "| tanh |" in out and "against float64" in out
    with pytest.raises(SystemExit):
        main(["ulp", "--only", "sort"])
    with pytest.raises(SystemExit):
        main(["ulp", "--march", "native;rm"])
