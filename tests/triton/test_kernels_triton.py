"""Whole numpy programs on the Triton backend (under the interpreter where there is no
GPU), against eager numpy: the kernel kinds (pointwise, persistent and looped
reductions over any axes, full reductions), the kernel counts the issue asks for
(softmax, layer norm, gelu and Adam are one kernel each), data in and out, and the
readable source.

Tolerances: float32 results of a few correctly rounded or few-ulp operations sit
within ~1e-6 relative of numpy's; sums of n terms within n * 2**-24 relative of the
sum of magnitudes (the standard bound for any summation order).
"""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TRITON_INTERPRET", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("triton")

import graphc  # noqa: E402

EPS32 = 2.0 ** -24


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(x):
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def layer_norm(x, w, b):
    m = x.mean(axis=-1, keepdims=True)
    v = ((x - m) ** 2).mean(axis=-1, keepdims=True)
    return (x - m) / np.sqrt(v + 1e-5) * w + b


def cross_entropy(logits, onehot):
    return -(log_softmax(logits) * onehot).sum(axis=-1).mean()


def gelu(x):
    return 0.5 * x * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))


def adam(p, g, m, v):
    m = 0.9 * m + 0.1 * g
    v = 0.999 * v + 0.001 * g * g
    return p - 1e-3 * (m / 0.1) / (np.sqrt(v / 0.001) + 1e-8), m, v


def _kernels(f, *args):
    return f.lower(*args).executable.kernels


def _close(got, want, n_terms=8):
    # a few roundings per element plus, for a reduction, n_terms * eps of the magnitudes
    np.testing.assert_allclose(got, want, rtol=8 * n_terms * EPS32,
                               atol=8 * n_terms * EPS32 * float(np.nanmax(np.abs(want))))


@pytest.mark.parametrize("cols", [7, 300, 5000], ids=["short", "persistent", "looped"])
def test_row_reductions_are_one_kernel(cols, rng):
    x = rng.standard_normal((3, 5, cols)).astype(np.float32) * 4
    w, b = (rng.standard_normal(cols).astype(np.float32) for _ in range(2))
    for fn, args in ((softmax, (x,)), (log_softmax, (x,)), (layer_norm, (x, w, b))):
        f = graphc.compile(fn, backend="triton")
        _close(f(*args), fn(*args), n_terms=cols)
        assert len(_kernels(f, *args)) == 1, (fn.__name__, f.lower(*args).fusion_report())
    kinds = f.lower(x, w, b).executable.notes
    assert any(("looped" if cols > 4096 else "persistent") in n
               for notes in kinds.values() for n in notes)


def test_cross_entropy_per_row_is_one_kernel(rng):
    logits = rng.standard_normal((16, 10)).astype(np.float32)
    onehot = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 16)]
    # keepdims: the row_blocked policy keeps a group's values of one rank
    per_row = lambda z, t: -(log_softmax(z) * t).sum(axis=-1, keepdims=True)  # noqa: E731
    f = graphc.compile(per_row, backend="triton")
    _close(f(logits, onehot), per_row(logits, onehot), n_terms=10)
    assert len(_kernels(f, logits, onehot)) == 1, f.lower(logits, onehot).fusion_report()
    # the mean over the batch is a reduction across axis 0: its own kernel
    mean = graphc.compile(cross_entropy, backend="triton")
    _close(mean(logits, onehot), cross_entropy(logits, onehot), n_terms=160)


@pytest.mark.parametrize("fn", [gelu, lambda x: np.maximum(x, 0) * 2 + 1],
                         ids=["gelu", "relu_scale"])
def test_elementwise_chains_are_one_kernel(fn, rng):
    x = rng.standard_normal((64, 33)).astype(np.float32)
    f = graphc.compile(fn, backend="triton")
    _close(f(x), fn(x))
    assert len(_kernels(f, x)) == 1


def test_adam_step_is_one_kernel(rng):
    p, g, m, v = (rng.standard_normal(1000).astype(np.float32) for _ in range(4))
    v = np.abs(v)
    f = graphc.compile(adam, backend="triton")
    for got, want in zip(f(p, g, m, v), adam(p, g, m, v)):
        _close(got, want)
    assert len(_kernels(f, p, g, m, v)) == 1


@pytest.mark.parametrize("axes", [(0,), (1,), (2,), (0, 2), (0, 1, 2), (1, 2)])
@pytest.mark.parametrize("op", ["sum", "max", "min"])
def test_reductions_over_any_axes(op, axes, rng):
    x = rng.standard_normal((6, 5, 7)).astype(np.float32)
    fn = lambda x: getattr(np, op)(x, axis=axes) * 2.0  # noqa: E731
    f = graphc.compile(fn, backend="triton")
    _close(f(x), fn(x), n_terms=210)


@pytest.mark.parametrize("axis", [0, 1])
def test_argmax_is_the_first_maximum_and_nan_wins(axis):
    x = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, np.nan, 5.0, np.nan],
                  [-np.inf, -np.inf, -np.inf, -np.inf]], np.float32)
    f = graphc.compile(lambda x: np.argmax(x, axis=axis), backend="triton")
    np.testing.assert_array_equal(f(x), np.argmax(x, axis=axis))


def test_max_propagates_nan_in_looped_rows():
    x = np.ones((2, 6000), np.float32)
    x[1, 4321] = np.nan
    f = graphc.compile(lambda x: x.max(axis=1) + x.sum(axis=1), backend="triton")
    np.testing.assert_array_equal(np.isnan(f(x)), [False, True])


def test_float16_softmax_accumulates_in_float32(rng):
    x = (rng.standard_normal((4, 700)) * 3).astype(np.float16)
    f = graphc.compile(softmax, backend="triton")
    got = f(x)
    assert got.dtype == np.float16
    want = softmax(x.astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=4 * 2.0 ** -11, atol=4 * 2.0 ** -11 * want.max())


