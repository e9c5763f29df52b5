"""The optimization passes on small graphs: every simplify rule fires and keeps the
results, cse merges duplicates, fold folds small constants and leaves big broadcasts,
every pass leaves its input graph untouched, and the pipeline keeps results."""
import numpy as np
import pytest

import graphc
from graphc.ir import Graph, parse
from graphc.passes.cse import cse
from graphc.passes.dce import dce
from graphc.passes.fold import FOLD_LIMIT, fold
from graphc.passes.pipeline import DEFAULT_PIPELINE, run
from graphc.passes.simplify import RULES, simplify

F32 = (1e-5, 1e-6)  # (rtol, atol): a few float32 ulps on O(1) values


def _inputs(graph: Graph, rng) -> list[np.ndarray]:
    """Random arguments of the graph's input types."""
    args = []
    for v in graph.inputs:
        if v.dtype == "bool":
            args.append(rng.random(v.shape) < 0.5)
        elif v.dtype.startswith("int"):
            args.append(rng.integers(-5, 6, v.shape).astype(v.dtype))
        else:
            args.append(rng.standard_normal(v.shape).astype(v.dtype))
    return args


def assert_same_results(before: Graph, after: Graph, rng, args=None) -> None:
    after.verify()
    args = _inputs(before, rng) if args is None else args
    with np.errstate(all="ignore"):  # sqrt, log of negatives: nan on both sides
        want, got = graphc.interpret(before, *args), graphc.interpret(after, *args)
    want, got = np.asarray(want), np.asarray(got)
    assert (got.shape, got.dtype) == (want.shape, want.dtype)
    np.testing.assert_allclose(got, want, rtol=F32[0], atol=F32[1], equal_nan=True)


def ops_of(graph: Graph) -> list[str]:
    """The ops that still compute something (dead consts left for dce dropped)."""
    return [n.op for n in dce(graph).nodes]


def _f32(*shape: int) -> np.ndarray:
    return np.ones(shape, np.float32)


# ---- simplify: one case (at least) per rule ------------------------------------------

def _ir(body: str, params: str = "%x: f32[2,3]", result: str = "f32[2,3]") -> Graph:
    """A graph from text, for patterns the frontend never emits (it drops no-op casts,
    reshapes and transposes itself)."""
    return parse(f"graph g({params}) -> ({result}) {{\n{body}\n}}")


