"""The suite's results as a table, as JSON, and as a bar chart.

>>> from graphc.bench.runner import ImplResult, Row
>>> row = Row("tiny", "x + 1.0", "(16)", False, 128, None, (1, 1),
...           {"numpy": ImplResult("ok", 1e-6), "graphc": ImplResult("ok", 2e-6, 1e-3)})
>>> print(format_table([row]))  # doctest: +NORMALIZE_WHITESPACE
workload  numpy ms  graphc ms  vs numpy  vs best peer  kernels  floor ms
tiny         0.001      0.002     0.50x             -   1 -> 1         -
>>> print(format_compile_table([row]))
compile ms  graphc
tiny          1.00
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import platform
from typing import Any, Sequence

import numpy as np

from graphc.bench.runner import OUR_IMPLS, PEER_IMPLS, Row


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1e3
    return f"{ms:.3f}" if ms < 1 else f"{ms:.2f}" if ms < 100 else f"{ms:.1f}"


def _times(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def impl_columns(rows: Sequence[Row]) -> list[str]:
    """numpy, graphc, then the peers that appear in any row, in a fixed order."""
    peers = [p for impls in PEER_IMPLS.values() for p in impls
             if any(p in row.impls for row in rows)]
    ours = [g for g in OUR_IMPLS if any(g in row.impls for row in rows)]
    return ["numpy"] + ours + peers


def _cell(row: Row, impl: str) -> str:
    r = row.impls.get(impl)
    if r is None or r.status == "n/a":
        return "n/a"
    return "FAIL" if r.status == "FAIL" else _ms(r.seconds)


def format_table(rows: Sequence[Row]) -> str:
    """Milliseconds per implementation, graphc's speedups, kernels, memory floor."""
    impls = impl_columns(rows)
    head = (["workload"] + [f"{i} ms" for i in impls]
            + ["vs numpy", "vs best peer", "kernels", "floor ms"])
    body = []
    for row in rows:
        kernels = f"{row.kernels[0]} -> {row.kernels[1]}" if row.kernels else "-"
        body.append([row.name] + [_cell(row, i) for i in impls]
                    + [_times(row.speedup("numpy")), _times(row.speedup(row.best_peer)),
                       kernels, _ms(row.floor_seconds)])
    return _columns(head, body)


def format_compile_table(rows: Sequence[Row]) -> str:
    """Compile milliseconds of graphc (a fresh lowering) and of the compiling peers."""
    # (the variants compile nothing of their own, or as graphc does)
    impls = [i for i in impl_columns(rows)
             if i not in ("numpy", "torch", "torch best", "graphc donated")]
    body = []
    for row in rows:
        cells = []
        for impl in impls:
            r = row.impls.get(impl)
            cells.append(_ms(r.compile_seconds) if r and r.compile_seconds is not None
                         else "n/a" if r is None or r.status == "n/a" else "-")
        body.append([row.name] + cells)
    return _columns(["compile ms"] + impls, body)


def _columns(head: list[str], body: list[list[str]]) -> str:
    """Left-aligned first column, the others right-aligned, two spaces between."""
    widths = [max(len(line[c]) for line in [head] + body) for c in range(len(head))]
    return "\n".join("  ".join(cell.ljust(w) if c == 0 else cell.rjust(w)
                               for c, (cell, w) in enumerate(zip(line, widths))).rstrip()
                     for line in [head] + body)


def format_notes(rows: Sequence[Row]) -> str:
    """The reason for every n/a and FAIL, once each, naming implementations and workloads."""
    reasons: dict[tuple[str, str], tuple[list[str], list[str]]] = {}
    for row in rows:
        for impl, r in row.impls.items():
            if r.status != "ok":
                impls, names = reasons.setdefault((r.status, r.reason), ([], []))
                if impl not in impls:
                    impls.append(impl)
                if row.name not in names:
                    names.append(row.name)
    lines = []
    for (status, reason), (impls, names) in reasons.items():
        where = "all workloads" if len(names) == len(rows) > 1 else ", ".join(names)
        lines.append(f"{', '.join(impls)} {status}: {reason} [{where}]")
    return "\n".join(lines)


LEGEND = ("vs numpy, vs best peer: graphc's speedup, its faster form (above 1: graphc is "
          "faster); graphc donated:\n       compiled with the workload's state donated "
          "(adam: p, m, v updated in place); torch best: torch's\n       own fastest form "
          "(adam: torch.optim.Adam(fused=True), in place); kernels: before -> after "
          "fusion;\nfloor: bytes moved (inputs read, outputs written) over "
          "the copy bandwidth, for memory-bound workloads;\n       the workload's matmuls "
          "alone in numpy's BLAS, timed with the others, for mlp and mlp_train")


def machine(bandwidth: float) -> dict[str, Any]:
    """What the numbers depend on: CPU, cores, library versions, copy bandwidth."""
    info: dict[str, Any] = {"platform": platform.platform(),
                            "processor": platform.processor() or platform.machine(),
                            "cores": len(os.sched_getaffinity(0))
                            if hasattr(os, "sched_getaffinity") else os.cpu_count(),
                            "python": platform.python_version(), "numpy": np.__version__,
                            "copy_bandwidth_gb_s": bandwidth / 1e9}
    for lib in ("torch", "jax"):  # versions without importing them
        try:
            info[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            pass
    return info


def write_json(path: str, rows: Sequence[Row], config: dict[str, Any],
               bandwidth: float) -> None:
    data = {"machine": machine(bandwidth), "config": config,
            "workloads": [row.to_dict() for row in rows]}
    with open(path, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")


def plot(path: str, rows: Sequence[Row]) -> None:
    """Bars of each implementation's speedup over eager numpy, one group a workload
    (eager numpy itself is the line at 1)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    impls = [i for i in impl_columns(rows)[1:] if any(row.seconds(i) for row in rows)]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(rows) + 2), 4.5))
    width = 0.8 / len(impls)
    for k, impl in enumerate(impls):
        base = [row.seconds("numpy") for row in rows]
        mine = [row.seconds(impl) for row in rows]
        heights = [b / m if b and m else 0.0 for b, m in zip(base, mine)]
        ax.bar([i + (k - (len(impls) - 1) / 2) * width for i in range(len(rows))], heights,
               width, label=impl)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(rows)), [row.name for row in rows], rotation=30, ha="right")
    ax.set_ylabel("speedup over eager numpy (log scale)")
    ax.set_title("graphc bench: speedup over eager numpy (missing bar: n/a or FAIL)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
