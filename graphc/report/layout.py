"""Where the report draws each box: the optimized graph in two levels.

Each fusion group is laid out on its own (its nodes in layers, by networkx's
topological generations, each layer ordered by its predecessors' places), which gives
the group's box its size; then the groups, the graph's inputs and its outputs are laid
out as one graph of boxes of those sizes: by graphviz's `dot` where it is installed
(`dot -Tplain`: places and edge splines), else by the same layered layout. Both levels
are linear in the nodes, apart from dot's own time on the group graph, which grows
faster: dot lays out at most DOT_MAX_BOXES boxes (the LSTM step's 1,461 groups took it
over 100 s), and larger graphs take the layered layout.

>>> import graphc, numpy as np
>>> low = graphc.compile(lambda x: np.tanh(x) * 2.0).lower(np.ones(4, np.float32))
>>> d = layout(low.optimized)
>>> d.engine in ("dot", "networkx"), [len(b.members) for b in d.boxes if b.group is not None]
(True, [2])
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field

import networkx as nx

from graphc.ir import Graph, Node, Value

NODE_W, NODE_H = 120.0, 30.0  # a node's box inside a group, in SVG units (px)
GAP_X, GAP_Y = 18.0, 26.0
PAD, HEAD = 12.0, 22.0  # a group box's padding, and its title's height
IO_W, IO_H = 110.0, 26.0  # an input's or output's box
COLLAPSED_W, COLLAPSED_H = 150.0, 40.0
# dot's crossing minimisation grows fast with the boxes: the LSTM step's 1,496 took
# over 100 s (11 s with its iteration limits cut); up to this many it takes well under
# a second, past it the layered layout draws them
DOT_MAX_BOXES = 400
# a layer wider than this many boxes wraps into rows (an unrolled loop's 50 steps side
# by side would make a page tens of thousands of pixels wide)
MAX_ROW = 12
# an input read by more boxes than this (a weight, in every step of an unrolled loop)
# gets no arrows: they would cross the whole drawing; its box says how many read it
FAN_OUT = 8


@dataclass
class Member:
    """A node drawn inside its group's box, at (x, y) relative to the box."""

    node: Node
    x: float
    y: float


@dataclass
class Box:
    """One box of the overview: a group (`group` its index), an input or the outputs."""

    key: str
    label: str
    group: int | None = None
    kind: str = ""
    members: list[Member] = field(default_factory=list)
    inner: list[tuple[int, int]] = field(default_factory=list)  # member -> member edges
    width: float = 0.0
    height: float = 0.0
    x: float = 0.0  # the box's top-left corner in the overview
    y: float = 0.0


@dataclass
class Edge:
    """A value crossing from one box to another; `points` is its path (cubic spline
    control points from dot, or a start and an end)."""

    tail: str
    head: str
    values: list[Value]
    points: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class Drawing:
    boxes: list[Box]
    edges: list[Edge]
    width: float
    height: float
    engine: str  # "dot" or "networkx"
    expanded: bool  # the groups drawn with their nodes (else one box each, to click)
    why_engine: str = ""  # why not dot, where it is not


