"""The one node builder (graphc.ir.NodeBuilder) that the tracer, the passes and the
fuzzer all build nodes with."""
import doctest
import random

import numpy as np
import pytest

import graphc
from graphc.errors import GraphcError, SourceLoc
from graphc.frontend.tracer import TraceContext
from graphc.fuzz import builder as fuzz_builder
from graphc.ir import NodeBuilder, TensorType, parse
from graphc.ir import builder as ir_builder
from graphc.passes.rewrite import GraphBuilder

F32 = TensorType((2, 3), "float32")


def test_docstring_example_runs():
    result = doctest.testmod(ir_builder)
    assert result.attempted > 0 and result.failed == 0


def test_built_graph_computes_what_numpy_computes():
    b = NodeBuilder("f")
    x = b.input("x", F32)
    w = b.input("w", TensorType((3,), "float32"))
    y = b.emit("tanh", [b.emit("mul", [x, w])])
    s = b.emit("sum", [y], {"axes": [1], "keepdims": False})  # a list: frozen to a tuple
    g = b.finish([y, s])
    g.verify()
    rng = np.random.default_rng(0)
    xs, ws = rng.standard_normal((2, 3)), rng.standard_normal(3)
    got_y, got_s = graphc.interpret(g, xs.astype(np.float32), ws.astype(np.float32))
    # float32 tanh and a 3-term sum: a few ulp of float32 from the float64 reference
    np.testing.assert_allclose(got_y, np.tanh(xs * ws), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got_s, np.tanh(xs * ws).sum(axis=1), rtol=1e-6, atol=1e-6)
    assert str(parse(str(g))) == str(g)


def test_types_come_from_the_op_rule_and_attrs_are_frozen():
    b = NodeBuilder("f")
    x = b.input("x", F32)
    node = b.add("sum", [x], {"axes": [0, 1], "keepdims": True})
    assert node.output.type == TensorType((1, 1), "float32")
    assert node.attrs["axes"] == (0, 1)
    hash(node.attrs)
    c = b.const(np.arange(3.0))
    assert c.type == TensorType((3,), "float64")


def test_fresh_names_never_collide_with_taken_or_given_names():
    b = NodeBuilder("f", taken=["0", "7", "a"])
    x = b.input("x", F32)
    assert b.emit("neg", [x]).name == "8"
    b.emit("neg", [x], name="12")
    assert b.emit("neg", [x]).name == "13"
    assert b.unique_name("x") == "x_1"
    assert b.unique_name("3") == "3_1"  # decimal names below the counter may be in use
    assert b.unique_name("ct.0") == "ct.0"
    names = [v.name for n in b.nodes for v in n.outputs] + [v.name for v in b.inputs]
    assert len(names) == len(set(names))


def test_a_bad_node_is_a_graphc_error_at_the_given_line():
    loc = SourceLoc("model.py", 12)
    b = NodeBuilder("f")
    x = b.input("x", F32)
    with pytest.raises(GraphcError) as info:
        b.add("matmul", [x, x], {}, loc)
    assert info.value.loc == loc and "model.py:12" in str(info.value)
    assert b.nodes == []


def test_admit_refuses_without_using_a_name():
    b = NodeBuilder("f")
    x = b.input("x", F32)
    assert b.add("exp", [x], admit=lambda types: False) is None
    assert b.nodes == [] and b.emit("exp", [x]).name == "0"


def test_the_tracer_the_passes_and_the_fuzzer_build_through_it():
    with TraceContext("f") as ctx:
        t = ctx.new_input("x", F32)
        ctx.emit("exp", t)
    assert isinstance(ctx.builder, NodeBuilder) and ctx.graph.nodes is ctx.builder.nodes
    assert issubclass(GraphBuilder, NodeBuilder)
    fb = fuzz_builder._Builder(fuzz_builder.Chooser.from_random(random.Random(0)), 4)
    assert isinstance(fb.graph, NodeBuilder) and fb.nodes is fb.graph.nodes


def test_a_rebuilt_graph_keeps_copied_names_and_names_new_values_past_them():
    g = graphc.trace(lambda x: np.exp(x) * 2.0, np.ones(3, np.float32))
    gb = GraphBuilder(g)
    for node in g.nodes:
        gb.copy(node)
    extra = gb.emit("neg", [gb.mapped(g.outputs[0])])
    new = gb.finish()
    assert [v.name for n in new.nodes[:-1] for v in n.outputs] == \
        [v.name for n in g.nodes for v in n.outputs]
    assert int(extra.name) == 1 + max(int(v.name) for n in g.nodes for v in n.outputs)
    new.verify()
    assert new.nodes[-1].output is extra and new.outputs[0].name == g.outputs[0].name
