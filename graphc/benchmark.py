"""`graphc.benchmark`: a compiled function side by side with its own eager self.

The suite of standard workloads against torch and jax lives in `graphc.bench` and
runs as `python -m graphc bench`; this is the same measurement for the user's own
function and arguments.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from graphc.api import CompiledFunction, compile
from graphc.bench.measure import interleaved_medians, mismatch
from graphc.errors import MismatchError


@dataclass
class BenchmarkResult:
    """What `graphc.benchmark` measured; `str()` prints it as a small table.

    Times are seconds: medians of interleaved calls after warm-up for `eager_seconds`
    (the undecorated Python function) and `compiled_seconds`; `compile_seconds` is one
    fresh lowering (trace, passes, codegen, split in `stage_seconds`).
    """

    name: str
    eager_seconds: float
    compiled_seconds: float
    compile_seconds: float
    kernels_before: int
    kernels_after: int
    repeats: int
    warmup: int
    stage_seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def speedup(self) -> float:
        """Eager time over compiled time (above 1: the compiled function is faster)."""
        return self.eager_seconds / self.compiled_seconds

    def to_dict(self) -> dict[str, Any]:
        """Plain values only (JSON-ready), the speedup included."""
        return {**asdict(self), "speedup": self.speedup}

    def __str__(self) -> str:
        head = ("eager ms", "compiled ms", "speedup", "kernels before", "kernels after",
                "compile ms")
        row = (f"{self.eager_seconds * 1e3:.3f}", f"{self.compiled_seconds * 1e3:.3f}",
               f"{self.speedup:.2f}x", str(self.kernels_before), str(self.kernels_after),
               f"{self.compile_seconds * 1e3:.1f}")
        widths = [max(len(h), len(r)) for h, r in zip(head, row)]
        lines = [f"{self.name}: median of {self.repeats} interleaved calls after "
                 f"{self.warmup} warm-up calls",
                 "  ".join(h.rjust(w) for h, w in zip(head, widths)),
                 "  ".join(r.rjust(w) for r, w in zip(row, widths))]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def benchmark(f: CompiledFunction | Callable[..., Any], *args: Any, repeats: int = 10,
              warmup: int = 2, rtol: float | None = None) -> BenchmarkResult:
    """Time a compiled function against its eager self on these arguments.

    `f` is a `graphc.compile`d function (a plain Python function is compiled first).
    The compiled result is checked against eager over the whole result pytree, within
    a per-dtype relative tolerance (float32: 1e-4, of each element and of the array's
    largest magnitude; `rtol` overrides it); a difference raises `graphc.MismatchError`.
    Compile time is measured apart, on a fresh lowering (this empties `f`'s cache).
    Then both are warmed up and called in turn, eager then compiled, `repeats` times;
    the result holds the medians.

    >>> import graphc, numpy as np
    >>> @graphc.compile
    ... def gelu(x):
    ...     return 0.5 * x * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x**3)))
    >>> r = graphc.benchmark(gelu, np.ones(64, np.float32), repeats=3)
    >>> r.kernels_before, r.speedup > 0
    (8, True)
    >>> print(graphc.benchmark(gelu, np.ones(2**20, np.float32)))  # doctest: +SKIP
    gelu: median of 10 interleaved calls after 2 warm-up calls
    eager ms  compiled ms  speedup  kernels before  kernels after  compile ms
      66.504        1.501   44.32x               8              1         3.6
    """
    compiled = f if isinstance(f, CompiledFunction) else compile(f)
    name = getattr(compiled.fn, "__name__", "fn")

    compiled.cache_clear()
    lowered = compiled.lower(*args)
    # trace + passes + codegen as measured inside; timing lower() from outside would
    # also count one-time imports (networkx) on a process's first compile
    compile_seconds = lowered.compile_seconds

    why = mismatch(compiled(*args), compiled.fn(*args), rtol)
    if why is not None:
        raise MismatchError(f"{name}: the compiled result differs from eager: {why}",
                            hint="compile with check=True to compare each call against "
                                 "the reference interpreter; a difference is a bug in "
                                 "graphc, please report it")

    eager_seconds, compiled_seconds = interleaved_medians(
        [lambda: compiled.fn(*args), lambda: compiled(*args)], repeats, warmup)
    before, after = lowered.kernels
    notes = []
    if compiled.check or (compiled.check is None and os.environ.get("GRAPHC_CHECK") == "1"):
        notes.append("check mode is on: compiled times include the reference interpreter")
    return BenchmarkResult(name, eager_seconds, compiled_seconds, compile_seconds, before,
                           after, repeats, warmup, dict(lowered.stage_seconds), notes)
