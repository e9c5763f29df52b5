"""The report's sections, each an HTML fragment: the summary, the user's source, the IR
after each pass with its diff, the overview drawing, one section per kernel with its
generated source, the retrace history and the timings.

Everything shown is escaped (`svg.esc`); a line that names IR nodes carries
`data-node` ids (`ids`: value name -> "n<k>", the report's own), which page.js uses to
highlight a node everywhere it appears.
"""
from __future__ import annotations

import difflib
import linecache
import re
from typing import Any

from graphc.ir import Graph
from graphc.report import svg
from graphc.report.layout import Drawing
from graphc.report.svg import esc

_DEFINED = re.compile(r"^\s*%([^\s:=]+)(?::| =)")  # an IR line's defined value
_NAMED = re.compile(r"%([A-Za-z0-9_.]+)")
_CALL = re.compile(r"#\s*(_[nk]\d+) \(group (\d+):")  # numpy: a kernel's call
_LAUNCH = re.compile(r"\blaunch_(k(\d+)\w*)\(")  # triton: a kernel's launch in the program
_MAX_SOURCE_LINES = 400  # of one file around the traced lines


def value_ids(stages: dict[str, Graph]) -> dict[str, str]:
    """One id per value name over every stage (a pass keeps the names it does not
    rewrite, so the same name is the same value from stage to stage)."""
    ids: dict[str, str] = {}
    for graph in stages.values():
        for v in graph.inputs:
            ids.setdefault(v.name, f"n{len(ids)}")
        for node in graph.nodes:
            for v in node.outputs:
                ids.setdefault(v.name, f"n{len(ids)}")
    return ids


def summary(low: Any, title: str, where: str, drawing: Drawing) -> str:
    before, after = low.kernels
    rows = [("function", title), ("defined at", where or "(unknown)"),
            ("signature", ", ".join(f"%{v.name}: {v.type}" for v in low.graph.inputs)),
            ("outputs", ", ".join(str(v.type) for v in low.graph.outputs)),
            ("ops as traced / kernels", f"{before} / {after}"),
            # views and constants are groups too, drawn as boxes, but run no kernel
            ("fusion groups drawn", str(sum(b.group is not None for b in drawing.boxes))),
            ("compile", ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in
                                  low.stage_seconds.items())),
            ("compile cache", low.cache or "(not used)"),
            ("backend", type(low.executable).__module__.rsplit(".", 2)[-2]),
            ("layout", "graphviz dot" if drawing.engine == "dot" else
             f"networkx layers ({drawing.why_engine})")]
    cells = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    return f'<section id="summary"><h1>{esc(title)}</h1><table>{cells}</table></section>'


def source(graphs: list[Graph], ids: dict[str, str]) -> str:
    """The user's source around the lines the graph came from, each line naming the
    nodes it made."""
    by_line: dict[tuple[str, int], set[str]] = {}
    for graph in graphs:
        for node in graph.nodes:
            if node.loc is not None and node.outputs:
                by_line.setdefault((node.loc.file, node.loc.line), set()).add(
                    ids.get(node.outputs[0].name, ""))
    files = sorted({f for f, _ in by_line})
    parts = ['<section id="source"><h2>Source</h2>']
    if not files:
        parts.append("<p>No node of this graph names a Python line: a graph read from "
                     "text, or one captured through torch (its backward, or ops that "
                     "torch's capture made).</p>")
    for file in files:
        lines = [ln for f, ln in by_line if f == file]
        lo, hi = max(1, min(lines) - 2), max(lines) + 2
        hi = min(hi, lo + _MAX_SOURCE_LINES)
        rows = []
        for n in range(lo, hi + 1):
            text = linecache.getline(file, n)
            if not text and n > max(lines):
                break
            nodes = " ".join(sorted(by_line.get((file, n), ())))
            cls = "src-line linked" if nodes else "src-line"
            rows.append(f'<div class="{cls}" data-node="{nodes}"><span class="ln">{n}</span>'
                        f'{esc(text.rstrip())}</div>')
        parts.append(f'<h3>{esc(file)}</h3><pre class="code">{"".join(rows)}</pre>')
    parts.append("</section>")
    return "".join(parts)


def diff_lines(before: list[str], after: list[str]) -> list[tuple[str, str]]:
    """(tag, line) for `after` against `before`: "same", "add" or "del", comparing lines
    without their comments (alignment and source lines move)."""
    def key(line: str) -> str:
        return line.split("  #")[0].strip()
    matcher = difflib.SequenceMatcher(None, [key(x) for x in before],
                                      [key(x) for x in after])
    out: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out += [("same", x) for x in after[j1:j2]]
            continue
        out += [("del", x) for x in before[i1:i2]]
        out += [("add", x) for x in after[j1:j2]]
    return out


