"""A fused graph's text: each fusion group a kernel region headed by what crosses its
boundary; it parses back into the same groups, and bad regions are parse errors."""
import random
import re

import numpy as np
import pytest

import graphc
from graphc.backends import get
from graphc.ir import group_boundaries, parse

F32 = np.float32
_HEADER = re.compile(r"  (?:(?P<outs>%[^=]*) = )?kernel k(?P<i>\d+) (?P<kind>\w+) "
                     r"\((?P<ins>[^)]*)\) \{")
_DEF = re.compile(r"^\s*(%[\w.]+(?:: \w+\[[\d,]*\])?(?:, %[\w.]+: \w+\[[\d,]*\])*) = ")


def softmax(x):
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def mlp_loss(x, w1, b1, w2):
    h = np.tanh(x @ w1 + b1)
    return np.sum((h @ w2) ** 2) / x.shape[0]


def _softmax_case(rng):
    return graphc.compile(softmax), (rng.standard_normal((37, 19)).astype(F32),)


def _mlp_case(rng):
    args = (rng.standard_normal((12, 8)).astype(F32), rng.standard_normal((8, 16)).astype(F32),
            rng.standard_normal(16).astype(F32), rng.standard_normal((16, 3)).astype(F32))
    return graphc.compile(graphc.value_and_grad(mlp_loss, argnums=(1, 2, 3))), args


CASES = {"softmax": _softmax_case, "mlp value_and_grad": _mlp_case}


def _membership(graph):
    return [(g.kind, [n.outputs[0].name for n in g.nodes], g.notes) for g in graph.groups]


@pytest.mark.parametrize("case", CASES)
def test_fused_graph_round_trips_with_its_groups(case, rng):
    f, args = CASES[case](rng)
    low = f.lower(*args)
    fused = low.optimized
    text = str(fused)
    again = parse(text)
    again.verify()
    assert str(again) == text
    assert _membership(again) == _membership(fused)
    # the parsed groups drive codegen exactly as the originals: the same program, and
    # it computes what the compiled function (checked against the interpreter) does
    exe = get("numpy").compile_graph(again)
    assert exe.source == low.source
    got, want = exe.fn(*args), _flat(f(*args))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def _flat(result):
    if isinstance(result, tuple):
        return [a for r in result for a in _flat(r)]
    return [result]


def _uses_outside(text_lines, defined):
    """Names read on lines outside a region's body (other bodies, the return line)."""
    used = set()
    for line in text_lines:
        rhs = line.split("#")[0]
        if _DEF.match(rhs):
            rhs = rhs[_DEF.match(rhs).end():]
        elif " = kernel " in rhs or rhs.lstrip().startswith("kernel "):
            continue  # a header names its inputs, which the body lines read anyway
        used |= set(re.findall(r"%([\w.]+)", rhs))
    return [n for n in defined if n in used]


@pytest.mark.parametrize("case", CASES)
def test_region_headers_list_what_crosses_each_kernel(case, rng):
    # an independent reading of the printed text: every region's inputs are the names
    # its body reads and does not define, its outputs the names it defines that any
    # line outside it reads, and nothing else stands outside a region but constants
    f, args = CASES[case](rng)
    fused = f.lower(*args).optimized
    lines = str(fused).splitlines()
    assert lines[0].endswith(" fused {") and lines[-2].startswith("  return ")
    heads = [i for i, ln in enumerate(lines) if _HEADER.match(ln)]
    assert len(heads) == sum(g.kind != "source" for g in fused.groups)
    for ln in lines[1:heads[0]]:
        assert " = const " in ln
    seen_nodes = 0
    for k, start in enumerate(heads):
        head = _HEADER.match(lines[start])
        end = lines.index("  }", start)
        body = [ln for ln in lines[start + 1:end] if not ln.lstrip().startswith("# note:")]
        assert all(ln.startswith("    %") and _DEF.match(ln) for ln in body)
        assert lines[start].endswith(f"# {len(body)} op" + ("" if len(body) == 1 else "s"))
        seen_nodes += len(body)
        defined = [n for ln in body for n in re.findall(r"%([\w.]+):", ln.split(" = ")[0])]
        read = []
        for ln in body:
            for n in re.findall(r"%([\w.]+)", ln.split("#")[0].split(" = ", 1)[1]):
                if n not in defined and n not in read:
                    read.append(n)
        assert head["ins"] == ", ".join("%" + n for n in read)
        outside = lines[1:start] + lines[end + 1:]
        outs = _uses_outside(outside, defined)
        assert (head["outs"] or "") == ", ".join("%" + n for n in outs)
        assert int(head["i"]) == k + (fused.groups[0].kind == "source")
        assert head["kind"] == fused.groups[int(head["i"])].kind
    assert seen_nodes + sum(len(g.nodes) for g in fused.groups if g.kind == "source") \
        == len(fused.nodes)


def test_notes_print_inside_their_kernel(rng):
    f, args = _mlp_case(rng)
    fused = f.lower(*args).optimized
    text = str(fused)
    noted = [(i, g) for i, g in enumerate(fused.groups) if g.notes]
    assert noted, "the mlp's backward has matmuls that fusion keeps apart, with reasons"
    for i, g in noted:
        region = text[text.index(f"kernel k{i} "):]
        region = region[:region.index("\n  }")]
        assert all(f"# note: {note}" in region for note in g.notes)


