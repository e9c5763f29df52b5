"""The suite's workloads as a PyTorch user writes them: torch ops on torch tensors.

Imported only when torch is installed. Gradients come from torch's own autodiff
(`torch.func.grad_and_value`), as a torch user would get them. `TORCH` maps each
workload name to its function; arguments arrive as CPU tensors (static Python values
unchanged) and results are compared with eager numpy's.
"""
from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F


def gelu(x):
    return F.gelu(x, approximate="tanh")


def softmax(x):
    return torch.softmax(x, dim=-1)


def log_softmax(x):
    return torch.log_softmax(x, dim=-1)


def logsumexp0(x):
    return torch.logsumexp(x, dim=0)


def layernorm(x, weight, bias):
    return F.layer_norm(x, x.shape[-1:], weight, bias, eps=1e-5)


def chain(x):
    return torch.exp(torch.tanh(x * 1.5 + 0.5) * 0.8 + x) * 0.5 - 1.0


def mlp(x, w1, b1, w2, b2):
    return F.gelu(x @ w1 + b1, approximate="tanh") @ w2 + b2


def _mse(w1, b1, w2, b2, x, target):
    return F.mse_loss(mlp(x, w1, b1, w2, b2), target)


def mlp_train(x, target, w1, b1, w2, b2):
    grads, loss = torch.func.grad_and_value(_mse, argnums=(0, 1, 2, 3))(w1, b1, w2, b2, x,
                                                                         target)
    return loss, grads


def attention(q, k, v):
    return F.scaled_dot_product_attention(q, k, v)


def adam(p, g, m, v, t):
    m = torch.lerp(g, m, 0.9)  # 0.9 * m + 0.1 * g
    v = 0.999 * v + 0.001 * (g * g)
    step = 1e-3 / (1.0 - 0.9**t)
    denom = (v / (1.0 - 0.999**t)).sqrt() + 1e-8
    return torch.addcdiv(p, m, denom, value=-step), m, v


def _polyfit_loss(a, b, c, d, x, y):
    return ((a + b * x + c * x**2 + d * x**3 - y) ** 2).sum()


def polyfit_step(x, y, a, b, c, d):
    grads, loss = torch.func.grad_and_value(_polyfit_loss, argnums=(0, 1, 2, 3))(a, b, c, d,
                                                                                 x, y)
    return loss, grads


def tiny(x):
    return x + 1.0


TORCH = {f.__name__: f for f in [gelu, softmax, log_softmax, logsumexp0, layernorm, chain,
                                 mlp, mlp_train, attention, adam, polyfit_step, tiny]}


def _fused_adam(p, g, m, v, t):
    """torch.optim.Adam(fused=True) on copies of the state, at step t: a thunk whose
    every call is one more step, in place (its step counter advancing from t)."""
    param = torch.nn.Parameter(p.clone())
    param.grad = g.clone()
    opt = torch.optim.Adam([param], lr=1e-3, betas=(0.9, 0.999), eps=1e-8, fused=True)
    opt.state[param] = {"step": torch.tensor(float(t - 1)), "exp_avg": m.clone(),
                        "exp_avg_sq": v.clone()}

    def step():
        opt.step()
        state = opt.state[param]
        return param.detach(), state["exp_avg"], state["exp_avg_sq"]
    return step


# workload -> a maker of a thunk running torch's fastest form of it ("torch best")
BEST = {"adam": _fused_adam}


def to_torch(args: tuple) -> tuple:
    """numpy arrays and scalars -> CPU tensors (sharing memory); other values as they are."""
    return tuple(torch.from_numpy(np.asarray(a)) if isinstance(a, (np.ndarray, np.generic))
                 else a for a in args)


def setup() -> str:
    """Use every core this process may run on; returns torch's version."""
    torch.set_num_threads(_cores())
    return torch.__version__


def warm_up(fn) -> None:
    """Start dynamo and inductor once, on a trivial function."""
    torch.compile(fn)(torch.ones(4))


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1

