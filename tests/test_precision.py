"""Check mode, graphc.benchmark and graphc.debug.bisect judge each output at the
precision it is computed in (passes/precision.py, graphc.check.output_tolerances), not
at its dtype: a float64 output of a float32 sum is float32's, a float64 path keeps
float64's tight tolerance, and a real error is still caught at either."""
import math

import numpy as np
import pytest

import graphc
from graphc.check import TOLERANCES, output_tolerances
from graphc.ops import OPS, Rounding
from graphc.passes import precision
from graphc.passes.rewrite import GraphBuilder

EPS32 = 2.0**-23


def masked_stats(x, valid):  # the example: float32 sums, float64 at the end
    cnt = valid.sum(axis=1)
    return np.where(valid, x, 0).sum(axis=1) / np.maximum(cnt, 1)


@pytest.fixture
def stats_args(rng):
    return (rng.standard_normal((512, 200)).astype(np.float32),
            rng.random((512, 200)) < 0.5)


def scale_after(op: str, factor: float):
    """A broken pass: every result of `op` multiplied by `factor` (a wrong result)."""
    def broken(graph):
        b = GraphBuilder(graph)
        for node in graph.nodes:
            new = b.copy(node)
            if node.op == op:
                out = new.outputs[0]
                c = b.const(np.array(factor, out.type.dtype), node.loc)
                b.bind(node.outputs[0], b.emit("mul", (out, c), {}, node.loc))
        return b.finish()
    return broken


def test_every_primitive_has_a_precision_rule():
    # the record says how an op rounds; an accumulation also needs its count of terms
    accumulating = {n for n, op in OPS.items() if op.rounding is Rounding.ACCUMULATES}
    assert accumulating - set(precision.TERMS) == set(), "accumulations without TERMS"
    assert set(precision.TERMS) - accumulating == set(), "TERMS of ops that do not sum"
    assert set(precision.OWN_COST) <= set(OPS)


def test_every_op_sample_gets_a_tolerance():
    from op_samples import SAMPLES
    from test_ops import one_node_graph
    for op, cases in SAMPLES.items():
        for inputs, attrs, _ in cases:
            graph = one_node_graph(op, inputs, attrs)
            for tol, v in zip(output_tolerances(graph), graph.outputs):
                exact = v.type.dtype not in precision.EPS
                assert (tol.rtol == 0) == exact, f"{op}: {v.type} gets rtol {tol.rtol}"
                # one op on exact inputs: nothing decided from a rounded float yet
                assert tol.precision.decided is None, op


def test_masked_stats_passes_check_mode_against_float64(stats_args):
    x, valid = stats_args
    got = graphc.compile(masked_stats, check=True)(x, valid)
    assert got.dtype == np.float64
    # against the exact mean, within the bound of a float32 sum of 200 terms in any
    # order ((n - 1) u times the sum of magnitudes), divided by the count
    x64 = np.where(valid, x.astype(np.float64), 0.0)
    cnt = np.maximum(valid.sum(axis=1), 1)
    bound = 199 * EPS32 / 2 * np.abs(x64).sum(axis=1) / cnt
    assert np.all(np.abs(got - x64.sum(axis=1) / cnt) <= bound)


def test_masked_stats_output_is_judged_as_float32(stats_args):
    g = graphc.trace(masked_stats, *stats_args)
    (tol,) = output_tolerances(g)
    assert g.outputs[0].type.dtype == "float64"
    assert tol.precision.dtype == "float32" and (tol.rtol, tol.atol) == TOLERANCES["float32"]
    assert "computed in float32" in tol.describe("float64")


def test_a_wrong_float64_result_on_a_float32_path_is_still_caught(stats_args):
    f = graphc.compile(masked_stats, check=True,
                       passes=["simplify", ("broken", scale_after("sum", 1.001)), "fusion"])
    with pytest.raises(graphc.MismatchError, match="computed in float32"):
        f(*stats_args)


