"""Common-subexpression elimination.

    before:  %0 = sum %x {axes=(1,), keepdims=true} ; %1 = const {value=8.0}
             %2 = div %0, %1 ; %3 = sum %x {axes=(1,), keepdims=true}
             %4 = div %3, %1 ; %5 = sub %2, %4 ; return %5
    after:   %0 = sum %x {axes=(1,), keepdims=true} ; %1 = const {value=8.0}
             %2 = div %0, %1 ; %5 = sub %2, %2 ; return %5

Every primitive is a pure function of its inputs and attributes, so two nodes with
the same op, the same input values and equal attributes compute the same thing; the
later one is dropped and its readers read the earlier one. Consts with equal values
(same dtype, shape and bytes) merge the same way. One forward walk suffices: inputs are
mapped before a node is looked up, so chains of duplicates collapse together.
"""
from __future__ import annotations

from typing import Any, Hashable

from graphc.ir import ArrayLiteral, Graph, Node, Value
from graphc.passes.rewrite import GraphBuilder


def cse(graph: Graph) -> Graph:
    """Merge nodes that compute the same thing; the first of them is kept."""
    b = GraphBuilder(graph)
    seen: dict[tuple[str, tuple[Value, ...], Hashable], Node] = {}
    for node in graph.nodes:
        inputs = b.inputs_of(node)
        key = (node.op, inputs, _exact(tuple(node.attrs.items())))
        first = seen.get(key)
        if first is None:
            seen[key] = b.copy(node, inputs)
        else:
            for old, new in zip(node.outputs, first.outputs):
                b.bind(old, new)
    return b.finish()


def _exact(v: Any) -> Hashable:
    """A key equal only for attribute values that mean the same: Python's == says
    0 == 0.0 == False and 0.0 == -0.0, which could merge a pad by 0.0 with one by -0.0."""
    if isinstance(v, tuple):
        return tuple(_exact(x) for x in v)
    if isinstance(v, float):
        return ("float", v.hex())  # tells -0.0 from 0.0; every nan is 'nan'
    if isinstance(v, ArrayLiteral):
        return v  # compares dtype, shape and bytes
    return (type(v).__name__, v)
