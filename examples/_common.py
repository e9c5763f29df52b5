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
