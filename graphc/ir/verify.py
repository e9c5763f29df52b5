"""The IR verifier: SSA, topological order, every value's type, every node's attributes
against its op's schema and its types against its op's rule."""
from __future__ import annotations

import math

from graphc import dtypes
from graphc.errors import GraphcError, VerifyError
from graphc.ir.symbols import ShapeEnv, Sym, shape_symbols
from graphc.ir.types import Graph, Group, Node, TensorType, Value

_INT64_MAX = 2**63 - 1
# the kinds of fusion group a backend renders (graphc.ir.types.Group says what each is)
GROUP_KINDS = frozenset({"elementwise", "reduction", "matmul", "scalar", "reduce_all",
                         "single", "source"})


def verify(graph: Graph) -> None:
    """Raise VerifyError naming the first node that breaks an invariant; where the
    error is about one node (or fusion group), the error's `node` is that one.

    >>> import graphc, numpy as np
    >>> g = graphc.trace(lambda x: np.sum(x, axis=0), np.ones((2, 3), np.float32))
    >>> g.nodes[0].attrs = graphc.ir.Attrs({"axes": (0,), "keepdims": "yes"})
    >>> try:
    ...     g.verify()
    ... except graphc.VerifyError as e:
    ...     print(e.message)
    graph lambda: node 0 (sum): attribute keepdims='yes': expected a bool
    """
    with ShapeEnv.assuming(graph.guards).tracing():
        _verify(graph)
    bound = input_symbols(graph)
    for g in graph.guards:
        if not g.expr.symbols <= bound or type(g.expr) is not Sym:
            raise VerifyError(f"graph {graph.name}: the guard {g} names sizes that no "
                              "input's dimension gives")


def _verify(graph: Graph) -> None:
    from graphc import ops

    defined: set[int] = set()
    names: set[str] = set()

    def define(value, where: str) -> None:
        if value.name in names:
            raise VerifyError(f"graph {graph.name}: %{value.name} defined twice ({where})")
        names.add(value.name)
        defined.add(id(value))

    for v in graph.inputs:
        _check_type(graph, v, "input", None)
        if v.node is not None:
            raise VerifyError(f"graph {graph.name}: input %{v.name} has a producer node")
        define(v, "input")
    bound = input_symbols(graph)
    for i, node in enumerate(graph.nodes):
        where = f"node {i} ({node.op})"
        if node.op not in ops.OPS:
            raise _error(f"graph {graph.name}: {where}: unknown primitive {node.op!r}", node)
        for v in node.inputs:
            if id(v) not in defined:
                raise _error(f"graph {graph.name}: {where} reads %{v.name} before it "
                             "is defined (not SSA or not topologically ordered)", node)
        in_types = tuple(v.type for v in node.inputs)
        try:
            ops.check_attrs(node.op, in_types, node.attrs)
        except GraphcError as exc:
            # the op's name starts the message: say it once
            text = exc.message.removeprefix(f"{node.op}: ")
            raise _error(f"graph {graph.name}: {where}: {text}", node, exc.hint) from None
        try:
            expected = ops.infer_types(node.op, in_types, node.attrs)
        except GraphcError as exc:
            raise _error(f"graph {graph.name}: {where}: its op rejects its inputs: "
                         f"{exc.message}", node) from None
        for v in node.outputs:
            _check_type(graph, v, where, node)
        _check_bound(graph, node, where, bound)
        got = tuple(v.type for v in node.outputs)
        if got != expected:
            raise _error(f"graph {graph.name}: {where}: outputs typed "
                         f"{', '.join(map(str, got))} but {node.op} gives "
                         f"{', '.join(map(str, expected))}", node)
        for v in node.outputs:
            if v.node is not node:
                raise _error(f"graph {graph.name}: {where}: %{v.name} does not point "
                             "back at its node", node)
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
        for i, g in enumerate(graph.groups):
            if g.kind not in GROUP_KINDS:
                raise _error(f"graph {graph.name}: group {i} is of kind {g.kind!r}, not one "
                             f"of {', '.join(sorted(GROUP_KINDS))}", g)


def _error(message: str, node: Node | Group | None, hint: str | None = None) -> VerifyError:
    err = VerifyError(message, hint=hint)
    err.node = node  # the parser names the line that node (or group) was read from
    return err


def input_symbols(graph: Graph) -> frozenset[str]:
    """The symbols a call can bind: those that are a whole dimension of an input."""
    return frozenset(d.name for v in graph.inputs for d in v.type.shape
                     if type(d) is Sym and d.name is not None)


def _check_bound(graph: Graph, node: Node, where: str, bound: frozenset[str]) -> None:
    """Every symbol a node's types and attributes name is one an input's shape binds."""
    used = shape_symbols(tuple(d for v in node.outputs for d in v.type.shape))
    for value in node.attrs.values():
        for d in (value if type(value) is tuple else (value,)):
            for x in (d if type(d) is tuple else (d,)):
                if type(x) is Sym:
                    used |= x.symbols
    if used - bound:
        raise _error(f"graph {graph.name}: {where}: the sizes {sorted(used - bound)} are "
                     "no input's dimension, so no call could give them a value", node)


def _check_type(graph: Graph, v: Value, where: str, node: Node | None) -> None:
    """A value's type: a known dtype and dims (non-negative ints or symbolic sizes)
    whose product fits int64."""
    t = v.type
    ok = type(t) is TensorType and t.dtype in dtypes.DTYPES and all(
        (type(d) is int and 0 <= d <= _INT64_MAX) or type(d) is Sym for d in t.shape)
    size = math.prod(t.shape) if ok else 0
    if not ok or (type(size) is int and size > _INT64_MAX):
        raise _error(f"graph {graph.name}: {where}: %{v.name} has type {t!r}: a type is a "
                     "known dtype and non-negative dims whose product fits in int64", node)
