"""The persistent compile cache with the Triton backend (graphc/compile_cache.py): a
hit loads the cold compile's module (source, constants, notes) on the device and gives
its outputs bit for bit."""
import os

import numpy as np
import pytest

pytest.importorskip("triton")
os.environ.setdefault("TRITON_INTERPRET", "1")
torch = pytest.importorskip("torch")

import graphc  # noqa: E402


@pytest.fixture(autouse=True)
def folder(monkeypatch, tmp_path):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("GRAPHC_CACHE", raising=False)


def layer(x, w, b):
    h = np.maximum(x @ w + b, 0.0)
    return np.sum(h, axis=1) * 0.5, h[:, ::2] - 1.0


def test_a_triton_hit_is_the_cold_compile():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((16, 8), np.float32), rng.standard_normal((8, 8), np.float32)
    b = np.linspace(-1, 1, 8, dtype=np.float32)
    cold = graphc.compile(layer, backend="triton").lower(x, w, b)
    hot = graphc.compile(layer, backend="triton").lower(x, w, b)
    assert (cold.cache, hot.cache) == ("miss", "hit")
    assert hot.source == cold.source
    assert hot.executable.kernels == cold.executable.kernels
    assert hot.fusion_report() == cold.fusion_report()  # the backend's notes too
    for got, want in zip(hot(x, w, b), cold(x, w, b)):
        np.testing.assert_array_equal(got, want, strict=True)
