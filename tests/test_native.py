"""Native kernels (backends/numpy/native.py): fused groups as generated C.

Every group here is forced into a kernel (GRAPHC_SMALL_GROUP=0) with native kernels
on, and each result is checked against eager numpy: exactly where numpy's result is
exact (integers, comparisons, max, casts), to float32 tolerance where C's math
functions may differ from numpy's by an ulp or two.
"""
from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest

import graphc
from backends.numpy import get_num_threads, native, set_num_threads, toolchain
from graphc.ops import OPS, Kind

pytestmark = pytest.mark.skipif(toolchain.compiler() is None,
                                reason="no C compiler for native kernels")
F32 = np.float32


@pytest.fixture(autouse=True)
def forced_native(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("GRAPHC_SMALL_GROUP", "0")
    monkeypatch.setenv("GRAPHC_NATIVE", "1")


def compiled(fn, *args):
    f = graphc.compile(fn)
    return f(*args), f.lower(*args).source


def test_every_fusable_primitive_has_a_native_entry_or_a_reason():
    fusable = {name for name, op in OPS.items()
               if op.kind in (Kind.ELEMENTWISE, Kind.REDUCTION)}
    covered = set(native.EXPRESSIONS) | set(native.REDUCTIONS) | set(native.NOT_NATIVE)
    assert fusable - covered == set(), "fusable primitives without a native entry"
    assert covered - set(OPS) == set(), "native entries for primitives that do not exist"


def test_softmax_is_one_native_kernel_of_three_loops(rng):
    def softmax(x):
        e = np.exp(x - np.max(x, axis=-1, keepdims=True))
        return e / np.sum(e, axis=-1, keepdims=True)

    x = rng.standard_normal((37, 53)).astype(F32)
    got, source = compiled(softmax, x)
    assert source.count("_runc(") == 1 and "_run(" not in source
    assert source.count("for (int64_t c = 0; c < 53; c++)") == 3, source
    np.testing.assert_allclose(got, softmax(x), rtol=1e-6, atol=1e-7)


def test_layernorm_with_row_and_column_broadcasts(rng):
    def layernorm(x, w, b):
        mean = np.mean(x, axis=-1, keepdims=True)
        var = np.mean((x - mean) ** 2, axis=-1, keepdims=True)
        return (x - mean) / np.sqrt(var + 1e-5) * w + b

    x = rng.standard_normal((33, 70)).astype(F32) * 3 + 1
    w, b = rng.standard_normal(70).astype(F32), rng.standard_normal(70).astype(F32)
    got, source = compiled(layernorm, x, w, b)
    assert "_runc(" in source
    np.testing.assert_allclose(got, layernorm(x, w, b), rtol=1e-5, atol=1e-5)


def test_values_written_out_are_read_back_in_later_loops(rng):
    # t escapes (an output) and is needed again after the reduction
    def f(x):
        t = np.tanh(x) * 2.0
        return t, t - np.sum(t, axis=1, keepdims=True), np.max(t, axis=1)

    x = rng.standard_normal((9, 31)).astype(F32)
    got, source = compiled(f, x)
    assert "_runc(" in source
    for g, w in zip(got, f(x)):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


def test_elementwise_broadcast_over_any_axes(rng):
    def f(x, bias, row, s):
        return np.maximum(x * bias + row, s) - 1.0

    x = rng.standard_normal((4, 6, 5, 7)).astype(F32)
    bias = rng.standard_normal((1, 6, 1, 1)).astype(F32)
    row = rng.standard_normal((5, 1)).astype(F32)
    s = F32(0.25)
    got, source = compiled(f, x, bias, row, s)
    assert "_runc(" in source
    np.testing.assert_array_equal(got, f(x, bias, row, s))


def test_nan_propagates_as_in_numpy(rng):
    def f(x, y):
        return (np.max(x, axis=1), np.min(x, axis=1), np.maximum(x, y), np.minimum(y, x),
                np.sign(x), (x != x).astype(np.float32), x.astype(bool))

    x = rng.standard_normal((6, 40)).astype(F32)
    y = rng.standard_normal((6, 40)).astype(F32)
    x[1, 7] = np.nan
    x[3, 0] = np.nan
    y[2, 5] = np.nan
    x[4, :] = -np.inf
    x[5, 3:9] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        got, source = compiled(f, x, y)
        want = f(x, y)
    assert "_runc(" in source
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_integer_arithmetic_wraps_as_numpy_does(dtype):
    info = np.iinfo(dtype)

    def f(a, b):
        return a + b, a * b, -a, np.abs(a), a - b, np.sum(a, axis=1), np.max(a * b, axis=1)

    a = np.array([[info.max, info.min, 7, -3], [info.min, -1, info.max, 0]] * 5, dtype)
    b = np.array([[1, -1, info.max, 2], [info.min, 3, 2, 5]] * 5, dtype)
    got, source = compiled(f, a, b)
    assert "_runc(" in source
    with np.errstate(over="ignore"):
        want = f(a, b)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w, strict=True)


