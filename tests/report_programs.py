"""The functions whose compile reports the report tests look at (tests/test_report.py
as text, tests/test_report_browser.py in Chromium)."""
from __future__ import annotations

import numpy as np

import graphc


def softmax(x):
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def mlp_loss(w1, w2, x, y):
    h = np.maximum(x @ w1, 0.0)
    return np.mean((h @ w2 - y) ** 2)


def mlp_step(w1, w2, x, y):
    """The mlp training step: the loss, its gradients, one SGD update."""
    value, (g1, g2) = graphc.value_and_grad(mlp_loss, argnums=(0, 1))(w1, w2, x, y)
    return value, w1 - 0.1 * g1, w2 - 0.1 * g2


def mlp_args():
    rng = np.random.default_rng(0)
    f32 = np.float32
    return (rng.standard_normal((8, 16), f32), rng.standard_normal((16, 4), f32),
            rng.standard_normal((32, 8), f32), rng.standard_normal((32, 4), f32))
