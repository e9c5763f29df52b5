"""The suite's workloads, each written as a user writes it in plain numpy (float32).

A `Workload` holds the numpy function (run eagerly as the baseline and compiled by
graphc), a maker of its arguments at full or `--quick` size, and whether it is
memory-bound (then the report shows the memory floor). Constants are Python floats
so that numpy 2 keeps float32; static values (Adam's step) are Python ints.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from graphc.transforms import value_and_grad

F32 = np.float32


# --- the numpy functions --------------------------------------------------------------

def gelu(x):
    """tanh-approximation GELU."""
    return 0.5 * x * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x**3)))


def softmax(x):
    """softmax over the last axis, with the usual max subtraction."""
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def log_softmax(x):
    """log-softmax over the last axis: x - max - log(sum(exp(x - max)))."""
    shifted = x - np.max(x, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def logsumexp0(x):
    """logsumexp over axis 0 (a reduction across rows, not along them)."""
    m = np.max(x, axis=0)
    return m + np.log(np.sum(np.exp(x - m), axis=0))


def layernorm(x, weight, bias):
    """layer norm over the last axis, then scale and shift."""
    mean = np.mean(x, axis=-1, keepdims=True)
    var = np.mean((x - mean) ** 2, axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-5) * weight + bias


def chain(x):
    """8 elementwise ops: mul, add, tanh, mul, add, exp, mul, sub."""
    return np.exp(np.tanh(x * 1.5 + 0.5) * 0.8 + x) * 0.5 - 1.0


def mlp(x, w1, b1, w2, b2):
    """two linear layers with GELU between."""
    return gelu(x @ w1 + b1) @ w2 + b2


def mlp_train(x, target, w1, b1, w2, b2):
    """mlp forward, mean-squared loss, and a hand-written backward.

    Returns the loss and the gradients of w1, b1, w2, b2.
    """
    h = x @ w1 + b1
    inner = 0.7978845608 * (h + 0.044715 * h**3)
    t = np.tanh(inner)
    a = 0.5 * h * (1.0 + t)
    y = a @ w2 + b2
    diff = y - target
    loss = np.mean(diff**2)
    dy = diff * (2.0 / diff.size)
    dw2 = a.T @ dy
    db2 = np.sum(dy, axis=0)
    da = dy @ w2.T
    dgelu = 0.5 * (1.0 + t) + 0.5 * h * (1.0 - t * t) * 0.7978845608 * (1.0 + 0.134145 * h**2)
    dh = da * dgelu
    dw1 = x.T @ dh
    db1 = np.sum(dh, axis=0)
    return loss, (dw1, db1, dw2, db2)


def attention(q, k, v):
    """single-head scaled dot-product attention over a batch."""
    scores = q @ k.transpose(0, 2, 1) * (1.0 / math.sqrt(q.shape[-1]))
    return softmax(scores) @ v


def adam(p, g, m, v, t):
    """one Adam update (lr 1e-3, betas 0.9 and 0.999); the step `t` is a Python int."""
    m = 0.9 * m + 0.1 * g
    v = 0.999 * v + 0.001 * (g * g)
    m_hat = m / (1.0 - 0.9**t)
    v_hat = v / (1.0 - 0.999**t)
    p = p - 1e-3 * m_hat / (np.sqrt(v_hat) + 1e-8)
    return p, m, v


def polyfit_step(x, y, a, b, c, d):
    """the polyfit tutorial's step: loss of a cubic fit and its four gradients."""
    y_pred = a + b * x + c * x**2 + d * x**3
    loss = np.sum((y_pred - y) ** 2)
    grad_y_pred = 2.0 * (y_pred - y)
    grads = (np.sum(grad_y_pred), np.sum(grad_y_pred * x),
             np.sum(grad_y_pred * x**2), np.sum(grad_y_pred * x**3))
    return loss, grads


def mlp_loss(x, target, w1, b1, w2, b2):
    """mlp_train's loss alone: graphc derives its backward (`graphc.value_and_grad`)."""
    h = x @ w1 + b1
    a = 0.5 * h * (1.0 + np.tanh(0.7978845608 * (h + 0.044715 * h**3)))
    return np.mean((a @ w2 + b2 - target) ** 2)


def polyfit_loss(x, y, a, b, c, d):
    """polyfit_step's loss alone: graphc derives the four gradients."""
    return np.sum((a + b * x + c * x**2 + d * x**3 - y) ** 2)


def tiny(x):
    """one elementwise op: what is left is the per-call overhead."""
    return x + 1.0


# --- the matmuls alone: the floor of the matmul workloads ---------------------------------

def mlp_matmuls(x, w1, b1, w2, b2):
    """mlp's two matmuls, nothing else."""
    return (x @ w1) @ w2


def mlp_train_matmuls(x, target, w1, b1, w2, b2):
    """mlp_train's five matmuls (two forward, three backward), nothing else."""
    h = x @ w1
    y = h @ w2
    return h.T @ y, x.T @ (y @ w2.T)


# --- arguments ------------------------------------------------------------------------

def _normal(rng: np.random.Generator, *shape: int, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape, dtype=F32) * F32(scale)).astype(F32)


def _args_vector(n_full: int, n_quick: int):
    return lambda rng, quick: (_normal(rng, n_quick if quick else n_full),)


def _args_rows(full: tuple[int, int], quick_: tuple[int, int], scale: float = 1.0):
    return lambda rng, quick: (_normal(rng, *(quick_ if quick else full), scale=scale),)


# Logits late in training: std 30, not 1. exp(x - max) then underflows in most lanes,
# which is where a math library's slow path for special lanes would show.
PEAKED = 30.0


