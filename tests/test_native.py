"""Native kernels (backends/numpy/native.py): fused groups as generated C.

Every group here is forced into a kernel (the option small_group=0) with native
kernels on, and each result is checked against eager numpy exactly where numpy's result is
exact (integers, comparisons, max, casts), and against float64 within each math
function's documented error bound where C's math functions (libmvec, whose variants
differ per instruction set) may differ from numpy's (tests/tolerances.py).
"""
from __future__ import annotations

import platform
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest

import graphc
from graphc.backends import toolchain
from graphc.backends.numpy import get_num_threads, lowering, native, set_num_threads
from graphc.backends.numpy.codegen import SMALL_GROUP
from graphc.backends.numpy.lowering import LOWERINGS
from graphc.ops import OPS, Kind
from tolerances import assert_within_bounds

pytestmark = [pytest.mark.skipif(toolchain.compiler() is None,
                                 reason="no C compiler for native kernels"),
              # tests here count and break builds, which a compile cache hit skips
              pytest.mark.usefixtures("no_compile_cache")]
F32 = np.float32
FORCED = {"small_group": 0, "native": True}  # every group a kernel, native where it can


def compiled(fn, *args, **options):
    f = graphc.compile(fn, options={**FORCED, **options})
    return f(*args), f.lower(*args).source


def test_every_fusable_primitive_has_a_native_entry_or_a_reason():
    fusable = {name for name, op in OPS.items()
               if op.kind in (Kind.ELEMENTWISE, Kind.REDUCTION)}
    with_c = {name for name, entry in LOWERINGS.items() if entry.c is not None}
    covered = with_c | set(native.REDUCTIONS) | set(native.NOT_NATIVE)
    assert fusable - covered == set(), "fusable primitives without a native entry"
    assert covered - set(OPS) == set(), "native entries for primitives that do not exist"


def test_softmax_is_one_native_kernel_of_three_loops(rng):
    def softmax(x):
        e = np.exp(x - np.max(x, axis=-1, keepdims=True))
        return e / np.sum(e, axis=-1, keepdims=True)

    x = rng.standard_normal((37, 53)).astype(F32)
    got, source = compiled(softmax, x)
    assert source.count("_runc(") == 1 and "_run(" not in source
    assert "const int64_t n_cols = 53;" in source, source
    assert source.count("for (int64_t c = 0; c < n_cols; c++)") == 3, source
    d = x - x.max(axis=-1, keepdims=True).astype(np.float64)
    e = np.exp(d)
    total = e.sum(axis=-1, keepdims=True)
    p = e / total
    # x - max rounds (gain p); exp's error reaches p as 1 / S of it, and through S (the
    # 53 exps' relative 4 * 2**-23 at most, up to 8 ulp of p); 52 additions to S each
    # round to half an ulp of S (gain p / S); the division rounds once
    assert_within_bounds(got, p, F32, ("sub", d, p), ("exp", e, 1 / total), ("exp", p, 2.0),
                         ("add", total, 52 * p / total), ("div", p))


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
    exact = f(x.astype(np.float64))
    u = np.abs(x) + 0.5
    s = exact[9]
    steps = [[("exp", exact[0])], [("add", u, 1 / u), ("log", exact[1])], [("tanh", exact[2])],
             [("sin", exact[3])], [("cos", exact[4])], [("expm1", exact[5])],
             [("log1p", exact[6])], [("sqrt", exact[7])], [("pow", exact[8])],
             # an error of exp(-x) moves the sigmoid by s(1 - s) times its relative size
             # (4 ulp of e is up to 4 * 2**-23 relative, 8 ulp of s(1 - s) in the worst
             # binade position: gain 2); 1 + e rounds to 2**-24 of itself, up to an ulp of s
             [("exp", s * (1 - s), 2.0), ("add", s, 2.0), ("div", s)]]
    # float64 has nothing more precise to compare with: numpy's float64 result carries
    # the same budget as graphc's
    for g, want, budget in zip(got, exact if dtype == "float32" else f(x), steps):
        assert_within_bounds(g, want, dtype, *budget,
                             reference_steps=budget if dtype == "float64" else ())


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
    e = np.exp(x.astype(np.float64))
    budget = (("exp", e, y), ("mul", e * y))
    assert_within_bounds(got, e * y, F32, *budget)
    swapped = y.astype(">f4")  # big-endian: C reads the machine's byte order
    assert_within_bounds(compiled(f, x, swapped)[0], e * y, F32, *budget)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_rows_split_across_threads(rng, threads):
    def f(x):
        return x - np.max(x, axis=-1, keepdims=True), np.tanh(x) + 1.0

    x = rng.standard_normal((1001, 257)).astype(F32)  # enough to split, rows uneven
    got, _ = compiled(f, x, threads=threads)
    np.testing.assert_array_equal(got[0], f(x)[0])
    # near tanh(x) = -1 the sum cancels: the bound is in ulp of tanh(x), not of the sum
    t = np.tanh(x.astype(np.float64))
    assert_within_bounds(got[1], t + 1.0, F32, ("tanh", t), ("add", t + 1.0))


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
    def broken(source, march=None):
        raise toolchain.BuildError("gcc failed: simulated")
    monkeypatch.setattr(toolchain, "build", broken)
    x = rng.standard_normal((5, 6)).astype(F32)
    f = graphc.compile(lambda x: np.exp(x) + 1.0, options=FORCED)
    with pytest.warns(RuntimeWarning, match="native kernels .* failed to build"):
        got = f(x)
    assert "_run(_k" in f.lower(x).source
    np.testing.assert_allclose(got, np.exp(x) + 1.0, rtol=1e-6)