# (rule, graph, ops expected after simplify (live ones only))
SIMPLIFY_CASES = [
    ("mul_one", graphc.trace(lambda x: x * 1.0, _f32(2, 3)), []),
    ("mul_one", graphc.trace(lambda x: 1.0 * np.exp(x), _f32(2, 3)), ["exp"]),
    # the 1 is the bigger operand: x is broadcast to the product's shape
    ("mul_one", graphc.trace(lambda x: x * np.ones((4, 3), np.float32), _f32(3)),
     ["broadcast_to"]),
    ("mul_one", graphc.trace(lambda x: x * 1, np.ones(3, np.int32)), []),
    ("add_zero", graphc.trace(lambda x: x + 0.0, _f32(2, 3)), []),
    ("add_zero", graphc.trace(lambda x: 0.0 + np.exp(x), _f32(2, 3)), ["exp"]),
    ("sub_zero", graphc.trace(lambda x: x - 0.0, _f32(2, 3)), []),
    ("div_one", graphc.trace(lambda x: x / 1.0, _f32(2, 3)), []),
    ("neg_neg", graphc.trace(lambda x: -(-x), _f32(2, 3)), []),
    ("no_op", _ir("%0: f32[2,3] = cast %x {dtype=float32}\nreturn %0"), []),
    ("no_op", _ir("%0: f32[2,3] = reshape %x {shape=(2, 3)}\nreturn %0"), []),
    ("no_op", _ir("%0: f32[2,3] = broadcast_to %x {shape=(2, 3)}\nreturn %0"), []),
    ("transpose_identity", _ir("%0: f32[2,3] = transpose %x {perm=(0, 1)}\nreturn %0"), []),
    ("pow_one", graphc.trace(lambda x: x ** 1.0, _f32(2, 3)), []),
    ("pow_zero", graphc.trace(lambda x: x ** 0.0, _f32(2, 3)), ["const", "broadcast_to"]),
    ("pow_zero", graphc.trace(lambda x: x ** 0.0, np.float64(1.0)), ["const"]),
    ("pow_two", graphc.trace(lambda x: x ** 2, _f32(2, 3)), ["mul"]),
    ("pow_three", graphc.trace(lambda x: x ** 3, _f32(2, 3)), ["mul", "mul"]),
    ("pow_half", graphc.trace(lambda x: x ** 0.5, _f32(2, 3)), ["sqrt"]),
    ("pow_minus_one", graphc.trace(lambda x: x ** -1.0, _f32(2, 3)), ["reciprocal"]),
    ("pow_minus_half", graphc.trace(lambda x: x ** -0.5, _f32(2, 3)), ["rsqrt"]),
    # an exponent array of 2s bigger than x: x*x broadcast to pow's shape
    ("pow_two", graphc.trace(lambda x: x ** np.full((4, 3), 2, np.float32), _f32(3)),
     ["mul", "broadcast_to"]),
    ("div_const", graphc.trace(lambda x: x / 3.0, _f32(2, 3)), ["const", "mul"]),
    ("div_const", graphc.trace(lambda x: x / np.array([2, 4, 8], np.float32), _f32(2, 3)),
     ["const", "mul"]),
    ("transpose_transpose", graphc.trace(lambda x: x.T.T, _f32(2, 3)), []),
    ("transpose_transpose",
     graphc.trace(lambda x: np.transpose(np.transpose(x, (1, 2, 0)), (1, 2, 0)),
                  _f32(2, 3, 4)), ["transpose"]),
    ("transpose_into_matmul", graphc.trace(lambda x, w: x @ w.T, _f32(3, 4), _f32(5, 4)),
     ["matmul"]),
    ("transpose_into_matmul", graphc.trace(lambda x, y: x.T @ y.T, _f32(4, 3), _f32(5, 4)),
     ["matmul"]),
    ("transpose_into_matmul",
     graphc.trace(lambda a, b: np.swapaxes(a, -1, -2) @ b, _f32(2, 4, 3), _f32(2, 4, 5)),
     ["matmul"]),
    ("transpose_of_matmul", graphc.trace(lambda a, b: (a @ b).T, _f32(3, 4), _f32(4, 5)),
     ["matmul"]),
    ("transpose_of_matmul",
     graphc.trace(lambda a, b: np.swapaxes(a @ b, -1, -2), _f32(2, 3, 4), _f32(4, 5)),
     ["matmul"]),
    # products added up: one product of the operands joined along what they sum over
    ("matmuls_add_up", graphc.trace(lambda a, b, c, d: a @ b + c @ d, _f32(3, 4), _f32(4, 5),
                                    _f32(3, 2), _f32(2, 5)), ["concat", "concat", "matmul"]),
    ("matmuls_add_up", graphc.trace(lambda a, b, c, d, e, f: a.T @ b + c.T @ d + e.T @ f,
                                    _f32(6, 3), _f32(6, 5), _f32(2, 3), _f32(2, 5),
                                    _f32(4, 3), _f32(4, 5)), ["concat", "concat", "matmul"]),
    # with other flags, or batched: they stay
    ("matmuls_add_up", graphc.trace(lambda a, b, c, d: a @ b + c.T @ d, _f32(3, 4), _f32(4, 5),
                                    _f32(2, 3), _f32(2, 5)), ["matmul", "matmul", "add"]),
    ("matmuls_add_up", graphc.trace(lambda a, b, c, d: a @ b + c @ d, _f32(2, 3, 4),
                                    _f32(2, 4, 5), _f32(2, 3, 4), _f32(2, 4, 5)),
     ["matmul", "matmul", "add"]),
    # a weight broadcast over the batch (torch's matmul decomposition of a linear layer
    # on a non-contiguous input): matmul broadcasts it itself
    ("broadcast_into_matmul",
     graphc.trace(lambda x, w: x @ np.broadcast_to(w, (2, 4, 5)), _f32(2, 3, 4), _f32(4, 5)),
     ["matmul"]),
    # ... but not where the broadcast gives the result its batch axes
    ("broadcast_into_matmul",
     graphc.trace(lambda x, w: x @ np.broadcast_to(w, (2, 4, 5)), _f32(3, 4), _f32(4, 5)),
     ["broadcast_to", "matmul"]),
    # a transpose that does not swap the last two axes stays
    ("transpose_into_matmul",
     graphc.trace(lambda a, b: np.transpose(a, (1, 0, 2)) @ b, _f32(3, 2, 4), _f32(4, 5)),
     ["transpose", "matmul"]),
    # zero pads side by side along one axis (a loop's slice gradients): one concat,
    # and one pad for what none of them covers
    ("pads_add_up", _ir("%0: f32[2,5] = pad %a {widths=((0, 0), (0, 3)), value=0.0}\n"
                        "%1: f32[2,5] = pad %b {widths=((0, 0), (2, 0)), value=0.0}\n"
                        "%2: f32[2,5] = add %0, %1\nreturn %2",
                        "%a: f32[2,2], %b: f32[2,3]", "f32[2,5]"), ["concat"]),
    ("pads_add_up", _ir("%0: f32[6,3] = pad %a {widths=((3, 2), (0, 0)), value=0.0}\n"
                        "%1: f32[6,3] = pad %b {widths=((2, 3), (0, 0)), value=0.0}\n"
                        "%2: f32[6,3] = pad %c {widths=((1, 4), (0, 0)), value=0.0}\n"
                        "%3: f32[6,3] = add %0, %1\n%4: f32[6,3] = add %3, %2\nreturn %4",
                        "%a: f32[1,3], %b: f32[1,3], %c: f32[1,3]", "f32[6,3]"),
     ["concat", "pad"]),
    # overlapping, or with another fill value: they stay
    ("pads_add_up", _ir("%0: f32[3] = pad %a {widths=((0, 1),), value=0.0}\n"
                        "%1: f32[3] = pad %b {widths=((1, 0),), value=0.0}\n"
                        "%2: f32[3] = add %0, %1\nreturn %2",
                        "%a: f32[2], %b: f32[2]", "f32[3]"), ["pad", "pad", "add"]),
    ("pads_add_up", _ir("%0: f32[3] = pad %a {widths=((0, 1),), value=1.0}\n"
                        "%1: f32[3] = pad %b {widths=((2, 0),), value=0.0}\n"
                        "%2: f32[3] = add %0, %1\nreturn %2",
                        "%a: f32[2], %b: f32[1]", "f32[3]"), ["pad", "pad", "add"]),
    ("reshape_reshape", graphc.trace(lambda x: x.reshape(6, 4).reshape(2, 12), _f32(2, 3, 4)),
     ["reshape"]),
    ("reshape_reshape", graphc.trace(lambda x: x.reshape(6, 4).reshape(2, 3, 4),
                                     _f32(2, 3, 4)), []),
    ("broadcast_broadcast",
     graphc.trace(lambda x: np.broadcast_to(np.broadcast_to(x, (3, 4)), (2, 3, 4)), _f32(4)),
     ["broadcast_to"]),
    ("scalar_broadcasts",
     graphc.trace(lambda x, s: x * np.broadcast_to(s, x.shape), _f32(2, 3), np.float32(2)),
     ["mul"]),
    ("scalar_broadcasts",
     graphc.trace(lambda x, s: np.where(x > 0, x, np.broadcast_to(s, x.shape)),
                  _f32(2, 3), _f32(1, 1)), ["const", "gt", "where"]),
]


