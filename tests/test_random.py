"""The counter-based random primitive (`philox_uniform`) and `graphc.random`.

* Known answers: Random123's published Philox4x32-10 vectors on the core rounds.
* Statistics of uniform, normal and bernoulli draws. Each bound is z = 6 standard
  errors of the statistic for its n samples (two-sided, a false alarm rate of 2e-9
  for a normal statistic; the draws are deterministic, so a test passes or fails for
  good): the sample mean of n uniforms sits within 6 sqrt(1/12 / n) of 1/2.
* Determinism and the counter layout: element i depends on (seed, offset + i) only.
* The compiled function, in every numpy-backend mode, gives the interpreter's bits,
  and graphc.random agrees eagerly and compiled.
"""
from __future__ import annotations

import doctest
import importlib
import math

import importlib.util

import numpy as np
import pytest

import graphc
from graphc import nn, ops
from graphc import random as grandom
from graphc.fuzz import builder, checking
from graphc.ops.random import philox4x32
from tolerances import assert_within_bounds

Z = 6.0  # standard errors: the bound of every statistical check below
N = 2**20


def philox_uniform(seed, shape, offset=0, dtype="float32"):
    return ops.OPS["philox_uniform"](np.array(seed, np.int64), shape=tuple(shape),
                                     offset=offset, dtype=dtype)


# ---------------------------------------------------------------- known answers

# Random123's kat_vectors for philox4x32_10: (counter, key, output), hex words
KAT = [
    ((0x00000000, 0x00000000, 0x00000000, 0x00000000), (0x00000000, 0x00000000),
     (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8)),
    ((0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff), (0xffffffff, 0xffffffff),
     (0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd)),
    ((0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344), (0xa4093822, 0x299f31d0),
     (0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1)),
]


@pytest.mark.parametrize("counter, key, want", KAT)
def test_philox4x32_10_known_answers(counter, key, want):
    got = philox4x32(np.array([counter], np.uint32), key)
    assert got.dtype == np.uint32
    assert got[0].tolist() == list(want)


def test_known_answers_hold_in_every_lane_of_a_long_batch():
    # the rounds run in chunks of lanes: a vector at both ends of several chunks
    counters = np.array([c for c, _, _ in KAT[:1]] * 20000, np.uint32)
    got = philox4x32(counters, KAT[0][1])
    assert (got == np.array(KAT[0][2], np.uint32)).all()


@pytest.mark.parametrize("module", ["graphc.random", "graphc.ops.random"])
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0 and result.attempted > 0


# ---------------------------------------------------------------- statistics


def _within(stat, mean, sd, n):
    assert abs(stat - mean) <= Z * sd / math.sqrt(n), (stat, mean, Z * sd / math.sqrt(n))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_uniform_mean_variance_and_range(dtype):
    u = philox_uniform(11, (N,), dtype=dtype).astype(np.float64)
    assert u.min() >= 0 and u.max() < 1
    _within(u.mean(), 0.5, math.sqrt(1 / 12), N)
    # the sample variance's standard error: sqrt((mu4 - sigma**4) / n), mu4 = 1/80
    _within(u.var(), 1 / 12, math.sqrt(1 / 80 - 1 / 144), N)


def _chi_square_limit(dof: int, z: float) -> float:
    # Wilson and Hilferty: (X / dof) ** (1/3) is close to normal with mean
    # 1 - 2 / (9 dof) and variance 2 / (9 dof), accurate to the third decimal at dof 63
    v = 2 / (9 * dof)
    return dof * (1 - v + z * math.sqrt(v)) ** 3


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_uniform_bins_pass_a_chi_square_test(dtype):
    bins = 64
    counts = np.bincount((philox_uniform(12, (N,), dtype=dtype) * bins).astype(np.int64),
                         minlength=bins)
    expected = N / bins
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 <= _chi_square_limit(bins - 1, Z), chi2


def test_uniform_passes_a_kolmogorov_smirnov_test():
    n = 100_000
    u = np.sort(philox_uniform(13, (n,), dtype="float64"))
    i = np.arange(1, n + 1)
    d = max(np.max(i / n - u), np.max(u - (i - 1) / n))
    # P(sqrt(n) D > x) <= 2 exp(-2 x**2) (Kolmogorov's limit, Dvoretzky-Kiefer-
    # Wolfowitz for finite n): x = 2.8 gives a false alarm rate below 3e-7
    assert math.sqrt(n) * d <= 2.8, d


