"""Symbolic dimensions (issue 14 item 1): the size algebra, the shape rules on symbols
against the same rules on the sizes they stand for, the text form, the verifier, and
traces with symbolic sizes (their guards, and their graphs run at several sizes
against numpy)."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import graphc
from graphc import ops
from graphc.errors import GraphcError, ShapeError, UnsupportedError
from graphc.frontend.trace import trace_function
from graphc.ir import Attrs, TensorType, parse
from graphc.ir.sizes import bind, specialize, substitute_graph
from graphc.ir.symbols import (MIN_SIZE, ShapeEnv, Sym, SymbolicError, exact_quotient,
                               parse_dim)
from graphc.passes.pipeline import resolve, run

B, S, C = Sym.var("B"), Sym.var("S"), Sym.var("C")
NAMES = ("B", "S", "C")

# ---- the algebra: a polynomial evaluates as the ints it stands for --------------------

monomials = st.lists(st.sampled_from(NAMES), max_size=3).map(lambda m: tuple(sorted(m)))
polynomials = st.dictionaries(monomials, st.integers(-5, 5), max_size=4).map(
    lambda terms: Sym(terms) if any(m for m, c in terms.items() if c) else sum(
        c for m, c in terms.items() if not m))
all_sizes = st.fixed_dictionaries({n: st.integers(MIN_SIZE, 40) for n in NAMES})


def value(d, sizes):
    return d if type(d) is int else d.evaluate(sizes)


@settings(max_examples=300, deadline=None)
@given(polynomials, polynomials, all_sizes)
def test_arithmetic_evaluates_as_ints(a, b, sizes):
    assert value(a + b, sizes) == value(a, sizes) + value(b, sizes)
    assert value(a - b, sizes) == value(a, sizes) - value(b, sizes)
    assert value(a * b, sizes) == value(a, sizes) * value(b, sizes)
    product = a * b
    if type(b) is Sym or b != 0:
        q = exact_quotient(product, b)
        if q is not None:
            assert value(q, sizes) * value(b, sizes) == value(product, sizes)


@settings(max_examples=300, deadline=None)
@given(polynomials)
def test_text_reads_back(d):
    text = str(d)
    hi = d if type(d) is int else d.bounds()[1]
    if hi is not None and hi < 0:  # no size makes it a dimension
        with pytest.raises(ShapeError):
            parse_dim(text)
    else:
        assert parse_dim(text) == d and str(parse_dim(text)) == text


def test_normal_forms():
    assert B - B == 0 and type(B - B) is int
    assert str(2 * B * S - S + 3) == "2*B*S-S+3"
    assert (B * S * 64) // (64 * S) == B
    assert exact_quotient(2 * B + 2, B + 1) == 2
    assert exact_quotient(B + 1, B) is None
    with pytest.raises(SymbolicError):
        (B + 1) // 2


@pytest.mark.parametrize("text", ["", "B**2", "-B", "--B", "B+-S", "B+", "2 B", "B/2", "B-(S)",
                                  "__import__('os')", "x" * 300])
def test_dimension_text_outside_the_grammar_is_refused(text):
    with pytest.raises(ShapeError):
        parse_dim(text)


# ---- comparisons: proved from the least size, else answered and kept as guards -----

def test_comparisons_that_the_least_size_decides():
    assert B >= MIN_SIZE and B != 1 and B != 0 and not B < 2 and B * S > B
    assert B + 1 > B and 2 * B >= B + 2


def test_comparisons_that_depend_on_the_sizes_raise_outside_a_trace():
    with pytest.raises(SymbolicError):
        B < 64
    with pytest.raises(SymbolicError):
        int(B)
    assert (B == S) is False  # structural: not known equal (passes compare types so)


def test_a_trace_answers_from_its_sizes_and_keeps_guards():
    env = ShapeEnv({"B": 32, "S": 16})
    with env.tracing():
        assert B != S and B > S and not (S >= 20) and S == 16
    assert [str(g) for g in env.guards] == ["B != S", "B > S", "S < 20", "S == 16"]
    assert env.holds({"B": 32, "S": 16})
    for sizes in ({"B": 16, "S": 16}, {"B": 8, "S": 16}, {"B": 32, "S": 17},
                  {"B": 1, "S": 16}):
        assert not env.holds(sizes)


# ---- the shape rules: symbolic, then specialized, equals the rule on the sizes -------

RULES = [  # (op, input shapes, attrs)
    ("add", [(B, 1, 8), (S, 8)], {}),
    ("add", [(B, S), (B, S)], {}),
    ("sum", [(B, S, 4)], {"axes": (1,), "keepdims": True}),
    ("max", [(B, S)], {"axes": (0, 1), "keepdims": False}),
    ("reshape", [(B, S, 4)], {"shape": (B * S, 4)}),
    ("reshape", [(B, 6)], {"shape": (2 * B, 3)}),
    ("matmul", [(C, B, 16), (16, S)], {}),
    ("matmul", [(B, S), (S, 8)], {}),
    ("transpose", [(B, S, 3)], {"perm": (2, 0, 1)}),
    ("broadcast_to", [(1, S)], {"shape": (B, S)}),
    ("slice", [(B, S)], {"starts": (1, 0), "stops": (B, S), "steps": (1, 1)}),
    ("slice", [(B, 2 * S)], {"starts": (0, 0), "stops": (B - 1, 2 * S), "steps": (1, 2)}),
    ("slice", [(B, 8)], {"starts": (B - 1, 0), "stops": (-1, 8), "steps": (-1, 1)}),
    ("concat", [(B, 4), (S, 4), (3, 4)], {"axis": 0}),
    ("pad", [(B, S)], {"widths": ((1, 2), (0, 3)), "value": 0.0}),
]


@pytest.mark.parametrize("op, shapes, attrs", RULES,
                         ids=[f"{r[0]}-{i}" for i, r in enumerate(RULES)])
def test_rules_on_symbols_agree_with_the_rules_on_sizes(op, shapes, attrs):
    types = tuple(TensorType(s, "float32") for s in shapes)
    (out,) = ops.infer_types(op, types, Attrs(attrs))
    for sizes in ({"B": 2, "S": 3, "C": 2}, {"B": 7, "S": 5, "C": 3}, {"B": 64, "S": 9, "C": 4}):
        concrete = tuple(TensorType(specialize(s, sizes), "float32") for s in shapes)
        (want,) = ops.infer_types(op, concrete, Attrs({k: specialize(v, sizes)
                                                      for k, v in attrs.items()}))
        assert specialize(out.shape, sizes) == want.shape
        # and numpy agrees with both
        arrays = [np.zeros(t.shape, np.float32) for t in concrete]
        got = ops.OPS[op].impl(*arrays, **{k: specialize(v, sizes) for k, v in attrs.items()})
        assert np.shape(got) == want.shape


@pytest.mark.parametrize("op, shapes, attrs, words", [
    ("add", [(B, 4), (S, 5)], {}, "do not broadcast"),
    ("matmul", [(B, S), (B, 4)], {}, "inner dimensions differ"),
    ("reshape", [(B, 4)], {"shape": (B, 3)}, "cannot reshape"),
    ("concat", [(B, 4), (B, S)], {"axis": 0}, "differ outside axis"),
])
def test_rules_refuse_what_no_size_makes_right(op, shapes, attrs, words):
    # outside a trace, two sizes that are not the same polynomial are different
    with pytest.raises(ShapeError, match=words):
        ops.infer_types(op, tuple(TensorType(s, "float32") for s in shapes), Attrs(attrs))


# ---- the text form and the verifier ---------------------------------------------------

TEXT = """graph f(%x: f32[B,64], %y: f32[64,S]) -> (f32[64*B,S], f32[B-1,S]) {
  %0: f32[B,S] = matmul %x, %y
  %1: f32[B,1,S] = reshape %0 {shape=(B, 1, S)}
  %2: f32[B,64,S] = broadcast_to %1 {shape=(B, 64, S)}
  %3: f32[64*B,S] = reshape %2 {shape=(64*B, S)}
  %4: f32[B-1,S] = slice %0 {starts=(1, 0), steps=(1, 1), stops=(B, S)}
  return %3, %4
}"""


def test_a_symbolic_graph_prints_and_reads_back():
    g = parse(TEXT)
    assert str(parse(str(g))) == str(g)
    assert str(g.outputs[0].type) == "f32[64*B,S]"
    assert g.nodes[3].attrs["shape"] == (64 * B, S)


@pytest.mark.parametrize("old, new, words", [
    ("%x: f32[B,64]", "%x: f32[B**2,64]", "line 1"),
    ("%4: f32[B-1,S] = slice", "%4: f32[B-1,T] = slice", "T"),
    ("{shape=(B, 1, S)}", "{shape=(B, 1, Q)}", "Q"),
    ("%x: f32[B,64]", "%x: f32[2*B,64]", "no input's dimension"),
    ("%x: f32[B,64]", "%x: f32[B 64]", "operator is missing"),
])
def test_bad_symbolic_texts_name_their_line(old, new, words):
    assert old in TEXT
    with pytest.raises(GraphcError, match=words):
        parse(TEXT.replace(old, new, 1))


def test_a_graph_runs_at_every_size_of_its_symbols():
    g = parse(TEXT)
    rng = np.random.default_rng(0)
    for b, s in [(2, 3), (5, 2), (33, 17)]:
        x = rng.standard_normal((b, 64)).astype(np.float32)
        y = rng.standard_normal((64, s)).astype(np.float32)
        got3, got4 = graphc.interpret(g, x, y)
        z = x.astype(np.float64) @ y.astype(np.float64)
        # float32 matmul over 64 terms: |error| <= 64 * 2^-24 * sum |x||y|
        tol = 64 * 2.0**-24 * (np.abs(x).astype(np.float64) @ np.abs(y))
        assert np.all(np.abs(got3.reshape(b, 64, s) - z[:, None, :]) <= tol[:, None, :])
        assert np.all(np.abs(got4 - z[1:]) <= tol[1:])


def test_a_call_whose_sizes_do_not_fit_is_refused():
    g = parse(TEXT)
    with pytest.raises(graphc.errors.ArgumentError, match="%y"):
        graphc.interpret(g, np.zeros((3, 64), np.float32), np.zeros((63, 4), np.float32))
    assert bind([(B, 3), (B,)], [(5, 3), (5,)]) == ({"B": 5}, None)
    assert "specialized" in bind([(B,)], [(1,)])[1]
    assert "not 4" in bind([(B, 3), (B,)], [(5, 3), (4,)])[1]


def test_the_triton_backend_runs_a_symbolic_graph_at_any_size():
    import os
    os.environ.setdefault("TRITON_INTERPRET", "1")
    pytest.importorskip("torch")
    pytest.importorskip("triton")
    import graphc
    from graphc.api import lower_graph
    from graphc.frontend.trace import Traced
    triton = pytest.importorskip("graphc.backends.triton")
    g = parse(TEXT)
    run = lower_graph(Traced(g, ("tuple", [("leaf",), ("leaf",)]), [0, 1], ["x", "y"]),
                      None, triton).executable.fn
    rng = np.random.default_rng(4)
    for b, s in ((4, 3), (7, 2)):
        x, y = rng.standard_normal((b, 64)), rng.standard_normal((64, s))
        got = run(x.astype(np.float32), y.astype(np.float32))
        want = graphc.interpret(g, x.astype(np.float32), y.astype(np.float32))
        for a, w in zip(got, want):  # float32 sums of 64 products: 64 ulp of the scale
            np.testing.assert_allclose(a, w, rtol=0, atol=64 * 2.0**-24 * np.abs(w).max())
    fixed = substitute_graph(g, {"B": 4, "S": 3})
    fixed.verify()
    assert str(fixed.outputs[0].type) == "f32[256,3]"


# ---- traces with symbolic sizes -------------------------------------------------------

def _model(x, w, b):
    h = np.maximum(x @ w + b, 0)
    h = h - h.mean(axis=-1, keepdims=True)
    return np.tanh(h).reshape(-1), h.sum(axis=0), h[1:, ::2], np.concatenate([h, h[-1:]])


def test_a_trace_with_a_symbolic_batch_matches_numpy_at_every_batch():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((16, 32)).astype(np.float32)
    b = rng.standard_normal(32).astype(np.float32)
    x = rng.standard_normal((8, 16)).astype(np.float32)
    traced = trace_function(_model, (x, w, b), {}, shapes={0: (B, 16)})
    assert [str(v.type) for v in traced.graph.outputs] == \
        ["f32[32*B]", "f32[32]", "f32[B-1,16]", "f32[B+1,32]"]
    assert traced.guards == ()
    optimized = run(traced.graph, resolve(None, graphc.backends.numpy.FUSION_POLICY),
                    verify=True)[-1].graph
    for n in (2, 3, 8, 50):
        xn = rng.standard_normal((n, 16)).astype(np.float32)
        want = _model(xn.astype(np.float64), w.astype(np.float64), b.astype(np.float64))
        for graph in (traced.graph, optimized):
            for got, ref in zip(graphc.interpret(graph, xn, w, b), want):
                assert got.shape == ref.shape
                # float32 through a 16-term product, a mean and tanh: a few ulp of the
                # terms' magnitude (|x||w| sums to ~16 here)
                np.testing.assert_allclose(got, ref, rtol=0, atol=2e-4 * 16)


def test_sizes_that_must_be_equal_become_one_symbol():
    def f(x, y):
        return x + y, x[:, :4]
    x = np.ones((4, 6))
    traced = trace_function(f, (x, x), {}, shapes={0: (B, S), 1: (C, Sym.var("D"))})
    assert [str(v.type) for v in traced.graph.inputs] == ["f64[B,D]", "f64[B,D]"]
    assert [str(g) for g in traced.guards] == ["D >= 4", "D != 4"]
    traced.graph.verify()


def test_a_size_compared_with_an_int_specializes_where_it_must():
    def f(x):
        return x * 2.0 if x.shape[0] == 8 else x
    traced = trace_function(f, (np.ones((8, 3)),), {}, shapes={0: (B, 3)})
    assert str(traced.graph.inputs[0].type) == "f64[8,3]"  # B == 8: B is 8


@pytest.mark.parametrize("f, words", [
    (lambda x: sum(x[i] for i in range(x.shape[0])), "range"),
    (lambda x: x / (x.shape[0] / 2), "needs its value"),
])
def test_needing_a_sizes_value_names_the_users_line(f, words):
    with pytest.raises(SymbolicError) as info:
        trace_function(f, (np.ones((4, 3)),), {}, shapes={0: (B, 3)})
    assert "test_symbols.py" in str(info.value) and words in str(info.value)


def test_static_traces_are_unchanged():
    traced = trace_function(_model, (np.ones((4, 16), np.float32), np.ones((16, 32), np.float32),
                                     np.ones(32, np.float32)), {})
    assert all(v.type.static for n in traced.graph.nodes for v in n.outputs)
    assert all(type(d) is int for v in traced.graph.inputs for d in v.type.shape)


@pytest.mark.parametrize("start, stop, step", itertools.product(
    [None, 0, 1, -1, -3], [None, 2, -1, -2], [None, 1, -1, 2]))
def test_slice_indices_on_a_symbol_match_pythons(start, stop, step):
    from graphc.ir.symbols import slice_indices
    for n in (3, 4, 9):
        env = ShapeEnv({"B": n})
        with env.tracing():
            got = slice_indices(start, stop, step, B)
        assert specialize(got, {"B": n}) == slice(start, stop, step).indices(n)
        assert env.holds({"B": n})


def test_guards_print_read_back_and_hold_at_every_call():
    def f(x):
        return x[:, :4] * 2.0
    traced = trace_function(f, (np.ones((3, 6)),), {}, shapes={0: (B, S)})
    g = traced.graph
    assert [str(x) for x in g.guards] == ["S >= 4", "S != 4"]
    text = str(g)
    assert "  assume S >= 4\n  assume S != 4\n" in text
    again = parse(text)
    assert str(again) == text and [x.key for x in again.guards] == [x.key for x in g.guards]
    x = np.arange(5 * 7, dtype=np.float64).reshape(5, 7)
    np.testing.assert_array_equal(graphc.interpret(again, x), x[:, :4] * 2.0)  # exact
    with pytest.raises(graphc.errors.ArgumentError, match="S >= 4"):
        graphc.interpret(again, np.ones((5, 3)))
    # without its guards the slice's bounds are not known to fit: the verifier says so
    with pytest.raises(GraphcError, match="guards do not say"):
        parse(text.replace("  assume S >= 4\n", ""))


@pytest.mark.parametrize("line, words", [
    ("  assume 4 >= 2", "involve a symbol"),
    ("  assume S >> 4", "expected"),
    ("  assume T >= 4", "no input's dimension"),
    ("  assume S >= 4 4", "operator is missing"),
    ("  assume S >= 4 )", "after the guard"),
])
def test_bad_guards_are_refused(line, words):
    text = str(trace_function(lambda x: x[:, :4], (np.ones((3, 6)),), {},
                              shapes={0: (B, S)}).graph)
    with pytest.raises(GraphcError, match=words):
        parse(text.replace("  assume S != 4", line))


# ---- every primitive's rule, with a symbolic leading size -----------------------------

def _symbolic_cases():
    from op_samples import SAMPLES
    for op in sorted(SAMPLES):
        for i, (inputs, attrs, _) in enumerate(SAMPLES[op]):
            if inputs and inputs[0].ndim and inputs[0].shape[0] >= MIN_SIZE:
                yield pytest.param(op, inputs, attrs, id=f"{op}-{i}")


def _types(inputs, n, symbol):
    """The inputs' types with every leading size n made `symbol` (an int or B)."""
    return tuple(TensorType(((symbol,) + a.shape[1:]) if a.ndim and a.shape[0] == n
                            else a.shape, str(a.dtype)) for a in inputs)


@pytest.mark.parametrize("op, inputs, attrs", list(_symbolic_cases()))
def test_every_rule_takes_a_symbolic_leading_size(op, inputs, attrs):
    # traced with B at the sample's size n: the rule specialized there is the rule at
    # n; at another size it is the rule there too, unless its guards exclude that size
    n = inputs[0].shape[0]
    frozen = Attrs(attrs)
    env = ShapeEnv({"B": n})
    with env.tracing():
        try:
            symbolic = ops.infer_types(op, _types(inputs, n, B), frozen)
        except SymbolicError:
            return  # the rule needs the size's value: a trace specializes it
    assert tuple(TensorType(specialize(t.shape, {"B": n}), t.dtype) for t in symbolic) == \
        ops.infer_types(op, _types(inputs, n, n), frozen)
    for m in (n + 3, 2 * n + 1):
        try:
            want = ops.infer_types(op, _types(inputs, n, m), frozen)
        except GraphcError:
            assert not env.holds({"B": m})
            continue
        if env.holds({"B": m}):
            assert tuple(TensorType(specialize(t.shape, {"B": m}), t.dtype)
                         for t in symbolic) == want