def layout(graph: Graph, expand_up_to: int = 300) -> Drawing:
    """The two-level layout of a fused graph (an unfused one: one group per node);
    groups show their nodes when the graph has at most `expand_up_to` nodes."""
    groups = graph.groups or []
    expanded = len(graph.nodes) <= expand_up_to
    boxes: dict[str, Box] = {}
    owner: dict[int, str] = {}  # id(value) -> the box that makes it
    for v in graph.inputs:
        key = f"in{len(boxes)}"
        label = f"%{v.name}: {v.type}"
        boxes[key] = Box(key, label, kind="input", height=IO_H,
                         width=max(IO_W, min(7.0 * len(label) + 16, 3 * IO_W)))
        owner[id(v)] = key
    for gi, group in enumerate(groups):
        if group.kind == "source":  # constants: drawn where they are read
            continue
        box = _group_box(gi, group, expanded)
        boxes[box.key] = box
        for m in box.members:
            for out in m.node.outputs:
                owner[id(out)] = box.key
    boxes["out"] = Box("out", "return", kind="output", width=IO_W, height=IO_H)
    edges = _edges(graph, boxes, owner)
    why = ""
    if not shutil.which("dot"):
        why = "graphviz's dot is not installed"
    elif len(boxes) > DOT_MAX_BOXES:
        why = f"{len(boxes)} boxes, more than dot lays out quickly ({DOT_MAX_BOXES})"
    else:
        try:
            width, height = _dot(list(boxes.values()), edges)
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            why = f"dot failed ({type(exc).__name__})"
    if why:
        width, height = _layered(list(boxes.values()), edges)
    return Drawing(list(boxes.values()), edges, width, height,
                   "networkx" if why else "dot", expanded, why)


def _group_box(gi: int, group, expanded: bool) -> Box:
    nodes = list(group.nodes)
    label = f"k{gi} {nodes[0].op}" if len(nodes) == 1 else \
        f"k{gi} {group.kind}, {len(nodes)} ops"
    box = Box(f"g{gi}", label, group=gi, kind=group.kind)
    index = {id(v): i for i, n in enumerate(nodes) for v in n.outputs}
    box.inner = sorted({(index[id(v)], j) for j, n in enumerate(nodes) for v in n.inputs
                        if id(v) in index})
    places, width, height = layered_places(len(nodes), box.inner, NODE_W, NODE_H)
    box.members = [Member(n, PAD + x, HEAD + y) for n, (x, y) in zip(nodes, places)]
    if expanded:
        box.width, box.height = max(width + 2 * PAD, 7.0 * len(label) + 16), \
            height + HEAD + PAD
    else:
        box.width, box.height = max(COLLAPSED_W, 7.0 * len(label) + 16), COLLAPSED_H
    return box


def _edges(graph: Graph, boxes: dict[str, Box], owner: dict[int, str]) -> list[Edge]:
    by_pair: dict[tuple[str, str], Edge] = {}

    def add(tail: str | None, head: str, v: Value) -> None:
        if tail is None or tail == head:
            return
        edge = by_pair.setdefault((tail, head), Edge(tail, head, []))
        if all(u is not v for u in edge.values):
            edge.values.append(v)
    for box in boxes.values():
        for m in box.members:
            for v in m.node.inputs:
                add(owner.get(id(v)), box.key, v)
    for v in graph.outputs:
        add(owner.get(id(v)), "out", v)
    readers: dict[str, int] = {}
    for tail, _ in by_pair:
        readers[tail] = readers.get(tail, 0) + 1
    wide = {k for k, n in readers.items() if n > FAN_OUT and boxes[k].kind == "input"}
    for key in wide:
        box = boxes[key]
        box.label += f" ({readers[key]} readers)"
        box.width = max(box.width, min(7.0 * len(box.label) + 16, 4 * IO_W))
    return [e for (tail, _), e in by_pair.items() if tail not in wide]


def layered_places(n: int, edges: list[tuple[int, int]], w: float, h: float
                   ) -> tuple[list[tuple[float, float]], float, float]:
    """Top-left corners for `n` boxes of size (w, h), in layers by longest path from
    the sources (networkx's topological generations), each layer ordered by the mean
    place of its predecessors; and the drawing's width and height."""
    places, width, height = _layers(n, edges, [w] * n, [h] * n)
    return places, width, height


