"""Each entry of frontend/aten.py's ATEN table on sample inputs: the captured graph,
run by graphc's reference interpreter, against eager torch (forward), and graphc's
own reverse mode on it against torch.autograd (gradient), in float64.

float64 on both sides: the two differ only by rounding (different summation orders,
erf/exp implementations), a few ulp per op of terms of size ~1 in these small
samples, so 1e-10 relative (about 5e5 ulp of float64) leaves room for every case
here while any wrong formula is off by far more."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import graphc  # noqa: E402
from graphc.errors import GraphcError  # noqa: E402
from graphc.frontend.aten import ATEN, UnsupportedOpError, op_name  # noqa: E402
from graphc.frontend.torch_capture import capture_function, functional_graph  # noqa: E402
from graphc.passes.autodiff import backward  # noqa: E402

F = torch.nn.functional
RTOL, ATOL = 1e-10, 1e-12


def _g(*shape, lo=-2.0, hi=2.0, seed=0):
    gen = torch.Generator().manual_seed(seed + sum(shape))
    return (torch.rand(*shape, generator=gen, dtype=torch.float64) * (hi - lo) + lo)


def _feeds(cap, args):
    flat = [a for a in torch.utils._pytree.tree_leaves(args) if isinstance(a, torch.Tensor)]
    return [flat[what].detach().numpy() for kind, what in cap.input_kinds if kind == "arg"]


def _run(cap, args):
    out = graphc.interpret(cap.graph, *_feeds(cap, args))
    out = out if isinstance(out, tuple) else (out,)
    return cap.output_spec.rebuild([torch.from_numpy(np.array(o)) for o in out[:cap.n_outputs]])


def _ops(fn, args) -> set[str]:
    gm = functional_graph(lambda *xs: fn(*xs), list(args))
    return {op_name(n) for n in gm.graph.nodes if n.op == "call_function"}


def _close(got, want):
    for g, w in zip(torch.utils._pytree.tree_leaves(got), torch.utils._pytree.tree_leaves(want)):
        assert g.dtype == w.dtype, (g.dtype, w.dtype)
        assert g.shape == w.shape, (g.shape, w.shape)
        if w.dtype.is_floating_point:
            torch.testing.assert_close(g, w, rtol=RTOL, atol=ATOL)
        else:
            assert torch.equal(g, w)


def check(op: str, fn, *args, grad: bool = True, constant: tuple[int, ...] = ()):
    """`constant`: float arguments that get no gradient (running statistics)."""
    assert op in ATEN
    seen = _ops(fn, args)
    # functionalization spells views as their *_copy ops; the table has both
    base = op.split(".")[1] if "." in op else op
    assert op in seen or op.replace(f".{base}.", f".{base}_copy.") in seen, seen
    cap = capture_function(fn, args, {})
    _close(_run(cap, args), fn(*args))
    if not grad:
        return
    wrt = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor)
           and a.is_floating_point() and i not in constant]
    outs = torch.utils._pytree.tree_leaves(fn(*args))
    cts = [_g(*o.shape, seed=7) for o in outs if o.is_floating_point()]

    def loss(*xs):
        fl = [o for o in torch.utils._pytree.tree_leaves(fn(*xs)) if o.is_floating_point()]
        return sum((o * c).sum() for o, c in zip(fl, cts))

    lcap = capture_function(loss, args, {})
    k = [j for j, (kind, what) in enumerate(lcap.input_kinds) if what in wrt]
    joint = backward(lcap.graph, k)
    got = graphc.interpret(joint, *_feeds(lcap, args))[1:]
    xs = [a.clone().requires_grad_(i in wrt) if isinstance(a, torch.Tensor) else a
          for i, a in enumerate(args)]
    want = torch.autograd.grad(loss(*xs), [xs[i] for i in wrt], allow_unused=True)
    for g, w, i in zip(got, want, wrt):
        w = torch.zeros_like(args[i]) if w is None else w
        torch.testing.assert_close(torch.from_numpy(np.array(g)), w, rtol=RTOL, atol=ATOL)


A = torch.ops.aten
x34, x234 = _g(3, 4), _g(2, 3, 4)
ints = torch.tensor([[0, 2, 1], [3, 3, 0]])

CASES = {
    "aten.addmm.default": (lambda b, a, w: torch.addmm(b, a, w, beta=0.5, alpha=2.0),
                           _g(5), _g(3, 4), _g(4, 5)),
    "aten.mm.default": (torch.mm, _g(3, 4), _g(4, 2)),
    "aten.bmm.default": (torch.bmm, _g(2, 3, 4), _g(2, 4, 5)),
    "aten.permute.default": (lambda x: A.permute.default(x, [2, 0, -2]) * 1, x234),
    "aten.view.default": (lambda x: A.view.default(x, [4, -1]) * 1, x234),
    "aten.expand.default": (lambda x: A.expand.default(x, [2, -1, 4]) * 1, _g(3, 1)),
    "aten.unsqueeze.default": (lambda x: A.unsqueeze.default(x, -1) * 1, x34),
    "aten.squeeze.dims": (lambda x: A.squeeze.dims(x, [0, 2]) * 1, _g(1, 3, 1)),
    "aten.select.int": (lambda x: A.select.int(x, 1, -1) * 1, x234),
    "aten.slice.Tensor": (lambda x: A.slice.Tensor(x, 2, 1, 100, 2) * 1, x234),
    "aten.cat.default": (lambda a, b: torch.cat([a, b], -1), x34, _g(3, 2)),
    "aten.split_with_sizes.default": (lambda x: [t * 1 for t in torch.split(x, [1, 3], 1)], x34),
    "aten.clone.default": (lambda x: A.clone.default(x), x34),
    "aten.alias.default": (lambda x: A.alias.default(x) * 1, x34),
    "aten.full.default": (lambda x: x + torch.full((3, 4), 1.5, dtype=torch.float64), x34),
    "aten.full_like.default": (lambda x: x * torch.full_like(x, 3.0), x34),
    "aten.scalar_tensor.default": (lambda x: x * A.scalar_tensor.default(2.5, dtype=torch.float64), x34),
    "aten.arange.start_step": (lambda x: x * torch.arange(1, 9, 2, dtype=torch.float64), x34),
    "aten._to_copy.default": (lambda x: (x * 3).to(torch.int64), x34),
    "aten.relu.default": (torch.relu, x34),
    "aten.gelu.default": (lambda x: F.gelu(x) + F.gelu(x, approximate="tanh"), x34),
    "aten.tanh.default": (torch.tanh, x34),
    "aten.sigmoid.default": (torch.sigmoid, x34),
    "aten.add.Tensor": (lambda a, b: torch.add(a, b, alpha=3), x34, _g(4)),
    "aten.sub.Tensor": (lambda a, b: a - b, x34, _g(4)),
    "aten.mul.Tensor": (lambda a, b: a * b, x34, _g(3, 1)),
    "aten.mul.Scalar": (lambda a: A.mul.Scalar(a, 0.25), x34),
    "aten.div.Tensor": (lambda a, b: a / b, x34, _g(4, lo=0.5, hi=2)),
    "aten.neg.default": (torch.neg, x34),
    "aten.pow.Tensor_Scalar": (lambda x: x ** 2 + x.abs() ** 1.5, x34),
    "aten.exp.default": (torch.exp, x34),
    "aten.rsqrt.default": (torch.rsqrt, _g(3, lo=0.5, hi=2)),
    "aten.eq.Scalar": (lambda x: (x * 2).round() == 1, x34),
    "aten.ne.Scalar": (lambda x: A.ne.Scalar(ints, 3), x34),
    "aten.ge.Scalar": (lambda x: x >= 0.5, x34),
    "aten.lt.Tensor": (lambda a, b: a < b, x34, _g(4)),
    "aten.logical_not.default": (lambda x: torch.logical_not(x > 0) & ~(x > 1), x34),
    "aten.bitwise_and.Tensor": (lambda x: (x > 0) & (x < 1), x34),
    "aten.any.dim": (lambda x: (x > 1.5).any(1), x34),
    "aten.where.self": (lambda x, y: torch.where(x > 0, x, y), x34, _g(4)),
    "aten.sum.dim_IntList": (lambda x: x.sum((0, -1), keepdim=True), x234),
    "aten.mean.dim": (lambda x: x.mean(1), x234),
    "aten.amax.default": (lambda x: x.amax(-1), x234),
    "aten._softmax.default": (lambda x: torch.softmax(x, 1), x234),
    "aten._log_softmax.default": (lambda x: torch.log_softmax(x, -1), x234),
    "aten.native_layer_norm.default": (lambda x, w, b: F.layer_norm(x, (4,), w, b, 1e-5),
                                       x234, _g(4), _g(4)),
    "aten.embedding.default": (lambda w: F.embedding(ints, w), _g(5, 3)),
    "aten.gather.default": (lambda x: torch.gather(x, 1, torch.tensor([[0, 0], [3, 1], [2, 2]])), x34),
    "aten.index.Tensor": (lambda x: x[:, torch.tensor([2, -1, 0])] + x[torch.tensor([1, 0]), 1:3, torch.tensor([0, 3])][:, :, None].sum(), x234),
    "aten.convolution.default": (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
                                 _g(2, 3, 7, 6), _g(4, 3, 3, 3), _g(4)),
    "aten.max_pool2d_with_indices.default": (lambda x: F.max_pool2d(x, 2, return_indices=True),
                                             _g(2, 3, 6, 4)),
    "aten._native_batch_norm_legit_no_training.default": (
        lambda x, w, b, m, v: F.batch_norm(x, m, v, w, b, training=False, eps=1e-3),
        _g(2, 3, 4, 4), _g(3), _g(3), _g(3), _g(3, lo=0.5, hi=2)),
    "aten._native_batch_norm_legit_functional.default": (
        lambda x, w, b, m, v: (F.batch_norm(x, m.clone(), v.clone(), w, b, training=True),),
        _g(4, 3, 2, 2), _g(3), _g(3), _g(3), _g(3, lo=0.5, hi=2)),
    "getitem": (lambda x: torch.split(x, [2, 2], 1)[1] * 1, x34),
}
NO_GRAD = {"aten._to_copy.default", "aten.eq.Scalar", "aten.ne.Scalar", "aten.ge.Scalar",
           "aten.lt.Tensor", "aten.logical_not.default", "aten.bitwise_and.Tensor",
           "aten.any.dim"}


@pytest.mark.parametrize("op", sorted(CASES))
def test_op_matches_eager(op):
    fn, *args = CASES[op]
    check(op, fn, *args, grad=op not in NO_GRAD,
          constant=(3, 4) if "batch_norm" in op else ())


def test_conv1d_and_batch_norm_running_stats():
    check("aten.convolution.default", lambda x, w: F.conv1d(x, w, padding=1), _g(2, 3, 9),
          _g(4, 3, 3))
    m, v = _g(3), _g(3, lo=0.5, hi=2)

    def step(x, m, v):
        m, v = m.clone(), v.clone()
        F.batch_norm(x, m, v, training=True, momentum=0.3)
        return m, v
    # torch updates running statistics outside autograd: no gradient to compare
    check("aten._native_batch_norm_legit_functional.default", step, _g(4, 3, 5), m, v,
          grad=False)


def test_sym_size_and_assert_metadata_translate():
    # they appear in graphs traced with symbolic shapes (Dynamo's with dynamic=True):
    # a size read as a SymInt is the example's size, the metadata check is no work
    from torch.fx.experimental.proxy_tensor import make_fx
    from graphc.frontend.aten import translate

    def fn(x):
        A._assert_tensor_metadata.default(x, dtype=torch.float64)
        return (x.view(x.shape[0], -1) * 2.0,)

    gm = make_fx(fn, tracing_mode="symbolic")(x234)
    traced = {str(n.target) for n in gm.graph.nodes if n.op == "call_function"}
    assert {"aten.sym_size.int", "aten._assert_tensor_metadata.default"} <= traced
    graph, _ = translate(gm, ["x"])
    _close(torch.from_numpy(np.array(graphc.interpret(graph, x234.numpy()))), fn(x234)[0])
    assert [n.op for n in graph.nodes] == ["reshape", "const", "mul"]


def test_native_dropout_mask_and_scale():
    x = _g(64, 64) + 3.0

    def fn(x):
        return A.native_dropout.default(x, 0.25, True)
    assert "aten.native_dropout.default" in _ops(fn, (x,))
    cap = capture_function(fn, (x,), {})
    assert cap.input_kinds[-1] == ("seed", None)
    feeds = _feeds(cap, (x,))
    out, mask = graphc.interpret(cap.graph, *feeds, np.int64(1))[:2]
    again, _ = graphc.interpret(cap.graph, *feeds, np.int64(1))[:2]
    other, mask2 = graphc.interpret(cap.graph, *feeds, np.int64(2))[:2]
    assert mask.dtype == np.bool_ and np.array_equal(out, again)
    assert not np.array_equal(mask, mask2)
    np.testing.assert_allclose(out, np.where(mask, x.numpy() / 0.75, 0), rtol=1e-15)
    # 4096 Bernoulli(0.75) draws: the kept fraction is within 5 standard deviations
    sd = np.sqrt(0.75 * 0.25 / mask.size)
    assert abs(mask.mean() - 0.75) < 5 * sd


def test_unsupported_op_names_op_and_line():
    def fn(x):
        return torch.special.bessel_j0(x)  # the line the error names
    with pytest.raises(UnsupportedOpError) as info:
        capture_function(fn, (x34,), {})
    err = info.value
    assert isinstance(err, GraphcError) and err.op == "aten.special_bessel_j0.default"
    assert "test_aten_ops.py" in str(err) and "bessel_j0(x)  # the line" in str(err)


def test_unsupported_dtype_is_named():
    with pytest.raises(GraphcError, match="float16"):
        capture_function(lambda x: x * 2, (x34.half(),), {})
