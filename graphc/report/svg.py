"""The report's drawings as inline SVG: the overview (layout.Drawing: one coloured
cluster per fusion group, the values crossing between them, each crossing's reason for
not fusing on hover), a group's own drawing, and a bar chart of timings.

Every text in a drawing is the user's (value names, ops, file names) or comes from a
graph, so each goes through `esc` (html.escape, quotes included); attributes carry
only numbers and the report's own ids (`ids`: value name -> "n<k>").
"""
from __future__ import annotations

import html
import re

from graphc.ir import Group, Node
from graphc.ir.text import format_node
from graphc.report.layout import HEAD, NODE_H, NODE_W, PAD, Box, Drawing, Edge

_NOTE = re.compile(r"not fused with group of %(\S+) \((\w+)\) at (\S+) %(\S+): (.*)")


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def hue(group: int) -> int:
    """A group's colour: the golden angle apart from its neighbours'."""
    return int(group * 137.508) % 360


def node_title(node: Node) -> str:
    text = format_node(node).split("  #")[0].strip()
    return text + (f"  ({node.loc})" if node.loc is not None else "")


def reasons(groups: list[Group], owner: dict[str, str]) -> dict[tuple[str, str], str]:
    """(producer box, consumer box) -> fusion's note on why they stayed apart, from the
    consumer group's notes (which name the producer group by its last value)."""
    out: dict[tuple[str, str], str] = {}
    for gi, group in enumerate(groups):
        for note in group.notes:
            m = _NOTE.match(note)
            if m and m.group(1) in owner:
                out.setdefault((owner[m.group(1)], f"g{gi}"), m.group(5))
    return out


def boundary_reason(edge: Edge, boxes: dict[str, Box], groups: list[Group],
                    noted: dict[tuple[str, str], str]) -> str:
    """Why the edge's two groups are two kernels: fusion's note where it made one,
    else what the two sides are (kinds and iteration spaces)."""
    if (edge.tail, edge.head) in noted:
        return noted[(edge.tail, edge.head)]
    tail, head = boxes[edge.tail], boxes[edge.head]
    if tail.group is None or head.group is None:
        return "a graph input or output"
    a, b = groups[tail.group], groups[head.group]
    sa = _space(a)
    sb = _space(b)
    why = f"{a.kind} over {sa} feeds {b.kind} over {sb}"
    if sa != sb:
        why += ": different iteration spaces"
    elif "matmul" in (a.kind, b.kind):
        why += ": a matmul's result is read from memory (no matmul prologue in this policy)"
    return why + " (no merge was attempted here, so fusion left no note)"


def _space(group: Group) -> str:
    if group.space is not None:
        return str(list(group.space))
    shapes = [v.type.shape for n in group.nodes for v in n.outputs]
    return str(list(max(shapes, key=lambda s: len(s)))) if shapes else "[]"


def overview(d: Drawing, groups: list[Group], ids: dict[str, str]) -> str:
    """The overview drawing (see the module docstring)."""
    boxes = {b.key: b for b in d.boxes}
    owner = {v.name: b.key for b in d.boxes for m in b.members for v in m.node.outputs}
    noted = reasons(groups, owner)
    parts = [f'<svg id="graph" class="graph" data-collapsed="{0 if d.expanded else 1}" '
             f'width="{d.width:.0f}" height="{d.height:.0f}" '
             f'viewBox="0 0 {d.width:.1f} {d.height:.1f}">', _ARROW]
    for e in d.edges:
        values = ", ".join(f"%{v.name}: {v.type}" for v in e.values[:6])
        more = f" (+{len(e.values) - 6} more)" if len(e.values) > 6 else ""
        why = boundary_reason(e, boxes, groups, noted)
        parts.append(f'<path class="edge" d="{_path(e.points)}" marker-end="url(#arrow)">'
                     f'<title>{esc(values + more)}&#10;not fused: {esc(why)}</title></path>')
    for b in d.boxes:
        parts.append(_box(b, d.expanded, ids))
    parts.append("</svg>")
    return "\n".join(parts)


def _path(points: list[tuple[float, float]]) -> str:
    if not points:
        return "M0 0"
    if len(points) >= 4 and (len(points) - 1) % 3 == 0:  # dot's B-spline control points
        head = f"M{points[0][0]:.1f} {points[0][1]:.1f}"
        rest = " ".join(f"C{a[0]:.1f} {a[1]:.1f} {b[0]:.1f} {b[1]:.1f} {c[0]:.1f} {c[1]:.1f}"
                        for a, b, c in zip(points[1::3], points[2::3], points[3::3]))
        return f"{head} {rest}"
    (x0, y0), (x1, y1) = points[0], points[-1]
    mid = (y0 + y1) / 2
    return f"M{x0:.1f} {y0:.1f} C{x0:.1f} {mid:.1f} {x1:.1f} {mid:.1f} {x1:.1f} {y1:.1f}"


