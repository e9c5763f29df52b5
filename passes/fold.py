"""Constant folding through the ops' numpy reference implementations.

    before:  %0 = const {value=2.0} ; %1 = const {value=3.0} ; %2 = mul %0, %1
             %3 = add %x, %2 ; return %3
    after:   %0 = const {value=2.0} ; %1 = const {value=3.0} ; %2 = const {value=6.0}
             %3 = add %x, %2 ; return %3

A node whose inputs are all known (const nodes, and small iotas) is evaluated with its
op's `impl`, the same code the reference interpreter runs, so folding cannot change a
result. Only results of at most `limit` elements are folded: a broadcast_to of a scalar
to a million elements stays a broadcast instead of becoming a 4 MB literal in the graph
(and in every dump). The consts left without readers are dropped later by dce.
"""
from __future__ import annotations

import numpy as np

from graphc import dtypes, ops
from graphc.ir import Graph, Node, TensorType, Value
from graphc.passes.rewrite import GraphBuilder

FOLD_LIMIT = 4096  # elements: the largest result folded into a const


def fold(graph: Graph, limit: int = FOLD_LIMIT) -> Graph:
    """Replace each node computable at compile time, with a small result, by a const."""
    b = GraphBuilder(graph)
    known: dict[Value, np.ndarray] = {}  # new-graph values with a compile-time array
    for node in graph.nodes:
        inputs = b.inputs_of(node)
        foldable = (bool(inputs) and all(v in known for v in inputs)
                    and all(_small(v.type, limit) for v in node.outputs))
        results = _evaluate(node, [known[v] for v in inputs]) if foldable else None
        if results is None:
            new = b.copy(node, inputs)
            if node.op == "const":
                known[new.output] = node.attrs["value"].array
            elif node.op == "iota" and _small(new.output.type, limit):
                # an iota is cheaper than a literal, so it stays; readers may fold
                known[new.output] = ops.OPS["iota"].impl(**node.attrs)
            continue
        for old, array in zip(node.outputs, results):
            new_value = b.const(array, node.loc, name=old.name)
            b.bind(old, new_value)
            known[new_value] = new_value.node.attrs["value"].array
    return b.finish()


def _small(t: TensorType, limit: int) -> bool:
    """Whether a value of type t is known at compile time to have at most `limit`
    elements (a symbolic size is known only per call: never folded)."""
    return type(t.size) is int and t.size <= limit


def _evaluate(node: Node, arrays: list[np.ndarray]) -> list[np.ndarray] | None:
    """`node`'s outputs computed now, or None where that must wait for run time."""
    try:
        with np.errstate(all="ignore"):  # inf/nan fold as the interpreter makes them
            results = ops.OPS[node.op].impl(*arrays, **node.attrs)
        results = [np.asarray(r) for r in (results if len(node.outputs) > 1 else (results,))]
        types = [TensorType(r.shape, dtypes.canonical(r.dtype)) for r in results]
    except Exception:  # noqa: BLE001  e.g. a gather out of range: the error belongs
        return None    # to the call, at run time, not to compilation
    if types != [v.type for v in node.outputs]:
        return None  # a reference that disagrees with its own shape rule: keep the node
    return results
