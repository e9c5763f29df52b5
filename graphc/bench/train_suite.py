"""The models suite: `python -m graphc bench --suite models` (WORKLOADS.md).

Per model (graphc/bench/models.py), the training step as a PyTorch user writes it
(zero_grad, forward, loss, backward, optimizer step) runs as torch eager,
`torch.compile` (Inductor, CPU), `graphc.compile(model)` and
`torch.compile(model, backend="graphc")`, each on its own copy of the same initial
model and the same batch. The first step of each is its compile time (reported
apart); then the steps are timed interleaved, one step of each implementation per
round, and the median of the rounds is reported. Before timing, the first step's loss
of every implementation is checked against eager's (float32: rtol 1e-3, the loss of
a step being one reduction over the batch of terms that agree to ~1e-6).
"""
from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

IMPLEMENTATIONS = ("torch eager", "torch.compile", "graphc", "graphc (dynamo)")
LOSS_RTOL = 1e-3


@dataclass
class ModelRow:
    name: str
    seconds: dict[str, float] = field(default_factory=dict)   # median step time
    compile_seconds: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)      # implementation -> why


def _runners(spec, model) -> dict[str, Callable]:
    import torch
    import graphc
    from graphc.bench.models import TrainStep
    runs = {"torch eager": None,
            "torch.compile": lambda m: torch.compile(m),
            "graphc": lambda m: graphc.compile(m),
            "graphc (dynamo)": lambda m: torch.compile(m, backend="graphc")}
    steps = {}
    for label, wrap in runs.items():
        m = copy.deepcopy(model)
        try:
            steps[label] = TrainStep(spec, m, None if wrap is None else wrap(m))
        except Exception as exc:  # a peer that cannot even wrap the model
            steps[label] = exc
    return steps


def run_models(names: list[str], quick: bool, repeats: int) -> list[ModelRow]:
    import torch
    from graphc.bench.models import MODELS
    rows = []
    for name in names:
        spec = MODELS[name]
        torch.manual_seed(0)
        model = spec.model(quick=quick)
        batch = spec.batch(torch.Generator().manual_seed(1), quick=quick)
        row = ModelRow(name)
        steps = _runners(spec, model)
        losses = {}
        for label, step in list(steps.items()):
            if isinstance(step, Exception):
                row.failed[label] = f"{type(step).__name__}: {step}"
                del steps[label]
                continue
            try:
                start = time.perf_counter()
                losses[label] = step(*batch)
                row.compile_seconds[label] = time.perf_counter() - start
            except Exception as exc:
                row.failed[label] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
                del steps[label]
        want = losses.get("torch eager")
        for label in list(steps):
            if want is not None and abs(losses[label] - want) > LOSS_RTOL * abs(want):
                row.failed[label] = f"first loss {losses[label]:.6g}, eager {want:.6g}"
                del steps[label]
        samples: dict[str, list[float]] = {label: [] for label in steps}
        for _ in range(repeats):
            for label, step in steps.items():
                start = time.perf_counter()
                step(*batch)
                samples[label].append(time.perf_counter() - start)
        row.seconds = {label: statistics.median(s) for label, s in samples.items()}
        rows.append(row)
    return rows


def format_models(rows: list[ModelRow]) -> str:
    """The table: ms per training step, and graphc's speed-up over each torch way."""
    head = f"{'model':<10}" + "".join(f"{label:>18}" for label in IMPLEMENTATIONS) + \
        f"{'graphc vs eager':>17}{'vs torch.compile':>18}"
    lines = [head]
    for row in rows:
        cells = []
        for label in IMPLEMENTATIONS:
            t = row.seconds.get(label)
            cells.append(f"{t * 1e3:>15.2f} ms" if t is not None else f"{'n/a':>18}")
        ours = row.seconds.get("graphc")
        ratios = [f"{row.seconds[peer] / ours:>16.2f}x" if ours and peer in row.seconds
                  else f"{'-':>17}" for peer in ("torch eager", "torch.compile")]
        lines.append(f"{row.name:<10}" + "".join(cells) + ratios[0] + " " + ratios[1])
    lines.append("")
    lines.append("compile (first step) s " + "  ".join(
        f"{row.name}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.compile_seconds.items())
        for row in rows))
    for row in rows:
        for label, why in row.failed.items():
            lines.append(f"{row.name} / {label}: n/a ({why})")
    return "\n".join(lines)