def test_bool_logic_comparisons_and_where(rng):
    def f(x, y, m):
        both = np.logical_and(x > y, m)
        return np.where(np.logical_or(both, ~m), x, y * 2.0), both, x == y

    x = rng.integers(-3, 4, (17, 19)).astype(np.float64)
    y = rng.integers(-3, 4, (17, 19)).astype(np.float64)
    m = rng.random((17, 19)) < 0.5
    got, source = compiled(f, x, y, m)
    assert "_runc(" in source
    for g, w in zip(got, f(x, y, m)):
        np.testing.assert_array_equal(g, w, strict=True)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_math_functions_within_a_few_ulp(rng, dtype):
    def f(x):
        return (np.exp(x), np.log(np.abs(x) + 0.5), np.tanh(x), np.sin(x), np.cos(x),
                np.expm1(x), np.log1p(np.abs(x)), np.sqrt(np.abs(x)), np.abs(x) ** 2.5,
                1.0 / (1.0 + np.exp(-x)))

    x = rng.uniform(-5, 5, (50, 64)).astype(dtype)
    got, source = compiled(f, x)
    assert "_runc(" in source
    rtol = 1e-6 if dtype == "float32" else 1e-14
    for g, w in zip(got, f(x)):
        assert g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol * np.abs(w).max())


def test_unsupported_ops_fall_back_to_numpy_kernels(rng):
    def f(x):  # argmax has no native form; a float -> int cast is undefined in C
        return np.argmax(np.tanh(x), axis=1), (x * 10.0).astype(np.int32)

    x = rng.standard_normal((8, 30)).astype(F32)
    got, source = compiled(f, x)
    assert "_run(_k" in source
    for g, w in zip(got, f(x)):
        np.testing.assert_array_equal(g, w, strict=True)


def test_non_contiguous_inputs(rng):
    def f(x, y):
        return np.exp(x) * y

    x = rng.standard_normal((40, 30)).astype(F32).T   # a transposed view
    y = rng.standard_normal((30, 80)).astype(F32)[:, ::2]
    got, source = compiled(f, x, y)
    assert "_runc(" in source
    np.testing.assert_allclose(got, f(x, y), rtol=1e-6)
    swapped = y.astype(">f4")  # big-endian: C reads the machine's byte order
    np.testing.assert_allclose(compiled(f, x, swapped)[0], f(x, y), rtol=1e-6)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_rows_split_across_threads(rng, threads):
    def f(x):
        return x - np.max(x, axis=-1, keepdims=True), np.tanh(x) + 1.0

    x = rng.standard_normal((1001, 257)).astype(F32)  # enough to split, rows uneven
    old = get_num_threads()
    set_num_threads(threads)
    try:
        got, _ = compiled(f, x)
    finally:
        set_num_threads(old)
    np.testing.assert_array_equal(got[0], f(x)[0])
    np.testing.assert_allclose(got[1], f(x)[1], rtol=1e-6)


def test_libraries_are_cached_on_disk(tmp_path, monkeypatch, rng):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    source = "int graphc_cache_probe(void) { return 42; }\n"
    lib = toolchain.build(source)
    assert lib.graphc_cache_probe() == 42
    assert len(list((tmp_path / "native").glob("*.so"))) == 1
    toolchain._loaded.clear()  # as a new process would: found on disk, not rebuilt

    def no_compiler(*args, **kwargs):
        raise AssertionError("the cached library was rebuilt")
    monkeypatch.setattr(toolchain.subprocess, "run", no_compiler)
    assert toolchain.build(source).graphc_cache_probe() == 42


def test_a_failed_build_warns_and_runs_numpy_kernels(monkeypatch, rng):
    def broken(source):
        raise toolchain.BuildError("gcc failed: simulated")
    monkeypatch.setattr(toolchain, "build", broken)
    x = rng.standard_normal((5, 6)).astype(F32)
    f = graphc.compile(lambda x: np.exp(x) + 1.0)
    with pytest.warns(RuntimeWarning, match="native kernels .* failed to build"):
        got = f(x)
    assert "_run(_k" in f.lower(x).source
    np.testing.assert_allclose(got, np.exp(x) + 1.0, rtol=1e-6)