def test_without_a_compiler_numpy_kernels_run(monkeypatch, rng):
    monkeypatch.setattr(toolchain, "compiler", lambda: None)
    x = rng.standard_normal((5, 6)).astype(F32)
    f = graphc.compile(lambda x: np.exp(x) + 1.0, options=FORCED)
    assert "_run(_k" in f.lower(x).source and "_runc(" not in f.lower(x).source
    np.testing.assert_allclose(f(x), np.exp(x) + 1.0, rtol=1e-6)


def test_native_off_by_environment(monkeypatch, rng):
    # the variables are the options' defaults (tests/test_options.py: and lose to them)
    monkeypatch.setenv("GRAPHC_SMALL_GROUP", "0")
    monkeypatch.setenv("GRAPHC_NATIVE", "0")
    x = rng.standard_normal((5, 6)).astype(F32)
    source = graphc.compile(lambda x: np.exp(x) + 1.0).lower(x).source
    assert "_runc(" not in source and "_run(_k" in source


def test_an_unwritable_cache_warns_and_runs_numpy_kernels(monkeypatch, tmp_path, rng):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(blocked))
    x = rng.standard_normal((5, 7)).astype(F32)
    f = graphc.compile(lambda x: np.tanh(x) * 0.5, options=FORCED)
    with pytest.warns(RuntimeWarning, match="failed to build"):
        got = f(x)
    np.testing.assert_allclose(got, np.tanh(x) * 0.5, rtol=1e-6)


def test_dump_writes_the_c_source(monkeypatch, tmp_path, rng):
    monkeypatch.setenv("GRAPHC_DUMP", str(tmp_path))

    def scaled_exp(x):
        return np.exp(x) * 2.0
    x = rng.standard_normal((4, 9)).astype(F32)
    f = graphc.compile(scaled_exp, options=FORCED)
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


def test_small_groups_of_several_ops_are_native_too(rng):
    def cell(f, c):
        return 1.0 / (1.0 + np.exp(-f)) * np.tanh(c)

    def compiled(fn, *args):  # the default threshold, not forced
        f = graphc.compile(fn, options={"native": True, "small_group": SMALL_GROUP})
        return f(*args), f.lower(*args).source

    f, c = (rng.standard_normal((64, 128)).astype(F32) for _ in range(2))
    got, source = compiled(cell, f, c)
    assert "_runc(" in source  # 8192 elements: one C call for five ops
    s, t = 1.0 / (1.0 + np.exp(-f.astype(np.float64))), np.tanh(c.astype(np.float64))
    assert_within_bounds(got, s * t, F32, ("exp", s * (1 - s), 2 * t), ("add", s, 2 * t),
                         ("div", s, t), ("tanh", t, s), ("mul", s * t))
    tiny, _ = (rng.standard_normal((8, 8)).astype(F32) for _ in range(2))
    assert "_runc(" not in compiled(cell, tiny, tiny)[1]      # 64 elements: numpy calls
    assert "_runc(" not in compiled(np.tanh, f)[1]            # one op: one numpy call


