"""The HTML page of a compiled signature (graphc/report), as text: what it holds, that
it needs nothing from outside, that the user's strings are escaped, and that
GRAPHC_DUMP writes one per signature with an index. tests/test_report_browser.py opens
pages in Chromium."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import graphc
from graphc.ops import OPS, Kind
from graphc.report import layout as layout_module
from graphc.report import sections
from tests.report_programs import mlp_args as _mlp_args, mlp_step, softmax

pytestmark = pytest.mark.usefixtures("no_compile_cache")  # the pages of cold compiles


def _page(low) -> str:
    from graphc.report import render
    return render(low)


def test_the_page_holds_every_part_of_the_compile():
    low = graphc.compile(softmax).lower(np.ones((8, 10), np.float32))
    text = _page(low)
    groups = [g for g in low.optimized.groups if g.kind != "source"]
    assert text.count('class="cluster ') == len(groups)
    assert text.count('<details class="kernel"') == len(groups)
    for name in low.stages:
        assert f'<span class="pass-name">{name}' in text
    assert "def softmax(x):" in text  # the user's source
    assert re.search(r'class="src-line linked" data-node="n\d', text)
    assert "_runc(" in text or "np.exp" in text  # the generated code, per kernel
    assert "Timings" in text and "compile: trace" in text


def test_the_page_needs_nothing_from_outside():
    text = _page(graphc.compile(softmax).lower(np.ones((8, 10), np.float32)))
    assert "http:" not in text and "https:" not in text  # no network, no CDN
    assert "<link" not in text and "src=" not in text  # CSS and JS are inline
    assert text.count("<style>") == 1 and text.count("<script>") == 1


def test_every_kernel_shows_its_generated_lines_linked_to_its_nodes():
    low = graphc.compile(mlp_step, options={"small_group": 0}).lower(*_mlp_args())
    code = sections.kernel_code(low.source, low.optimized)
    kernels = [i for i, g in enumerate(low.optimized.groups) if g.kind != "source"]
    missing = [i for i in kernels if not code.get(i)]
    assert not missing, f"groups without generated lines: {missing}"
    text = _page(low)
    linked = re.findall(r'<div class="code-line linked" data-node="(n\d+)">', text)
    assert len(linked) > len(kernels)


def test_hovering_shows_each_values_type_and_why_kernels_did_not_fuse():
    low = graphc.compile(mlp_step, options={"small_group": 0}).lower(*_mlp_args())
    text = _page(low)
    overview = text[text.index('<svg id="graph"'):text.index("</svg>")]
    titles = re.findall(r"<title>(.*?)</title>", overview, re.S)
    drawn = [n for n in low.optimized.nodes if OPS[n.op].kind is not Kind.SOURCE]
    for node in drawn:  # every node's title: its value, type and op (constants aside)
        value = node.outputs[0]
        assert any(t.startswith(f"%{value.name}: {value.type} = {node.op}")
                   for t in titles), value.name
    edges = re.findall(r'<path class="edge"[^>]*><title>(.*?)</title>', overview, re.S)
    assert edges and all("&#10;not fused: " in t and t.split("not fused: ")[1].strip()
                         for t in edges)


def test_native_and_block_kernels_are_split_into_their_groups():
    low = graphc.compile(softmax, options={"small_group": 0}).lower(
        np.ones((64, 100), np.float32))
    (gi,) = [i for i, g in enumerate(low.optimized.groups) if g.kind != "source"]
    lines = sections.kernel_code(low.source, low.optimized)[gi]
    if "_C_SOURCE" in low.source:
        assert any(ln.startswith("void _n0(") for ln in lines)  # the C function itself
    assert any("_runc(_n0" in ln or "_run(_k0" in ln for ln in lines)  # and its call


def test_each_pass_shows_its_diff_to_the_one_before():
    def twice(x):
        return np.exp(x) + np.exp(x)  # cse removes one exp
    low = graphc.compile(twice).lower(np.ones(4))
    before = str(low.stages["simplify"]).splitlines()
    after = str(low.stages["cse"]).splitlines()
    tagged = sections.diff_lines(before, after)
    assert [x for t, x in tagged if t == "del" and "exp" in x]
    assert [x for t, x in tagged if t == "same"] == [
        x for x in after if (("same", x) in tagged)]
    assert len([t for t, _ in tagged if t != "del"]) == len(after)  # all of after, in order
    text = _page(low)
    assert 'class="ir-line del"' in text and "-1 nodes" in text


def test_long_stages_show_their_changes_with_context():
    tagged = [("same", f"l{i}") for i in range(5000)]
    tagged[2500] = ("add", "new")
    shown = sections._hunks(tagged)
    assert ("add", "new") in shown and len(shown) < 20
    assert shown[0][0] == "skip" and shown[-1][0] == "skip"


def test_user_strings_are_escaped(tmp_path):
    source = ("import numpy as np\n"
              "def f(x):  # </pre><script>alert('in a comment')</script>\n"
              "    return np.tanh(x) * 2.0\n")
    path = tmp_path / "<b>odd&name<i>.py"
    path.write_text(source)
    ns: dict = {}
    exec(compile(source, str(path), "exec"), ns)
    ns["f"].__name__ = "f<script>"
    text = _page(graphc.compile(ns["f"]).lower(np.ones(3, np.float32)))
    assert "<script>alert" not in text and "&lt;script&gt;alert" in text
    assert "<b>odd" not in text and "&lt;b&gt;odd&amp;name" in text
    assert "f<script>" not in text
    assert text.count("<script>") == 1  # the page's own


def test_without_dot_the_layered_layout_draws_it(monkeypatch):
    monkeypatch.setattr(layout_module.shutil, "which", lambda name: None)
    low = graphc.compile(mlp_step).lower(*_mlp_args())
    d = layout_module.layout(low.optimized)
    assert d.engine == "networkx" and "not installed" in d.why_engine
    _no_overlaps(d)
    assert "networkx layers (graphviz&#x27;s dot is not installed)" in _page(low)


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot is not installed")
def test_dot_lays_out_the_groups():
    low = graphc.compile(mlp_step).lower(*_mlp_args())
    d = layout_module.layout(low.optimized)
    assert d.engine == "dot" and d.expanded
    _no_overlaps(d)
    assert all(e.points for e in d.edges)


def _no_overlaps(d) -> None:
    boxes = d.boxes
    for i, a in enumerate(boxes):
        assert 0 <= a.x and a.x + a.width <= d.width + 1 and 0 <= a.y <= d.height
        for b in boxes[i + 1:]:
            apart = a.x + a.width <= b.x or b.x + b.width <= a.x or \
                a.y + a.height <= b.y or b.y + b.height <= a.y
            assert apart, f"{a.key} and {b.key} overlap"


def test_large_graphs_collapse_each_group_into_one_box():
    def chain(h, w):
        for _ in range(90):
            h = np.tanh(h @ w) * 0.5 + h
        return np.sum(h)
    low = graphc.compile(chain).lower(np.ones((4, 8), np.float32), np.eye(8, dtype=np.float32))
    d = layout_module.layout(low.optimized, expand_up_to=100)
    assert not d.expanded
    text = _page(low)
    assert "each fusion group is one box" in text
    overview = text[text.index('<svg id="graph"'):text.index("</svg>")]
    assert 'class="node"' not in overview  # the nodes are drawn in the kernels' sections
    assert text.count('class="group-graph"') >= 90


def test_graphc_dump_writes_a_page_per_signature_and_an_index(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_DUMP", str(tmp_path))
    f = graphc.compile(softmax)
    f(np.ones((8, 10), np.float32))
    f(np.ones((4, 10), np.float32))  # a retrace
    pages = sorted(tmp_path.glob("softmax.*.html"))
    assert [p.name for p in pages] == ["softmax.0.html", "softmax.1.html"]
    assert "Traced once" in pages[0].read_text()
    assert "shape changed from float32[8, 10] to float32[4, 10]" in pages[1].read_text()
    index = (tmp_path / "index.html").read_text()
    assert index.count('<a href="softmax.') == 2
    entries = json.loads((tmp_path / "index.json").read_text())
    assert all(e["kernels"] == 1 and e["compile_seconds"] > 0 for e in entries)
    assert (pages[0].stat().st_mode & 0o777) == 0o600


def test_an_index_json_from_elsewhere_cannot_link_anywhere():
    from graphc.report import index_page
    text = index_page([{"function": "f", "report": "javascript:alert(1)"},
                       {"function": "<g>", "report": "ok.html"}])
    assert "javascript:" not in text and '<a href="ok.html">&lt;g&gt;</a>' in text


def test_benchmark_timings_join_the_dumped_page(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_DUMP", str(tmp_path))
    graphc.benchmark(softmax, np.ones((8, 10), np.float32), repeats=3, warmup=1)
    (page,) = tmp_path.glob("softmax.*.html")
    text = page.read_text()
    assert "graphc.benchmark" in text and "compiled" in text.split("graphc.benchmark")[1]
    # rewritten, the page still names the function's definition, not its first op
    line = softmax.__code__.co_firstlineno
    assert f"report_programs.py:{line}</td>" in text


def test_the_index_lists_function_source_signature_time_and_kernels(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_DUMP", str(tmp_path))
    graphc.compile(softmax)(np.ones((8, 10), np.float32))
    index = (tmp_path / "index.html").read_text()
    line = softmax.__code__.co_firstlineno
    for cell in ("softmax", f"report_programs.py:{line}", "%x: f32[8,10]", "1</td>"):
        assert cell in index, cell
    assert re.search(r"<td>\d+(\.\d+)? ms</td>|<td>[\d.]+ s</td>", index)


def test_report_writes_the_page_where_asked(tmp_path):
    low = graphc.compile(softmax).lower(np.ones((8, 10), np.float32))
    path = low.report(tmp_path / "one.html")
    assert Path(path).read_text().startswith("<!doctype html>")
