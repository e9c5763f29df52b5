"""Dynamic shapes (issue 14 items 2 and 3, the numpy backend): a retrace caused only by
sizes makes those dimensions symbolic, one compile then serves every size, natively
and with numpy kernels, matching numpy at every size."""
import numpy as np
import pytest

import graphc
from graphc.backends.numpy.codegen import native_enabled
from graphc.dynamic import every_dimension, generalize, sizes_for
from graphc.ir.symbols import Sym

RNG = np.random.default_rng(14)
W1 = (RNG.standard_normal((32, 64)) / 6).astype(np.float32)
B1 = RNG.standard_normal(64).astype(np.float32)
W2 = (RNG.standard_normal((64, 10)) / 8).astype(np.float32)


def mlp(x, w1, b1, w2):
    h = np.maximum(x @ w1 + b1, 0)
    z = h @ w2
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True)), h.sum(axis=0)


def _reference(x):
    return mlp(*(a.astype(np.float64) for a in (x, W1, B1, W2)))


def _close(got, want, terms):
    # float32 through sums of `terms` products of O(1) values: a few ulp of the sum's
    # magnitude per term (|x||w| sums stay below ~terms here)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == np.float32
        np.testing.assert_allclose(g, w, rtol=0, atol=terms * 2.0**-20 * max(1.0, np.abs(w).max()))


@pytest.mark.parametrize("native", [True, False])
def test_one_compile_serves_every_batch_size(native):
    f = graphc.compile(mlp, options={"native": native})
    sizes = [16, 17, 2, 300, 5, 64, 16, 129]
    for n in sizes:
        x = RNG.standard_normal((n, 32)).astype(np.float32)
        _close(f(x, W1, B1, W2), _reference(x), 64 * 300)
    assert f.cache_info().misses == 2  # the first call's sizes, then every size
    (entry, shapes, guards, _), = f._symbolic
    assert str(entry.lowered.graph.inputs[0].type) == "f32[s0,32]"
    assert "x: axis 0 is dynamic now (s0): its size changed from 16 to 17" in \
        entry.lowered.retraces
    assert "_dim0 = x.shape[0]" in entry.lowered.source


def test_sizes_0_and_1_stay_specialized():
    f = graphc.compile(lambda x: x * 2.0 + 1.0)
    for n in (4, 5, 1, 6, 1):
        x = RNG.standard_normal((n, 3))
        np.testing.assert_array_equal(f(x), x * 2.0 + 1.0)  # exact: one rounding each
    assert f.cache_info().misses == 3  # 4, then s0 for 5 and 6, then 1 on its own


def test_dynamic_false_specializes_and_true_is_symbolic_from_the_first_call():
    fixed = graphc.compile(lambda x: x + 1.0, dynamic=False)
    # (an elementwise kernel takes any sizes natively: one flat loop over the elements)
    every = graphc.compile(lambda x: x + 1.0, dynamic=True, options={"native": True})
    for n in (3, 4, 5):
        x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
        np.testing.assert_array_equal(fixed(x), x + 1.0)
        np.testing.assert_array_equal(every(x), x + 1.0)
    assert fixed.cache_info().misses == 3
    if not native_enabled(every.options):  # no C compiler: numpy's block kernels
        return  # take a symbolic first axis only, and the sizes stay specialized
    assert every.cache_info().misses == 1
    assert str(every.lower(np.ones((7, 2), np.float32)).graph.inputs[0].type) == "f32[s0,s1]"
    with pytest.raises(graphc.errors.ArgumentError):
        graphc.compile(lambda x: x, dynamic="yes")


def test_a_guard_keeps_the_sizes_it_was_traced_for():
    def head(x):
        return x[:, :4] * 2.0
    f = graphc.compile(head)
    for cols in (6, 7, 9):  # symbolic from 7 on, with the guard cols >= 4 (and != 4)
        x = RNG.standard_normal((3, cols))
        np.testing.assert_array_equal(f(x), x[:, :4] * 2.0)
    before = f.cache_info().misses
    x = RNG.standard_normal((3, 4))  # the guard does not hold: a trace of its own
    np.testing.assert_array_equal(f(x), x[:, :4] * 2.0)
    assert f.cache_info().misses == before + 1


def test_what_needs_a_sizes_value_stays_specialized_and_says_why():
    def rows(x):
        return sum(x[i] for i in range(x.shape[0]))
    f = graphc.compile(rows)
    for n in (3, 4, 5):
        x = RNG.standard_normal((n, 2))
        np.testing.assert_allclose(f(x), x.sum(axis=0), rtol=2**-50)
    assert f.cache_info().misses == 3
    retraces = [line for e in f._cache.values() for line in e.lowered.retraces]
    assert any("stay specialized" in line and "symbolic" in line for line in retraces)


