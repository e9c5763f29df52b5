"""Rebuilding a graph node by node: the one mechanism every rewriting pass shares.

Passes are pure, so a pass never edits the nodes or values of the graph it is given.
It walks the old nodes in order and, for each one, either copies it into the new graph
(`copy`), emits replacement nodes (`emit`, `const`), or maps its output onto a value
that already exists (`bind`); `inputs_of` gives an old node's inputs as mapped so far.
Graph inputs are shared with the old graph, since nothing about them changes.

New values get fresh decimal names after the largest one in the graph, so names stay
unique (SSA) and the names of copied values stay stable from pass to pass.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from graphc import ops
from graphc.errors import SourceLoc
from graphc.ir import Attrs, Graph, Node, Value


class GraphBuilder:
    """The new graph under construction, and the map from the old graph's values."""

    def __init__(self, old: Graph):
        self.old = old
        self.nodes: list[Node] = []
        self._map: dict[Value, Value] = {v: v for v in old.inputs}
        self._taken = {v.name for v in old.inputs}
        self._taken.update(v.name for n in old.nodes for v in n.outputs)
        self._counter = 1 + max((int(n) for n in self._taken if n.isdecimal()), default=-1)

    # ---- looking up -------------------------------------------------------------

    def inputs_of(self, node: Node) -> tuple[Value, ...]:
        """`node`'s inputs, mapped into the new graph."""
        return tuple(self._map[v] for v in node.inputs)

    def mapped(self, old: Value) -> Value:
        """What `old` maps to in the new graph."""
        return self._map[old]

    def fresh_input_name(self, base: str) -> str:
        """An unused name for a new graph input (for example `ct.0`)."""
        name, n = base, 1
        while name in self._taken:
            name, n = f"{base}_{n}", n + 1
        self._taken.add(name)
        return name

    def bind(self, old: Value, new: Value) -> None:
        """From now on, readers of `old` read `new` (which must have its type)."""
        assert old.type == new.type, f"%{old.name}: {old.type} replaced by {new.type}"
        self._map[old] = new

    # ---- adding nodes -----------------------------------------------------------

    def _fresh_name(self) -> str:
        while str(self._counter) in self._taken:
            self._counter += 1
        name = str(self._counter)
        self._taken.add(name)
        return name

    def copy(self, node: Node, inputs: Sequence[Value] | None = None) -> Node:
        """Add a copy of the old `node` reading `inputs` (default: its mapped inputs),
        with the same op, attrs, location and output names; bind its outputs."""
        inputs = self.inputs_of(node) if inputs is None else tuple(inputs)
        new = Node(node.op, inputs, node.attrs, loc=node.loc)
        new.outputs = tuple(Value(v.name, v.type, new) for v in node.outputs)
        self.nodes.append(new)
        for old_v, new_v in zip(node.outputs, new.outputs):
            self.bind(old_v, new_v)
        return new

    def emit(self, op: str, inputs: Sequence[Value], attrs: dict[str, Any] | Attrs,
             loc: SourceLoc | None, name: str | None = None) -> Value:
        """Add a new single-output node (types from the op's rule); its output."""
        frozen = attrs if isinstance(attrs, Attrs) else Attrs(attrs)
        (out_type,) = ops.infer_types(op, tuple(v.type for v in inputs), frozen)
        node = Node(op, tuple(inputs), frozen, loc=loc)
        node.outputs = (Value(name or self._fresh_name(), out_type, node),)
        self.nodes.append(node)
        return node.output

    def const(self, array: np.ndarray, loc: SourceLoc | None,
              name: str | None = None) -> Value:
        return self.emit("const", (), {"value": np.asarray(array)}, loc, name)

    def finish(self) -> Graph:
        """The new graph. Fusion groups are not carried over: these passes run before
        fusion, and a rewritten graph's old groups would no longer list its nodes."""
        return Graph(self.old.name, list(self.old.inputs), self.nodes,
                     [self._map[v] for v in self.old.outputs])
