"""Fusion groups, the fused numpy kernels, memory planning and buffer safety."""
import threading
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import graphc
from graphc.ir import TensorType, Value
from graphc.passes.dce import dce
from graphc.passes.fusion import fuse
from graphc.passes.memory import LiveRange, assign_slots
from graphc.backends import diskcache
from graphc.backends.numpy.codegen import native_enabled
# the suite's own workloads, written as users write them
from graphc.bench.workloads import chain, gelu, layernorm, mlp, softmax
from tests.fuzz.generate import graphs

F32 = np.float32


def adam(p, g, m, v, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, t=3):
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    mhat = m / (1 - b1**t)
    vhat = v / (1 - b2**t)
    return p - lr * mhat / (np.sqrt(vhat) + eps), m, v


def _args(rng, name, rows=512, cols=256):
    x = rng.standard_normal((rows, cols)).astype(F32)
    return {
        "softmax": (x,),
        "layernorm": (x, rng.standard_normal(cols).astype(F32),
                      rng.standard_normal(cols).astype(F32)),
        "gelu": (x.reshape(-1),),
        "chain": (x,),
        "mlp": (x, rng.standard_normal((cols, 64)).astype(F32) * 0.1,
                rng.standard_normal(64).astype(F32),
                rng.standard_normal((64, 32)).astype(F32) * 0.1,
                rng.standard_normal(32).astype(F32)),
        "adam": tuple(np.abs(rng.standard_normal(rows * cols)).astype(F32) for _ in range(4)),
    }[name]


FUNCTIONS = {"softmax": softmax, "layernorm": layernorm, "gelu": gelu, "chain": chain,
             "mlp": mlp, "adam": adam}
# kernels after fusion: every elementwise op sits in a group; mlp is two matmuls,
# each with its elementwise epilogue (bias + gelu, then bias)
EXPECTED_KERNELS = {"softmax": 1, "layernorm": 1, "gelu": 1, "chain": 1, "mlp": 2, "adam": 1}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_workloads_fuse_into_the_expected_kernels(name, rng):
    args = _args(rng, name)
    f = graphc.compile(FUNCTIONS[name])
    low = f.lower(*args)
    before, after = low.kernels
    assert after == EXPECTED_KERNELS[name], low.fusion_report()
    assert before > after
    kinds = [g.kind for g in low.optimized.groups if g.kind != "source"]
    if name in ("softmax", "layernorm"):
        assert kinds == ["reduction"]
    if name == "mlp":
        assert kinds == ["matmul", "matmul"]
    got, want = f(*args), FUNCTIONS[name](*args)
    for g, w in zip(np.atleast_1d(got) if name != "adam" else got,
                    np.atleast_1d(want) if name != "adam" else want):
        np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-5)


def test_fusion_never_creates_a_cycle():
    # c reads a (group G) and a.T (a transpose, which itself reads G): joining G would
    # make G -> transpose -> G
    def f(x):
        a = np.exp(x)
        return a * a.T

    g = fuse(dce(graphc.trace(f, np.ones((4, 4), F32))))
    g.verify()
    group_of = {id(n): i for i, grp in enumerate(g.groups) for n in grp.nodes}
    exp, mul = (next(n for n in g.nodes if n.op == op) for op in ("exp", "mul"))
    assert group_of[id(exp)] != group_of[id(mul)]
    notes = [note for grp in g.groups for note in grp.notes]
    assert any("cycle" in note for note in notes), notes


def _groups_in_dependency_order(g) -> bool:
    """Whether every group reads only values made by itself or by groups listed before
    it: then the group graph has no cycle (computed from the result, not from fuse's
    own bookkeeping)."""
    group_of = {id(n): i for i, grp in enumerate(g.groups) for n in grp.nodes}
    return all(group_of[id(v.node)] <= group_of[id(n)]
               for n in g.nodes for v in n.inputs if v.node is not None)


