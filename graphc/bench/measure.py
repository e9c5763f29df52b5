"""Measuring: interleaved timing, result comparison, bytes moved, copy bandwidth.

Shared by `graphc.benchmark` and the suite runner (`python -m graphc bench`).
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Sequence

import numpy as np

from graphc.frontend.pytree import flatten

# rtol per dtype for comparing against eager; the absolute tolerance is rtol times the
# largest magnitude in the expected array, since sums and matmuls accumulate in other
# orders. Integers and bools must match exactly.
RTOL = {"float16": 1e-2, "bfloat16": 2e-2, "float32": 1e-4, "float64": 1e-9}

MIN_SAMPLE_SECONDS = 2e-3  # a timed sample repeats a fast call until it lasts this long


def to_numpy(x: Any) -> np.ndarray:
    """A numpy array from a numpy, torch or jax value."""
    if hasattr(x, "detach"):  # torch.Tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def mismatch(got: Any, want: Any, rtol: float | None = None,
             tolerances: Sequence[Any] | None = None) -> str | None:
    """Why the pytree `got` differs from `want`, or None if they agree.

    Each float leaf is judged at RTOL of its dtype, or, where `tolerances` (one
    `graphc.check.Tolerance` or None per leaf, from the graph computed) gives one, at
    that tolerance's rtol: the precision the leaf is actually computed in. `rtol`
    overrides both.

    >>> mismatch((np.ones(2, np.float32), 1.0), (np.ones(2, np.float32), 1.0)) is None
    True
    >>> mismatch(np.zeros(2), np.ones(2))
    'output 0 (float64[2]): 2 of 2 elements differ, max abs error 1'
    """
    got_leaves, got_tree, _ = flatten(got)
    want_leaves, want_tree, paths = flatten(want)
    if len(got_leaves) != len(want_leaves):
        return f"{len(got_leaves)} outputs, eager gives {len(want_leaves)}"
    if got_tree != want_tree:
        return "the outputs are nested differently (tuples, lists, dicts) from eager's"
    for i, (g, w) in enumerate(zip(got_leaves, want_leaves)):
        g, w = to_numpy(g), to_numpy(w)
        name = f"output {paths[i] or i}" if len(want_leaves) > 1 else "output 0"
        if g.shape != w.shape:
            return f"{name}: shape {list(g.shape)}, eager gives {list(w.shape)}"
        if g.dtype != w.dtype:
            return f"{name}: dtype {g.dtype}, eager gives {w.dtype}"
        tol = tolerances[i] if tolerances is not None and i < len(tolerances) else None
        leaf_rtol = rtol if rtol is not None else \
            tol.rtol if tol is not None else RTOL.get(w.dtype.name, 0.0)
        why = _leaf_mismatch(g, w, leaf_rtol)
        if why:
            because = tol.describe(w.dtype.name) if tol is not None and rtol is None else ""
            because = f" (rtol {leaf_rtol:.3g}: {because})" if because else ""
            return f"{name} ({w.dtype}{list(w.shape)}): {why}{because}"
    return None


def _leaf_mismatch(g: np.ndarray, w: np.ndarray, rtol: float) -> str | None:
    if w.dtype.kind not in "fc":
        bad = int(np.count_nonzero(g != w))
        return f"{bad} of {w.size} elements differ" if bad else None
    with np.errstate(all="ignore"):
        g64, w64 = g.astype(np.float64), w.astype(np.float64)
        finite = np.isfinite(w64)
        scale = float(np.abs(w64[finite]).max()) if finite.any() else 0.0
        err = np.abs(g64 - w64)
        close = (err <= rtol * (np.abs(w64) + scale)) | (np.isnan(g64) & np.isnan(w64)) \
            | (g64 == w64)
    bad = int(close.size - np.count_nonzero(close))
    if not bad:
        return None
    max_err = float(np.nanmax(np.where(close, 0.0, err)))
    return f"{bad} of {close.size} elements differ, max abs error {max_err:.3g}"


def nbytes(tree: Any) -> int:
    """Bytes of the arrays in a pytree (Python numbers count nothing)."""
    leaves, _, _ = flatten(tree)
    return sum(to_numpy(x).nbytes for x in leaves if not isinstance(x, (int, float, bool)))


def copy_bandwidth(megabytes: int = 256, tries: int = 3) -> float:
    """Bytes per second that `np.copyto` moves (read + write), best of `tries`."""
    src = np.ones(megabytes * 2**20 // 4, np.float32)
    dst = np.empty_like(src)
    best = math.inf
    for _ in range(tries):
        start = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - start)
    return 2 * src.nbytes / best


def _sample(fn: Callable[[], Any], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def interleaved_medians(fns: Sequence[Callable[[], Any]], repeats: int = 10,
                        warmup: int = 2) -> list[float]:
    """Median seconds per call of each thunk, samples taken round-robin.

    After `warmup` calls of each, a fast thunk is repeated within one sample until the
    sample lasts about MIN_SAMPLE_SECONDS; then `repeats` rounds each time every thunk
    once, in turn, so that a noisy moment on the machine hits all of them alike.

    >>> a, b = interleaved_medians([lambda: None, lambda: sum(range(100))], repeats=3)
    >>> 0 < a < b
    True
    """
    for fn in fns:
        for _ in range(warmup):
            fn()
    numbers = [max(1, math.ceil(MIN_SAMPLE_SECONDS / max(_sample(fn, 1), 1e-9)))
               for fn in fns]
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(max(1, repeats)):
        for fn, number, times in zip(fns, numbers, samples):
            times.append(_sample(fn, number))
    return [float(np.median(times)) for times in samples]