def test_low_bits_are_uniform_too():
    # the 2**-24 grid: every one of the 8 lowest float32 mantissa steps is equally likely
    steps = (philox_uniform(14, (N,)) * 2**24).astype(np.int64) % 8
    _within(np.mean(steps == 3), 1 / 8, math.sqrt(1 / 8 * 7 / 8), N)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normal_moments_and_tails(dtype):
    z = grandom.normal(grandom.key(21), (N,), dtype).astype(np.float64)
    assert np.isfinite(z).all()
    _within(z.mean(), 0.0, 1.0, N)
    _within(z.var(), 1.0, math.sqrt(2.0), N)  # mu4 - sigma**4 = 3 - 1
    for t in (1.0, 2.0, 3.0):
        p = math.erfc(t / math.sqrt(2))  # P(|z| > t)
        _within(np.mean(np.abs(z) > t), p, math.sqrt(p * (1 - p)), N)
    _within(np.mean(z > 0), 0.5, 0.5, N)


def test_normal_float32_is_box_muller_of_its_uniforms():
    # the same uniforms, the same formula in float64: the float32 result is within
    # the documented bounds of its steps (log1p and cos 4 ulp, the rest 0.5 ulp)
    shape = (4096,)
    k = grandom.key(22)
    got = grandom.normal(k, shape)
    u1 = grandom.uniform(k, shape).astype(np.float64)
    u2 = nn._primitive("philox_uniform", k, shape=shape, offset=4096,
                       dtype="float32").astype(np.float64)
    t = np.log1p(-u1)
    r = np.sqrt(-2 * t)
    theta = 2 * math.pi * u2
    exact = r * np.cos(theta)
    gain_t = np.cos(theta) / np.maximum(r, 1e-300)  # dz/dt = -cos(theta) / r
    assert_within_bounds(got, exact, np.float32, ("log1p", t, gain_t), ("sqrt", r, np.cos(theta)),
                         ("mul", theta, r * np.sin(theta)),  # u2 * 2pi, and 2pi itself
                         ("mul", theta, r * np.sin(theta)),
                         ("cos", np.cos(theta), r), ("mul", exact))


@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_bernoulli_rate(p):
    b = grandom.bernoulli(grandom.key(31), p, (N,))
    assert b.dtype == bool and b.shape == (N,)
    _within(b.mean(), p, math.sqrt(p * (1 - p)), N)
    if p in (0.0, 1.0):
        assert b.mean() == p