def passes(stages: dict[str, Graph], seconds: dict[str, float], ids: dict[str, str]) -> str:
    parts = ['<section id="passes"><h2>IR after each pass</h2>',
             '<p class="hint">Added nodes are green, removed ones red and struck out; '
             'click a line to find its node everywhere.</p>']
    previous: list[str] | None = None
    for index, (name, graph) in enumerate(stages.items()):
        lines = str(graph).splitlines()
        tagged = [("same", x) for x in lines] if previous is None else \
            diff_lines(previous, lines)
        # nodes by name: a node whose line changed (its inputs renamed) is neither
        was = {} if previous is None else _defined_names(previous)
        now = _defined_names(lines)
        added, removed = len(now.keys() - was.keys()), len(was.keys() - now.keys())
        took = seconds.get(name)
        head = f"{name}" + ("" if took is None or name == "traced" else
                            f" ({took * 1e3:.2f} ms)")
        counts = "" if previous is None else f" +{added} -{removed} nodes"
        rows = "".join(_ir_line(t, x, ids) for t, x in _hunks(tagged))
        parts.append(f'<details class="pass" data-pass="{index}" {"open" if index == len(stages) - 1 else ""}>'
                     f'<summary><span class="pass-name">{esc(head)}</span>'
                     f'<span class="counts">{esc(counts)}</span></summary>'
                     f'<pre class="code ir">{rows}</pre></details>')
        previous = lines
    parts.append("</section>")
    return "".join(parts)


FULL_IR_LINES = 2000  # a longer stage shows its changes with CONTEXT lines around
CONTEXT = 3