def test_without_a_compiler_numpy_kernels_run(monkeypatch, rng):
    monkeypatch.setattr(toolchain, "compiler", lambda: None)
    x = rng.standard_normal((5, 6)).astype(F32)
    f = graphc.compile(lambda x: np.exp(x) + 1.0)
    assert "_run(_k" in f.lower(x).source and "_runc(" not in f.lower(x).source
    np.testing.assert_allclose(f(x), np.exp(x) + 1.0, rtol=1e-6)


def test_native_off_by_environment(monkeypatch, rng):
    monkeypatch.setenv("GRAPHC_NATIVE", "0")
    x = rng.standard_normal((5, 6)).astype(F32)
    assert "_runc(" not in graphc.compile(lambda x: np.exp(x) + 1.0).lower(x).source


def test_an_unwritable_cache_warns_and_runs_numpy_kernels(monkeypatch, tmp_path, rng):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(blocked))
    x = rng.standard_normal((5, 7)).astype(F32)
    f = graphc.compile(lambda x: np.tanh(x) * 0.5)
    with pytest.warns(RuntimeWarning, match="failed to build"):
        got = f(x)
    np.testing.assert_allclose(got, np.tanh(x) * 0.5, rtol=1e-6)


def test_dump_writes_the_c_source(monkeypatch, tmp_path, rng):
    monkeypatch.setenv("GRAPHC_DUMP", str(tmp_path))

    def scaled_exp(x):
        return np.exp(x) * 2.0
    x = rng.standard_normal((4, 9)).astype(F32)
    f = graphc.compile(scaled_exp)
    f(x)
    c_file = tmp_path / "scaled_exp.0.c"
    assert c_file.exists() and "expf(" in c_file.read_text()
    assert c_file.read_text() in (tmp_path / "scaled_exp.0.py").read_text()


def test_nd_kernels_split_their_first_axis_across_threads(rng):
    def f(x, bias):
        return np.maximum(x + bias, 0.0) * 0.5

    x = rng.standard_normal((37, 16, 12, 20)).astype(F32)  # 142080 elements: two runs
    bias = rng.standard_normal((1, 16, 1, 1)).astype(F32)
    old = get_num_threads()
    set_num_threads(2)
    try:
        got, source = compiled(f, x, bias)
    finally:
        set_num_threads(old)
    assert "_runc(_n0, 37," in source
    np.testing.assert_array_equal(got, f(x, bias))


def test_a_home_without_a_writable_cache_uses_the_temporary_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("GRAPHC_CACHE_DIR", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    (home / ".cache").write_text("a file, not a directory")
    monkeypatch.setenv("HOME", str(home))
    assert toolchain.cache_dir().parent.parent == Path(tempfile.gettempdir())


def test_an_unrolled_loop_shares_one_c_function(rng):
    def rnn(h, w, b):
        for _ in range(4):  # four epilogues with the same C
            h = np.tanh(h @ w + b)
        return h

    h = rng.standard_normal((6, 8)).astype(F32)
    w = rng.standard_normal((8, 8)).astype(F32) * F32(0.3)
    b = rng.standard_normal(8).astype(F32)
    got, source = compiled(rnn, h, w, b)
    assert source.count("_runc(") == 4 and source.count("\nvoid ") == 1, source
    np.testing.assert_allclose(got, rnn(h, w, b), rtol=1e-5, atol=1e-6)


def test_small_groups_of_several_ops_are_native_too(monkeypatch, rng):
    monkeypatch.delenv("GRAPHC_SMALL_GROUP")  # the default threshold, not forced

    def cell(f, c):
        return 1.0 / (1.0 + np.exp(-f)) * np.tanh(c)

    f, c = (rng.standard_normal((64, 128)).astype(F32) for _ in range(2))
    got, source = compiled(cell, f, c)
    assert "_runc(" in source  # 8192 elements: one C call for five ops
    np.testing.assert_allclose(got, cell(f, c), rtol=1e-6, atol=1e-7)
    tiny, _ = (rng.standard_normal((8, 8)).astype(F32) for _ in range(2))
    assert "_runc(" not in compiled(cell, tiny, tiny)[1]      # 64 elements: numpy calls
    assert "_runc(" not in compiled(np.tanh, f)[1]            # one op: one numpy call


def test_kernels_run_through_ctypes_where_the_caller_extension_is_missing(monkeypatch, rng):
    from backends.numpy import runtime
    monkeypatch.setattr(runtime, "_caller", runtime._ctypes_run)
    x = rng.standard_normal((40, 30)).astype(F32)
    got, source = compiled(lambda x: np.exp(x.T) * 2.0 - 1.0, x)  # a copied input too
    assert "_runc(" in source
    np.testing.assert_allclose(got, np.exp(x.T) * 2.0 - 1.0, rtol=1e-6, atol=1e-6)
