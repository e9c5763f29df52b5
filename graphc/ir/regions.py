"""What crosses each fusion group's boundary: the values a group reads from outside it
(graph inputs, constants, other groups' results) and the values it makes that anything
outside it reads (later groups, the graph's outputs).

The text IR prints every group as a region headed by exactly these lists, and the
parser checks a region's declared lists against them.

>>> import graphc, numpy as np
>>> f = graphc.compile(lambda x: np.exp(x) / np.sum(np.exp(x), axis=-1, keepdims=True))
>>> fused = f.lower(np.ones((2, 3), np.float32)).optimized
>>> [([v.name for v in b.inputs], [v.name for v in b.outputs])
...  for b in group_boundaries(fused)]
[(['x'], ['3'])]
"""
from __future__ import annotations

from typing import NamedTuple

from graphc.ir.types import Graph, Value


class Boundary(NamedTuple):
    """One group's crossing values: inputs in order of first read, outputs in order of
    definition."""

    inputs: tuple[Value, ...]
    outputs: tuple[Value, ...]


def group_boundaries(graph: Graph) -> list[Boundary]:
    """One Boundary per group of `graph.groups` (which must be set), in order."""
    if graph.groups is None:
        raise ValueError(f"graph {graph.name} has no fusion groups")
    group_of = {id(n): i for i, g in enumerate(graph.groups) for n in g.nodes}

    def home(v: Value) -> int | None:  # None: a graph input, outside every group
        return None if v.node is None else group_of.get(id(v.node))

    read_outside = {id(v) for v in graph.outputs}
    for node in graph.nodes:
        read_outside.update(id(v) for v in node.inputs if home(v) != group_of.get(id(node)))
    out = []
    for i, group in enumerate(graph.groups):
        inputs = {id(v): v for n in group.nodes for v in n.inputs if home(v) != i}
        outputs = [v for n in group.nodes for v in n.outputs if id(v) in read_outside]
        out.append(Boundary(tuple(inputs.values()), tuple(outputs)))
    return out