def test_kernels_run_through_ctypes_where_the_caller_extension_is_missing(monkeypatch, rng):
    from graphc.backends.numpy import runtime
    monkeypatch.setattr(runtime, "_caller", runtime._ctypes_run)
    x = rng.standard_normal((40, 30)).astype(F32)
    got, source = compiled(lambda x: np.exp(x.T) * 2.0 - 1.0, x)  # a copied input too
    assert "_runc(" in source
    e = np.exp(x.T.astype(np.float64))
    assert_within_bounds(got, e * 2.0 - 1.0, F32, ("exp", e, 2.0), ("mul", 2 * e),
                         ("sub", 2 * e - 1.0))


def test_the_target_instruction_set_is_part_of_the_cache_key(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    source = "int graphc_march_probe(void) { return 7; }\n"
    for march in ("native", "x86-64-v3", "x86-64-v3"):  # the second v3 build is a hit
        assert toolchain.build(source, march).graphc_march_probe() == 7
    monkeypatch.setenv("GRAPHC_MARCH", "x86-64-v3")  # the default target: the same key
    assert toolchain.build(source).graphc_march_probe() == 7
    assert len(list((tmp_path / "native").glob("*.so"))) == 2


def test_an_unknown_target_warns_and_never_reaches_the_compiler(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("GRAPHC_MARCH", "native -o /tmp/evil")
    commands = []
    real_run = toolchain.subprocess.run

    def recording(argv, **kwargs):
        commands.append(argv)
        return real_run(argv, **kwargs)
    monkeypatch.setattr(toolchain.subprocess, "run", recording)
    with pytest.warns(RuntimeWarning, match="GRAPHC_MARCH=.* x86-64-v3"):
        assert toolchain.march() == "native"
    assert toolchain.build("int graphc_march_bad(void) { return 3; }\n").graphc_march_bad() == 3
    built = [argv for argv in commands if str(argv[-1]).startswith("-l")]
    assert built and all("-march=native" in argv and "/tmp/evil" not in " ".join(argv)
                         for argv in built)


@pytest.mark.skipif(not toolchain.vector_math(lowering.libm_functions()) or platform.machine() != "x86_64",
                    reason="needs x86-64 and glibc's libmvec")
@pytest.mark.parametrize("march, wanted, unwanted", [  # the kernels run here
    # float64 sin: float32's transcendentals are graphc's own (cmath.OWN), float64's libmvec's
    pytest.param("x86-64-v3", b"_ZGVdN4v_sin\0", b"_ZGVeN8v_sin\0",  # AVX2, not AVX-512
                 marks=pytest.mark.skipif(not toolchain.runnable("x86-64-v3"), reason="no AVX2")),
    pytest.param("x86-64-v4", b"_ZGVeN8v_sin\0", None,                  # AVX-512
                 marks=pytest.mark.skipif(not toolchain.runnable("x86-64-v4"), reason="no AVX-512"))])
def test_the_target_picks_the_libmvec_variant(tmp_path, monkeypatch, rng, march, wanted,
                                              unwanted):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    x = rng.standard_normal((64, 65))
    got, source = compiled(lambda x: np.sin(x) * 3.0, x, march=march)
    assert "_runc(" in source
    # the imported names sit in the library's dynamic string table
    images = [so.read_bytes() for so in (tmp_path / "native").glob("*.so")]
    kernels = [image for image in images if b"v_sin\0" in image]
    assert kernels and all(wanted in k and (unwanted is None or unwanted not in k)
                           for k in kernels)
    t = np.sin(x)
    assert_within_bounds(got, 3.0 * t, np.float64, ("sin", t, 3.0), ("mul", 3.0 * t))