def test_sibling_merge_sees_the_path_through_another_producer():
    # where's producers: the mask's group (chosen), m's full reduction, and a's chain.
    # a's chain looks like a harmless sibling of the mask's group, but a -> m -> where:
    # merging it would run a both before and after m (issue 10's NetworkXUnfeasible)
    def f(x, y):
        a = -x
        m = np.max(a, axis=0, keepdims=True)
        return np.where(y == 0.5, m, np.abs(a))

    x = np.linspace(-1, 1, 7, dtype=F32).reshape(1, 7)
    g = fuse(dce(graphc.trace(f, x, x)))
    g.verify()
    assert _groups_in_dependency_order(g), str(g)
    group_of = {id(n): i for i, grp in enumerate(g.groups) for n in grp.nodes}
    neg, eq, where = (next(n for n in g.nodes if n.op == op) for op in ("neg", "eq", "where"))
    assert group_of[id(neg)] != group_of[id(where)] == group_of[id(eq)], str(g)


# 1000 graphs (a few seconds: fusion only): the fusion of issue 10 broke on the ~500th
@settings(max_examples=1000, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(case=graphs(max_nodes=12))
def test_fused_groups_of_random_graphs_form_a_dag(case):
    g = fuse(dce(case.graph))
    g.verify()
    assert _groups_in_dependency_order(g), str(g)


def test_fusion_report_lists_groups_and_reasons(rng):
    low = graphc.compile(mlp).lower(*_args(rng, "mlp"))
    report = low.fusion_report()
    assert "-> 2 kernels" in report
    assert "matmul, 11 ops: matmul, add" in report
    assert "a matmul starts a kernel of its own" in report


def test_fused_graph_round_trips_with_its_groups(rng):
    low = graphc.compile(layernorm).lower(*_args(rng, "layernorm"))
    text = str(low.optimized)
    assert "= kernel k1 reduction (" in text
    again = graphc.ir.parse(text)
    again.verify()
    assert str(again) == text and [g.kind for g in again.groups] == ["source", "reduction"]


def test_rows_misaligned_by_broadcasting_are_not_fused():
    # s has shape (n,) and broadcasts along the columns of x: cutting rows of both
    # would be wrong, so the subtraction must not join the reduction's group
    def f(x):
        s = np.sum(x, axis=1)
        return x - s

    x = np.arange(16, dtype=F32).reshape(4, 4)
    g = fuse(dce(graphc.trace(f, x)))
    assert [grp.kind for grp in g.groups if grp.kind != "source"] == ["reduction",
                                                                        "elementwise"]
    np.testing.assert_array_equal(graphc.compile(f)(x), f(x))


def test_steady_state_call_allocates_only_its_outputs(rng):
    args = _args(rng, "mlp", rows=1024, cols=256)
    f = graphc.compile(mlp, check=False)  # check mode would run the interpreter too
    for _ in range(3):
        f(*args)  # warm: buffers and scratch now pooled
    out_bytes = f(*args).nbytes
    # tracemalloc counts every thread: the compile cache's eviction count, started by
    # the compile above, must not be charged to the call
    diskcache.wait_for_eviction()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        out = f(*args)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    eager_temporaries = 3 * 1024 * 64 * 4  # what even one eager intermediate costs
    assert out.nbytes == out_bytes
    assert peak < out_bytes + 64 * 1024, (peak, out_bytes)
    assert peak < eager_temporaries


def test_concurrent_calls_never_share_buffers(rng):
    args = _args(rng, "layernorm", rows=1024, cols=128)
    f = graphc.compile(layernorm, check=False)
    want = layernorm(*args)
    f(*args)
    errors = []

    def worker(scale):
        x = args[0] * scale
        expected = layernorm(x, *args[1:])
        for _ in range(20):
            got = f(x, *args[1:])
            if not np.allclose(got, expected, rtol=1e-4, atol=1e-4):
                errors.append(scale)

    threads = [threading.Thread(target=worker, args=(s,)) for s in (1.0, 2.0, -3.0, 0.5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    np.testing.assert_allclose(f(*args), want, rtol=1e-4, atol=1e-4)


def _range(name, start, end, nbytes):
    return LiveRange(Value(name, TensorType((nbytes,), "bool")), start, end)


def test_memory_plan_reuses_slots_after_last_use():
    a, b, c, d = (_range("a", 0, 1, 100), _range("b", 1, 2, 100), _range("c", 2, 3, 80),
                  _range("d", 2, 4, 300))
    ranges = [a, b, c, d]
    slot_of, sizes = assign_slots(ranges)
    # values alive at once never share a slot, and every slot fits what it holds
    for r in ranges:
        for q in ranges:
            if r is not q and not (r.end < q.start or q.end < r.start):
                assert slot_of[id(r.value)] != slot_of[id(q.value)]
        assert sizes[slot_of[id(r.value)]] >= r.value.type.nbytes
    # a is dead by group 2, so one of the values made there reuses its slot
    assert slot_of[id(a.value)] in {slot_of[id(c.value)], slot_of[id(d.value)]}
    assert len(sizes) == 3 and sum(sizes) < 100 + 100 + 80 + 300


def test_recycled_outputs_never_overwrite_what_the_caller_holds(rng):
    # outputs of 1 MiB and more are recycled once the caller drops them: results
    # still held (whole, or through a view) must keep their values
    f = graphc.compile(chain, check=False)
    xs = [rng.standard_normal((512, 1024)).astype(F32) for _ in range(3)]
    held = [f(x) for x in xs for _ in range(3)]          # 9 live results
    views = [f(x)[::7] for x in xs]                      # bases kept alive by views only
    for _ in range(6):
        f(xs[0])                                         # dropped at once: recycled
    for i, out in enumerate(held):
        np.testing.assert_allclose(out, chain(xs[i // 3]), rtol=1e-5, atol=1e-6)
    for x, v in zip(xs, views):
        np.testing.assert_allclose(v, chain(x)[::7], rtol=1e-5, atol=1e-6)
    a, b = f(xs[1]), f(xs[2])
    assert not np.shares_memory(a, b)


def test_training_step_leaves_no_elementwise_op_unfused(rng):
    # the mean's 1/n after the loss's full reduction joins that reduction's kernel;
    # every other elementwise op sits in a matmul epilogue or a fused group
    from graphc.bench.workloads import WORKLOADS
    w = WORKLOADS["mlp_train"]
    low = graphc.compile(w.graphc_fn).lower(*w.args(quick=True))
    for group in low.optimized.groups:
        if group.kind == "single":
            assert all(graphc.ops.OPS[n.op].kind is not graphc.ops.Kind.ELEMENTWISE
                       for n in group.nodes), low.fusion_report()
    before, after = low.kernels
    assert after < before / 3


def test_scalar_chains_join_the_kernel_that_reads_them(rng):
    # Adam with a traced step: 1 - b1**t and 1 - b2**t are 0-d ops that only the
    # update reads; they become part of its kernel instead of kernels of their own
    def adam_traced_t(p, g, m, v, t):
        return adam(p, g, m, v, t=t)

    args = _args(rng, "adam") + (np.float32(3),)
    f = graphc.compile(adam_traced_t)
    assert f.lower(*args).kernels[1] == 1, f.lower(*args).fusion_report()
    for got, want in zip(f(*args), adam_traced_t(*args)):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("native", [False, True])
def test_rank3_kernels_cut_rows_across_all_leading_dims(rng, native):
    # attention scores (batch, query, key): the softmax kernel runs over batch * query
    # rows, not just `batch` of them, with weights that broadcast over every row
    def scaled_softmax(s, w):
        e = np.exp(s * w - np.max(s * w, axis=-1, keepdims=True))
        return e / np.sum(e, axis=-1, keepdims=True)

    s = rng.standard_normal((4, 256, 64)).astype(F32)
    w = rng.standard_normal(64).astype(F32)
    f = graphc.compile(scaled_softmax, options={"native": native})
    source = f.lower(s, w).source
    call = "_runc(_n0, 1024," if native_enabled(f.options) else "_run(_k0, 1024,"
    assert call in source and "np.reshape(s, (1024, 64))" in source, source
    np.testing.assert_allclose(f(s, w), scaled_softmax(s, w), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ fusion policies
# Each backend hands fusion a FusionPolicy; the numpy backend's is fuse's default. The
# policies below are other backends' choices: some the numpy backend can run (they only
# refuse merges), others it cannot (a whole-group reduction, a matmul prologue), whose
# groups are checked for validity only.

def _loss_mean(x):
    return np.mean(x * x)          # a full reduction and the mean's division after it


def _column_softmax(x):
    e = np.exp(x)
    return e / np.sum(e, axis=0, keepdims=True)   # reduces over axis 0, across rows


def _prologue_mlp(x, w, b):
    return np.tanh(x) @ w + b      # tanh feeds the matmul: a prologue


def _adam_traced_t(p, g, m, v, t):
    return adam(p, g, m, v, t=t)


def _policy_programs(rng):
    x = rng.standard_normal((64, 48)).astype(F32)
    w = rng.standard_normal((48, 16)).astype(F32)
    b = rng.standard_normal(16).astype(F32)
    return {"softmax": (softmax, (x,)),
            "layernorm": (layernorm, _args(rng, "layernorm", rows=64, cols=48)),
            "mlp": (mlp, _args(rng, "mlp", rows=64, cols=48)),
            "adam_traced_t": (_adam_traced_t, _args(rng, "adam", rows=8, cols=48)
                              + (np.float32(3),)),
            "loss_mean": (_loss_mean, (x,)), "column_softmax": (_column_softmax, (x,)),
            "prologue_mlp": (_prologue_mlp, (x, w, b))}


def _fused(fn, args, policy):
    traced = dce(graphc.trace(fn, *args))
    return traced, fuse(traced, policy)


def _kinds(g):
    return [grp.kind for grp in g.groups if grp.kind != "source"]


def _assert_valid(g, policy):
    """Valid groups: the graph verifies, every node sits in one group, groups read only
    themselves and earlier groups (no cycle), and none is larger than the policy allows."""
    g.verify()
    assert sorted(id(n) for grp in g.groups for n in grp.nodes) == sorted(map(id, g.nodes))
    assert _groups_in_dependency_order(g), str(g)
    assert all(policy.room(len(grp.nodes)) for grp in g.groups if grp.kind != "source")


def _assert_runs_right(traced, fused, args):
    """The numpy backend runs `fused`'s groups and matches the reference interpreter
    on the traced graph, within each output's error bound."""
    from graphc.check import compare, output_tolerances
    flat = [np.asarray(a) for a in args]  # arrays and numpy scalars, one input each
    assert len(flat) == len(traced.inputs)
    got = list(graphc.backends.get("numpy").compile_graph(fused).fn(*flat))
    want = graphc.interpret(traced, *flat)
    want = [want] if len(traced.outputs) == 1 else list(want)
    compare(traced.name, got, want, output_tolerances(traced))


def test_numpy_backend_policy_is_the_default_and_changes_nothing(rng):
    from graphc.passes.fusion import ROW_BLOCKED
    from graphc.passes.pipeline import resolve
    assert graphc.backends.get("numpy").FUSION_POLICY == ROW_BLOCKED
    # bound to the numpy policy, the default fusion pass is the pass itself
    assert dict(resolve(None, ROW_BLOCKED))["fusion"] is fuse
    for name, (fn, args) in _policy_programs(rng).items():
        traced = dce(graphc.trace(fn, *args))
        assert str(fuse(traced, ROW_BLOCKED)) == str(fuse(traced)), name


@pytest.mark.parametrize("size", [1, 3])
def test_a_group_size_limit_splits_kernels_that_still_run_right(rng, size):
    from graphc.passes.fusion import FusionPolicy
    policy = FusionPolicy(max_group_nodes=size)
    for name, (fn, args) in _policy_programs(rng).items():
        if name == "prologue_mlp":
            continue  # the same as mlp under numpy-runnable policies
        traced, fused = _fused(fn, args, policy)
        _assert_valid(fused, policy)
        default = fuse(traced)
        assert len(_kinds(fused)) >= len(_kinds(default)), name
        if size == 1:  # every working op on its own
            assert all(len(grp.nodes) == 1 for grp in fused.groups if grp.kind != "source")
        _assert_runs_right(traced, fused, args)
    _, fused = _fused(softmax, _policy_programs(rng)["softmax"][1], policy)
    assert len(_kinds(fused)) > 1   # the one softmax kernel is cut


def test_scalar_chains_stay_apart_when_the_policy_says_so(rng):
    from graphc.passes.fusion import FusionPolicy
    policy = FusionPolicy(scalar_chains_join=False)
    fn, args = _policy_programs(rng)["adam_traced_t"]
    traced, fused = _fused(fn, args, policy)
    _assert_valid(fused, policy)
    assert "scalar" not in _kinds(fuse(traced)) and "scalar" in _kinds(fused)
    _assert_runs_right(traced, fused, args)


def test_a_full_reduction_alone_when_the_policy_says_so(rng):
    from graphc.passes.fusion import FusionPolicy
    policy = FusionPolicy(full_reduction_epilogue=False)
    fn, args = _policy_programs(rng)["loss_mean"]
    traced, fused = _fused(fn, args, policy)
    _assert_valid(fused, policy)
    full = [grp for grp in fused.groups if grp.kind == "reduce_all"]
    assert [n.op for n in full[0].nodes] == ["sum"], str(fused)
    assert len(next(grp for grp in fuse(traced).groups if grp.kind == "reduce_all").nodes) > 1
    _assert_runs_right(traced, fused, args)


# The numpy backend cannot run these two policies' groups (its reduction kernels cut
# rows; it computes a matmul by BLAS before the rest of its group), so they are checked
# for validity and for the grouping the policy asks for.

def test_unblocked_reductions_fuse_over_any_axis(rng):
    from graphc.passes.fusion import FusionPolicy
    policy = FusionPolicy(row_blocked=False)
    fn, args = _policy_programs(rng)["column_softmax"]
    traced, fused = _fused(fn, args, policy)
    _assert_valid(fused, policy)
    assert len(_kinds(fuse(traced))) > 1 and _kinds(fused) == ["reduction"], str(fused)

    def misaligned(x):  # rank-1 sums broadcast along the columns: fine unblocked
        return x - np.sum(x, axis=1)

    x = np.arange(16, dtype=F32).reshape(4, 4)
    traced, fused = _fused(misaligned, (x,), policy)
    _assert_valid(fused, policy)
    assert _kinds(fuse(traced)) == ["reduction", "elementwise"]
    assert _kinds(fused) == ["reduction"]


def test_matmul_prologues_join_the_matmul_kernel(rng):
    from graphc.passes.fusion import FusionPolicy
    policy = FusionPolicy(matmul_prologue=True)
    fn, args = _policy_programs(rng)["prologue_mlp"]
    traced, fused = _fused(fn, args, policy)
    _assert_valid(fused, policy)
    assert _kinds(fuse(traced)) == ["elementwise", "matmul"]
    (group,) = [grp for grp in fused.groups if grp.kind != "source"]
    assert group.kind == "matmul" and [n.op for n in group.nodes][:2] == ["tanh", "matmul"]


POLICIES = {"unblocked": dict(row_blocked=False), "prologues": dict(matmul_prologue=True),
            "scalars_apart": dict(scalar_chains_join=False),
            "full_reduction_alone": dict(full_reduction_epilogue=False),
            "two_ops": dict(max_group_nodes=2),
            "triton_like": dict(row_blocked=False, matmul_prologue=True)}


@pytest.mark.parametrize("name", sorted(POLICIES))
@settings(max_examples=500, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(case=graphs(max_nodes=12))
def test_every_policy_keeps_groups_acyclic_on_random_graphs(name, case):
    from graphc.passes.fusion import FusionPolicy
    policy = FusionPolicy(**POLICIES[name])
    _assert_valid(fuse(dce(case.graph), policy), policy)


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_every_policy_refuses_the_known_cycles(name):
    # the two cycles of the tests above (issue 10's among them), under each policy
    from graphc.passes.fusion import FusionPolicy
    policy = FusionPolicy(**POLICIES[name])

    def transpose_cycle(x):
        a = np.exp(x)
        return a * a.T

    def sibling_cycle(x, y):
        a = -x
        m = np.max(a, axis=0, keepdims=True)
        return np.where(y == 0.5, m, np.abs(a))

    x = np.linspace(-1, 1, 16, dtype=F32).reshape(4, 4)
    for fn, args in ((transpose_cycle, (x,)), (sibling_cycle, (x[:1], x[:1]))):
        _assert_valid(_fused(fn, args, policy)[1], policy)


def test_the_face_fuses_with_the_backends_policy(rng, monkeypatch):
    # graphc.compile reads FUSION_POLICY from the backend it compiles for
    from graphc.passes.fusion import FusionPolicy
    backend = graphc.backends.get("numpy")
    monkeypatch.setattr(backend, "FUSION_POLICY", FusionPolicy(max_group_nodes=1))
    x = _policy_programs(rng)["softmax"][1][0]
    f = graphc.compile(softmax)
    before, after = f.lower(x).kernels
    assert after == before > 1
    np.testing.assert_allclose(f(x), softmax(x.astype(np.float64)), rtol=1e-5, atol=1e-6)


def test_a_policy_with_a_bad_size_limit_is_refused():
    from graphc.passes.fusion import FusionPolicy
    with pytest.raises(graphc.GraphcError, match="max_group_nodes"):
        FusionPolicy(max_group_nodes=0)


@pytest.mark.parametrize("policy, fn", [
    ("matmul_prologue", lambda x, w: np.tanh(x) @ w + 1.0),
    ("row_blocked", lambda x, w: np.exp(x) / np.sum(np.exp(x), axis=0, keepdims=True) + w),
])
def test_the_numpy_backend_refuses_kernels_of_another_policy_by_name(policy, fn):
    # another backend's policy may make these groups; the numpy backend's kernels cannot
    # run them (BLAS runs the matmul first; kernels cut reductions into row blocks)
    import functools
    from graphc.passes.fusion import FusionPolicy
    other = FusionPolicy(**{"matmul_prologue": True} if policy == "matmul_prologue"
                         else {"row_blocked": False})
    x = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)
    f = graphc.compile(fn, passes=["simplify", "cse", "dce",
                                   ("fusion", functools.partial(fuse, policy=other))],
                       options={"small_group": 0})  # every group as one kernel
    with pytest.raises(graphc.GraphcError, match="numpy backend's kernels cannot run") as e:
        f(x, x)
    assert "FUSION_POLICY" in str(e.value)


def test_a_sibling_merged_before_a_matmul_is_not_a_prologue():
    # The backward of softmax(q k^T) v (as torch's decomposition writes it) merges an
    # elementwise chain that does not feed a matmul into that matmul's group, ahead of
    # it in order: the numpy backend runs it after the matmul, as an epilogue, and
    # must not refuse it as a prologue.
    torch = pytest.importorskip("torch")
    from graphc.ops import OPS, Kind

    def attention(q, k, v):
        w = torch.softmax(q @ k.transpose(-2, -1) / 2.0, dim=-1)
        return (w @ v).tanh().sum()

    compiled = graphc.compile(attention, options={"small_group": 0})
    gen = torch.Generator().manual_seed(0)
    args = [torch.randn(2, 3, 4, dtype=torch.float64, generator=gen, requires_grad=True)
            for _ in range(3)]
    got = torch.autograd.grad(compiled(*args), args)
    halves = [low.optimized for entry in compiled._torch._cache.values()
              for low in entry.lowered]
    assert any(grp.kind == "matmul" and OPS[grp.nodes[0].op].kind is not Kind.MATMUL
               for g in halves for grp in g.groups), "the case this test is about is gone"
    want = torch.autograd.grad(attention(*args), args)
    for a, b in zip(got, want):
        # float64, sums of 3 and 4 terms: rounding far below 1e-12 of the terms
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-13)
