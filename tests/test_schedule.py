"""Kernel plans (passes/schedule.py) and the memory plan made from them
(passes/memory.py): what every backend renders, worked out once.

Each plan is checked for what it says (space, loop form, levels, kept values, in-place
candidates) on groups whose answer follows from the definitions, and programs that use
an in-place write are run against eager numpy in float64 in every mode of the numpy
backend.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import graphc
from graphc.backends import toolchain
from graphc.passes.memory import LiveRange, assign_slots, last_reads
from graphc.passes.schedule import plan_kernels
from graphc.check import compare, output_tolerances

F32 = np.float32


def softmax(x):
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def fused_plans(fn, *args):
    return plan_kernels(graphc.compile(fn).lower(*args).optimized)


def kernel_plans(plans):
    return [p for p in plans if p.form is not None]


def test_softmax_is_one_row_plan_of_three_levels_keeping_its_exp():
    (plan,) = kernel_plans(fused_plans(softmax, np.ones((64, 128), F32)))
    assert (plan.kind, plan.space, plan.form, plan.flattened) == ("reduction", (64, 128),
                                                                  "rows", False)
    assert plan.levels == 3  # the max, then the sum of exp, then the division
    (kept,) = plan.kept      # exp: made at level 1, read again at level 2
    assert kept.node.op == "exp"
    assert [v.node.op for v in plan.outputs] == ["div"]


def test_leading_axes_flatten_into_rows():
    (plan,) = kernel_plans(fused_plans(softmax, np.ones((4, 6, 32), F32)))
    assert plan.flattened and plan.space == (24, 32) and plan.rows == 24
    # the copies lead back to the graph's own values and nodes
    out = next(v for n in plan.nodes for v in n.outputs if plan.escapes(v))
    assert plan.origin(out).type.shape == (4, 6, 32)
    assert all(plan.source_node(n).outputs[0].type.ndim in (0, 3) for n in plan.nodes)


def test_elementwise_forms():
    x = np.ones((8, 4, 5, 5), F32)
    bias = np.ones((1, 4, 1, 1), F32)
    (same,) = kernel_plans(fused_plans(lambda x: np.tanh(x) * 2.0 + 1.0, x))
    assert same.form == "flat" and same.space == (160, 5)  # leading axes as rows
    (broadcast,) = kernel_plans(fused_plans(lambda x, b: np.tanh(x + b), x, bias))
    assert broadcast.form == "nd"


def test_a_reduction_over_rows_has_no_row_levels():
    # a sum over axis 0 of a 2-d group is a "reduce_all" group: unblocked, op by op
    plans = fused_plans(lambda x: np.sum(np.exp(x), axis=0), np.ones((16, 8), F32))
    assert {p.kind for p in plans} >= {"reduce_all"}
    assert all(p.form is None for p in plans if p.kind == "reduce_all")


def test_matmul_plan_holds_its_epilogue():
    (plan,) = [p for p in fused_plans(lambda x, w: np.tanh(x @ w + 1.0),
                                      np.ones((32, 16), F32), np.ones((16, 8), F32))
               if p.kind == "matmul"]
    assert plan.matmul.op == "matmul"
    assert [n.op for n in plan.nodes] == ["add", "tanh"] and plan.form == "flat"


def test_every_group_has_a_plan_with_its_boundary():
    f = graphc.compile(lambda x, w: softmax(np.tanh(x @ w) * 3.0))
    g = f.lower(np.ones((16, 8), F32), np.ones((8, 8), F32)).optimized
    plans = plan_kernels(g)
    assert [p.group for p in plans] == list(g.groups)
    made = {id(v) for p in plans for n in p.group.nodes for v in n.outputs}
    for p in plans:
        assert all(id(v) in made or v in g.inputs for v in p.inputs)


def _chain(x, w):
    # a * 1e-3 is a matmul kernel's result; the sub cannot join that kernel (a path through
    # the sum would make a cycle), so exp(a - s) is a kernel of its own that reads a
    # last: it may write over a's buffer, and c feeds another matmul (c is planned too)
    a = x @ w
    s = np.sum(a)
    c = np.exp(a * 1e-3 - s * 1e-6)
    return c @ w


def test_an_elementwise_kernel_may_write_over_its_dying_input():
    x = np.linspace(-1, 1, 256 * 64, dtype=F32).reshape(256, 64)
    w = np.linspace(-0.5, 0.5, 64 * 64, dtype=F32).reshape(64, 64)
    plans = fused_plans(_chain, x, w)
    (ew,) = [p for p in plans if p.kind == "elementwise"]
    ((out_id, donor),) = ew.reuse.items()
    first_mm = next(p for p in plans if p.kind == "matmul")
    assert donor in first_mm.outputs  # the matmul kernel's result (a * 1e-3: its epilogue)
    assert ew.origin(ew.nodes_output(out_id)).node.op == "exp"


MODES = {"plain": {"GRAPHC_NATIVE": "0"},
         "blocks": {"GRAPHC_SMALL_GROUP": "0", "GRAPHC_BLOCK_ELEMENTS": "7",
                    "GRAPHC_NATIVE": "0"},
         "native": {"GRAPHC_SMALL_GROUP": "0", "GRAPHC_NATIVE": "1"}}


@pytest.mark.parametrize("mode", MODES)
def test_in_place_writes_give_eager_results(monkeypatch, mode):
    if mode == "native" and toolchain.compiler() is None:
        pytest.skip("no C compiler")
    for k, v in MODES[mode].items():
        monkeypatch.setenv(k, v)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((256, 64)).astype(F32)
    w = (rng.standard_normal((64, 64)) / 8).astype(F32)
    f = graphc.compile(_chain)
    low = f.lower(x, w)
    x_before, w_before = x.copy(), w.copy()
    got = f(x, w)
    # against eager numpy's ops on the graph as traced (the interpreter), within the
    # tolerance the precision analysis gives the output (sums of 64 and 16384 terms)
    want = graphc.interpret(low.graph, x, w)
    compare("in place", [got], [want], output_tolerances(low.graph))
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(w, w_before)
    if mode != "plain":
        # the exp's buffer is the matmul's: one slot serves both
        slots = re.findall(r"= _view\(_A\[(\d+)\]", low.source)
        assert len(slots) > len(set(slots)), low.source


def test_in_place_donor_keeps_its_slot_only_where_it_dies():
    from graphc.ir import TensorType, Value
    a = LiveRange(Value("a", TensorType((100,), "bool")), 0, 1)
    b = LiveRange(Value("b", TensorType((100,), "bool")), 1, 2)
    c = LiveRange(Value("c", TensorType((100,), "bool")), 1, 3)  # made where a dies
    slot_of, sizes = assign_slots([a, b, c], {id(c.value): id(a.value)})
    assert slot_of[id(c.value)] == slot_of[id(a.value)]
    assert slot_of[id(b.value)] != slot_of[id(c.value)]
    # a donor that lives on past the value's group gives nothing
    late = LiveRange(Value("d", TensorType((100,), "bool")), 0, 2)
    e = LiveRange(Value("e", TensorType((100,), "bool")), 1, 2)
    slot_of, _ = assign_slots([late, e], {id(e.value): id(late.value)})
    assert slot_of[id(e.value)] != slot_of[id(late.value)]


def test_last_reads_follow_views_to_their_base():
    f = graphc.compile(lambda x: np.sum(np.reshape(np.exp(x), (4, 64)) * 2.0, axis=1))
    g = f.lower(np.ones((16, 16), F32)).optimized
    last = last_reads(g, frozenset({"reshape"}))
    exp = next(n for n in g.nodes if n.op == "exp").outputs[0]
    reshaped = next(n for n in g.nodes if n.op == "reshape").outputs[0]
    assert last[id(exp)] >= last[id(reshaped)]


def test_groups_keep_fusions_space_and_text_gives_the_same_plans():
    from graphc.ir import parse
    f = graphc.compile(lambda x, w: softmax(np.tanh(x @ w + 1.0)) * 2.0)
    g = f.lower(np.ones((4, 6, 16), F32), np.ones((16, 16), F32)).optimized
    kinds = {grp.kind: grp.space for grp in g.groups}
    assert kinds["matmul"] == (4, 6, 16)
    assert all(grp.space is None for grp in g.groups if grp.kind in ("source", "single"))
    again = parse(str(g))
    assert all(grp.space is None for grp in again.groups)  # text does not carry it
    described = [p.describe() for p in plan_kernels(g)]
    assert [p.describe() for p in plan_kernels(again)] == described
