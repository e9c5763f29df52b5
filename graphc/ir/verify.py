"""The IR verifier: SSA, topological order, and every node's types against its op's rule."""
from __future__ import annotations

from graphc.errors import GraphcError, VerifyError
from graphc.ir.types import Graph


def verify(graph: Graph) -> None:
    """Raise VerifyError naming the first node that breaks an invariant."""
    from graphc import ops

    defined: set[int] = set()
    names: set[str] = set()

    def define(value, where: str) -> None:
        if value.name in names:
            raise VerifyError(f"graph {graph.name}: %{value.name} defined twice ({where})")
        names.add(value.name)
        defined.add(id(value))

    for v in graph.inputs:
        if v.node is not None:
            raise VerifyError(f"graph {graph.name}: input %{v.name} has a producer node")
        define(v, "input")
    for i, node in enumerate(graph.nodes):
        where = f"node {i} ({node.op})"
        if node.op not in ops.OPS:
            raise VerifyError(f"graph {graph.name}: {where}: unknown primitive {node.op!r}")
        for v in node.inputs:
            if id(v) not in defined:
                raise VerifyError(f"graph {graph.name}: {where} reads %{v.name} before it "
                                  "is defined (not SSA or not topologically ordered)")
        try:
            expected = ops.infer_types(node.op, tuple(v.type for v in node.inputs), node.attrs)
        except GraphcError as exc:
            raise VerifyError(f"graph {graph.name}: {where}: its op rejects its inputs: "
                              f"{exc.message}") from None
        got = tuple(v.type for v in node.outputs)
        if got != expected:
            raise VerifyError(f"graph {graph.name}: {where}: outputs typed "
                              f"{', '.join(map(str, got))} but {node.op} gives "
                              f"{', '.join(map(str, expected))}")
        for v in node.outputs:
            if v.node is not node:
                raise VerifyError(f"graph {graph.name}: {where}: %{v.name} does not point "
                                  "back at its node")
            define(v, where)
    for v in graph.outputs:
        if id(v) not in defined:
            raise VerifyError(f"graph {graph.name}: output %{v.name} is never defined")
    if graph.groups is not None:
        grouped = [n for g in graph.groups for n in g.nodes]
        if len(grouped) != len(graph.nodes) or any(
                a is not b for a, b in zip(grouped, graph.nodes)):
            raise VerifyError(f"graph {graph.name}: the fusion groups do not list the "
                              "nodes exactly once, in order")
        if any(not g.nodes for g in graph.groups):
            raise VerifyError(f"graph {graph.name}: an empty fusion group")
