"""Fusion: partition the graph into groups, each to become one kernel.

    before:  %0 = mul %x, %x ; %1 = tanh %0 ; %2 = sum %1 {axes=(1,)} ; %3 = div %1, %2
    after:   # group 0: reduction
             %0 = mul %x, %x ; %1 = tanh %0 ; %2 = sum %1 {axes=(1,)} ; %3 = div %1, %2

Groups:
* "elementwise": a chain of elementwise ops over one iteration space (the shape of
  every node in it; inputs may broadcast into it);
* "reduction": reductions (not over axis 0) with their elementwise prologue and
  epilogue; every value in it keeps axis 0, so the group runs block by block over
  rows (softmax and layer norm are one group each);
* "matmul": a matmul with its elementwise epilogue (bias, activation, residual);
* "scalar": a chain of 0-d ops; when one kernel alone reads it, it moves into that
  kernel (which recomputes the few scalars per block) instead of running on its own;
* "reduce_all": a reduction across axis 0 (a loss's sum, a bias gradient) with the
  elementwise ops on its result (the mean's division); it runs unblocked;
* "single": any other op on its own (shape ops, gather, convolution, pooling);
* "source": the constants, which cost nothing at run time.

A node joins a producer's group when the kinds and shapes allow it and merging
creates no cycle between groups (checked with networkx on the group graph). Each
group records, for every producer group it did not merge with, why not; that is what
`Lowered.fusion_report()` prints.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from graphc.ir import Graph, Group, Node
from graphc.ops import OPS, Kind


@dataclass
class _Draft:
    kind: str
    nodes: list[Node]
    # elementwise/matmul: the shape of every node; reduction: its full input shape
    space: tuple[int, ...] | None
    notes: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int | None:
        return self.space[0] if self.space else None


def _kind(node: Node) -> Kind:
    return OPS[node.op].kind


def _why_not(group: _Draft, node: Node) -> str | None:
    """None if `node` may join `group` (shapes and kinds allowing), else the reason."""
    kind, shape = _kind(node), node.outputs[0].type.shape
    if group.kind in ("single", "source"):
        return f"{group.nodes[0].op} runs as a kernel of its own"
    if group.kind == "scalar":
        if kind is Kind.ELEMENTWISE and shape == ():
            return None
        return "a chain of scalar (0-d) ops ends here; it joins its consumer's kernel " \
               "if that is its only one"
    if group.kind == "reduce_all":
        # a reduction across axis 0 cannot be cut into row blocks; what may follow it
        # in the same kernel is elementwise work on its (small) result
        out = group.nodes[-1].outputs[0].type.shape
        if kind is Kind.ELEMENTWISE and shape == out:
            return None
        return f"only elementwise ops on the reduced {list(out)} join a full reduction"
    if kind is Kind.MATMUL:
        return "a matmul starts a kernel of its own (no prologue fusion)"
    if kind not in (Kind.ELEMENTWISE, Kind.REDUCTION):
        return f"{node.op} is a {kind.value} op"
    if group.kind in ("elementwise", "matmul") and kind is Kind.ELEMENTWISE:
        if shape != group.space:
            return f"its shape {list(shape)} differs from the group's {list(group.space)}"
        return None
    # a reduction group (or one becoming one): row-blocked over axis 0
    if group.kind == "matmul":
        return "a reduction does not join a matmul epilogue"
    if not shape or shape[0] != group.rows or group.rows is None:
        return f"its shape {list(shape)} does not keep the group's rows ({group.rows})"
    if kind is Kind.REDUCTION and _reduces_axis0(node):
        return "it reduces over axis 0, across the group's rows"
    members = {id(n) for n in group.nodes}
    for v in node.inputs:
        # numpy aligns shapes from the right: a lower-rank value from inside the group
        # would meet the rows on another axis, and rows cannot be cut block by block
        if v.node is not None and id(v.node) in members and 0 < v.type.ndim != len(shape):
            return (f"it combines %{v.name} {list(v.type.shape)} with rank-{len(shape)} "
                    "values, which misaligns the rows")
    return None


def _reduces_axis0(node: Node) -> bool:
    axes = node.attrs["axes"] if "axes" in node.attrs else (node.attrs["axis"],)
    return 0 in axes


def _siblings(g: _Draft, h: _Draft) -> bool:
    """Whether elementwise group `h` may merge into `g`: the same iteration space, and
    for a matmul group, h must not feed the matmul (that would be a prologue, which a
    matmul group cannot run: the backend computes the matmul first)."""
    if not (h.kind == "elementwise" and g.kind in ("elementwise", "reduction", "matmul")
            and h.space == g.space):
        return False
    if g.kind == "matmul":
        mm = next(n for n in g.nodes if _kind(n) is Kind.MATMUL)
        made = {id(v) for n in h.nodes for v in n.outputs}
        return not any(id(v) in made for v in mm.inputs)
    return True


def _path_around(dag: nx.DiGraph, g: int, h: int) -> bool:
    """Whether g and h are linked through a third group (merging them makes a cycle)."""
    return any(nx.has_path(dag, s, h) for s in dag.successors(g) if s != h) or \
        any(nx.has_path(dag, s, g) for s in dag.successors(h) if s != g)


def _absorb(drafts: list[_Draft], group_of: dict[int, int], dag: nx.DiGraph, g: int,
            h: int, index: dict[int, int]) -> None:
    """Move group h's nodes into group g, keeping the graph's (topological) order."""
    for n in drafts[h].nodes:
        group_of[id(n)] = g
    drafts[g].nodes = sorted(drafts[g].nodes + drafts[h].nodes, key=lambda n: index[id(n)])
    drafts[g].notes += drafts[h].notes
    drafts[h].nodes = []
    nx.contracted_nodes(dag, g, h, self_loops=False, copy=False)


def _merge_scalars(graph: Graph, drafts: list[_Draft], group_of: dict[int, int],
                   dag: nx.DiGraph, index: dict[int, int]) -> None:
    """A chain of 0-d ops (Adam's 1 - b1**t) read by one kernel only becomes part of
    that kernel, which computes the few scalars itself."""
    readers: dict[int, set[int]] = {}
    for node in graph.nodes:
        for v in node.inputs:
            readers.setdefault(id(v), set()).add(group_of[id(node)])
    outputs = {id(v) for v in graph.outputs}
    for s, draft in enumerate(drafts):
        if draft.kind != "scalar" or not draft.nodes:
            continue
        values = [v for n in draft.nodes for v in n.outputs]
        if any(id(v) in outputs for v in values):
            continue
        users = set().union(*(readers.get(id(v), set()) for v in values)) - {s}
        if len(users) != 1:
            continue
        (g,) = users
        if drafts[g].kind in ("elementwise", "reduction", "matmul") and \
                not _path_around(dag, g, s):
            _absorb(drafts, group_of, dag, g, s, index)


def _start(node: Node) -> _Draft:
    kind, shape = _kind(node), node.outputs[0].type.shape
    if kind is Kind.SOURCE:
        return _Draft("source", [node], None)
    if kind is Kind.ELEMENTWISE and shape:
        return _Draft("elementwise", [node], shape)
    if kind is Kind.ELEMENTWISE:
        return _Draft("scalar", [node], ())
    if kind is Kind.MATMUL:
        return _Draft("matmul", [node], shape)
    if kind is Kind.REDUCTION and node.inputs[0].type.shape and not _reduces_axis0(node):
        return _Draft("reduction", [node], node.inputs[0].type.shape)
    if kind is Kind.REDUCTION:
        return _Draft("reduce_all", [node], None)
    return _Draft("single", [node], None)


def fuse(graph: Graph) -> Graph:
    """Partition `graph` into fusion groups (see the module docstring)."""
    drafts: list[_Draft] = []
    group_of: dict[int, int] = {}   # id(node) -> index into drafts
    dag = nx.DiGraph()              # producer group -> consumer group

    def producers(node: Node) -> list[int]:
        out = []
        for v in node.inputs:
            if v.node is not None and drafts[group_of[id(v.node)]].kind != "source":
                g = group_of[id(v.node)]
                if g not in out:
                    out.append(g)
        return out

    def creates_cycle(target: int, node_producers: list[int]) -> bool:
        # joining `target` is safe unless another producer is reachable from it
        return any(p != target and dag.has_node(target) and nx.has_path(dag, target, p)
                   for p in node_producers)

    index = {id(n): i for i, n in enumerate(graph.nodes)}
    for node in graph.nodes:
        prods = producers(node)
        chosen, reasons = None, []
        if _kind(node) is not Kind.SOURCE:
            for g in prods:
                why = _why_not(drafts[g], node)
                if why is None and creates_cycle(g, prods):
                    why = "joining would create a cycle between kernels"
                if why is None:
                    chosen = g
                    break
                reasons.append((g, why))
        if chosen is None:
            drafts.append(_start(node))
            chosen = len(drafts) - 1
        else:
            d = drafts[chosen]
            d.nodes.append(node)
            if _kind(node) is Kind.REDUCTION and d.kind == "elementwise":
                d.kind = "reduction"  # the elementwise chain becomes its prologue
            for g in prods:  # sibling chains over the same space join too (adam's m, v, p)
                if g != chosen and _siblings(drafts[chosen], drafts[g]) and \
                        not _path_around(dag, chosen, g):
                    _absorb(drafts, group_of, dag, chosen, g, index)
                    reasons = [(h, why) for h, why in reasons if h != g]
        for g, why in reasons:
            last = drafts[g].nodes[-1].outputs[0].name
            drafts[chosen].notes.append(f"not fused with group of %{last} ({drafts[g].kind}) "
                                        f"at {node.op} %{node.outputs[0].name}: {why}")
        group_of[id(node)] = chosen
        dag.add_node(chosen)
        for g in prods:
            if g != chosen:
                dag.add_edge(g, chosen)

    _merge_scalars(graph, drafts, group_of, dag, index)
    order = list(nx.lexicographical_topological_sort(dag, key=lambda g: g))
    consts = tuple(n for d in drafts if d.kind == "source" for n in d.nodes)
    order = [g for g in order if drafts[g].nodes]  # absorbed groups are empty
    groups = [Group("source", consts)] if consts else []
    groups += [Group(drafts[g].kind, tuple(drafts[g].nodes), tuple(drafts[g].notes))
               for g in order if drafts[g].kind != "source"]
    nodes = [n for grp in groups for n in grp.nodes]
    return Graph(graph.name, list(graph.inputs), nodes, list(graph.outputs), groups)
