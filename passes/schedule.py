"""Scheduling: each fusion group as a backend-neutral `KernelPlan`.

What every backend needs to know about a kernel before it prints one, worked out once
here: the values that cross its boundary, its iteration space (with leading axes
flattened into rows where that is exact), the loop levels of a row's reductions, the
values one level makes and a later level reads, and the outputs that may be written
over an input that dies in the kernel. A backend renders plans; it does not re-derive
any of this. The memory plan (passes/memory.py) is computed from the plans.

    group:  %1 = max %x {axes=(1,)} ; %2 = sub %x, %1 ; %3 = exp %2
            %4 = sum %3 {axes=(1,)} ; %5 = div %3, %4           (softmax over (R, C))
    plan:   space (R, C), form "rows"; per row: level 0 computes %1 (a loop over the
            columns), level 1 computes %2, %3 and %4, level 2 computes %3 again or
            reads it back (kept) and %5

>>> import graphc, numpy as np
>>> f = graphc.compile(lambda x: np.exp(x) / np.sum(np.exp(x), axis=-1, keepdims=True))
>>> plan = plan_kernels(f.lower(np.ones((8, 3, 5), np.float32)).optimized)[0]
>>> plan.kind, plan.space, plan.form, plan.flattened
('reduction', (24, 5), 'rows', True)
"""
from __future__ import annotations

from dataclasses import dataclass, field

from graphc.ir import Attrs, Graph, Group, Node, TensorType, Value
from graphc.ir.regions import group_boundaries
from graphc.ops import OPS, Kind

FUSED_KINDS = ("elementwise", "reduction", "matmul")


@dataclass
class KernelPlan:
    """One fusion group as a kernel.

    `nodes` are what the kernel computes, over `space`. Where the group's leading axes
    were flattened into rows (`flattened`), they are copies over 2-d values and
    `graph_value` / `graph_node` lead back to the graph's own (identity elsewhere).
    For a matmul group, `matmul` is its matmul and `nodes` its epilogue.

    `form` is the loop nest a kernel of the group can use, or None (ops one by one):
    "flat" (elementwise, every input of the space's shape or of one element: one loop
    over the elements), "nd" (elementwise with broadcasting: a loop per axis), "rows"
    (a 2-d space whose reductions take the last axis: per row, one loop over the
    columns per level), "blocks" (any other group of rows, cut into blocks of rows).
    """

    index: int                        # the group's position in graph.groups
    kind: str                         # the group's kind (graphc.ir.Group)
    group: Group
    nodes: tuple[Node, ...]
    inputs: tuple[Value, ...]         # read from outside, in order of first read
    outputs: tuple[Value, ...]        # made here and read outside (escaping)
    space: tuple[int, ...] | None = None
    form: str | None = None
    matmul: Node | None = None
    flattened: bool = False
    # per value of a "rows" plan (by id): "scalar" (0-d), "row" (one per row) or
    # "full" (one per element); and its loop level (level k runs after loop k - 1)
    value_kind: dict[int, str] = field(default_factory=dict)
    level: dict[int, int] = field(default_factory=dict)
    kept: tuple[Value, ...] = ()      # full values a later level reads, not escaping
    reuse: dict[int, Value] = field(default_factory=dict)  # id(output) -> input it may overwrite
    graph_value: dict[int, Value] = field(default_factory=dict)
    graph_node: dict[int, Node] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        """What a backend splits between threads or programs: the space's first axis."""
        return self.space[0] if self.space else 1

    @property
    def levels(self) -> int:
        """Loops over a row's columns in a "rows" plan (one more than its deepest
        reduction level)."""
        return max(self.level.values(), default=0) + 1

    def origin(self, v: Value) -> Value:
        """The graph's value that kernel value `v` stands for."""
        return self.graph_value.get(id(v), v)

    def source_node(self, n: Node) -> Node:
        """The graph's node that kernel node `n` stands for."""
        return self.graph_node.get(id(n), n)

    def escapes(self, v: Value) -> bool:
        return id(self.origin(v)) in {id(o) for o in self.outputs}

    def describe(self) -> str:
        """One line: `k3 reduction (24, 5) rows, 3 levels, keeps %3`."""
        parts = [f"k{self.index} {self.kind}"]
        if self.space is not None:
            parts.append(f"{tuple(self.space)}" + (" (flattened)" if self.flattened else ""))
        if self.form:
            parts.append(self.form + (f", {self.levels} levels" if self.form == "rows" else ""))
        if self.kept:
            parts.append("keeps " + ", ".join(f"%{v.name}" for v in self.kept))
        if self.reuse:
            parts.append("in place: " + ", ".join(
                f"%{self.origin(self.nodes_output(k)).name} over %{v.name}"
                for k, v in self.reuse.items()))
        return " ".join(parts[:2]) + (", " + ", ".join(parts[2:]) if parts[2:] else "")

    def nodes_output(self, vid: int) -> Value:
        return next(v for n in self.nodes for v in n.outputs if id(v) == vid)