@pytest.mark.parametrize("rule, graph, expected", SIMPLIFY_CASES,
                         ids=[c[0] for c in SIMPLIFY_CASES])
def test_simplify_rule_fires_and_keeps_results(rule, graph, expected, rng):
    simplified = simplify(graph)
    assert ops_of(simplified) == expected, f"{rule}:\n{graph}\n---\n{simplified}"
    assert_same_results(graph, simplified, rng)


def test_every_rule_has_a_case():
    assert {r.name for r in RULES} == {c[0] for c in SIMPLIFY_CASES}


@pytest.mark.parametrize("fn, args", [
    (lambda x: x * 0.0, (_f32(3),)),                 # x*0 is not 0 for nan and inf
    (lambda x: np.power(x, 2), (np.ones(3, np.int32),)),  # integer pow: left alone
    (lambda x: x ** 4.0, (_f32(3),)),
    (lambda x: x / 0.0, (_f32(3),)),                 # no finite reciprocal
    (lambda x: x / 1e-40, (_f32(3),)),               # 1/c overflows float32: keep the div
    (lambda x: x / 1e38, (_f32(3),)),                # 1/c is subnormal, short of bits
    (lambda x: x[:1] * np.broadcast_to(x[1:2], (3,)), (_f32(3),)),  # sized by the broadcast
    (lambda x: np.transpose(x), (_f32(3, 3),)),      # same type, not the identity
])
def test_simplify_leaves_these_alone(fn, args, rng):
    graph = graphc.trace(fn, *args)
    simplified = simplify(graph)
    assert ops_of(simplified) == ops_of(graph)
    assert_same_results(graph, simplified, rng)