def test_fused_graphs_of_fuzzed_programs_round_trip():
    from graphc.fuzz.builder import Chooser, build
    from graphc.passes.pipeline import run
    rnd = random.Random(11)
    for _ in range(60):
        graph, _ = build(Chooser.from_random(random.Random(rnd.randrange(2**32))), 8)
        fused = run(graph)[-1].graph
        assert fused.groups is not None
        again = parse(str(fused))
        again.verify()
        assert str(again) == str(fused)
        assert _membership(again) == _membership(fused)
        assert [[v.name for v in b.inputs + b.outputs] for b in group_boundaries(again)] \
            == [[v.name for v in b.inputs + b.outputs] for b in group_boundaries(fused)]


@pytest.mark.parametrize("fn", [lambda x: x, lambda x: np.float32(2.0) + np.zeros(3, F32)])
def test_fused_graphs_without_kernels_keep_their_groups(fn):
    fused = graphc.compile(fn).lower(np.ones(3, F32)).optimized
    again = parse(str(fused))
    assert again.groups is not None and _membership(again) == _membership(fused)
    assert str(again) == str(fused)


def test_dumped_fusion_stage_parses_with_its_groups(tmp_path, monkeypatch, rng):
    monkeypatch.setenv("GRAPHC_DUMP", str(tmp_path))
    f, args = _mlp_case(rng)
    f(*args)
    files = sorted(tmp_path.glob("*.ir"))
    assert any(p.name.endswith("-fusion.ir") for p in files)
    for p in files:
        g = parse(p.read_text())
        g.verify()
        assert (g.groups is not None) == p.name.endswith(("-fusion.ir", "optimized.ir"))


SOFTMAX_TEXT = """\
graph sm(%x: f32[4,6]) -> (f32[4,6], f32[4,1]) fused {
  %0: f32[] = const {value=1.0}
  %3, %4 = kernel k1 reduction (%x, %0) {
    # note: an example note
    %1: f32[4,6] = mul %x, %0
    %2: f32[4,6] = exp %1
    %3: f32[4,1] = sum %2 {axes=(1,), keepdims=true}
    %4: f32[4,6] = div %2, %3
  }
  %5 = kernel k2 elementwise (%4) {
    %5: f32[4,6] = neg %4
  }
  return %5, %3
}"""


def test_handwritten_fused_text_parses():
    g = parse(SOFTMAX_TEXT)
    g.verify()
    assert _membership(g) == [("source", ["0"], ()),
                              ("reduction", ["1", "2", "3", "4"], ("an example note",)),
                              ("elementwise", ["5"], ())]
    assert str(parse(str(g))) == str(g)


def _edit(old, new):
    assert old in SOFTMAX_TEXT
    return SOFTMAX_TEXT.replace(old, new)


@pytest.mark.parametrize("text, message", [
    (_edit("(%x, %0) {", "(%x) {"),
     r"line 3: kernel k1 declares inputs \(%x\) but its body reads \(%x, %0\) from "
     "outside it"),
    (_edit("(%x, %0) {", "(%0, %x) {"), "line 3: kernel k1 declares inputs"),
    (_edit("%3, %4 = kernel", "%4 = kernel"),
     r"line 3: kernel k1 declares outputs \(%4\) but .* are \(%3, %4\)"),
    (_edit("%5 = kernel k2", "%5, %9 = kernel k2"), "line 10: kernel k2 declares outputs"),
    (_edit("kernel k2", "kernel k7"), "line 10: expected kernel k2, found k7"),
    (_edit("  }\n  %5 =", "  %5 ="), "line 9: a kernel inside kernel k1"),
    (_edit("  }\n  return", "  return"), "line 12: return inside kernel k2"),
    (_edit("  }\n  return", "  }\n  %6: f32[4,6] = neg %5\n  return"),
     "line 13: a node outside every kernel after the first kernel"),
    (_edit(") fused {", ") {"), "line 3: a kernel region in a graph not marked fused"),
    (_edit("    %5: f32[4,6] = neg %4\n", ""), "line 11: kernel k2 is empty"),
    (SOFTMAX_TEXT.rsplit("\n", 3)[0], "line 10: kernel k2 is never closed"),
    (SOFTMAX_TEXT.rsplit("\n", 1)[0], "line 13: the graph is never closed"),
    (_edit("%5: f32[4,6] = neg %4", "%4: f32[4,6] = neg %4"), "line 11: %4 is defined twice"),
    (_edit("kernel k2 elementwise (%4) {", "kernel k2 elementwise (%4) { ("),
     "line 10: unexpected"),
    (_edit("kernel k2 elementwise", "kernel k2 (%4)"), "line 10: expected name"),
    (_edit("%5 = kernel k2", "%5 = %6 = kernel k2"), "line 10: expected kernel, found %6"),
    (_edit("%5 = kernel k2", "%5 kernel k2"), "line 10: expected =, found kernel"),
])
def test_bad_regions_are_parse_errors_naming_the_line(text, message):
    with pytest.raises(graphc.IRParseError, match=message):
        parse(text)