def groups_of(graph: Graph) -> list[Group]:
    """The graph's fusion groups; an unfused graph is one group per node."""
    if graph.groups is not None:
        return list(graph.groups)
    return [Group("source" if OPS[n.op].kind is Kind.SOURCE else "single", (n,))
            for n in graph.nodes]


def plan_kernels(graph: Graph) -> list[KernelPlan]:
    """One plan per group of `graph` (see the module docstring), in order."""
    groups = groups_of(graph)
    view = graph if graph.groups is not None else Graph(
        graph.name, graph.inputs, graph.nodes, graph.outputs, groups)
    return [_plan(i, g, b) for i, (g, b) in enumerate(zip(groups, group_boundaries(view)))]


def _plan(index: int, group: Group, boundary) -> KernelPlan:
    plan = KernelPlan(index, group.kind, group, tuple(group.nodes), boundary.inputs,
                      boundary.outputs)
    if group.kind not in FUSED_KINDS or not any(n.outputs[0].type.ndim for n in group.nodes):
        return plan
    nodes = list(group.nodes)
    if group.kind == "matmul":
        plan.matmul = next(n for n in nodes if OPS[n.op].kind is Kind.MATMUL)
        nodes = [n for n in nodes if n is not plan.matmul]
        plan.nodes = tuple(nodes)
        if not any(n.outputs[0].type.ndim for n in nodes):
            return plan  # a bare matmul (or one with a scalar epilogue only)
    # fusion's own space where it kept it; a group read back from text derives it
    space = group.space if group.space is not None else group_space(nodes)
    flat = _flatten(nodes, space)
    if flat is not None:
        nodes, plan.graph_value, plan.graph_node = flat
        plan.flattened = True
        space = (space_rows(space), space[-1])
    plan.nodes, plan.space = tuple(nodes), tuple(space)
    plan.form = _form(plan)
    if plan.form == "rows":
        plan.kept = _kept(plan)
    plan.reuse = reuse_pairs(plan)
    return plan


def group_space(nodes: list[Node]) -> tuple[int, ...]:
    """The iteration space of a fused group's nodes: the full input of a reduction that
    comes first, else the shape of the first value of rank >= 1 it makes."""
    first = next(n for n in nodes if n.outputs[0].type.ndim)
    if OPS[first.op].kind is Kind.REDUCTION:
        return first.inputs[0].type.shape
    return first.outputs[0].type.shape


def space_rows(space: tuple[int, ...]) -> int:
    rows = 1
    for d in space[:-1]:
        rows *= d
    return rows


def reduced_axes(node: Node) -> tuple[int, ...]:
    return tuple(node.attrs["axes"]) if "axes" in node.attrs else (node.attrs["axis"],)


# --- flattening: leading axes as rows -------------------------------------------------

def _flatten(nodes: list[Node], space: tuple[int, ...]):
    """The nodes over 2-d values when every value shares the leading dims of a rank >= 3
    space (or broadcasts over all of them) and reductions only take the last axis: then
    the rows are all the leading dims together, not just axis 0 (attention's
    (8, 512, 512) scores give 4096 rows, not 8). None otherwise. Returns (nodes, kernel
    value id -> graph value, kernel node id -> graph node)."""
    if len(space) < 3:
        return None
    lead, rows = space[:-1], space_rows(space)

    def proxy_shape(v: Value):
        shape = v.type.shape
        if not shape:
            return shape
        if len(shape) == len(space) and shape[:-1] == lead:
            return (rows, shape[-1])
        if all(d == 1 for d in shape[:-1]):  # broadcast over every row
            return shape[-1:]
        return None

    for n in nodes:
        if OPS[n.op].kind is Kind.REDUCTION and (
                reduced_axes(n) != (len(space) - 1,) or not n.attrs["keepdims"]):
            return None
        for v in (*n.inputs, *n.outputs):
            if proxy_shape(v) is None or (v in n.outputs and v.type.ndim and
                                          proxy_shape(v)[0] != rows):
                return None
    proxies: dict[int, Value] = {}
    origin: dict[int, Value] = {}

    def proxy(v: Value) -> Value:
        if id(v) not in proxies:
            shape = proxy_shape(v)
            p = v if shape == v.type.shape else Value(v.name, TensorType(shape, v.type.dtype))
            proxies[id(v)], origin[id(p)] = p, v
        return proxies[id(v)]

    out, of_node = [], {}
    for n in nodes:
        attrs = dict(n.attrs)
        if OPS[n.op].kind is Kind.REDUCTION:
            attrs["axes" if "axes" in attrs else "axis"] = (1,) if "axes" in attrs else 1
        copy = Node(n.op, tuple(proxy(v) for v in n.inputs), Attrs(attrs), loc=n.loc)
        outs = []
        for v in n.outputs:
            p = Value(v.name, TensorType(proxy_shape(v), v.type.dtype), copy)
            proxies[id(v)], origin[id(p)] = p, v
            outs.append(p)
        copy.outputs = tuple(outs)
        out.append(copy)
        of_node[id(copy)] = n
    return out, origin, of_node


