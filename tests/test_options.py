"""Backend options (graphc.Options, backends/options.py): checked values, the dict form,
the GRAPHC_* variables as defaults that explicit options beat, resolved once at the
compile call, and each option reaching what it steers (native kernels, block sizes,
threads, the -march target) for compile, vjp and grad."""
from __future__ import annotations

import doctest
import platform

import numpy as np
import pytest

import graphc
from graphc.backends import options as options_module, toolchain
from graphc.backends.numpy import get_num_threads, runtime, set_num_threads
from graphc.fuzz import MODES, compile_optimized, mode_options

# these tests watch or break the passes and the code generator, which a hit of the
# persistent compile cache would skip
pytestmark = pytest.mark.usefixtures("no_compile_cache")

needs_cc = pytest.mark.skipif(toolchain.compiler() is None, reason="no C compiler")
KERNELS = {"small_group": 0, "native": False}  # every group a numpy block kernel


def exact(x):
    # each step exact in float32 but the last (correctly rounded): any kernel, native
    # or numpy, block by block or whole, gives numpy's bits
    return np.maximum(x, 0.0) * 0.5 - x * 0.25


@pytest.fixture
def clean_env(monkeypatch):
    """None of the variables that supply the options' defaults (make test sets some)."""
    for name in ("GRAPHC_NATIVE", "GRAPHC_SMALL_GROUP", "GRAPHC_BLOCK_ELEMENTS",
                 "GRAPHC_MARCH"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# -- values -----------------------------------------------------------------------------

@pytest.mark.parametrize("field, value, accepted", [
    ("native", 1, "True or False"),
    ("native", "no", "True or False"),
    ("small_group", -1, "at least 0"),
    ("small_group", 2.5, "an int"),
    ("block_elements", 0, "at least 1"),
    ("threads", 0, "at least 1"),
    ("threads", True, "an int"),
    ("threads", 5000, "at most 4096"),
    ("march", "native -o /tmp/x", "x86-64-v3"),
])
def test_a_bad_value_names_its_option_and_what_is_accepted(field, value, accepted):
    for make in (lambda: graphc.Options(**{field: value}),
                 lambda: graphc.compile(exact, options={field: value}),
                 lambda: graphc.Options().replace(**{field: value})):
        with pytest.raises(graphc.OptionError, match=f"option {field}=") as e:
            make()
        assert accepted in e.value.message
        assert e.value.loc is not None and e.value.loc.file == __file__  # the user's line


def test_unknown_keys_and_other_types_are_errors_naming_what_is_known():
    with pytest.raises(graphc.OptionError, match="unknown option 'threds'.*threads, march"):
        graphc.compile(exact, options={"threds": 2})
    with pytest.raises(graphc.OptionError, match="unknown option"):
        graphc.compile(options={"nope": 1})  # as a decorator: at the decoration
    with pytest.raises(graphc.OptionError, match="neither an Options nor a dict"):
        graphc.compile(exact, options=[("native", False)])


def test_the_dict_form_is_the_options_object(clean_env):
    f = graphc.compile(exact, options={"native": False, "block_elements": 64})
    assert isinstance(f.options, graphc.Options)
    assert f.options == graphc.Options(native=False, block_elements=64)
    assert f.options.small_group == graphc.Options().small_group  # the rest: defaults


def test_the_docstring_examples_run():
    result = doctest.testmod(options_module)
    assert result.failed == 0 and result.attempted > 0


# -- the environment supplies defaults; explicit options win --------------------------

def test_the_variables_supply_the_defaults(clean_env):
    clean_env.setenv("GRAPHC_SMALL_GROUP", "0")
    clean_env.setenv("GRAPHC_BLOCK_ELEMENTS", "7")
    clean_env.setenv("GRAPHC_NATIVE", "0")
    clean_env.setenv("GRAPHC_MARCH", "x86-64-v2")
    assert graphc.Options.from_env() == graphc.Options(
        native=False, small_group=0, block_elements=7, threads=None, march="x86-64-v2")
    x = np.linspace(-1, 1, 60, dtype=np.float32).reshape(20, 3)
    f = graphc.compile(exact)
    source = f.lower(x).source
    assert "_runc(" not in source and "_run(_k0, 20, 2," in source  # 7 // 3 rows a block
    np.testing.assert_array_equal(f(x), exact(x), strict=True)


@needs_cc
def test_explicit_options_beat_the_variables(clean_env):
    clean_env.setenv("GRAPHC_NATIVE", "0")
    clean_env.setenv("GRAPHC_SMALL_GROUP", "1000000")  # everything op by op
    x = np.linspace(-1, 1, 64, dtype=np.float32).reshape(16, 4)
    f = graphc.compile(exact, options={"native": True, "small_group": 0})
    assert "_runc(" in f.lower(x).source
    np.testing.assert_array_equal(f(x), exact(x), strict=True)


@needs_cc
def test_options_are_resolved_once_at_the_compile_call(clean_env):
    # a later cache miss (a new shape) builds with the options of the compile call,
    # whatever the environment says by then
    clean_env.setenv("GRAPHC_NATIVE", "0")
    clean_env.setenv("GRAPHC_SMALL_GROUP", "0")
    f = graphc.compile(exact)
    clean_env.setenv("GRAPHC_NATIVE", "1")
    clean_env.setenv("GRAPHC_SMALL_GROUP", "1000000")
    x = np.linspace(-1, 1, 30, dtype=np.float32).reshape(10, 3)
    low = f.lower(x)
    assert low.options == f.options and low.options.native is False
    assert "_runc(" not in low.source and "_run(_k0" in low.source
    assert "_runc(" in graphc.compile(exact, options={"small_group": 0}).lower(x).source


# -- each option reaches what it steers ----------------------------------------------

def test_native_off_gives_no_native_kernel():
    x = np.linspace(-1, 1, 4096 * 3, dtype=np.float32).reshape(-1, 3)
    f = graphc.compile(exact, options=KERNELS)
    source = f.lower(x).source
    assert "_runc(" not in source and "_C_SOURCE" not in source and "_run(_k0" in source
    np.testing.assert_array_equal(f(x), exact(x), strict=True)


@pytest.mark.parametrize("block_elements", [1, 7, 30, 10**6])
def test_block_elements_set_the_rows_of_a_block(block_elements):
    x = np.linspace(-1, 1, 150, dtype=np.float32).reshape(50, 3)
    f = graphc.compile(exact, options={**KERNELS, "block_elements": block_elements})
    block = max(1, min(50, block_elements // 3))  # rows of the widest value (3 wide)
    assert f"_run(_k0, 50, {block}," in f.lower(x).source
    np.testing.assert_array_equal(f(x), exact(x), strict=True)


def test_the_lowered_function_records_its_options():
    f = graphc.compile(exact, options=graphc.Options(native=False, threads=2))
    low = f.lower(np.ones(3, np.float32))
    assert low.options is f.options and low.options.threads == 2


@pytest.fixture
def pieces(monkeypatch):
    """How many pieces each numpy block kernel run was cut into (one per thread)."""
    seen: list[int] = []
    real_blocks = runtime.run_blocks

    def spy(kernel, rows, block, scratch, *args, threads=None):
        calls = []
        real_run = runtime._run
        monkeypatch.setattr(runtime, "_run", lambda *a: calls.append(1) or real_run(*a))
        try:
            real_blocks(kernel, rows, block, scratch, *args, threads=threads)
        finally:
            monkeypatch.setattr(runtime, "_run", real_run)
        seen.append(len(calls))
    monkeypatch.setattr(runtime, "run_blocks", spy)
    return seen


def test_threads_run_a_functions_blocks_without_changing_the_others(pieces):
    x = np.linspace(-1, 1, 64 * 8, dtype=np.float32).reshape(64, 8)
    tiny_blocks = {**KERNELS, "block_elements": 8}  # one row a block: 64 blocks
    old = get_num_threads()
    set_num_threads(1)
    try:
        three = graphc.compile(exact, options={**tiny_blocks, "threads": 3})
        default = graphc.compile(exact, options=tiny_blocks)
        np.testing.assert_array_equal(three(x), exact(x), strict=True)
        np.testing.assert_array_equal(default(x), exact(x), strict=True)
        assert get_num_threads() == 1  # the global count is untouched
    finally:
        set_num_threads(old)
    # each compiled call, then check mode's comparison call (GRAPHC_CHECK=1 in the suite)
    assert pieces[0] == 3 and pieces[-1] == 1, pieces


@needs_cc
def test_threads_split_a_native_kernel(monkeypatch):
    runs: list[int] = []
    real_split = runtime.run_split
    monkeypatch.setattr(runtime, "run_split",
                        lambda fn, count, align, n, *a: runs.append(n) or
                        real_split(fn, count, align, n, *a))
    x = np.linspace(-1, 1, 512 * 512, dtype=np.float32).reshape(512, 512)  # 4 splits' worth
    f = graphc.compile(exact, options={"native": True, "small_group": 0, "threads": 3})
    assert "_runc(" in f.lower(x).source
    old = get_num_threads()
    set_num_threads(1)
    try:
        np.testing.assert_array_equal(f(x), exact(x), strict=True)
    finally:
        set_num_threads(old)
    assert runs and runs[0] == 3


@needs_cc
@pytest.mark.skipif(platform.machine() != "x86_64", reason="an x86-64 target")
def test_march_reaches_the_build_and_its_cache_key(monkeypatch, tmp_path):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    targets = []
    real_build = toolchain.build
    monkeypatch.setattr(toolchain, "build",
                        lambda source, march=None: targets.append(march) or
                        real_build(source, march))
    x = np.linspace(-1, 1, 64, dtype=np.float32).reshape(16, 4)
    for march in ("x86-64", "x86-64-v2"):
        f = graphc.compile(exact, options={"native": True, "small_group": 0, "march": march})
        np.testing.assert_array_equal(f(x), exact(x), strict=True)
    assert targets == ["x86-64", "x86-64-v2"]
    assert len(list((tmp_path / "native").glob("*.so"))) == 2  # one library per target


# -- transforms and the fuzzer --------------------------------------------------------

def test_vjp_compiles_both_halves_with_the_options(monkeypatch):
    from graphc import backends
    numpy_backend = backends.get("numpy")
    seen = []
    real = numpy_backend.compile_graph
    monkeypatch.setattr(numpy_backend, "compile_graph",
                        lambda g, options=None: seen.append(options) or real(g, options))
    x = np.linspace(-1.0, 1.0, 7)
    out, back = graphc.vjp(lambda v: np.tanh(v) * v, x, options=KERNELS)
    (g,) = back(np.ones(7))
    t = np.tanh(x)
    np.testing.assert_allclose(out, t * x, rtol=1e-15)
    np.testing.assert_allclose(g, t + x * (1 - t ** 2), rtol=1e-12)
    assert len(seen) == 2 and all(o == graphc.Options(**KERNELS) for o in seen)
    assert back.options == graphc.Options(**KERNELS)
    with pytest.raises(graphc.OptionError, match="unknown option"):
        graphc.vjp(lambda v: v, x, options={"blocks": 7})


def test_grad_and_value_and_grad_compile_with_the_options():
    x = np.linspace(-1.0, 1.0, 40).reshape(20, 2)
    loss = lambda w: np.sum(np.exp(w) * w)  # noqa: E731
    for make in (graphc.grad, graphc.value_and_grad):
        fn = make(loss, options={**KERNELS, "block_elements": 2})
        low = fn.lower(x)
        assert low.options == fn.options == graphc.Options(**KERNELS, block_elements=2)
        assert "_runc(" not in low.source and "_run(_k" in low.source
    g = graphc.grad(loss, options=KERNELS)(x)
    np.testing.assert_allclose(g, np.exp(x) * (1 + x), rtol=1e-12)


def test_the_fuzzers_modes_are_options():
    assert mode_options("plain").native is False
    assert mode_options("blocks") == graphc.Options(small_group=0, block_elements=7,
                                                     native=False)
    assert mode_options("native", march="x86-64").march == "x86-64"
    assert all(graphc.Options(**m) for m in MODES.values())  # each a valid dict form
    graph = graphc.trace(exact, np.ones((9, 3), np.float32))
    assert "_run(_k0, 9, 2," in compile_optimized(graph, "blocks").source  # 7 // 3 rows