def test_the_policy_picks_dimensions_that_changed():
    old = (("tree",), (("array", (32, 8), "float32"), ("array", (32,), "int64"),
                       ("static", 3)))
    new = (("tree",), (("array", (17, 8), "float32"), ("array", (17,), "int64"),
                       ("static", 3)))
    shapes, why = generalize(old, new, ["x", "y", "k"])
    s0 = Sym.var("s0")
    assert shapes == {0: (s0, 8), 1: (s0,)} and len(why) == 1  # one batch: one symbol
    assert sizes_for(shapes, (), new) == {"s0": 17}
    assert sizes_for(shapes, (), (new[0], (("array", (5, 8), "float32"),
                                           ("array", (6,), "int64"), ("static", 3)))) is None
    assert generalize(old, (old[0], (old[1][0], old[1][1], ("static", 4))), ["x", "y", "k"]) \
        == ({}, [])  # a static value changed: not a size
    assert generalize(old, (old[0], (("array", (1, 8), "float32"),) + old[1][1:]),
                      ["x", "y", "k"]) == ({}, [])  # 1 is specialized
    assert every_dimension(old) == {0: (s0, Sym.var("s1")), 1: (s0,)}


def test_an_evicted_symbolic_entry_serves_no_more():
    f = graphc.compile(lambda x, k: x * k["s"], cache_size=1)
    for n in (4, 5):  # the second call makes the symbolic entry (and evicts the first)
        f(np.ones((n, 2)), {"s": 2.0})
    assert len(f._symbolic) == 1
    f(np.ones((3, 2)), {"s": 3.0})  # a static value changed: a new entry evicts it
    np.testing.assert_array_equal(f(np.ones((6, 2)), {"s": 2.0}), np.full((6, 2), 2.0))
    assert f.cache_info().entries == 1 and \
        all(f._cache.get(k) is e for e, _, _, k in f._symbolic)


EPS64 = np.finfo(np.float64).eps


@pytest.mark.parametrize("f", [
    lambda x: x.mean(axis=0),
    lambda x: (x.mean(), x.var(axis=0), x.std(axis=0, ddof=1)),
    lambda x: x - x.mean(axis=(0, 1), keepdims=True),
    lambda x: (x * x.shape[0], x / x.size, x + x.shape[0] ** 2),
], ids=["mean", "var-std", "mean-of-two-axes", "size-arithmetic"])
def test_counts_of_a_dynamic_axis_are_computed_per_call(f):
    g = graphc.compile(f)
    for n in (3, 4, 9, 2, 31):
        x = RNG.standard_normal((n, 5))
        got, want = g(x), f(x)
        for a, r in zip(*((v,) if isinstance(v, np.ndarray) else v for v in (got, want))):
            # float64 sums of at most n*5 O(1) terms, then a division and a square root:
            # a few ulp per term of the largest magnitude
            np.testing.assert_allclose(a, r, rtol=0, atol=8 * n * 5 * EPS64 *
                                       max(1.0, float(np.abs(r).max())))
    assert g.cache_info().misses == 2  # the first call's sizes, then every size
    (entry, *_), = g._symbolic
    assert "= size {dims=(s0" in str(entry.lowered.traced.graph)  # computed per call


@pytest.mark.parametrize("f", [
    lambda x: x / (x.shape[0] / 2),
    lambda x: x / np.sqrt(x.shape[0]),
    lambda x: x * float(x.shape[1]),
], ids=["true-division", "numpy-math", "float"])
def test_what_needs_a_sizes_value_specializes_instead_of_failing(f):
    g = graphc.compile(f)
    for n in (3, 4, 5):
        x = RNG.standard_normal((n, n + 1))
        np.testing.assert_allclose(g(x), f(x), rtol=4 * EPS64)  # one or two roundings
    assert g.cache_info().misses == 3
    retraces = "\n".join(line for e in g._cache.values() for line in e.lowered.retraces)
    assert "the sizes stay specialized" in retraces and "needs its value" in retraces


def _layer_loss(w, b, x, y):
    h = np.tanh(x @ w + b)
    return np.mean((h - y) ** 2)


def _layer_grads(w, b, x, y):
    """The loss's gradient by hand, in float64, and |x|^T |dz| (the products' sizes,
    which bound a dot product's rounding: Higham's gamma_n |x|^T |y|)."""
    h = np.tanh(x @ w + b)
    dz = 2 * (h - y) / h.size * (1 - h * h)
    return x.T @ dz, dz.sum(axis=0), np.abs(x).T @ np.abs(dz), np.abs(dz).sum(axis=0)