def test_numpy_in_numpy_out_and_tensors_stay_tensors(rng):
    x = rng.standard_normal((8, 9)).astype(np.float32)
    f = graphc.compile(lambda x: np.tanh(x) * 2.0, backend="triton")
    assert isinstance(f(x), np.ndarray)
    t = torch.from_numpy(x.copy())
    (out,) = f.lower(x).executable.fn(t)  # the executable itself takes tensors
    assert isinstance(out, torch.Tensor) and out.device == t.device
    np.testing.assert_allclose(out.numpy(), np.tanh(x) * 2.0, rtol=4e-7, atol=4e-7)
    g = graphc.compile(lambda x: torch.tanh(x) * 2.0, backend="triton")  # torch code
    out = g(t)
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), np.tanh(x) * 2.0, rtol=4e-7, atol=4e-7)


def test_source_reads_like_the_tutorials(rng):
    x = rng.standard_normal((8, 9)).astype(np.float32)
    f = graphc.compile(softmax, backend="triton")
    src = f.lower(x).source
    assert "@triton.jit" in src and "tl.constexpr" in src
    for group in ("# pointers", "# sizes", "# strides", "# meta-parameters"):
        assert group in src
    assert "test_kernels_triton.py:" in src  # lines tie back to the user's source
    body = src.split("@triton.jit", 1)[1].split("def launch_", 1)[0]
    assert all("mask=" in line for line in body.splitlines() if "tl.load(" in line
               and "(one element)" not in line)
    report = f.lower(x).fusion_report()
    assert "triton:" in report


def test_externs_are_named_in_source_and_report(rng):
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    from graphc import nn
    f = graphc.compile(lambda x, w: np.tanh(nn.conv2d(x, w)), backend="triton")
    low = f.lower(x, w)
    assert "extern (torch)" in low.source
    assert "extern: conv2d" in low.fusion_report()
    want = graphc.compile(lambda x, w: np.tanh(nn.conv2d(x, w)))(x, w)
    np.testing.assert_allclose(f(x, w), want, rtol=1e-5, atol=1e-5)


def test_no_gpu_and_no_interpreter_is_a_clear_error(monkeypatch):
    from graphc.backends.triton import runtime
    from graphc.errors import GraphcError
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(GraphcError, match="no GPU"):
        runtime.choose_device()


def test_graphc_dump_holds_the_triton_kernels(tmp_path, monkeypatch, rng):
    monkeypatch.setenv("GRAPHC_DUMP", str(tmp_path))
    x = rng.standard_normal((8, 9)).astype(np.float32)
    graphc.compile(softmax, backend="triton")(x)
    sources = [p.read_text() for p in tmp_path.rglob("*.py")]
    assert any("@triton.jit" in text and "def launch_" in text for text in sources)


def test_bfloat16_kernels_round_each_op_and_accumulate_in_float32():
    from graphc.backends.triton import compile_graph
    from graphc.ir import parse
    graph = parse("""graph f(%x: bf16[6,300], %w: bf16[300]) -> (bf16[6,300], bf16[6,1]) {
  %0: bf16[6,300] = mul %x, %w
  %1: bf16[6,300] = tanh %0
  %2: bf16[6,1] = sum %1 {axes=(1,), keepdims=true}
  return %1, %2
}""")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 300, generator=gen).bfloat16()
    w = torch.randn(300, generator=gen).bfloat16()
    t, s = compile_graph(graph).fn(x, w)
    assert t.dtype == s.dtype == torch.bfloat16
    # each op rounded to bfloat16 (8-bit significand), as the IR says: the product is
    # one rounding, tanh within 3 float32 ulps before its own rounding
    want_t = torch.tanh((x.float() * w.float()).bfloat16().float()).bfloat16()
    half_ulp = 2.0 ** -8
    np.testing.assert_allclose(t.float().numpy(), want_t.float().numpy(),
                               rtol=2 * half_ulp, atol=1e-6)
    # the sum of 300 bfloat16 terms in float32, rounded once: within one bfloat16
    # rounding of the float64 sum, plus 300 float32 roundings of the magnitudes
    exact = t.double().sum(dim=1, keepdim=True)
    bound = half_ulp * exact.abs() + 300 * EPS32 * t.double().abs().sum(dim=1, keepdim=True)
    assert torch.all((s.double() - exact).abs() <= bound)


@pytest.mark.parametrize("fn", [lambda x: np.sum(x * x) * 0.5, lambda x: np.max(x, axis=1),
                                lambda x: (np.mean(x), np.min(np.abs(x)))],
                         ids=["loss", "rows_max", "mean_min"])
def test_few_long_rows_reduce_in_two_deterministic_stages(fn, rng):
    x = rng.standard_normal((3, 70000)).astype(np.float32)
    f = graphc.compile(fn, backend="triton")
    got, want = f(x), fn(x.astype(np.float64))
    for g, w in zip(np.atleast_1d(got) if not isinstance(got, tuple) else got,
                    np.atleast_1d(want) if not isinstance(want, tuple) else want):
        _close(g, np.float32(w) if np.ndim(w) == 0 else w.astype(np.float32),
               n_terms=x.size)
    assert any(k.endswith("_partial") for k in _kernels(f, x))
    again = f(x)  # a fixed order of partials: the same bits every call
    for a, b in zip(np.atleast_1d(got), np.atleast_1d(again)):
        assert np.array_equal(a, b)
    x[1, 12345] = np.nan  # a nan in one chunk reaches the result (row 1's)
    results = f(x) if isinstance(got, tuple) else (f(x),)
    assert all(np.isnan(np.atleast_1d(r)).any() for r in results)
