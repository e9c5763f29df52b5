"""Check mode: compare a compiled call against the reference interpreter.

`graphc.compile(fn, check=True)` or GRAPHC_CHECK=1 runs every call twice, once
through the generated code and once through `graphc.interpret` on the graph as
traced, and raises MismatchError when an output differs beyond its dtype's tolerance.
"""
from __future__ import annotations

import numpy as np

from graphc import dtypes
from graphc.errors import MismatchError

# (rtol, atol) per dtype; integers and bools must match exactly
TOLERANCES = {
    "float16": (1e-2, 1e-3),
    "bfloat16": (2e-2, 1e-2),
    "float32": (1e-4, 1e-5),
    "float64": (1e-9, 1e-12),
}


def compare(name: str, got: list, want: list) -> None:
    """Raise MismatchError naming the first output of `name` that differs."""
    for i, (g, w) in enumerate(zip(got, want)):
        g, w = np.asarray(g), np.asarray(w)
        dt = dtypes.canonical(w.dtype)
        if g.shape != w.shape or dtypes.canonical(g.dtype) != dt:
            raise MismatchError(f"{name}: output {i} is {g.dtype}{list(g.shape)}, the "
                                f"reference gives {w.dtype}{list(w.shape)}")
        rtol, atol = TOLERANCES.get(dt, (0.0, 0.0))
        if dt in TOLERANCES:
            close = np.isclose(g, w, rtol=rtol, atol=atol, equal_nan=True)
        else:
            close = g == w
        if not np.all(close):
            bad = int(np.size(close) - np.count_nonzero(close))
            with np.errstate(all="ignore"):
                err = np.abs(g.astype(np.float64) - w.astype(np.float64))
                finite = np.isfinite(err)
                max_abs = float(err[finite].max()) if finite.any() else float("nan")
                rel = err / np.maximum(np.abs(w.astype(np.float64)), 1e-300)
                max_rel = float(rel[finite].max()) if finite.any() else float("nan")
            raise MismatchError(
                f"{name}: output {i} ({dt}{list(w.shape)}) differs from the reference "
                f"interpreter in {bad} of {np.size(close)} elements: max abs error "
                f"{max_abs:.3g}, max rel error {max_rel:.3g} (tolerance rtol={rtol}, "
                f"atol={atol})")