def _args_layernorm(rng, quick):
    rows, cols = (64, 128) if quick else (4096, 1024)
    return (_normal(rng, rows, cols), 1.0 + _normal(rng, cols, scale=0.1),
            _normal(rng, cols, scale=0.1))


def _mlp_shapes(quick: bool) -> tuple[int, int, int]:
    return (16, 32, 64) if quick else (512, 1024, 4096)


def _args_mlp(rng, quick):
    n, d, h = _mlp_shapes(quick)
    return (_normal(rng, n, d), _normal(rng, d, h, scale=d**-0.5), _normal(rng, h, scale=0.1),
            _normal(rng, h, d, scale=h**-0.5), _normal(rng, d, scale=0.1))


def _args_mlp_train(rng, quick):
    x, w1, b1, w2, b2 = _args_mlp(rng, quick)
    return x, _normal(rng, *x.shape), w1, b1, w2, b2


def _args_attention(rng, quick):
    shape = (2, 16, 8) if quick else (8, 512, 64)
    return tuple(_normal(rng, *shape) for _ in range(3))


def _args_adam(rng, quick):
    n = 4096 if quick else 16_777_216
    p, g = _normal(rng, n), _normal(rng, n, scale=0.01)
    m, v = _normal(rng, n, scale=0.001), np.abs(_normal(rng, n, scale=1e-4))
    return p, g, m, v, 10


def _args_polyfit(rng, quick):
    x = np.linspace(-math.pi, math.pi, 200 if quick else 2000, dtype=F32)
    coefs = tuple(F32(c) for c in rng.standard_normal(4))
    return (x, np.sin(x)) + coefs


# --- the suite ------------------------------------------------------------------------

@dataclass(frozen=True)
class Workload:
    """One benchmark: a numpy function and how to make its arguments."""

    name: str
    what: str
    fn: Callable[..., Any]
    make_args: Callable[[np.random.Generator, bool], tuple]
    memory_bound: bool = False
    # what graphc compiles, if not `fn`: for a training step, the loss alone under
    # graphc.value_and_grad (graphc derives the backward the others write by hand)
    graphc_fn: Callable[..., Any] | None = None
    # for matmul workloads: the same matmuls alone, timed with the others as the
    # floor that fusion cannot go below (BLAS does that work however it is called)
    matmuls: Callable[..., Any] | None = None
    # positional arguments a caller may hand over (graphc.compile's donate_argnums):
    # the suite also times graphc with them donated, a state updated in place
    donate: tuple[int, ...] = ()

    def args(self, quick: bool = False, seed: int = 0) -> tuple:
        """Fresh arguments (float32 arrays and static Python values)."""
        return self.make_args(np.random.default_rng(seed), quick)


def _with_peaked(name: str, what: str, fn: Callable) -> tuple[Workload, Workload]:
    """A (4096, 1024) row workload on logits of std 1, and as NAME_std30 on std 30."""
    return (Workload(name, what, fn, _args_rows((4096, 1024), (64, 128)), memory_bound=True),
            Workload(f"{name}_std30", f"{what}, logits of std 30 (exp underflows)", fn,
                     _args_rows((4096, 1024), (64, 128), PEAKED), memory_bound=True))


WORKLOADS: dict[str, Workload] = {w.name: w for w in [
    Workload("gelu", "tanh-approximation GELU", gelu,
             _args_vector(4_194_304, 4096), memory_bound=True),
    *_with_peaked("softmax", "softmax over the last axis", softmax),
    *_with_peaked("log_softmax", "log-softmax over the last axis", log_softmax),
    *_with_peaked("logsumexp0", "logsumexp over axis 0", logsumexp0),
    Workload("layernorm", "layer norm over the last axis, weight and bias", layernorm,
             _args_layernorm, memory_bound=True),
    Workload("chain", "8 elementwise ops in a chain", chain,
             _args_vector(4_194_304, 4096), memory_bound=True),
    Workload("mlp", "gelu(x @ W1 + b1) @ W2 + b2", mlp, _args_mlp, matmuls=mlp_matmuls),
    Workload("mlp_train", "mlp forward, MSE loss, hand-written backward", mlp_train,
             _args_mlp_train, graphc_fn=value_and_grad(mlp_loss, argnums=(2, 3, 4, 5)),
             matmuls=mlp_train_matmuls),
    Workload("attention", "softmax(q k^T / sqrt(d)) v, single head", attention,
             _args_attention),
    Workload("adam", "one Adam update of parameters and moments", adam, _args_adam,
             memory_bound=True, donate=(0, 2, 3)),
    Workload("polyfit_step", "polyfit loss and its four gradients", polyfit_step,
             _args_polyfit, graphc_fn=value_and_grad(polyfit_loss, argnums=(2, 3, 4, 5))),
    Workload("tiny", "one elementwise op on 16 elements (per-call overhead)", tiny,
             _args_vector(16, 16)),
]}


def describe_args(args: tuple) -> str:
    """Shapes of the array arguments, runs of equal shapes counted.

    >>> describe_args((np.ones((2, 3)), np.ones(3), np.ones(3), 10))
    '(2, 3), (3) x2'
    """
    shapes = [str(np.shape(a)).replace(",)", ")") if np.ndim(a) else "scalar"
              for a in args if isinstance(a, (np.ndarray, np.generic))]
    runs = [(shape, len(list(group))) for shape, group in itertools.groupby(shapes)]
    return ", ".join(shape if n == 1 else f"{shape} x{n}" for shape, n in runs)
