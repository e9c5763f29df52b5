"""What the examples share: timing a step, printing a loss curve, checking results.

Not an example itself; each example imports it (`python examples/NAME.py` puts this
folder on the import path).
"""
from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np


def seconds_per_call(fn: Callable, *args: Any, repeats: int = 5) -> float:
    """Median wall time of `fn(*args)` over `repeats` calls, after one warm-up call.

    The warm-up call keeps compilation (on a compiled function's first call) and
    first-touch page faults out of the measurement.
    """
    fn(*args)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def print_losses(curves: dict[str, Sequence[float]], lines: int = 6) -> None:
    """Print about `lines` rows of one or more loss curves, side by side, by step."""
    names = list(curves)
    steps = len(curves[names[0]])
    shown = sorted(set(np.linspace(0, steps - 1, min(lines, steps)).round().astype(int)))
    print("step  " + "  ".join(f"{name:>16}" for name in names))
    for i in shown:
        print(f"{i:4d}  " + "  ".join(f"{curves[name][i]:16.8g}" for name in names))


def print_times(compiled: float, eager: dict[str, float]) -> None:
    """Time per step compiled, and of each eager way of running the step (named)."""
    print(f"time per step: graphc compiled {compiled * 1e3:9.3f} ms")
    for what, seconds in eager.items():
        print(f"               {what:<48} {seconds * 1e3:9.3f} ms "
              f"({seconds / compiled:.3g}x the compiled time)")


def max_rel_error(got: Any, want: Any) -> float:
    """Largest |got - want| relative to the largest |want| (so zeros in want are fine)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    scale = max(float(np.max(np.abs(want), initial=0.0)), 1e-30)
    return float(np.max(np.abs(got - want), initial=0.0)) / scale


def check_close(what: str, got: Any, want: Any, rtol: float) -> float:
    """Raise AssertionError unless `got` matches `want` within `rtol` (see max_rel_error).

    An explicit raise rather than `assert`, so that the check also runs under
    `python -O`. Returns the error, for printing.
    """
    err = max_rel_error(got, want)
    if not err <= rtol:
        raise AssertionError(f"{what}: relative error {err:.3g} exceeds {rtol:g}")
    return err


def check_curve(what: str, got: Sequence[float], want: Sequence[float], rtol: float) -> float:
    """Like check_close for a loss curve, but each step's loss relative to itself:
    a curve falls by orders of magnitude, and its end matters as much as its start."""
    errors = [max_rel_error(g, w) for g, w in zip(got, want, strict=True)]
    worst = int(np.argmax(errors))
    if not errors[worst] <= rtol:
        raise AssertionError(f"{what}: step {worst}: {got[worst]!r} against {want[worst]!r}"
                             f" (relative error {errors[worst]:.3g} exceeds {rtol:g})")
    return errors[worst]


# --- Adam, as torch.optim.Adam computes it (bert.py and lstm.py) ----------------------

LEARNING_RATE, BETA1, BETA2, EPS = 1e-3, 0.9, 0.999, 1e-8


def adam(params: dict, grads: dict, m: dict, v: dict, bias_correction1, bias_correction2):
    """Adam on every parameter of a dict: new parameters and moments (traced inside a
    compiled training step, so that the update is fused with the rest)."""
    new_params, new_m, new_v = {}, {}, {}
    for k in params:
        new_m[k] = BETA1 * m[k] + (1.0 - BETA1) * grads[k]
        new_v[k] = BETA2 * v[k] + (1.0 - BETA2) * (grads[k] * grads[k])
        m_hat = new_m[k] / bias_correction1
        v_hat = new_v[k] / bias_correction2
        new_params[k] = params[k] - LEARNING_RATE * m_hat / (np.sqrt(v_hat) + EPS)
    return new_params, new_m, new_v


def bias_corrections(t: int):
    """1 - beta**t for step t (from 1), on the host as torch.optim.Adam computes them;
    numpy float32 scalars, which are inputs of the compiled step (a Python float would
    be a constant of it, and a new one each step would mean a new trace)."""
    return np.float32(1.0 - BETA1**t), np.float32(1.0 - BETA2**t)


def train_with_adam(step: Callable, params: dict, batch: tuple, steps: int):
    """`steps` calls of a compiled `step(params, m, v, *batch, bias_correction1,
    bias_correction2) -> (loss, grads, params, m, v)` from zero moments: the final
    parameters, the losses, and the first step's gradients (for the check)."""
    m = {k: np.zeros_like(p) for k, p in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    losses, first_grads = [], None
    for t in range(1, steps + 1):
        loss, grads, params, m, v = step(params, m, v, *batch, *bias_corrections(t))
        losses.append(float(loss))
        if t == 1:
            first_grads = grads
    return params, losses, first_grads


def reference_run(reference, steps: int):
    """`steps` steps of a torch reference (with `.step() -> loss` and `.grads()`): its
    losses, and its gradients at the first step (to set beside ours)."""
    losses = [reference.step()]
    first_grads = reference.grads()
    losses += [reference.step() for _ in range(steps - 1)]
    return losses, first_grads


def check_against_reference(grads: dict, ref_grads: dict, losses, ref_losses,
                            rtol: float = 1e-4) -> None:
    """Raise unless the first step's gradients and the loss curve match the torch
    reference's within `rtol` (relative to each array's largest entry); print how
    close they are."""
    grad_err = max(check_close(f"gradient of {k}", grads[k], ref_grads[k], rtol=rtol)
                   for k in ref_grads)
    loss_err = check_curve("loss curve against torch", losses, ref_losses, rtol=rtol)
    print(f"same gradients as torch at the first step (largest relative difference "
          f"{grad_err:.1e}), same losses (largest relative difference {loss_err:.1e})")
