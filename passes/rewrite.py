"""Rebuilding a graph node by node: the one mechanism every rewriting pass shares.

Passes are pure, so a pass never edits the nodes or values of the graph it is given.
It walks the old nodes in order and, for each one, either copies it into the new graph
(`copy`), emits replacement nodes (`emit`, `const`, from the core's `NodeBuilder`,
which makes every node of every graph), or maps its output onto a value
that already exists (`bind`); `inputs_of` gives an old node's inputs as mapped so far.
Graph inputs are shared with the old graph, since nothing about them changes.

New values get fresh decimal names after the largest one in the graph, so names stay
unique (SSA) and the names of copied values stay stable from pass to pass.
"""
from __future__ import annotations

from typing import Sequence

from graphc.ir import Graph, Node, NodeBuilder, Value


class GraphBuilder(NodeBuilder):
    """The new graph under construction (a `NodeBuilder`, whose `emit` and `const`
    add new nodes), and the map from the old graph's values."""

    def __init__(self, old: Graph):
        super().__init__(old.name, old.inputs,
                         taken=(v.name for n in old.nodes for v in n.outputs))
        self.old = old
        self._map: dict[Value, Value] = {v: v for v in old.inputs}

    # ---- looking up -------------------------------------------------------------

    def inputs_of(self, node: Node) -> tuple[Value, ...]:
        """`node`'s inputs, mapped into the new graph."""
        return tuple(self._map[v] for v in node.inputs)

    def mapped(self, old: Value) -> Value:
        """What `old` maps to in the new graph."""
        return self._map[old]

    def bind(self, old: Value, new: Value) -> None:
        """From now on, readers of `old` read `new` (which must have its type)."""
        assert old.type == new.type, f"%{old.name}: {old.type} replaced by {new.type}"
        self._map[old] = new

    # ---- adding nodes -----------------------------------------------------------

    def copy(self, node: Node, inputs: Sequence[Value] | None = None) -> Node:
        """Add a copy of the old `node` reading `inputs` (default: its mapped inputs),
        with the same op, attrs, location and output names; bind its outputs."""
        new = super().copy(node, self.inputs_of(node) if inputs is None else inputs)
        for old_v, new_v in zip(node.outputs, new.outputs):
            self.bind(old_v, new_v)
        return new

    def finish(self) -> Graph:  # type: ignore[override]  # the outputs are the old ones
        """The new graph. Fusion groups are not carried over: these passes run before
        fusion, and a rewritten graph's old groups would no longer list its nodes."""
        return super().finish([self._map[v] for v in self.old.outputs])