def _box(b: Box, expanded: bool, ids: dict[str, str]) -> str:
    if b.group is None:
        return (f'<g class="io {b.kind}"><rect x="{b.x:.1f}" y="{b.y:.1f}" '
                f'width="{b.width:.1f}" height="{b.height:.1f}" rx="13"/>'
                f'<text x="{b.x + b.width / 2:.1f}" y="{b.y + b.height / 2 + 4:.1f}">'
                f'{esc(_short(b.label, int((b.width - 10) / 7)))}</text>'
                f'<title>{esc(b.label)}</title></g>')
    h = hue(b.group)
    head = (f'<g class="cluster kind-{esc(b.kind)}" id="cluster-{b.group}" '
            f'data-group="{b.group}" style="--hue: {h}">'
            f'<rect class="cluster-box" x="{b.x:.1f}" y="{b.y:.1f}" width="{b.width:.1f}" '
            f'height="{b.height:.1f}" rx="6"/>'
            f'<text class="cluster-label" x="{b.x + 8:.1f}" y="{b.y + 15:.1f}">'
            f'{esc(b.label)}</text><title>{esc(b.label)}: click to '
            f'{"open its kernel" if expanded else "expand it"}</title>')
    if not expanded:
        return head + "</g>"
    return head + members(b, ids, b.x, b.y) + "</g>"


def members(b: Box, ids: dict[str, str], ox: float, oy: float) -> str:
    """A group's nodes and the edges between them, at offset (ox, oy)."""
    parts = []
    for i, j in b.inner:
        a, c = b.members[i], b.members[j]
        parts.append(f'<line class="inner-edge" x1="{ox + a.x + NODE_W / 2:.1f}" '
                     f'y1="{oy + a.y + NODE_H:.1f}" x2="{ox + c.x + NODE_W / 2:.1f}" '
                     f'y2="{oy + c.y:.1f}"/>')
    for m in b.members:
        node_id = ids.get(m.node.outputs[0].name, "") if m.node.outputs else ""
        parts.append(f'<g class="node" data-node="{node_id}"><rect x="{ox + m.x:.1f}" '
                     f'y="{oy + m.y:.1f}" width="{NODE_W:.0f}" height="{NODE_H:.0f}" rx="4"/>'
                     f'<text x="{ox + m.x + NODE_W / 2:.1f}" y="{oy + m.y + 19:.1f}">'
                     f'{esc(_short(m.node.op + " %" + m.node.outputs[0].name, 17))}</text>'
                     f'<title>{esc(node_title(m.node))}</title></g>')
    return "".join(parts)


def group_drawing(b: Box, ids: dict[str, str]) -> str:
    """One group's own drawing, for its kernel's section."""
    if not b.members:
        return ""
    width = max(m.x for m in b.members) + NODE_W + PAD
    height = max(m.y for m in b.members) + NODE_H + PAD
    return (f'<svg class="group-graph" '
            f'width="{width:.0f}" height="{height - HEAD + PAD:.0f}" '
            f'viewBox="0 {HEAD - PAD:.1f} {width:.1f} {height - HEAD + PAD:.1f}" '
            f'style="--hue: {hue(b.group or 0)}">{members(b, ids, 0.0, 0.0)}</svg>')


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n - 1] + "\u2026"


def bars(rows: list[tuple[str, float]], unit: str = "ms") -> str:
    """A horizontal bar chart of (label, value) rows."""
    if not rows:
        return ""
    top = max(v for _, v in rows) or 1.0
    width, row_h, label_w = 560.0, 22.0, 170.0
    parts = [f'<svg class="bars" width="{width:.0f}" '
             f'height="{row_h * len(rows) + 6:.0f}">']
    for i, (label, value) in enumerate(rows):
        y = i * row_h + 3
        w = (width - label_w - 90) * value / top
        parts.append(f'<text class="bar-label" x="{label_w - 6:.0f}" y="{y + 15:.0f}">'
                     f'{esc(label)}</text><rect class="bar" x="{label_w:.0f}" y="{y:.0f}" '
                     f'width="{max(w, 1.0):.1f}" height="{row_h - 6:.0f}"/>'
                     f'<text class="bar-value" x="{label_w + max(w, 1.0) + 6:.1f}" '
                     f'y="{y + 15:.0f}">{value:.3g} {esc(unit)}</text>')
    parts.append("</svg>")
    return "".join(parts)


_ARROW = ('<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" '
          'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
          '<path d="M0 0 L10 5 L0 10 z" class="arrow"/></marker></defs>')