def test_simplify_keeps_names_and_locations():
    graph = graphc.trace(lambda x: np.exp(x ** 2), _f32(2))
    simplified = dce(simplify(graph))
    square, exp = simplified.nodes
    assert (square.op, square.output.name) == ("mul", graph.nodes[1].output.name)
    assert exp.output.name == graph.nodes[2].output.name
    assert square.loc == graph.nodes[1].loc and square.loc is not None


def test_simplify_reaches_a_fixed_point(rng):
    # each rewrite exposes the next: -((-(x*1)) ** 1) / 1 + 0 -> x
    graph = graphc.trace(lambda x: -((-(x * 1.0)) ** 1.0) / 1.0 + 0.0, _f32(3))
    simplified = simplify(graph)
    assert ops_of(simplified) == [] and simplified.outputs == simplified.inputs
    assert len(simplify(simplified).nodes) == len(simplified.nodes)


# ---- cse ---------------------------------------------------------------------------

def test_cse_merges_duplicates(rng):
    graph = graphc.trace(lambda x: np.exp(x) * np.exp(x) + np.sum(np.exp(x), axis=0)
                         + np.sum(np.exp(x), axis=0), _f32(2, 3))
    merged = cse(graph)
    assert [n.op for n in merged.nodes].count("exp") == 1
    assert [n.op for n in merged.nodes].count("sum") == 1
    assert_same_results(graph, merged, rng)


def test_cse_merges_equal_consts_only():
    graph = _ir("\n".join([
        "%0: f32[] = const {value=2.0}",
        "%1: f32[] = const {value=2.0}",
        "%2: f32[] = const {value=0.0}",
        "%3: f32[] = const {value=-0.0}",  # equal to 0.0 under ==, but not the same
        "%4: f32[2,3] = mul %x, %0",
        "%5: f32[2,3] = mul %x, %1",
        "%6: f32[2,3] = add %4, %5",
        "%7: f32[2,3] = add %6, %2",
        "%8: f32[2,3] = add %7, %3",
        "%9: f32[2] = sum %x {axes=(1,), keepdims=false}",
        "%10: f32[3] = sum %x {axes=(0,), keepdims=false}",  # other attrs: kept
        "return %8"]))
    merged = cse(graph)
    assert [n.op for n in merged.nodes] == ["const", "const", "const", "mul", "add", "add",
                                            "add", "sum", "sum"]
    assert merged.nodes[4].inputs[0] is merged.nodes[4].inputs[1]  # mul %x, %0 once


# ---- fold --------------------------------------------------------------------------

def test_fold_folds_small_constant_subgraphs(rng):
    graph = graphc.trace(lambda x: x + np.ones_like(x) * 2.0, _f32(4, 8))
    folded = fold(graph)
    assert ops_of(folded) == ["const", "add"]
    (two,) = [n for n in dce(folded).nodes if n.op == "const"]
    np.testing.assert_array_equal(two.attrs["value"].array, np.full((4, 8), 2, np.float32))
    assert two.output.name == graph.nodes[3].output.name and two.loc == graph.nodes[3].loc
    assert_same_results(graph, folded, rng)


def test_fold_leaves_big_broadcasts_alone(rng):
    n = 1000  # a million elements
    graph = graphc.trace(lambda x: x + np.ones_like(x) * 2.0, _f32(n, n))
    folded = fold(graph)
    assert ops_of(folded) == ops_of(graph) == ["const", "broadcast_to", "const", "mul", "add"]
    assert all(n.output.type.size <= FOLD_LIMIT for n in folded.nodes if n.op == "const")


def test_fold_reads_iotas_and_keeps_errors_for_run_time(rng):
    graph = _ir("\n".join([
        "%0: i64[3] = iota {shape=(3,), axis=0, dtype=int64}",
        "%1: i64[] = const {value=2}",
        "%2: i64[3] = mul %0, %1",
        "%3: f32[2,3] = gather %x, %2 {axis=1}",  # index 4 is out of range: raise when called
        "%4: f32[2,3] = gather %x, %0 {axis=1}",
        "return %4"]))
    folded = fold(graph)
    assert [n.op for n in folded.nodes] == ["iota", "const", "const", "gather", "gather"]
    np.testing.assert_array_equal(folded.nodes[2].attrs["value"].array, [0, 2, 4])
    with pytest.raises(IndexError):
        graphc.interpret(folded, _f32(2, 3))
    assert_same_results(dce(graph), dce(folded), rng)


# ---- purity ------------------------------------------------------------------------