def _hunks(tagged: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """All of a short stage; of a long one, its changed lines with CONTEXT lines around
    them, each cut marked by a "skip" line."""
    if len(tagged) <= FULL_IR_LINES:
        return tagged
    changed = [i for i, (t, _) in enumerate(tagged) if t != "same"]
    keep = set()
    for i in changed:
        keep.update(range(max(0, i - CONTEXT), min(len(tagged), i + CONTEXT + 1)))
    if not changed:
        keep = set(range(min(len(tagged), FULL_IR_LINES // 4)))
    out, last = [], -1
    for i in sorted(keep):
        if i != last + 1:
            out.append(("skip", f"... {i - last - 1} unchanged lines ..."))
        out.append(tagged[i])
        last = i
    if last < len(tagged) - 1:
        out.append(("skip", f"... {len(tagged) - 1 - last} unchanged lines ..."))
    return out


def _defined_names(lines: list[str]) -> dict[str, str]:
    """The values an IR text's node lines define (a region header defines none)."""
    out = {}
    for line in lines:
        m = _DEFINED.match(line)
        if m and " = kernel " not in line:
            out[m.group(1)] = line
    return out


def _ir_line(tag: str, line: str, ids: dict[str, str]) -> str:
    m = _DEFINED.match(line)
    node = ids.get(m.group(1), "") if m else ""
    return f'<div class="ir-line {tag}" data-node="{node}">{esc(line)}</div>'


def overview(drawing: Drawing, groups, ids: dict[str, str]) -> str:
    how = ("Each fusion group is a coloured cluster of its nodes; hover a node for its "
           "type, an arrow for the values it carries and why its two kernels did not "
           "fuse; click a cluster for its kernel." if drawing.expanded else
           "The graph is large, so each fusion group is one box: click a box to expand "
           "it (its nodes, over the box; click its title to close it), hover an arrow for "
           "the values it carries and why its two kernels did not fuse.")
    return (f'<section id="overview"><h2>Graph</h2><p class="hint">{esc(how)}</p>'
            f'<div class="graph-wrap">{svg.overview(drawing, groups, ids)}</div></section>')


def kernels(low: Any, drawing: Drawing, ids: dict[str, str]) -> str:
    from graphc.passes.schedule import plan_kernels
    graph = low.optimized
    groups = graph.groups or []
    plans = {p.index: p for p in plan_kernels(graph)}
    code = kernel_code(low.source, graph)
    notes = getattr(low.executable, "notes", {}) or {}
    boxes = {b.group: b for b in drawing.boxes if b.group is not None}
    parts = ['<section id="kernels"><h2>Kernels</h2>']
    for gi, group in enumerate(groups):
        if group.kind == "source":
            continue
        plan = plans.get(gi)
        lines = [f"{len(group.nodes)} ops: " + ", ".join(n.op for n in group.nodes)]
        if plan is not None and plan.form is not None:
            lines.append("plan: " + plan.describe())
        lines += list(group.notes) + list(notes.get(gi, []))
        info = "".join(f"<li>{esc(x)}</li>" for x in lines)
        body = code.get(gi) or ["# (no generated line names this group's nodes)"]
        rows = "".join(_code_line(x, ids) for x in body)
        picture = svg.group_drawing(boxes[gi], ids) if gi in boxes else ""
        parts.append(f'<details class="kernel" id="kernel-{gi}" data-group="{gi}" '
                     f'style="--hue: {svg.hue(gi)}"><summary>k{gi} {esc(group.kind)}'
                     f'</summary><ul>{info}</ul>{picture}'
                     f'<pre class="code kernel-source">{rows}</pre></details>')
    parts.append("</section>")
    return "".join(parts)


def _code_line(line: str, ids: dict[str, str]) -> str:
    comment = re.split(r"#|//", line, maxsplit=1)
    names = _NAMED.findall(comment[1]) if len(comment) > 1 else []
    node = ids.get(names[0], "") if names else ""
    cls = "code-line linked" if node else "code-line"
    return f'<div class="{cls}" data-node="{node}">{esc(line)}</div>'


def kernel_code(source: str, graph: Graph) -> dict[int, list[str]]:
    """Each group's lines of the generated source: the kernel functions it calls (a
    numpy block kernel `_kN`, a native `_nN` inside the C, a Triton `kN_*` and its
    `launch_kN`), and the program's lines that run it or that name its nodes."""
    group_of = {v.name: gi for gi, g in enumerate(graph.groups or [])
                for n in g.nodes for v in n.outputs}
    blocks, program = _blocks(source.splitlines())
    out: dict[int, list[str]] = {}
    used: dict[int, list[str]] = {}
    for i, line in enumerate(program):
        call = _CALL.search(line)
        launch = _LAUNCH.search(line)
        if call:
            gi = int(call.group(2))
            used.setdefault(gi, []).append(call.group(1))
            out.setdefault(gi, []).extend(program[i:i + 2])
        elif launch:
            gi = int(launch.group(2))  # its kernel, then the wrapper that launches it
            used.setdefault(gi, []).extend([launch.group(1), "launch_" + launch.group(1)])
            out.setdefault(gi, []).append(line)
        elif "#" in line:
            names = _NAMED.findall(line.split("#", 1)[1])
            if names and names[0] in group_of:
                out.setdefault(group_of[names[0]], []).append(line)
    for gi, names in used.items():
        functions = [ln for name in dict.fromkeys(names) for ln in blocks.get(name, [])]
        out[gi] = functions + ([""] if functions else []) + out.get(gi, [])
    return out


def _blocks(lines: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """The named functions of a generated module (Python defs, with their decorators,
    and the C functions inside `_C_SOURCE`) and the last function's body (the program)."""
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    pending: list[str] = []  # decorators before a def
    in_c = False
    last = None
    for line in lines:
        if line.startswith("_C_SOURCE = "):
            in_c, current = True, None
            continue
        if in_c:
            if line.startswith('"""'):
                in_c, current = False, None
            elif re.match(r"^\w[\w\s\*]*\b(\w+)\(.*\)\s*\{$", line):
                name = re.match(r"^\w[\w\s\*]*?\b(\w+)\(", line).group(1)
                current = blocks.setdefault(name, [])
                current.append(line)
            elif current is not None:
                current.append(line)
                if line == "}":
                    current = None
            continue
        if line.startswith("@"):
            pending.append(line)
            continue
        m = re.match(r"^def (\w+)\(", line)
        if m:
            current = blocks.setdefault(m.group(1), [])
            current += pending + [line]
            pending, last = [], m.group(1)
        elif line and not line[0].isspace() and not line.startswith(")"):
            # (a signature over several lines closes with its `):` in column 0)
            current, pending = None, []
        elif current is not None:
            current.append(line)
    program = blocks.get(last, [])[1:] if last else []
    return blocks, program


def retraces(history: list[str]) -> str:
    if not history:
        body = "<p>Traced once: no earlier signature of this function was compiled.</p>"
    else:
        body = "".join(f'<pre class="retrace">{esc(t)}</pre>' for t in history)
    return f'<section id="retraces"><h2>Retrace history</h2>{body}</section>'


def timings(low: Any) -> str:
    rows = [(f"compile: {k}", v * 1e3) for k, v in low.stage_seconds.items()]
    parts = ['<section id="timings"><h2>Timings</h2>', svg.bars(rows)]
    runs = getattr(low, "timings", None) or {}
    if runs:
        parts += ["<h3>graphc.benchmark</h3>",
                  svg.bars([(k, v * 1e3) for k, v in runs.items()])]
    else:
        parts.append('<p class="hint">Run graphc.benchmark(f, *args) to add the eager '
                     "and compiled times here.</p>")
    profiled = sorted(getattr(low, "kernel_profile", None) or [], key=lambda r: -r.seconds)
    if profiled:
        parts += ["<h3>graphc.profile: each kernel's time per call"
                  + (" (the slowest 25)" if len(profiled) > 25 else "") + "</h3>",
                  svg.bars([(f"k{r.index} {r.kind}", r.seconds * 1e3) for r in profiled[:25]])]
    else:
        parts.append('<p class="hint">Run graphc.profile(f, *args) to add each kernel\'s '
                     "time here.</p>")
    parts.append("</section>")
    return "".join(parts)
