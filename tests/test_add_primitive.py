"""A new primitive is four entries: this test adds one and uses it everywhere.

`softsign(x) = x / (1 + |x|)` goes in through exactly the places the README's
"Adding a primitive" lists, without editing any graphc file:

1. its record (`graphc.ops.register`), with its dtypes, rounding and sample domain;
2. its VJP (`graphc.passes.autodiff.VJP`);
3. its numpy-backend lowering (`LOWERINGS`), a Python form and a C form in one entry;

and then is traced, differentiated (against float64 finite differences), fuzzed (the
fuzzer's op lists, derived from the records, pick it up) and run in a native kernel.
The fixture removes every entry again, so no other test sees it (each pytest-xdist
worker is its own process and runs its own fixture).
"""
from __future__ import annotations

import random

import numpy as np
import pytest

import graphc
from graphc import nn, ops
from graphc.backends.numpy import cexpr, lowering
from graphc.fuzz import builder, checking
from graphc.ops import Domain, Kind, OpDef, Rounding
from graphc.ops.elementwise import ACCEPTS
from graphc.passes import autodiff
from tolerances import assert_within_bounds

NAME = "softsign"


def _infer(ins, attrs):
    return (ins[0],)


def _impl(x):
    return (x / (1 + np.abs(x))).astype(x.dtype, copy=False)


@pytest.fixture
def softsign():
    assert NAME not in ops.OPS, "a previous test left the toy primitive registered"
    ops.register(OpDef(NAME, (), _infer, _impl, Kind.ELEMENTWISE, 1,
                       doc="x / (1 + |x|)", dtypes=ACCEPTS["float"],
                       rounding=Rounding.HALF_ULP, domain=Domain.interval(-5, 5)))
    # d/dx = 1 / (1 + |x|)^2
    autodiff.VJP[NAME] = lambda e, n, g: [e("mul", g, e("reciprocal", e("mul", d := e(
        "add", e.scalar(1, e.y), e("abs", e.x(0))), d)))]
    lowering.LOWERINGS[NAME] = lowering.Lowering(
        lambda em, a, at: f"({a[0]} / (1 + np.abs({a[0]})))",
        c=cexpr.float_only("({0} / (({t})1 + ({0} < 0 ? -{0} : {0})))"))
    try:
        yield NAME
    finally:
        lowering.LOWERINGS.pop(NAME, None)
        autodiff.VJP.pop(NAME, None)
        ops.OPS.pop(NAME, None)


def softsign_fn(x):
    return nn._primitive(NAME, x)


def test_traces_and_compiles(softsign, rng):
    x = rng.standard_normal((4, 6)).astype(np.float32)
    graph = graphc.trace(softsign_fn, x)
    assert [n.op for n in graph.nodes] == [NAME]
    got = graphc.compile(softsign_fn, options={"native": False})(x)
    den = 1 + np.abs(x.astype(np.float64))
    s = x / den
    # 1 + |x| rounds (its error reaches s times s / den), then the division
    assert_within_bounds(got, s, "float32", ("add", den, s / den), ("div", s))


def test_differentiates_against_finite_differences(softsign):
    rng = np.random.default_rng(3)
    x = ops.OPS[NAME].domain_of(0).sample(rng, (3, 5))
    w = rng.standard_normal((3, 5))

    def loss(x):
        return np.sum(softsign_fn(x) * w)
    grad = graphc.grad(loss)(x)
    eps, d = 2.0 ** -20, rng.standard_normal(x.shape)
    fd = (np.sum(_impl(x + eps * d) * w) - np.sum(_impl(x - eps * d) * w)) / (2 * eps)
    np.testing.assert_allclose(np.sum(grad * d), fd, rtol=1e-6)


def test_the_fuzzer_picks_it_up(softsign):
    assert NAME in builder.op_lists().unary_any_float  # a float op on any input
    seen = 0
    for seed in range(3000):
        ch = builder.Chooser.from_random(random.Random(seed))
        graph, specs = builder.build(ch)
        if any(n.op == NAME for n in graph.nodes):
            seen += 1
            checking.check_graph(graph, builder.make_inputs(specs, seed))
        if seen == 5:
            break
    assert seen == 5, "the fuzzer built no graph with the new primitive"


@pytest.mark.skipif(not checking.native_available(), reason="no C compiler")
def test_runs_in_a_native_kernel(softsign, rng):
    x = rng.standard_normal((64, 80)).astype(np.float32)
    f = graphc.compile(lambda x: softsign_fn(x) * 2.0 + 1.0,
                       options={"native": True, "small_group": 0})
    source = f.lower(x).source
    assert "((float)1 + (" in source, source  # the entry's C form, in a C kernel
    assert "_runc(" in source
    den = 1 + np.abs(x.astype(np.float64))
    s = x / den
    want = 2 * s + 1
    assert_within_bounds(f(x), want, "float32", ("add", den, 2 * s / den), ("div", s, 2),
                         ("add", want))


def test_leaves_no_trace():
    # runs after the others in this file (and in any order: the fixture cleans up)
    assert NAME not in ops.OPS and NAME not in autodiff.VJP
    assert NAME not in lowering.LOWERINGS
    assert NAME not in builder.op_lists().unary_any_float


def test_the_coverage_test_names_a_primitive_without_entries(softsign):
    from test_ops import missing_entries
    ops.OPS["softsign2"] = ops.OPS[NAME]  # a record alone: every other table lacks it
    try:
        missing = missing_entries()
    finally:
        del ops.OPS["softsign2"]
    assert missing == {"missing from tests/op_samples.py SAMPLES": [NAME, "softsign2"],
                       "missing from backends.numpy.LOWERINGS": ["softsign2"],
                       "missing from passes.autodiff.VJP (or differentiable=False)":
                           ["softsign2"]}
