"""Fusion: partition the graph into groups, each to become one kernel.

    before:  %0 = mul %x, %x ; %1 = tanh %0 ; %2 = sum %1 {axes=(1,)} ; %3 = div %1, %2
    after:   %3 = kernel k0 reduction (%x) {
               %0 = mul %x, %x ; %1 = tanh %0 ; %2 = sum %1 {axes=(1,)} ; %3 = div %1, %2
             }

What a kernel may hold differs between backends; the rules that do are a
`FusionPolicy` that the backend hands in (`fuse(graph, policy)`; the pipeline binds the
backend's `FUSION_POLICY`). The kinds below are the numpy backend's policy, the
default; each rule a policy may change says so in [brackets].

Groups:
* "elementwise": a chain of elementwise ops over one iteration space (the shape of
  every node in it; inputs may broadcast into it);
* "reduction": reductions (not over axis 0) with their elementwise prologue and
  epilogue; every value in it keeps axis 0, so the group runs block by block over
  rows (softmax and layer norm are one group each) [`row_blocked=False`: reductions
  over any axes, and values of any shape, for a backend that runs the group whole];
* "matmul": a matmul with its elementwise epilogue (bias, activation, residual)
  [`matmul_prologue=True`: and the elementwise chain that feeds it];
* "scalar": a chain of 0-d ops; when one kernel alone reads it, it moves into that
  kernel (which recomputes the few scalars per block) instead of running on its own
  [`scalar_chains_join=False`: it always runs on its own];
* "reduce_all": a reduction across axis 0 (a loss's sum, a bias gradient) with the
  elementwise ops on its result (the mean's division); it runs unblocked
  [`full_reduction_epilogue=False`: the reduction alone];
* "single": any other op on its own (shape ops, gather, convolution, pooling);
* "source": the constants, which cost nothing at run time.
[`max_group_nodes=n`: no group holds more than n ops; 1 leaves every op on its own.]

A node joins a producer's group when the kinds and shapes allow it and merging
creates no cycle between groups. Every merge (a node into a producer's group, a
sibling chain, a scalar chain) passes the same test on the whole group graph, the
joining node's edges included: no path of two or more edges may link the two groups
(`_path_around`). Checks one merge at a time miss cycles such as issue 10's, where a
sibling reaches the chosen group only through the node's other producer. Each
group records, for every producer group it did not merge with, why not; that is what
`Lowered.fusion_report()` prints. Every policy keeps that test.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from graphc.errors import GraphcError
from graphc.ir import Graph, Group, Node
from graphc.ops import OPS, Kind


@dataclass(frozen=True)
class FusionPolicy:
    """What one kernel of a backend may hold: the rules of fusion that are the
    backend's choice. The defaults are the numpy backend's (`ROW_BLOCKED`), whose
    kernels run block by block over axis 0 and call BLAS for a matmul.

    >>> FusionPolicy(matmul_prologue=True).row_blocked
    True
    """
    # a reduction group runs in blocks of rows: every value in it keeps axis 0, values
    # of another rank from inside it may not meet (numpy aligns shapes from the right),
    # and a reduction over axis 0 goes to a "reduce_all" group instead
    row_blocked: bool = True
    # the elementwise chain feeding a matmul may run in the matmul's kernel (numpy: no,
    # BLAS computes the matmul from finished operands)
    matmul_prologue: bool = False
    # a 0-d chain read by one kernel only moves into that kernel
    scalar_chains_join: bool = True
    # elementwise ops on a full reduction's result join its kernel
    full_reduction_epilogue: bool = True
    # the most ops in one group (None: no limit); merges that would exceed it are refused
    max_group_nodes: int | None = None

    def __post_init__(self):
        n = self.max_group_nodes
        if n is not None and (type(n) is not int or n < 1):
            raise GraphcError(f"FusionPolicy(max_group_nodes={n!r}) is not a number of ops",
                              hint="give an int >= 1, or None for no limit")

    def room(self, size: int) -> bool:
        """Whether a group of `size` ops is allowed."""
        return self.max_group_nodes is None or size <= self.max_group_nodes


ROW_BLOCKED = FusionPolicy()  # the numpy backend's policy, and fuse's default


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


def _why_not(group: _Draft, node: Node, policy: FusionPolicy) -> str | None:
    """None if `node` may join `group` (shapes and kinds allowing), else the reason."""
    why = _rule(group, node, policy)
    if why is None and not policy.room(len(group.nodes) + 1):
        return f"the group holds the policy's most ops ({policy.max_group_nodes})"
    return why


def _rule(group: _Draft, node: Node, policy: FusionPolicy) -> str | None:
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
        if not policy.full_reduction_epilogue:
            return "a full reduction runs as a kernel of its own (the backend's policy)"
        if kind is Kind.ELEMENTWISE and shape == out:
            return None
        return f"only elementwise ops on the reduced {list(out)} join a full reduction"
    if kind is Kind.MATMUL:
        if not policy.matmul_prologue:
            return "a matmul starts a kernel of its own (no prologue fusion)"
        if group.kind != "elementwise":
            return f"a matmul's prologue is an elementwise chain, not a {group.kind} group"
        return None
    if kind not in (Kind.ELEMENTWISE, Kind.REDUCTION):
        return f"{node.op} is a {kind.value} op"
    if group.kind in ("elementwise", "matmul") and kind is Kind.ELEMENTWISE:
        if shape != group.space:
            return f"its shape {list(shape)} differs from the group's {list(group.space)}"
        return None
    # a reduction group (or one becoming one): row-blocked over axis 0
    if group.kind == "matmul":
        return "a reduction does not join a matmul epilogue"
    if not policy.row_blocked:
        return None  # the backend runs a reduction group whole, not in blocks of rows
    if not shape or shape[0] != group.rows or group.rows is None:
        return f"its shape {list(shape)} does not keep the group's rows ({group.rows})"
    if kind is Kind.REDUCTION and reduces_axis0(node):
        return "it reduces over axis 0, across the group's rows"
    members = {id(n) for n in group.nodes}
    for v in node.inputs:
        # numpy aligns shapes from the right: a lower-rank value from inside the group
        # would meet the rows on another axis, and rows cannot be cut block by block
        if v.node is not None and id(v.node) in members and 0 < v.type.ndim != len(shape):
            return (f"it combines %{v.name} {list(v.type.shape)} with rank-{len(shape)} "
                    "values, which misaligns the rows")
    return None


def reduces_axis0(node: Node) -> bool:
    """Whether reduction `node` reduces over axis 0 (across a row-blocked group's rows)."""
    axes = node.attrs["axes"] if "axes" in node.attrs else (node.attrs["axis"],)
    return 0 in axes


def _siblings(g: _Draft, h: _Draft, policy: FusionPolicy) -> bool:
    """Whether elementwise group `h` may merge into `g`: the same iteration space, and
    for a matmul group, h must not feed the matmul unless the policy allows prologues
    (the numpy backend computes the matmul first)."""
    if not (h.kind == "elementwise" and g.kind in ("elementwise", "reduction", "matmul")
            and h.space == g.space and policy.room(len(g.nodes) + len(h.nodes))):
        return False
    if g.kind == "matmul" and not policy.matmul_prologue:
        mm = next(n for n in g.nodes if _kind(n) is Kind.MATMUL)
        made = {id(v) for n in h.nodes for v in n.outputs}
        return not any(id(v) in made for v in mm.inputs)
    return True


def _path_around(dag: nx.DiGraph, g: int, h: int) -> bool:
    """Whether a path of two or more edges links groups g and h, either way round.

    The one test every merge passes: merging g and h is legal exactly when no such
    path exists, since the groups on it would then run both after and before the
    merged kernel. A direct edge is fine (a producer and its consumer fuse).

    >>> dag = nx.DiGraph([(0, 1), (1, 2), (0, 2)])
    >>> _path_around(dag, 0, 2), _path_around(dag, 0, 1)
    (True, False)
    """
    return _reaches_through(dag, g, h) or _reaches_through(dag, h, g)


def _reaches_through(dag: nx.DiGraph, a: int, b: int) -> bool:
    """Whether a path a -> x -> ... -> y -> b (x != b, y != a) exists. Searched from
    both ends at once, growing the smaller frontier, so that neither a group that
    feeds the whole graph nor one fed by it makes a check cost the whole graph."""
    ahead = {s for s in dag.successors(a) if s != b}    # reached from a
    behind = {p for p in dag.predecessors(b) if p != a}  # reaching b
    seen_ahead, seen_behind = set(ahead), set(behind)
    while ahead and behind:
        if not seen_ahead.isdisjoint(seen_behind):
            return True
        if len(ahead) <= len(behind):
            ahead = {s for g in ahead for s in dag.successors(g)} - seen_ahead
            seen_ahead |= ahead
        else:
            behind = {p for g in behind for p in dag.predecessors(g)} - seen_behind
            seen_behind |= behind
    return not seen_ahead.isdisjoint(seen_behind)


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
                   dag: nx.DiGraph, index: dict[int, int], policy: FusionPolicy) -> None:
    """A chain of 0-d ops (Adam's 1 - b1**t) read by one kernel only becomes part of
    that kernel, which computes the few scalars itself."""
    if not policy.scalar_chains_join:
        return
    readers: dict[int, list[Node]] = {}
    for node in graph.nodes:
        for v in node.inputs:
            readers.setdefault(id(v), []).append(node)
    outputs = {id(v) for v in graph.outputs}
    for s, draft in enumerate(drafts):
        if draft.kind != "scalar" or not draft.nodes:
            continue
        values = [v for n in draft.nodes for v in n.outputs]
        if any(id(v) in outputs for v in values):
            continue
        # groups as they are now: an earlier scalar chain may have moved into a kernel
        users = {group_of[id(n)] for v in values for n in readers.get(id(v), ())} - {s}
        if len(users) != 1:
            continue
        (g,) = users
        if drafts[g].kind in ("elementwise", "reduction", "matmul") and \
                policy.room(len(drafts[g].nodes) + len(draft.nodes)) and \
                not _path_around(dag, g, s):
            _absorb(drafts, group_of, dag, g, s, index)