def _snapshot(graph: Graph) -> tuple:
    """Everything a pass could mutate: the text, and every object's identity and links."""
    nodes = tuple((id(n), n.op, tuple(map(id, n.inputs)), tuple(map(id, n.outputs)), n.attrs)
                  for n in graph.nodes)
    values = tuple((id(v), v.name, v.type, id(v.node)) for n in graph.nodes
                   for v in n.outputs)
    return str(graph), nodes, values, tuple(map(id, graph.inputs + graph.outputs))


@pytest.mark.parametrize("name, fn", [(name, fn) for name, fn in DEFAULT_PIPELINE])
def test_passes_are_pure(name, fn):
    def busy(x):
        y = np.exp(x) ** 2 / 4.0 + np.exp(x) * 1.0  # simplify and cse
        z = np.ones_like(x) * 3.0                     # fold
        dead = np.tanh(x)  # noqa: F841              # dce
        return (-(-y)) + z

    graph = graphc.trace(busy, _f32(2, 3))
    before = _snapshot(graph)
    out = fn(graph)
    assert _snapshot(graph) == before
    out.verify()


# ---- the pipeline ------------------------------------------------------------------

def _gelu(x):
    return 0.5 * x * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x**3)))


def _softmax(x):
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def _layer_norm(x):
    mean = np.mean(x, axis=-1, keepdims=True)
    var = np.var(x, axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-5)


def test_pipeline_stage_names():
    stages = run(graphc.trace(_gelu, _f32(2, 3)))
    assert [s.name for s in stages][:5] == ["traced", "simplify", "cse", "fold", "dce"]


def test_gelu_has_no_pow_after_the_pipeline(rng):
    x = rng.standard_normal((16, 32)).astype(np.float32)
    graph = graphc.trace(_gelu, x)
    assert "pow" in [n.op for n in graph.nodes]
    optimized = run(graph)[-1].graph
    assert "pow" not in [n.op for n in optimized.nodes]
    assert_same_results(graph, optimized, rng, [x])


@pytest.mark.parametrize("fn", [_softmax, _layer_norm, _gelu])
def test_pipeline_keeps_results(fn, rng):
    x = (3 * rng.standard_normal((8, 33))).astype(np.float32)
    graph = graphc.trace(fn, x)
    optimized = run(graph)[-1].graph
    assert len(optimized.nodes) <= len(graph.nodes)
    assert_same_results(graph, optimized, rng, [x])
    np.testing.assert_allclose(graphc.compile(fn)(x), fn(x), rtol=1e-5, atol=1e-6)


def test_layer_norm_mean_is_computed_once():
    # np.var recomputes the mean; cse merges it with the user's own
    optimized = run(graphc.trace(_layer_norm, _f32(4, 8)))[-1].graph
    assert [n.op for n in optimized.nodes].count("sum") == 2
    assert [n.op for n in optimized.nodes].count("div") == 1  # the / 8s became * 0.125


def test_a_long_sum_of_products_is_joined_once(rng):
    """A weight's gradient over 60 unrolled steps, sum_i a_i.T @ b_i: one concat of
    every term per operand, joined in one sweep (joining add by add built concats of
    every length, quadratic in the steps), and the value is the sum's."""
    import graphc.passes.simplify as simp
    n = 60

    def grad(*xs):
        total = xs[0].T @ xs[1]
        for i in range(2, 2 * n, 2):
            total = total + xs[i].T @ xs[i + 1]
        return total
    xs = [rng.standard_normal((4, 3)).astype(np.float32) for _ in range(2 * n)]
    g = graphc.trace(grad, *xs)
    sweeps = []
    original = simp._sweep
    try:
        simp._sweep = lambda graph: sweeps.append(1) or original(graph)
        out = dce(simplify(g))
    finally:
        simp._sweep = original
    concats = [node for node in out.nodes if node.op == "concat"]
    assert [len(c.inputs) for c in concats] == [n, n]
    assert len(sweeps) <= 3
    want = sum(xs[i].T.astype(np.float64) @ xs[i + 1] for i in range(0, 2 * n, 2))
    got = graphc.interpret(out, *xs)
    # float32 sums of 2n * 4 products, in any order: within 8n * 2**-24 of sum |a||b|
    mags = sum(np.abs(xs[i].T.astype(np.float64)) @ np.abs(xs[i + 1])
               for i in range(0, 2 * n, 2))
    assert np.all(np.abs(got - want) <= 8 * n * 2.0 ** -24 * mags)
