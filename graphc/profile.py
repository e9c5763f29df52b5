"""`graphc.profile`: where a compiled function's time goes, kernel by kernel.

The function is compiled with `Options(profile=True)`: the numpy backend's generated
code reads a clock around each fusion group's lines (a group run op by op included) and
adds the time to that group's slot. After warm-up calls the slots are reset and
`repeats` calls are timed; each kernel's row gives its time per call, the bytes it
reads and writes (its plan's inputs and outputs: a lower bound on its memory traffic),
the bandwidth that makes, and its share of the call. The clock costs about 0.1 us a
kernel, so a function of many tiny kernels reads a little slower than it runs.

>>> import graphc, numpy as np
>>> def f(x):
...     return np.tanh(x) @ x.T
>>> p = graphc.profile(f, np.ones((64, 64), np.float32), repeats=3)
>>> [r.kind for r in p.rows], 0.99 < sum(r.share for r in p.rows) < 1.01
(['elementwise', 'matmul'], True)
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from graphc.api import CompiledFunction, compile
from graphc.errors import ArgumentError


@dataclass
class KernelTime:
    """One kernel (fusion group) of a profiled call."""

    index: int  # the group's index, as in the fusion report and the compile report
    kind: str
    ops: str
    seconds: float  # per call
    bytes: int  # its inputs and outputs, per call
    share: float = 0.0  # of the kernels' total

    @property
    def gbytes_per_second(self) -> float:
        return self.bytes / self.seconds / 1e9 if self.seconds > 0 else 0.0


@dataclass
class ProfileResult:
    """What `graphc.profile` measured; `str()` prints the table, slowest first."""

    name: str
    calls: int
    call_seconds: float  # a whole call, per call (the kernels, and what runs between)
    rows: list[KernelTime] = field(default_factory=list)

    @property
    def kernel_seconds(self) -> float:
        return sum(r.seconds for r in self.rows)

    def __str__(self) -> str:
        lines = [f"{self.name}: {len(self.rows)} kernels, {self.calls} calls, "
                 f"{self.call_seconds * 1e3:.3f} ms a call "
                 f"({self.kernel_seconds * 1e3:.3f} ms in kernels)",
                 f"{'kernel':>7}  {'kind':<12} {'ms':>9} {'share':>6} {'MB':>8} "
                 f"{'GB/s':>7}  ops"]
        for r in sorted(self.rows, key=lambda r: -r.seconds):
            ops = r.ops if len(r.ops) <= 60 else r.ops[:57] + "..."
            lines.append(f"{'k' + str(r.index):>7}  {r.kind:<12} {r.seconds * 1e3:9.4f} "
                         f"{r.share:6.1%} {r.bytes / 1e6:8.3f} {r.gbytes_per_second:7.2f}"
                         f"  {ops}")
        return "\n".join(lines)


def profile(f: Callable, *args: Any, repeats: int = 20, warmup: int = 2) -> ProfileResult:
    """Time each kernel of `f` (a function, or a `graphc.compile`d one, whose options
    it keeps) on `args`: the numpy backend only.

    The compile report of the profiled signature (`Lowered.report`, or GRAPHC_DUMP's
    page, written again) shows the kernels' times as a bar chart.
    """
    if type(repeats) is not int or repeats < 1 or type(warmup) is not int or warmup < 0:
        raise ArgumentError(f"repeats={repeats!r}, warmup={warmup!r}",
                            hint="repeats is an int >= 1, warmup an int >= 0")
    base = f if isinstance(f, CompiledFunction) else None
    if base is not None and base.backend_name != "numpy":
        raise ArgumentError(f"graphc.profile times the numpy backend's kernels; this "
                            f"function compiles for backend={base.backend_name!r}",
                            hint="profile it compiled for the numpy backend")
    options = {**(base.options.as_dict() if base is not None else {}), "profile": True}
    compiled = compile(base.fn if base is not None else f, passes=getattr(base, "passes", None),
                       check=False, options=options)
    lowered = compiled.lower(*args)
    for _ in range(warmup):
        compiled(*args)
    slots = lowered.executable.fn.__globals__["_prof"]
    slots[:] = [0.0] * len(slots)
    start = time.perf_counter()
    for _ in range(repeats):
        compiled(*args)
    call = (time.perf_counter() - start) / repeats
    rows = _rows(lowered, [s / repeats for s in slots])
    total = sum(r.seconds for r in rows) or 1.0
    for r in rows:
        r.share = r.seconds / total
    result = ProfileResult(getattr(compiled.fn, "__name__", "fn"), repeats, call, rows)
    lowered.kernel_profile = rows
    from graphc.dump import rewrite_page
    rewrite_page(lowered)  # GRAPHC_DUMP's page, with the kernels' times now
    return result


def _rows(lowered, seconds: list[float]) -> list[KernelTime]:
    from graphc.passes.schedule import plan_kernels
    rows = []
    for plan in plan_kernels(lowered.optimized):
        group = plan.group
        if group.kind == "source" or plan.index >= len(seconds):
            continue
        moved = sum(v.type.nbytes for v in (*plan.inputs, *plan.outputs))
        rows.append(KernelTime(plan.index, group.kind, ", ".join(n.op for n in group.nodes),
                               seconds[plan.index], moved))
    return rows