def _start(node: Node, policy: FusionPolicy) -> _Draft:
    kind, shape = _kind(node), node.outputs[0].type.shape
    if kind is Kind.SOURCE:
        return _Draft("source", [node], None)
    if kind is Kind.ELEMENTWISE and shape:
        return _Draft("elementwise", [node], shape)
    if kind is Kind.ELEMENTWISE:
        return _Draft("scalar", [node], ())
    if kind is Kind.MATMUL:
        return _Draft("matmul", [node], shape)
    if kind is Kind.REDUCTION and node.inputs[0].type.shape and \
            not (policy.row_blocked and reduces_axis0(node)):
        return _Draft("reduction", [node], node.inputs[0].type.shape)
    if kind is Kind.REDUCTION:
        return _Draft("reduce_all", [node], None)
    return _Draft("single", [node], None)


def _kept_space(draft: _Draft) -> tuple[int, ...] | None:
    """What a group keeps of its draft's space: that of the kinds run over one."""
    return draft.space if draft.kind in ("elementwise", "reduction", "matmul") else None


def fuse(graph: Graph, policy: FusionPolicy = ROW_BLOCKED) -> Graph:
    """Partition `graph` into fusion groups (see the module docstring) under `policy`,
    the rules of the backend the groups are for.

    >>> from graphc.ir import parse
    >>> g = parse("graph f(%x: f32[4,8]) -> (f32[4,8]) {\\n  %0: f32[4,8] = exp %x\\n"
    ...           "  %1: f32[4,8] = tanh %0\\n  return %1\\n}")
    >>> [grp.kind for grp in fuse(g).groups]
    ['elementwise']
    >>> [grp.kind for grp in fuse(g, FusionPolicy(max_group_nodes=1)).groups]
    ['elementwise', 'elementwise']
    """
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

    index = {id(n): i for i, n in enumerate(graph.nodes)}
    for node in graph.nodes:
        prods = producers(node)
        # the node enters the group graph as a group of its own, edges and all; joining
        # a producer's group is then a merge like any other, checked the same way
        new = len(drafts)
        dag.add_edges_from((g, new) for g in prods)
        dag.add_node(new)
        chosen, reasons = None, []
        if _kind(node) is not Kind.SOURCE:
            for g in prods:
                why = _why_not(drafts[g], node, policy)
                if why is None and _path_around(dag, g, new):
                    why = "joining would create a cycle between kernels"
                if why is None:
                    chosen = g
                    break
                reasons.append((g, why))
        if chosen is None:
            drafts.append(_start(node, policy))
            chosen = new
        else:
            d = drafts[chosen]
            d.nodes.append(node)
            # the node's edges move to `chosen` before any sibling merge: a sibling may
            # reach `chosen` through another producer, a path that exists only with them
            dag.remove_node(new)  # (a cheaper nx.contracted_nodes)
            dag.add_edges_from((g, chosen) for g in prods if g != chosen)
            if _kind(node) is Kind.REDUCTION and d.kind == "elementwise":
                d.kind = "reduction"  # the elementwise chain becomes its prologue
            elif _kind(node) is Kind.MATMUL:  # (a policy with matmul prologues)
                d.kind, d.space = "matmul", node.outputs[0].type.shape
            for g in prods:  # sibling chains over the same space join too (adam's m, v, p)
                if g != chosen and _siblings(drafts[chosen], drafts[g], policy) and \
                        not _path_around(dag, chosen, g):
                    _absorb(drafts, group_of, dag, chosen, g, index)
                    reasons = [(h, why) for h, why in reasons if h != g]
        for g, why in reasons:
            last = drafts[g].nodes[-1].outputs[0].name
            drafts[chosen].notes.append(f"not fused with group of %{last} ({drafts[g].kind}) "
                                        f"at {node.op} %{node.outputs[0].name}: {why}")
        group_of[id(node)] = chosen

    _merge_scalars(graph, drafts, group_of, dag, index, policy)
    order = list(nx.lexicographical_topological_sort(dag, key=lambda g: g))
    consts = tuple(n for d in drafts if d.kind == "source" for n in d.nodes)
    order = [g for g in order if drafts[g].nodes]  # absorbed groups are empty
    groups = [Group("source", consts)] if consts else []
    groups += [Group(drafts[g].kind, tuple(drafts[g].nodes), tuple(drafts[g].notes),
                     _kept_space(drafts[g])) for g in order if drafts[g].kind != "source"]
    nodes = [n for grp in groups for n in grp.nodes]
    return Graph(graph.name, list(graph.inputs), nodes, list(graph.outputs), groups)
