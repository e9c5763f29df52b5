"""The suite's workloads as a JAX user writes them: jax.numpy under `jax.jit`.

Imported only when jax is installed. Gradients come from `jax.value_and_grad`.
`JAX` maps each workload name to its function; arguments arrive as jax arrays
(static Python values unchanged, and marked static for `jax.jit`).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np


def gelu(x):
    return jax.nn.gelu(x, approximate=True)


def softmax(x):
    return jax.nn.softmax(x, axis=-1)


def log_softmax(x):
    return jax.nn.log_softmax(x, axis=-1)


def logsumexp0(x):
    return jax.nn.logsumexp(x, axis=0)


def layernorm(x, weight, bias):
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.var(x, axis=-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + 1e-5) * weight + bias


def chain(x):
    return jnp.exp(jnp.tanh(x * 1.5 + 0.5) * 0.8 + x) * 0.5 - 1.0


def mlp(x, w1, b1, w2, b2):
    return jax.nn.gelu(x @ w1 + b1, approximate=True) @ w2 + b2


def _mse(weights, x, target):
    return jnp.mean((mlp(x, *weights) - target) ** 2)


def mlp_train(x, target, w1, b1, w2, b2):
    loss, grads = jax.value_and_grad(_mse)((w1, b1, w2, b2), x, target)
    return loss, grads


def attention(q, k, v):
    scores = jnp.einsum("bqd,bkd->bqk", q, k) / math.sqrt(q.shape[-1])
    return jax.nn.softmax(scores, axis=-1) @ v


def adam(p, g, m, v, t):
    m = 0.9 * m + 0.1 * g
    v = 0.999 * v + 0.001 * (g * g)
    m_hat = m / (1.0 - 0.9**t)
    v_hat = v / (1.0 - 0.999**t)
    return p - 1e-3 * m_hat / (jnp.sqrt(v_hat) + 1e-8), m, v


def _polyfit_loss(coefs, x, y):
    a, b, c, d = coefs
    return jnp.sum((a + b * x + c * x**2 + d * x**3 - y) ** 2)


def polyfit_step(x, y, a, b, c, d):
    loss, grads = jax.value_and_grad(_polyfit_loss)((a, b, c, d), x, y)
    return loss, grads


def tiny(x):
    return x + 1.0


JAX = {f.__name__: f for f in [gelu, softmax, log_softmax, logsumexp0, layernorm, chain,
                               mlp, mlp_train, attention, adam, polyfit_step, tiny]}


def to_jax(args: tuple) -> tuple:
    """numpy arrays and scalars -> jax arrays on the default device; others as they are."""
    return tuple(jnp.asarray(a) if isinstance(a, (np.ndarray, np.generic)) else a
                 for a in args)


def jit(fn, args: tuple):
    """`jax.jit` with the non-array arguments static; calls block until the result is ready."""
    static = tuple(i for i, a in enumerate(args) if not isinstance(a, (np.ndarray, np.generic)))
    jitted = jax.jit(fn, static_argnums=static)
    return lambda *a: jax.block_until_ready(jitted(*a))


def warm_up(fn) -> None:
    """Start XLA once, on a trivial function."""
    jax.block_until_ready(jax.jit(fn)(jnp.ones(4)))


def setup() -> str:
    return jax.__version__
