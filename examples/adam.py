"""The Adam update of 16,777,216 float32 parameters as one fused kernel.

    python examples/adam.py

Adam's update is a dozen elementwise operations over the parameters, the gradient
and the two moments. Run eagerly, numpy makes each operation one pass over memory and
writes a temporary array for each: a dozen passes over 64 MiB arrays. Compiled,
graphc fuses the whole update, the m, v and p chains together, into one kernel that
reads p, g, m, v once and writes the new p, m, v once. The example shows the kernel
count before and after fusion (`adam_update.lower(...).kernels`), minimises a simple
quadratic with the update for a few steps, compiled and eagerly (the same Python
function called on numpy arrays), checks that both reach the same parameters and
moments, and prints the time per update of each.
"""
from __future__ import annotations

import numpy as np

import graphc
from _common import check_close, check_curve, print_losses, print_times, seconds_per_call

LEARNING_RATE = 0.01
BETA1, BETA2, EPS = 0.9, 0.999, 1e-8
N_PARAMS = 16_777_216
STEPS = 20


@graphc.compile
def adam_update(p, g, m, v, bias_correction1, bias_correction2):
    """One Adam step: new parameters and moments from the gradient `g`."""
    m = BETA1 * m + (1.0 - BETA1) * g
    v = BETA2 * v + (1.0 - BETA2) * (g * g)
    m_hat = m / bias_correction1
    v_hat = v / bias_correction2
    p = p - LEARNING_RATE * m_hat / (np.sqrt(v_hat) + EPS)
    return p, m, v


def bias_corrections(t: int):
    """1 - beta**t for step t (counted from 1), computed on the host once per step as
    torch.optim.Adam does: they are two numbers, not arrays.

    They are passed as float32 scalars, not Python floats: a Python number is a
    constant of the compiled graph, so a new value at every step would mean a new
    trace at every step; a numpy scalar is an input. (Computed inside the compiled
    function from a traced step, they would be scalar operations that graphc's fusion
    currently runs as kernels of their own: 5 kernels instead of 1.)
    """
    return np.float32(1.0 - BETA1**t), np.float32(1.0 - BETA2**t)


def quadratic_loss_and_grad(p, target):
    """0.5 * mean((p - target)^2) and its gradient (times n, so that each parameter sees
    a gradient of order one): the problem the update minimises here."""
    diff = p - target
    return 0.5 * float(np.mean(diff * diff)), diff


def train(update, p, target, steps):
    m, v = np.zeros_like(p), np.zeros_like(p)
    losses = []
    for t in range(1, steps + 1):
        loss, g = quadratic_loss_and_grad(p, target)
        p, m, v = update(p, g, m, v, *bias_corrections(t))
        losses.append(loss)
    return (p, m, v), losses


def main(steps: int | None = None, n: int = N_PARAMS) -> dict:
    steps = STEPS if steps is None else steps
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(n, dtype=np.float32)
    target = rng.standard_normal(n, dtype=np.float32)
    g = rng.standard_normal(n, dtype=np.float32)
    m, v = np.zeros_like(p0), np.zeros_like(p0)

    lowered = adam_update.lower(p0, g, m, v, *bias_corrections(1))
    before, after = lowered.kernels
    print(lowered.fusion_report())
    if after != 1:
        raise AssertionError(f"the Adam update should fuse into one kernel, not {after}")

    compiled_state, losses = train(adam_update, p0, target, steps)
    # adam_update.fn is the undecorated Python function: plain numpy, eagerly.
    eager_state, eager_losses = train(adam_update.fn, p0, target, steps)
    print_losses({"loss (graphc)": losses, "loss (eager numpy)": eager_losses})
    # The fused kernel runs numpy's own float32 operations in the same order, so the
    # results agree to the bit here; 1e-5 leaves room for rewrites that round
    # differently (such as x / c -> x * (1/c) for a constant c).
    err = max(check_close(f"Adam {name} after {steps} steps", c, e, rtol=1e-5)
              for name, c, e in zip(("p", "m", "v"), compiled_state, eager_state))
    check_curve("loss curve", losses, eager_losses, rtol=1e-5)
    print(f"compiled and eager Adam agree (largest relative difference {err:.1e})")

    args = (p0, g, m, v, *bias_corrections(1))
    compiled = seconds_per_call(adam_update, *args)
    eager = seconds_per_call(adam_update.fn, *args)
    print_times(compiled, {"eager: the same function on numpy arrays": eager})
    return {"kernels": (before, after), "losses": losses, "eager_losses": eager_losses,
            "state": compiled_state, "eager_state": eager_state,
            "seconds_per_step": {"compiled": compiled, "eager": eager}}


if __name__ == "__main__":
    main()