def test_a_float64_path_keeps_the_tight_tolerance(rng):
    def stats64(x, valid):
        return masked_stats(x.astype(np.float64), valid)

    x = rng.standard_normal((64, 200)).astype(np.float32)
    valid = rng.random((64, 200)) < 0.5
    (tol,) = output_tolerances(graphc.trace(stats64, x, valid))
    # a float32 input is exact data: cast to float64, everything after is float64
    assert tol.precision.dtype == "float64" and tol.rtol == TOLERANCES["float64"][0]
    # an error of 1e-7, far below float32's tolerance, is caught here
    f = graphc.compile(stats64, check=True,
                       passes=["simplify", ("broken", scale_after("sum", 1 + 1e-7))])
    with pytest.raises(graphc.MismatchError, match=r"rtol=1e-09"):
        f(x, valid)
    graphc.compile(stats64, check=True)(x, valid)  # the real pipeline agrees


def test_the_rounding_bound_of_a_long_sum_holds_for_a_sequential_sum(rng):
    # np.cumsum in float32 adds in index order: the worst order for the bound
    n = 100_000
    x = rng.random(n).astype(np.float32)
    (p,) = precision.output_precisions(graphc.trace(lambda v: np.sum(v), x))
    assert p.dtype == "float32" and p.ulps == pytest.approx(n / 2)
    exact = math.fsum(x.astype(np.float64))
    err = abs(float(np.cumsum(x)[-1]) - exact)
    assert err <= p.relative_error * float(np.abs(x.astype(np.float64)).sum())
    # the check tolerance is twice the bound where that exceeds the base allowance
    (tol,) = output_tolerances(graphc.trace(lambda v: np.sum(v), x))
    assert tol.rtol == pytest.approx(2 * p.relative_error) and tol.rtol > 1e-4


def test_integers_are_exact_unless_decided_from_rounded_floats(rng):
    x = rng.standard_normal((4, 6)).astype(np.float32)

    def f(x, n):
        return (n * 3 + 1, np.argmax(x, axis=1), np.argmax(np.tanh(x), axis=1),
                np.sqrt(n))

    n = np.arange(4, dtype=np.int64)
    counts, of_input, of_tanh, root = output_tolerances(graphc.trace(f, x, n))
    assert (counts.rtol, counts.precision.dtype, counts.precision.decided) == (0, None, None)
    # argmax of an input reads exact data; of a computed float, rounding may flip a tie
    assert of_input.precision.decided is None
    assert of_tanh.rtol == 0 and of_tanh.precision.decided.op == "argmax"
    assert "argmax at" in of_tanh.describe("int64")
    # sqrt of an exact integer is computed in float64
    assert root.precision.dtype == "float64" and root.rtol == TOLERANCES["float64"][0]


def test_a_flipped_decision_is_still_caught_and_explained(rng):
    def f(x):
        return np.argmax(np.tanh(x), axis=1)

    wrong = graphc.compile(f, check=True,
                           passes=[("neg", scale_after("tanh", -1.0)), "fusion"])
    with pytest.raises(graphc.MismatchError, match="depends on argmax at") as exc:
        wrong(rng.standard_normal((5, 7)).astype(np.float32))
    assert "rounding" in exc.value.hint and "bisect" in exc.value.hint


def test_bisect_uses_the_precision_computed(stats_args):
    assert graphc.debug.bisect(masked_stats, *stats_args, quiet=True).stage is None
    r = graphc.debug.bisect(masked_stats, *stats_args, quiet=True,
                            passes=["simplify", ("broken", scale_after("sum", 1.001))])
    assert r.stage == "broken" and "computed in float32" in r.details


def test_benchmark_checks_at_the_precision_computed(stats_args):
    r = graphc.benchmark(masked_stats, *stats_args, repeats=1, warmup=0)
    assert r.kernels_before > 0
    f = graphc.compile(masked_stats, check=False,
                       passes=["simplify", ("broken", scale_after("sum", 1.001))])
    with pytest.raises(graphc.MismatchError, match="computed in float32"):
        graphc.benchmark(f, *stats_args, repeats=1, warmup=0)


def test_docstring_examples_run():
    import doctest
    import graphc.check
    for mod in (precision, graphc.check):
        result = doctest.testmod(mod)
        assert result.failed == 0 and result.attempted > 0
