"""Dead-code elimination.

    before:  %0 = exp %x ; %1 = tanh %x ; return %1
    after:   %1 = tanh %x ; return %1
"""
from __future__ import annotations

from graphc.ir import Graph


def dce(graph: Graph) -> Graph:
    """Drop every node none of whose outputs reaches a graph output."""
    live = {id(v) for v in graph.outputs}
    kept = []
    for node in reversed(graph.nodes):
        if any(id(v) in live for v in node.outputs):
            kept.append(node)
            live.update(id(v) for v in node.inputs)
    return Graph(graph.name, list(graph.inputs), kept[::-1], list(graph.outputs))