# --- the loop nest ----------------------------------------------------------------------

def _form(plan: KernelPlan) -> str:
    nodes, space = plan.nodes, plan.space
    if all(OPS[n.op].kind is Kind.ELEMENTWISE for n in nodes):
        if all(n.outputs[0].type.shape in (space, ()) and
               all(v.type.shape == space or v.type.size == 1 for v in n.inputs)
               for n in nodes):
            return "flat"
        if all(n.outputs[0].type.shape in (space, ()) for n in nodes):
            return "nd"
        return "blocks"
    if len(space) == 2 and _row_levels(plan):
        return "rows"
    return "blocks"


def _row_levels(plan: KernelPlan) -> bool:
    """Classify each value of a 2-d (R, C) group as scalar, per row or full, with the
    loop that computes it: a reduction over the columns of a level-k value is of level
    k + 1. False where the group has no such loop nest (a reduction over the rows, a
    full-width value feeding a per-row one, a per-row value broadcast along a row
    without a column of its own)."""
    R, C = plan.space
    kind, level = plan.value_kind, plan.level
    for n in plan.nodes:
        if len(n.outputs) != 1:
            return False
        out = n.outputs[0]
        lv = max([level.get(id(v), 0) for v in n.inputs] + [0])
        if OPS[n.op].kind is Kind.REDUCTION:
            x = n.inputs[0]
            if x.type.shape != plan.space or reduced_axes(n) != (1,) or \
                    kind.get(id(x), "full") != "full":
                return False
            kind[id(out)], level[id(out)] = "row", lv + 1
        elif out.type.shape == ():
            kind[id(out)], level[id(out)] = "scalar", 0
        elif out.type.shape == plan.space:
            kind[id(out)], level[id(out)] = "full", lv
        elif out.type.shape in ((R, 1), (R,)):
            if any(kind.get(id(v)) == "full" or (id(v) not in kind and v.type.size > R)
                   for v in n.inputs):
                return False
            kind[id(out)], level[id(out)] = "row", lv
        else:
            return False
        for v in n.inputs:  # a per-row value only broadcasts as a column (R, 1)
            if kind.get(id(v)) == "row" and out.type.shape == plan.space and R > 1 and \
                    v.type.shape != (R, 1):
                return False
    return True


def _kept(plan: KernelPlan) -> tuple[Value, ...]:
    """Full values that a loop of a later level reads (softmax's exp), other than the
    outputs (which a later loop reads back from the output itself): a backend keeps
    a row of them, or computes them again."""
    kept = []
    for n in plan.nodes:
        v = n.outputs[0]
        if plan.value_kind[id(v)] != "full" or plan.escapes(v):
            continue
        if any(plan.value_kind[id(u.outputs[0])] == "full" and
               plan.level[id(u.outputs[0])] > plan.level[id(v)]
               for u in plan.nodes if v in u.inputs):
            kept.append(v)
    return tuple(kept)


def reuse_pairs(plan: KernelPlan, eligible: set[int] | None = None) -> dict[int, Value]:
    """Outputs that may be written over an input's buffer: an elementwise kernel whose
    output has the input's shape and dtype, made after every read of that input in
    the kernel (so each element is read before it is overwritten, in any order of
    blocks or lanes); `eligible` (ids of graph values; None: every input) limits the
    inputs. Whether the input is dead by then, and whether both live in buffers the
    backend owns (or the caller donated), is the memory plan's and the backend's
    question."""
    if plan.form not in ("flat", "nd") or plan.matmul is not None:
        return {}
    position = {id(n): i for i, n in enumerate(plan.nodes)}
    last_read: dict[int, int] = {}
    for i, n in enumerate(plan.nodes):
        for v in n.inputs:
            last_read[id(v)] = i
    internal = {id(v) for n in plan.nodes for v in n.outputs}
    reuse: dict[int, Value] = {}
    taken: set[int] = set()
    for n in plan.nodes:
        out = n.outputs[0]
        if not plan.escapes(out) or out.type.ndim == 0:
            continue
        for v in plan.inputs:
            if eligible is not None and id(v) not in eligible:
                continue
            kv = next((u for m in plan.nodes for u in m.inputs
                       if plan.origin(u) is v), None)
            if kv is None or id(kv) in internal or id(v) in taken:
                continue
            if kv.type == out.type and v.type == plan.origin(out).type and \
                    last_read[id(kv)] <= position[id(n)]:
                reuse[id(out)] = v
                taken.add(id(v))
                break
    return reuse
