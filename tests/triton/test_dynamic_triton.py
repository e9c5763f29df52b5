"""Symbolic sizes on the Triton backend (issue 14), under the interpreter where there is
no GPU: kernels take every size as a runtime argument (`_dim0`, read from the inputs),
one compile serves every batch size, and the autotuner keys a symbolic kernel's config
by the sizes' powers of two (one tuning per bucket, not per size).

Tolerances as tests/triton/test_kernels_triton.py: float32 sums of n terms within
n * 2**-24 of the sum of magnitudes, a few ulp per elementwise op.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TRITON_INTERPRET", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("triton")

import graphc  # noqa: E402

EPS32 = 2.0 ** -24
RNG = np.random.default_rng(14)
W = (RNG.standard_normal((8, 5)) / 3).astype(np.float32)
B = RNG.standard_normal(5).astype(np.float32)


def bias_relu(x, b):
    return np.maximum(x + b, 0.0) * 2.0


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def layer_mean(x, w, b):
    return np.tanh(x @ w + b).mean(axis=0), (x[:, :4] * 2.0).sum(axis=1)


CASES = {
    "pointwise": (bias_relu, lambda n: (RNG.standard_normal((n, 5)).astype(np.float32), B)),
    "rows": (softmax, lambda n: (RNG.standard_normal((n, n + 3)).astype(np.float32),)),
    "matmul-mean-slice": (layer_mean,
                          lambda n: (RNG.standard_normal((n, 8)).astype(np.float32), W, B)),
}


def _close(got, want, terms):
    for g, w in zip(got if isinstance(got, tuple) else (got,),
                    want if isinstance(want, tuple) else (want,)):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=0, atol=(terms + 8) * EPS32 *
                                   max(1.0, float(np.abs(w).max())))


@pytest.mark.parametrize("dynamic", [True, None], ids=["dynamic=True", "automatic"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_one_compile_serves_every_size(case, dynamic):
    f, make = CASES[case]
    g = graphc.compile(f, backend="triton", dynamic=dynamic)
    for n in (3, 5, 9, 2, 17):
        args = make(n)
        _close(g(*args), f(*(a.astype(np.float64) for a in args)), n + 8)
    assert g.cache_info().misses == (1 if dynamic else 2)
    (entry, *_), = g._symbolic
    source = entry.lowered.source
    assert "_dim0 = " in source and "'bucket': True" in source


def test_a_symbolic_kernel_tunes_once_per_size_bucket():
    from graphc.backends.triton import autotune
    f = graphc.compile(softmax, backend="triton", dynamic=True)
    seen = []
    real = autotune.key_for

    def key_for(kernel, configs, args, bucket=False):
        seen.append(bucket)
        return real(kernel, configs, args, bucket)
    import unittest.mock
    with unittest.mock.patch.object(autotune, "key_for", key_for):
        for n in (5, 6, 7, 8, 9):  # rows and columns in the buckets 8 and 16
            x = RNG.standard_normal((n, 6)).astype(np.float32)
            _close(f(x), softmax(x.astype(np.float64)), 14)
    # one launch site (the fused softmax), tuned for (8, 8) and then (16, 8) only
    assert seen == [True, True]
