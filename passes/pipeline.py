"""The pass pipeline: a named list of passes, with the verifier between them.

`run(graph, passes)` returns the final graph and every stage (`{"traced": g,
"dce": g1, ...}`) with the time each pass took, so that `f.lower(...)` and
`GRAPHC_DUMP` can show the IR after each pass.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from graphc.ir import Graph
from passes.cse import cse
from passes.dce import dce
from passes.fold import fold
from passes.simplify import simplify
from passes.fusion import fuse

Pass = Callable[[Graph], Graph]

DEFAULT_PIPELINE: list[tuple[str, Pass]] = [
    ("simplify", simplify),
    ("cse", cse),
    ("fold", fold),
    ("dce", dce),
    ("fusion", fuse),
]


@dataclass
class Stage:
    name: str
    graph: Graph
    seconds: float


def run(graph: Graph, pipeline: list[tuple[str, Pass]] | None = None,
        verify: bool = True) -> list[Stage]:
    """Run the passes in order; the first stage is the input graph ("traced")."""
    if verify:
        graph.verify()
    stages = [Stage("traced", graph, 0.0)]
    for name, fn in DEFAULT_PIPELINE if pipeline is None else pipeline:
        start = time.perf_counter()
        graph = fn(graph)
        seconds = time.perf_counter() - start
        if verify:
            graph.verify()
        stages.append(Stage(name, graph, seconds))
    return stages
