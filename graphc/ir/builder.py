"""Building a graph node by node: the one place where nodes are made.

The numpy tracer, the rewriting passes, the fuzzer (and the torch frontend) all add
nodes through a `NodeBuilder`. It runs the op's shape/dtype rule
(`graphc.ops.infer_types`), freezes the attributes, attaches the source location,
names the outputs and keeps the nodes in the order they were added, which is a
topological order because a node can only read values that exist already.

Fresh names are decimal (`%0`, `%1`, ...), counting up from past the largest decimal
name already taken, and skipping any name in use, so a graph stays SSA and the values a
pass copies keep their names.

>>> from graphc.ir import NodeBuilder, TensorType
>>> b = NodeBuilder("f")
>>> x = b.input("x", TensorType((3,), "float32"))
>>> y = b.emit("exp", [x])
>>> print(b.finish([b.emit("mul", [y, x])]))
graph f(%x: f32[3]) -> (f32[3]) {
  %0: f32[3] = exp %x
  %1: f32[3] = mul %0, %x
  return %1
}
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from graphc import ops
from graphc.errors import GraphcError, SourceLoc
from graphc.ir.types import Attrs, Graph, Node, TensorType, Value


class NodeBuilder:
    """The inputs and nodes of a graph under construction.

    `inputs` are the graph's inputs so far (`inputs=` starts with these, shared with
    another graph: nothing about an input changes when a graph is rebuilt); `taken`
    names values that exist elsewhere and must not be reused (a pass rebuilding a
    graph passes the old graph's names, so that fresh names never collide with copies).
    """

    def __init__(self, name: str, inputs: Iterable[Value] = (), taken: Iterable[str] = ()):
        self.name = name
        self.inputs: list[Value] = list(inputs)
        self.nodes: list[Node] = []
        # Names given from outside (taken, inputs, copies, `names=`). Fresh names are
        # not added: the counter stays past every decimal name given, so a fresh name
        # is free by construction, and tracing pays no set insert per value.
        self._given: set[str] = set()
        self._counter = 0
        self._take(taken)
        self._take(v.name for v in self.inputs)

    # ---- names and inputs -------------------------------------------------------

    def _take(self, names: Iterable[str]) -> None:
        for name in names:
            self._given.add(name)
            if name.isdecimal() and int(name) >= self._counter:
                self._counter = int(name) + 1

    def _is_taken(self, name: str) -> bool:
        return name in self._given or (name.isdecimal() and int(name) < self._counter)

    def fresh_name(self) -> str:
        """The next unused decimal name."""
        self._counter += 1
        return str(self._counter - 1)

    def unique_name(self, base: str) -> str:
        """`base`, or `base_1`, `base_2`, ... when it is taken (for new inputs)."""
        name, n = base, 1
        while self._is_taken(name):
            name, n = f"{base}_{n}", n + 1
        self._take((name,))
        return name

    def input(self, name: str, ttype: TensorType) -> Value:
        """A new graph input named `name` (the caller keeps input names unique)."""
        value = Value(name, ttype)
        self._take((name,))
        self.inputs.append(value)
        return value

    # ---- nodes ------------------------------------------------------------------

    def add(self, op: str, inputs: Sequence[Value], attrs: Mapping[str, Any] | None = None,
            loc: SourceLoc | None = None, names: Sequence[str] | None = None,
            admit: Callable[[tuple[TensorType, ...]], bool] | None = None) -> Node | None:
        """Add `op` on `inputs`; the new node (its `outputs` typed by the op's rule,
        named `names` if given: the caller vouches that they are free, as a pass
        that replaces a value under its old name does).

        A rule's GraphcError is re-pointed at `loc`. `admit`, when given, sees the
        output types first; a node it refuses is not added (None comes back, and no
        name is used up), which is how the fuzzer bounds the sizes it makes.
        """
        inputs = tuple(inputs)
        frozen = attrs if isinstance(attrs, Attrs) else Attrs(attrs)
        try:
            out_types = ops.infer_types(op, tuple([v.type for v in inputs]), frozen)
        except GraphcError as exc:
            raise exc.with_loc(loc) from None
        if admit is not None and not admit(out_types):
            return None
        node = Node(op, inputs, frozen, loc=loc)
        if names is None:  # fresh_name, inlined: this is the tracer's hot path
            first = self._counter
            self._counter = first + len(out_types)
            node.outputs = tuple([Value(str(first + i), t, node)
                                  for i, t in enumerate(out_types)])
        else:
            self._take(names)
            node.outputs = tuple([Value(n, t, node)
                                  for n, t in zip(names, out_types, strict=True)])
        self.nodes.append(node)
        return node

    def emit(self, op: str, inputs: Sequence[Value], attrs: Mapping[str, Any] | None = None,
             loc: SourceLoc | None = None, name: str | None = None) -> Value:
        """Add a single-output node; its output (named `name` if given: the caller
        vouches that the name is free)."""
        node = self.add(op, inputs, attrs, loc, None if name is None else (name,))
        return node.output

    def const(self, array: np.ndarray, loc: SourceLoc | None = None,
              name: str | None = None) -> Value:
        """A const node holding `array` (copied and frozen)."""
        return self.emit("const", (), {"value": np.asarray(array)}, loc, name)

    def copy(self, node: Node, inputs: Sequence[Value]) -> Node:
        """Add a copy of `node` (of another graph) reading `inputs`, with its op,
        attrs, location, output names and types. The rule is not rerun: `inputs` must
        have the types of `node.inputs`."""
        new = Node(node.op, tuple(inputs), node.attrs, loc=node.loc)
        new.outputs = tuple(Value(v.name, v.type, new) for v in node.outputs)
        self._take(v.name for v in node.outputs)
        self.nodes.append(new)
        return new

    def finish(self, outputs: Sequence[Value]) -> Graph:
        """The graph of the inputs and nodes so far, returning `outputs`."""
        return Graph(self.name, self.inputs, self.nodes, list(outputs))