def _layers(n: int, edges, widths, heights):
    dag = nx.DiGraph()
    dag.add_nodes_from(range(n))
    dag.add_edges_from(edges)
    try:
        layers = [sorted(layer) for layer in nx.topological_generations(dag)]
    except nx.NetworkXUnfeasible:  # not a DAG (never from a verified graph): one row
        layers = [list(range(n))]
    centre: dict[int, float] = {}
    places: list[tuple[float, float]] = [(0.0, 0.0)] * n
    rows: list[list[int]] = []
    for layer in layers:
        def key(i: int) -> float:
            preds = [centre[p] for p in dag.predecessors(i) if p in centre]
            return sum(preds) / len(preds) if preds else float(i)
        layer.sort(key=key)
        for start in range(0, len(layer), MAX_ROW):
            row = layer[start:start + MAX_ROW]
            x = 0.0
            for i in row:
                centre[i] = x + widths[i] / 2
                x += widths[i] + GAP_X
            rows.append(row)
    width = max((sum(widths[i] for i in r) + GAP_X * (len(r) - 1) for r in rows),
                default=0.0)
    y = 0.0
    for row in rows:  # each row centred under the widest
        x = (width - sum(widths[i] for i in row) - GAP_X * (len(row) - 1)) / 2
        for i in row:
            places[i] = (x, y)
            x += widths[i] + GAP_X
        y += max(heights[i] for i in row) + GAP_Y
    return places, max(width, 0.0), max(y - GAP_Y, 0.0)


def _layered(boxes: list[Box], edges: list[Edge]) -> tuple[float, float]:
    index = {b.key: i for i, b in enumerate(boxes)}
    pairs = [(index[e.tail], index[e.head]) for e in edges]
    places, width, height = _layers(len(boxes), pairs, [b.width for b in boxes],
                                    [b.height for b in boxes])
    margin = 10.0
    for b, (x, y) in zip(boxes, places):
        b.x, b.y = x + margin, y + margin
    for e in edges:
        t, h = boxes[index[e.tail]], boxes[index[e.head]]
        e.points = [(t.x + t.width / 2, t.y + t.height), (h.x + h.width / 2, h.y)]
    return width + 2 * margin, height + 2 * margin


def _dot(boxes: list[Box], edges: list[Edge]) -> tuple[float, float]:
    """Lay the boxes out with `dot -Tplain` (sizes fixed, in inches); graphviz's y axis
    points up, the page's down."""
    lines = ["digraph G {", "  rankdir=TB; nodesep=0.25; ranksep=0.35;",
             "  node [shape=box, fixedsize=true, label=\"\"];",
             # no arrowhead of dot's own: its splines then reach the boxes, where the
             # page's marker puts its tip
             "  edge [arrowhead=none];"]
    for i, b in enumerate(boxes):
        lines.append(f"  n{i} [width={b.width / 72:.4f}, height={b.height / 72:.4f}];")
    index = {b.key: i for i, b in enumerate(boxes)}
    for e in edges:
        lines.append(f"  n{index[e.tail]} -> n{index[e.head]};")
    lines.append("}")
    done = subprocess.run(["dot", "-Tplain"], input="\n".join(lines), text=True,
                          capture_output=True, timeout=30, check=True)
    scale = 72.0
    graph_h = 0.0
    edge_points: dict[tuple[int, int], list[tuple[float, float]]] = {}
    for line in done.stdout.splitlines():
        f = line.split()
        if not f:
            continue
        if f[0] == "graph":
            width, graph_h = float(f[2]) * scale, float(f[3]) * scale
        elif f[0] == "node":
            b = boxes[int(f[1][1:])]
            cx, cy = float(f[2]) * scale, float(f[3]) * scale
            b.x, b.y = cx - b.width / 2, graph_h - cy - b.height / 2
        elif f[0] == "edge":
            count = int(f[3])
            pts = [(float(f[4 + 2 * k]) * scale, graph_h - float(f[5 + 2 * k]) * scale)
                   for k in range(count)]
            edge_points[(int(f[1][1:]), int(f[2][1:]))] = pts
    if graph_h == 0.0:
        raise ValueError("dot gave no layout")
    for e in edges:
        e.points = edge_points.get((index[e.tail], index[e.head]), [])
    return width, graph_h
