"""Sizes meet symbols: a call's shapes bound to a graph's symbolic sizes, and a graph
with some symbols given values (what a trace's equality guards decide)."""
from __future__ import annotations

from graphc.ir.symbols import MIN_SIZE, Dim, Guard, Sym, replacements, substitute
from graphc.ir.types import Attrs, Graph, Node, TensorType, Value


def bind(shapes: list[tuple], actual: list[tuple[int, ...]]) -> tuple[dict[str, int], str | None]:
    """The size of each symbol in the types `shapes` that arrays of shapes `actual`
    give, and what does not fit (None when everything does): a rank or an int that
    differs, a symbol given two sizes or one below MIN_SIZE.

    >>> B = Sym.var("B")
    >>> bind([(B, 3), (B,)], [(5, 3), (5,)])
    ({'B': 5}, None)
    >>> bind([(B, 3), (B,)], [(5, 3), (4,)])[1]
    'input 1 axis 0: B is 5 from input 0, not 4'
    """
    sizes: dict[str, int] = {}
    where: dict[str, int] = {}
    for i, (dims, got) in enumerate(zip(shapes, actual)):
        if len(dims) != len(got):
            return sizes, f"input {i} has rank {len(got)}, not {len(dims)}"
        for k, (d, n) in enumerate(zip(dims, got)):
            if type(d) is int:
                if d != n:
                    return sizes, f"input {i} axis {k} is {n}, not {d}"
                continue
            name = d.name
            if name is None:
                continue  # a compound size: checked once every symbol has its size
            if name in sizes and sizes[name] != n:
                return sizes, f"input {i} axis {k}: {name} is {sizes[name]} from input " \
                              f"{where[name]}, not {n}"
            if n < MIN_SIZE:
                return sizes, f"input {i} axis {k}: {name} is {n}; sizes 0 and 1 are " \
                              "specialized"
            sizes[name], where[name] = n, i
    for i, (dims, got) in enumerate(zip(shapes, actual)):
        for k, (d, n) in enumerate(zip(dims, got)):
            if type(d) is Sym and d.name is None and d.evaluate(sizes) != n:
                return sizes, f"input {i} axis {k} is {n}, not {d} = {d.evaluate(sizes)}"
    return sizes, None


def specialize(value, sizes: dict[str, int]):
    """An attribute value (or shape) with each symbolic size replaced by its value."""
    if type(value) is Sym:
        return value.evaluate(sizes)
    if type(value) is tuple:
        return tuple(specialize(x, sizes) for x in value)
    return value


def _replaced(value, values: dict[str, Dim]):
    if type(value) is Sym:
        return substitute(value, values)
    if type(value) is tuple:
        return tuple(_replaced(x, values) for x in value)
    return value


def substitute_graph(graph: Graph, values: dict[str, Dim]) -> Graph:
    """A copy of `graph` whose types and attributes have the symbols `values` names
    replaced (values and nodes are new; the graph is otherwise the same)."""
    new: dict[int, Value] = {}

    def copy(v: Value) -> Value:
        t = TensorType(tuple(substitute(d, values) for d in v.type.shape), v.type.dtype)
        new[id(v)] = Value(v.name, t)
        return new[id(v)]

    out = Graph(graph.name, [copy(v) for v in graph.inputs])
    for node in graph.nodes:
        attrs = Attrs({k: _replaced(a, values) for k, a in node.attrs.items()})
        made = Node(node.op, tuple(new[id(v)] for v in node.inputs), attrs,
                    tuple(copy(v) for v in node.outputs), node.loc)
        for v in made.outputs:
            v.node = made
        out.nodes.append(made)
    out.outputs = [new[id(v)] for v in graph.outputs]
    guards = [Guard(substitute(g.expr, values), g.relation) for g in graph.guards]
    out.guards = tuple(g for g in guards if type(g.expr) is Sym)
    return out


def settle_in_place(graph: Graph, guards) -> None:
    """Give `graph` the guards a trace learned (`guards`): the equalities among them
    make their symbols one (or a number), in the graph's own values and nodes, which
    keep their identity (a caller holding values of it still holds the right ones);
    the rest become `graph.guards`."""
    graph.guards = tuple(g for g in guards if g.relation != "==")
    rename_in_place(graph, replacements(guards))


def rename_in_place(graph: Graph, values: dict[str, Dim]) -> None:
    """Replace the symbols `values` names (all at once) in `graph`'s own values, nodes
    and guards: a guard left about numbers alone is dropped."""
    for v in (*graph.inputs, *(v for n in graph.nodes for v in n.outputs)):
        v.type = TensorType(tuple(substitute(d, values) for d in v.type.shape), v.type.dtype)
    for node in graph.nodes:
        node.attrs = Attrs({k: _replaced(a, values) for k, a in node.attrs.items()})
    kept = [Guard(substitute(g.expr, values), g.relation) for g in graph.guards]
    graph.guards = tuple(g for g in kept if type(g.expr) is Sym)
