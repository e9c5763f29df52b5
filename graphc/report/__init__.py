"""One HTML page per compiled signature: what graphc did, in one file that works opened
from disk (inline CSS and JS, no server, no network).

The page holds the summary (signature, kernels, each stage's compile time), the user's
source with each line linked to the nodes it made, the IR after each pass with its diff
to the one before (and the pass's time), the optimized graph drawn as SVG (layout.py:
fusion groups as coloured clusters; past 300 nodes, one box per group that opens its
kernel), one section per kernel with its generated numpy/C/Triton lines linked back to
their IR nodes, the retrace history, and the timings (compile stages, and
`graphc.benchmark`'s eager and compiled times where it ran).

`Lowered.report(path)` writes the page of one signature; GRAPHC_DUMP=DIR writes one
beside each signature's text dumps, and `DIR/index.html` listing them.

>>> import graphc, numpy as np, tempfile, os
>>> low = graphc.compile(lambda x: np.tanh(x) * 2.0).lower(np.ones(4, np.float32))
>>> path = low.report(os.path.join(tempfile.mkdtemp(), "tanh.html"))
>>> text = open(path).read()
>>> text.startswith("<!doctype html>"), 'class="cluster' in text, "http" in text.split("<body>")[1]
(True, True, False)
"""
from __future__ import annotations

import html
import os
import re
from pathlib import Path
from typing import Any

from graphc.report import sections
from graphc.report import layout as layouts

_HERE = Path(__file__).resolve().parent
_FILE_MODE = 0o600  # a report holds the user's source and constants: owner-only


def render(low: Any, where: str = "") -> str:
    """The page of `low` (a `graphc.Lowered`) as text; `where` is the function's
    file:line (else the first traced line's)."""
    graph = low.optimized
    drawing = layouts.layout(graph)
    stages = dict(low.stages)
    ids = sections.value_ids(stages)
    title = low.graph.name
    if not where:
        first = next((n.loc for n in low.graph.nodes if n.loc is not None), None)
        where = f"{first.file}:{first.line}" if first is not None else ""
    body = [sections.summary(low, title, where, drawing),
            sections.source(list(stages.values()), ids),
            sections.overview(drawing, graph.groups or [], ids),
            sections.kernels(low, drawing, ids),
            sections.passes(stages, low.pass_seconds, ids),
            sections.retraces(list(getattr(low, "retraces", []) or [])),
            sections.timings(low)]
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t in (
        ("summary", "Summary"), ("source", "Source"), ("overview", "Graph"),
        ("kernels", "Kernels"), ("passes", "Passes"), ("retraces", "Retraces"),
        ("timings", "Timings")))
    return _page(f"graphc: {title}", nav, "\n".join(body))


def _page(title: str, nav: str, body: str) -> str:
    css = (_HERE / "page.css").read_text()
    js = (_HERE / "page.js").read_text()
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>\n{css}</style></head>"
            f"<body><nav>{nav}</nav><main>\n{body}\n</main><script>\n{js}</script>"
            f"</body></html>\n")


def write_report(low: Any, path: str | os.PathLike, where: str = "") -> Path:
    """Write the page of `low` to `path` (owner-only); returns the path."""
    path = Path(path)
    text = render(low, where)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


def index_page(entries: list[dict]) -> str:
    """`index.html` of a dump folder: one row per compiled signature (its entry in
    index.json: function, source, signature, compile time, kernels, page)."""
    esc = html.escape
    rows = []
    for e in entries:
        page = e.get("report")
        name = esc(str(e.get("qualname") or e.get("function") or "?"))
        # index.json is read back from disk: a link only to a page name graphc makes
        safe = isinstance(page, str) and re.fullmatch(r"[A-Za-z0-9_.-]+\.html", page)
        link = f'<a href="{esc(page)}">{name}</a>' if safe else name
        seconds = e.get("compile_seconds")
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in (
            link, esc(str(e.get("source") or "")),
            esc(", ".join(map(str, e.get("signature") or []))),
            esc(f"{seconds * 1e3:.1f} ms" if isinstance(seconds, (int, float)) else ""),
            esc(str(e.get("kernels", ""))), esc(str(e.get("failed", ""))))) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("function", "source", "signature", "compile",
                                             "kernels", "failed in"))
    body = (f'<section id="index"><h1>graphc compiles</h1><table class="index">'
            f'<tr>{head}</tr>{"".join(rows)}</table></section>')
    return _page("graphc: compiled functions", '<a href="#index">Index</a>', body)