def test_bernoulli_takes_an_array_of_rates():
    p = np.linspace(0.05, 0.95, 16)
    b = grandom.bernoulli(grandom.key(32), p, (N // 16, 16))
    sd = np.sqrt(p * (1 - p))
    assert np.all(np.abs(b.mean(axis=0) - p) <= Z * sd / math.sqrt(N // 16))
    assert grandom.bernoulli(grandom.key(32), p).shape == (16,)  # shape defaults to p's


def test_uniform_bounds():
    u = grandom.uniform(grandom.key(41), (N,), np.float64, minval=-3.0, maxval=5.0)
    assert u.min() >= -3.0 and u.max() < 5.0
    _within(u.mean(), 1.0, 8 * math.sqrt(1 / 12), N)
    # rounding would reach maxval for u near 1: the result is clamped below it
    tiny = grandom.uniform(grandom.key(42), (N,), np.float32, minval=1.0, maxval=1.0 + 2**-20)
    assert tiny.max() < np.float32(1.0 + 2**-20) and tiny.min() >= 1.0


# ---------------------------------------------------------------- determinism


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_seed_and_offset_give_the_same_bits(dtype):
    a = philox_uniform(5, (3, 7), 9, dtype)
    b = philox_uniform(5, (3, 7), 9, dtype)
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("offset", [0, 1, 2, 3, 5, 4 * 2**32 - 2])
def test_element_i_depends_on_offset_plus_i_only(dtype, offset):
    big = philox_uniform(6, (64,), offset, dtype)
    for start in (1, 2, 3, 7, 30):
        np.testing.assert_array_equal(philox_uniform(6, (64 - start,), offset + start, dtype),
                                      big[start:], strict=True)
    # the shape only arranges the stream: a (4, 16) draw is the (64,) draw reshaped
    np.testing.assert_array_equal(philox_uniform(6, (4, 16), offset, dtype),
                                  big.reshape(4, 16), strict=True)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_different_seeds_or_disjoint_offsets_differ(dtype):
    n = 4096
    base = philox_uniform(7, (n,), 0, dtype)
    for other in (philox_uniform(8, (n,), 0, dtype), philox_uniform(-7, (n,), 0, dtype),
                  philox_uniform(7 + 2**32, (n,), 0, dtype), philox_uniform(7, (n,), n, dtype)):
        # chance agreement of one element: 2**-24 (float32) or 2**-53
        assert np.sum(base == other) <= 2, np.sum(base == other)
        # and no correlation: |r| within 6 / sqrt(n)
        assert abs(np.corrcoef(base, other)[0, 1]) <= Z / math.sqrt(n)


def test_float32_and_float64_streams_share_no_words():
    # float64 position j reads block j // 2, float32 position 2 j reads block j // 2 too;
    # the dtype's word in the counter keeps their words apart
    n = 4096
    u64 = philox_uniform(15, (n,), 0, "float64")
    u32 = philox_uniform(15, (2 * n,), 0, "float32").astype(np.float64)
    top24 = np.floor(u64 * 2**24) / 2**24  # what the float64 draw's first word gives
    assert np.sum(top24 == u32[::2]) <= 2
    assert abs(np.corrcoef(u64, u32[::2])[0, 1]) <= Z / math.sqrt(n)


def test_keys_split_apart_and_reproduce():
    k = grandom.key(0)
    keys = grandom.split(k, 4)
    assert keys.shape == (4,) and keys.dtype == np.int64
    assert len(set(keys.tolist()) | {int(k)}) == 5
    np.testing.assert_array_equal(keys, grandom.split(k, 4), strict=True)
    # keys of different parents differ
    assert not set(grandom.split(grandom.key(1), 4).tolist()) & set(keys.tolist())
    draws = [grandom.uniform(kk, (1000,)) for kk in keys]
    assert all(np.sum(a == b) <= 2 for i, a in enumerate(draws) for b in draws[i + 1:])


def test_key_wraps_modulo_two_to_the_64():
    assert grandom.key(2**64 - 1) == grandom.key(-1)
    assert grandom.key(0).shape == () and grandom.key(0).dtype == np.int64


# ---------------------------------------------------------------- compiled


MODES = [m for m in checking.MODES
         if (m != "native" or checking.native_available())
         and (m != "triton" or importlib.util.find_spec("triton") is not None)]


def dropout_and_noise(x, key):
    k_mask, k_noise, k_normal = grandom.split(key, 3)
    keep = grandom.bernoulli(k_mask, 0.75, x.shape)
    noise = grandom.uniform(k_noise, x.shape, np.float32, minval=-1.0, maxval=1.0)
    return x * keep, noise, grandom.normal(k_normal, x.shape), grandom.split(key, 3)


@pytest.mark.parametrize("mode", MODES)
def test_compiled_gives_the_interpreters_bits(mode, rng):
    x = rng.standard_normal((37, 19)).astype(np.float32)
    k = grandom.key(123)
    graph = graphc.trace(dropout_and_noise, x, k)
    want = graphc.interpret(graph, x, k)
    f = graphc.compile(dropout_and_noise, options=checking.MODES[mode],
                       backend="triton" if mode == "triton" else "numpy")
    got = f(x, k)
    # mask, uniform, keys: integer steps, and float steps with exact results (the
    # split's scalings by 2**32, u * 2 - 1 on u's 2**-24 grid)
    exact = (0, 1, 3)
    for i in exact:
        assert got[i].tobytes() == want[i].tobytes(), i
    # normal goes through log1p and cos: libmvec's and numpy's differ by a few ulp,
    # which check mode (on in this suite) has judged; eagerly it is numpy's exactly
    eager = dropout_and_noise(x, k)
    for i in exact:
        assert got[i].tobytes() == eager[i].tobytes(), i
    if mode not in ("native", "triton"):  # those two have math functions of their own
        assert got[2].tobytes() == eager[2].tobytes()


def test_a_new_key_draws_new_numbers_without_retracing():
    x = np.ones((8, 8), np.float32)
    f = graphc.compile(dropout_and_noise)
    a = f(x, grandom.key(1))
    b = f(x, grandom.key(2))
    assert not np.array_equal(a[0], b[0]) and not np.array_equal(a[1], b[1])
    np.testing.assert_array_equal(b[0], dropout_and_noise(x, grandom.key(2))[0], strict=True)
    assert f.cache_info().misses == 1  # one trace: the key is data, not a constant


def test_a_traced_seed_is_not_folded_and_equal_draws_merge():
    def f(key):
        a = nn._primitive("philox_uniform", key, shape=(4,), offset=0, dtype="float32")
        b = nn._primitive("philox_uniform", key, shape=(4,), offset=0, dtype="float32")
        c = nn._primitive("philox_uniform", key, shape=(4,), offset=4, dtype="float32")
        return a + b + c
    k = grandom.key(3)
    optimized = graphc.compile(f).lower(k).optimized
    draws = [n for n in optimized.nodes if n.op == "philox_uniform"]
    assert sorted(n.attrs["offset"] for n in draws) == [0, 4]  # a and b merged, c kept
    u = philox_uniform(3, (8,))
    np.testing.assert_array_equal(graphc.compile(f)(k), u[:4] + u[:4] + u[4:], strict=True)


def test_a_constant_seed_folds_to_the_same_numbers():
    from graphc.ir import Attrs, Graph, Node, TensorType, Value
    from graphc.passes.fold import fold
    seed = Node("const", (), Attrs({"value": graphc.ir.ArrayLiteral(np.array(9, np.int64))}))
    seed.outputs = (Value("s", TensorType((), "int64"), seed),)
    draw = Node("philox_uniform", seed.outputs,
                Attrs({"shape": (5,), "offset": 2, "dtype": "float64"}))
    draw.outputs = (Value("u", TensorType((5,), "float64"), draw),)
    folded = fold(Graph("g", [], [seed, draw], list(draw.outputs)))
    assert [n.op for n in folded.nodes if n.op != "const"] == []
    np.testing.assert_array_equal(graphc.interpret(folded), philox_uniform(9, (5,), 2,
                                                                           "float64"))


def test_gradient_through_a_random_mask_is_the_mask(rng):
    x = rng.standard_normal((6, 5))
    k = grandom.key(4)

    def loss(x, key):
        return np.sum(x * grandom.bernoulli(key, 0.5, x.shape))
    g = graphc.grad(loss)(x, k)
    np.testing.assert_array_equal(g, grandom.bernoulli(k, 0.5, x.shape).astype(np.float64))


def test_the_fuzzer_leaves_it_out_by_its_record():
    lists = builder.op_lists()
    assert ops.OPS["philox_uniform"].kind is ops.Kind.OPAQUE  # not an elementwise op
    assert all("philox_uniform" not in names for names in vars(lists).values())


# ---------------------------------------------------------------- misuse


def test_np_random_in_a_traced_function_points_at_graphc_random():
    @graphc.compile
    def f(x):
        return x * (np.random.rand(*x.shape) < 0.5)
    with pytest.raises(graphc.UnsupportedError) as info:
        f(np.ones(3))
    assert "graphc.random" in str(info.value).split("hint: ")[1]


@pytest.mark.parametrize("bad_key, what", [
    (3, "int"), (np.zeros((), np.float32), "f32[]"), (np.zeros(2, np.int64), "i64[2]"),
])
def test_a_bad_key_is_refused_at_the_users_line(bad_key, what):
    with pytest.raises(graphc.ArgumentError) as info:
        grandom.uniform(bad_key, (3,))
    text = str(info.value)
    assert text.startswith(f"{__file__}:"), text
    assert what in text and "graphc.random.key" in text


def test_split_keys_passed_whole_into_a_compiled_draw_are_refused():
    @graphc.compile
    def f(keys):
        return grandom.uniform(keys, (3,))  # <- the keys of split, not one of them
    with pytest.raises(graphc.ArgumentError) as info:
        f(grandom.split(grandom.key(0)))
    assert "i64[2]" in str(info.value) and "index split" in str(info.value)
    assert str(info.value).startswith(f"{__file__}:")


@pytest.mark.parametrize("call", [
    lambda: grandom.uniform(grandom.key(0), (3,), np.float16),
    lambda: grandom.uniform(grandom.key(0), (-1,)),
    lambda: grandom.uniform(grandom.key(0), (3,), minval=1.0, maxval=1.0),
    lambda: grandom.key(1.5),
    lambda: grandom.key(2**64),
    lambda: grandom.split(grandom.key(0), 0),
])
def test_bad_arguments_are_argument_errors(call):
    with pytest.raises(graphc.ArgumentError):
        call()


@pytest.mark.parametrize("attrs, error", [
    ({"shape": (3,), "offset": -1, "dtype": "float32"}, graphc.ShapeError),
    ({"shape": (3,), "offset": 2**62, "dtype": "float32"}, graphc.ShapeError),
    ({"shape": (3, -1), "offset": 0, "dtype": "float32"}, graphc.ShapeError),
    ({"shape": (3,), "offset": 0, "dtype": "float16"}, graphc.DtypeError),
])
def test_the_shape_rule_rejects_bad_attributes(attrs, error):
    from graphc.ir import Attrs, TensorType
    with pytest.raises(error):
        ops.infer_types("philox_uniform", (TensorType((), "int64"),), Attrs(attrs))
    with pytest.raises(graphc.DtypeError):
        ops.infer_types("philox_uniform", (TensorType((), "int32"),),
                        Attrs({"shape": (3,), "offset": 0, "dtype": "float32"}))
