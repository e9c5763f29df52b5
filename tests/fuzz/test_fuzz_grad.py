"""Differential fuzzing of `graphc.grad`: random smooth float64 programs
(elementwise math, broadcasting, reductions, matmul, slicing) against central finite
differences of the eager numpy function along a random direction."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings

import graphc

from tests.fuzz.generate import SEEDS, grad_programs


@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(program=grad_programs(), seed=SEEDS)
def test_random_programs_grad_matches_finite_differences(program, seed):
    fn = program.function()
    x, w = program.args
    gx, gw = graphc.grad(fn, argnums=(0, 1))(x, w)
    assert gx.shape == x.shape and gw.shape == np.shape(w)
    assert gx.dtype == np.float64 and np.asarray(gw).dtype == np.float64
    rng = np.random.default_rng(seed)
    dx, dw = rng.standard_normal(x.shape), rng.standard_normal(np.shape(w))
    h = 1e-6
    fd = (fn(x + h * dx, w + h * dw) - fn(x - h * dx, w - h * dw)) / (2 * h)
    ad = np.sum(gx * dx) + np.sum(gw * dw)
    scale = np.sum(np.abs(gx * dx)) + np.sum(np.abs(gw * dw)) + 1e-3
    assert abs(fd - ad) <= 1e-5 * scale, \
        f"directional derivative {ad} != finite differences {fd}\n{program.source}"