def _assert_grads(got_w, got_b, w, b, x, y):
    gw, gb, scale_w, scale_b = _layer_grads(w, b, x, y)
    n = x.shape[0]
    # the sums over n rows (and the matmul's 8 terms inside tanh's argument, a few ulp
    # more through tanh and its derivative): (n + 32) eps of the terms' magnitudes
    np.testing.assert_allclose(got_w, gw, rtol=0, atol=(n + 32) * EPS64 * scale_w.max())
    np.testing.assert_allclose(got_b, gb, rtol=0, atol=(n + 32) * EPS64 * scale_b.max())


def test_a_gradient_over_batches_of_every_size_compiles_once():
    step = graphc.compile(graphc.value_and_grad(_layer_loss, argnums=(0, 1)))
    w, b = RNG.standard_normal((8, 4)), RNG.standard_normal(4)
    for n in (5, 9, 33, 2, 100, 7):
        x, y = RNG.standard_normal((n, 8)), RNG.standard_normal((n, 4))
        loss, (gw, gb) = step(w, b, x, y)
        np.testing.assert_allclose(loss, _layer_loss(w, b, x, y), rtol=(n + 32) * EPS64)
        _assert_grads(gw, gb, w, b, x, y)
    assert step.cache_info().misses == 2
    (entry, *_), = step._symbolic
    assert str(entry.lowered.graph.inputs[2].type) == "f64[s0,8]"
    assert "x: axis 0 is dynamic now (s0)" in entry.lowered.retraces[0]


def test_a_symbolic_gradient_splits_for_rematerialization():
    from graphc.backends import get
    from graphc.frontend.trace import trace_function
    from graphc.transforms import lower_split
    w, b = RNG.standard_normal((8, 4)), RNG.standard_normal(4)
    batch = Sym.var("B")
    traced = trace_function(_layer_loss, (w, b, np.ones((5, 8)), np.ones((5, 4))), {},
                            shapes={2: (batch, 8), 3: (batch, 4)})
    halves = lower_split(traced.graph, [0, 1], get("numpy"))
    assert "B" in str(halves.parts.saved_bytes)  # what the forward saves grows with B
    for n in (3, 7, 100):
        args = (w, b, RNG.standard_normal((n, 8)), RNG.standard_normal((n, 4)))
        loss, *saved = halves.forward(*args)
        gw, gb = halves.backward(*[args[i] for i in halves.takes], *saved, np.float64(1.0))
        np.testing.assert_allclose(loss, _layer_loss(*args), rtol=(n + 32) * EPS64)
        _assert_grads(gw, gb, *args)


def _softmax(x):
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _scaled_rows(x, b):
    return np.maximum(x + b[:, None, None], 0.0) * 2.0  # a loop nest: b along axis 0


def _running(x):
    return np.cumsum(x, axis=1) * 0.5


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("f, shapes", [
    # rows longer than a native row kernel's stack scratch (16384 float32) included
    (_softmax, [(5, 7), (3, 130), (2, 17000), (9, 2)]),
    (_scaled_rows, [(3, 4, 5), (2, 9, 3), (4, 2, 17)]),
    (_running, [(3, 5), (4, 33), (2, 2)]),
], ids=["rows", "loop-nest", "scan"])
def test_symbolic_sizes_past_the_first_axis_compile_once(native, f, shapes):
    g = graphc.compile(f, dynamic=True, options={"native": native})
    for shape in shapes:
        args = [RNG.standard_normal(shape).astype(np.float32)]
        if f is _scaled_rows:
            args.append(RNG.standard_normal(shape[:1]).astype(np.float32))
        got = g(*args)
        want = f(*(a.astype(np.float64) for a in args))
        # float32 through a sum of at most shape[-1] terms (cumsum, softmax's sum),
        # each a few ulp: the count of terms times 2^-22 of the result's scale
        np.testing.assert_allclose(got, want, rtol=0, atol=(shape[-1] + 8) * 2.0**-22 *
                                   max(1.0, float(np.abs(want).max())))
    assert g.cache_info().misses == 1
    (entry, *_), = g._symbolic
    if native and native_enabled(g.options):  # sizes reach the C as an argument
        assert "sizes[" in entry.lowered.source and "_sizes = np.array(" in entry.lowered.source
    elif f is not _running:  # a numpy block kernel, its block and scratch per call
        assert "_b0 = max(1, " in entry.lowered.source and ".at(((" in entry.lowered.source
