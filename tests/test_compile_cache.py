"""The persistent compile cache (issue 20, item 2): a hit is a cold compile's result
exactly, every input to compilation is in the key, a bad entry is rebuilt, and
processes filling the cache at once stay correct.

Each test has a cache folder of its own (GRAPHC_CACHE_DIR), so what it sees is what it
did; a new `graphc.compile` of the same function stands for a new process (its
signature cache is empty), and the subprocess tests check that for real.
"""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

import graphc
from graphc import compile_cache
from graphc.backends import diskcache, toolchain

ROOT = Path(__file__).resolve().parent.parent
needs_cc = pytest.mark.skipif(toolchain.compiler() is None, reason="no C compiler")


@pytest.fixture(autouse=True)
def folder(monkeypatch, tmp_path):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("GRAPHC_CACHE", raising=False)
    monkeypatch.setattr(diskcache, "_warned", set())
    monkeypatch.setattr(diskcache, "_total", {})
    return tmp_path / compile_cache.CACHE


def model(x, w):
    h = np.tanh(x @ w) * 0.5 + x
    return np.sum(h * h, axis=1), np.exp(-h)


X = np.linspace(-1, 1, 64 * 16, dtype=np.float32).reshape(64, 16)
W = (np.eye(16, dtype=np.float32) * 0.5 + 0.01).astype(np.float32)
KERNELS = {"small_group": 0}  # every group a kernel, native where a compiler is


def _lowered(fn=model, args=(X, W), **compile_kwargs):
    return graphc.compile(fn, **compile_kwargs).lower(*args)


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.entry")) if folder.is_dir() else []


def _same_outputs(a, b) -> None:
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y, strict=True)  # bit for bit, NaN where NaN


def _close_to_numpy(outs) -> None:
    # float32 tanh and exp in C are within a few ulps of numpy's (glibc's libmvec: 4),
    # the row sums add 16 terms of one sign: 1e-5 relative (~84 ulps) bounds them all
    for got, want in zip(outs, model(X, W)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# -- a hit is the cold compile -----------------------------------------------------------

@pytest.mark.parametrize("options", [{}, KERNELS, {"native": False, **KERNELS}])
def test_a_hit_gives_the_cold_compiles_source_graph_and_outputs(folder, options):
    cold = _lowered(options=options)
    assert cold.cache == "miss" and len(_entries(folder)) == 1
    hot = _lowered(options=options)
    assert hot.cache == "hit"
    assert list(hot.stage_seconds) == ["trace", "passes", "codegen", "cache"]
    assert hot.stage_seconds["passes"] == hot.stage_seconds["codegen"] == 0.0  # skipped
    assert [g.space for g in hot.optimized.groups] == [g.space for g in cold.optimized.groups]
    assert hot.source == cold.source
    assert getattr(hot.executable, "native_source", "") == \
        getattr(cold.executable, "native_source", "")
    assert str(hot.optimized) == str(cold.optimized)
    assert hot.fusion_report() == cold.fusion_report()
    assert hot.kernels == cold.kernels
    _same_outputs(hot(X, W), cold(X, W))
    _close_to_numpy(hot(X, W))


def test_a_hits_stages_are_every_pass_run_again_on_demand():
    cold = _lowered()
    hot = _lowered()
    assert hot.cache == "hit" and hot.pass_seconds == {}  # nothing ran yet
    assert list(hot.stages) == list(cold.stages)
    for name in cold.stages:
        assert str(hot.stages[name]) == str(cold.stages[name])
    assert set(hot.pass_seconds) == set(cold.pass_seconds)  # the passes' second run


def test_the_fusion_notes_survive_the_cache():
    def two_matmuls(x, w):
        return np.tanh(x @ w) @ w  # the second matmul cannot join the first's epilogue
    cold = _lowered(two_matmuls)
    hot = _lowered(two_matmuls)
    assert hot.cache == "hit"
    assert hot.fusion_report() == cold.fusion_report()
    notes = [g.notes for g in hot.optimized.groups]
    assert notes == [g.notes for g in cold.optimized.groups]


def test_errors_at_run_time_still_name_the_users_line():
    def pick(x, i):
        return x[i] * 2.0  # a gather: an index out of range is the user's
    x, good, bad = np.ones(4, np.float32), np.array([0, 3]), np.array([0, 9])
    _lowered(pick, (x, good))
    f = graphc.compile(pick)
    assert f.lower(x, good).cache == "hit"
    with pytest.raises(graphc.IndexingError) as info:
        f(x, bad)
    assert info.value.loc.line == pick.__code__.co_firstlineno + 1
    assert info.value.loc.file == __file__


def test_constants_keep_their_shapes_and_values_bit_for_bit():
    consts = [np.array(1.5), np.array([2.0]), np.array([[np.nan, -0.0, np.inf]]),
              np.arange(6, dtype=np.int32).reshape(2, 3) - 3, np.array([True, False])]

    def f(x):
        return (x * consts[0], x[:1] * consts[1], x[None, :3] + consts[2],
                consts[3] + 1, x[:2] * consts[4])
    x = np.linspace(0, 1, 5)
    cold, hot = _lowered(f, (x,)), _lowered(f, (x,))
    assert hot.cache == "hit"
    _same_outputs(hot(x), cold(x))
    _same_outputs(hot(x), f(x))


# -- every input to compilation is in the key ----------------------------------------------

def _misses_after(change, *, fn=model, args=(X, W), **kwargs) -> None:
    """A compile hits unchanged and misses once `change()` has run, giving what the
    hit gave."""
    _lowered(fn, args, **kwargs)
    hot = _lowered(fn, args, **kwargs)
    assert hot.cache == "hit"
    change()
    low = _lowered(fn, args, **kwargs)
    assert low.cache == "miss"
    _same_outputs(low(*args), hot(*args))


@pytest.mark.parametrize("field,value", [
    ("native", False), ("small_group", 7), ("block_elements", 64), ("threads", 1),
    ("march", "x86-64"), ("cuda_graphs", True), ("profile", True), ("donate", (0,))])
def test_each_option_is_in_the_key(field, value):
    assert set(graphc.Options.__dataclass_fields__) == \
        {"native", "small_group", "block_elements", "threads", "march", "cuda_graphs",
         "profile", "donate"}
    # every field given, so that the variation differs whatever GRAPHC_* says
    base = {"native": True, "small_group": 0, "block_elements": 131072, "threads": None,
            "march": "native", "cuda_graphs": False, "profile": False, "donate": ()}
    hot = _lowered(options=base)
    assert _lowered(options=base).cache == "hit" and hot.cache == "miss"
    low = _lowered(options={**base, field: value})
    assert low.cache == "miss"
    _close_to_numpy(low(X, W))


def test_the_graph_is_in_the_key_shapes_dtypes_constants_and_lines():
    _lowered()
    assert _lowered(args=(X[:8], W)).cache == "miss"  # a shape
    assert _lowered(args=(X.astype(np.float64), W.astype(np.float64))).cache == "miss"

    def scaled(c):
        def f(x):
            return x * c
        return f
    assert _lowered(scaled(2.0), (X,)).cache == "miss"
    assert _lowered(scaled(3.0), (X,)).cache == "miss"  # a constant's value
    assert _lowered(scaled(3.0), (X,)).cache == "hit"

    def again(x, w):  # the same code on other lines of the same file
        h = np.tanh(x @ w) * 0.5 + x
        return np.sum(h * h, axis=1), np.exp(-h)
    again.__name__ = "model"
    assert _lowered(again).cache == "miss"


def test_the_same_line_in_another_file_is_another_key(tmp_path):
    source = "import numpy as np\ndef f(x):\n    return np.exp(x) + 1.0\n"
    made = []
    for sub in ("a", "b"):  # same base name and line, other folders
        (tmp_path / sub).mkdir()
        path = tmp_path / sub / "mod.py"
        path.write_text(source)
        ns: dict = {}
        exec(compile(source, str(path), "exec"), ns)
        made.append(_lowered(ns["f"], (X,)).cache)
    assert made == ["miss", "miss"]


def test_the_pass_pipeline_and_fusion_policy_are_in_the_key(monkeypatch):
    _lowered()
    assert _lowered(passes=["simplify", "dce", "fusion"]).cache == "miss"
    assert _lowered(passes=["simplify", "dce", "fusion"]).cache == "hit"
    from graphc.backends import numpy as numpy_backend
    from graphc.passes.fusion import FusionPolicy
    monkeypatch.setattr(numpy_backend, "FUSION_POLICY", FusionPolicy(max_group_nodes=1))
    assert _lowered().cache == "miss"


def test_a_pass_of_the_users_own_is_never_cached(folder):
    def mine(graph):
        return graph
    low = _lowered(passes=[("mine", mine), "fusion"])
    assert low.cache.startswith("bypass") and "your own" in low.cache
    assert _lowered(passes=[("mine", mine), "fusion"]).cache.startswith("bypass")
    assert _entries(folder) == []


def test_graphc_itself_is_in_the_key(monkeypatch):
    digest = compile_cache.graphc_digest()
    _misses_after(lambda: monkeypatch.setattr(compile_cache, "graphc_digest",
                                              lambda: digest + "edited"))


def test_graphcs_digest_reads_every_package_of_it():
    # a checkout names them graphc.passes/fusion.py, an installed wheel graphc/passes/...
    names = [name for name, _ in compile_cache.source_files()]
    for tail in ("graphc/api.py", "frontend/trace.py", "passes/fusion.py",
                 "backends/numpy/codegen.py", "backends/numpy/calls.c",
                 "backends/triton/codegen.py", "graphc/report/sections.py"):
        assert any(n.endswith(tail) for n in names), tail
    assert len(names) == len(set(names))


def test_python_is_in_the_key(monkeypatch):
    _misses_after(lambda: monkeypatch.setattr(sys, "version", sys.version + " (other)"))


def test_the_compiler_is_in_the_key(monkeypatch):
    # the toolchain's fingerprint digests the compiler and its version, the CPU's
    # flags, the build flags and libraries
    real = toolchain.fingerprint
    _misses_after(lambda: monkeypatch.setattr(toolchain, "fingerprint",
                                              lambda march=None: real(march) + "gcc 99"))


def test_the_cpus_features_are_in_the_key(monkeypatch, request):
    request.addfinalizer(toolchain._fingerprint_of.cache_clear)  # before cpu_flags returns

    def other_cpu():
        monkeypatch.setattr(toolchain, "cpu_flags", lambda: frozenset({"sse2"}))
        toolchain._fingerprint_of.cache_clear()
    _misses_after(other_cpu)


def test_numpys_version_is_in_the_key(monkeypatch):
    _misses_after(lambda: monkeypatch.setattr(np, "__version__", "0.0.0"))


def test_the_backend_is_in_the_key():
    pytest.importorskip("triton")
    pytest.importorskip("torch")
    small = (X[:4, :4], W[:4, :4])
    _lowered(args=small)
    assert _lowered(args=small, backend="triton").cache == "miss"
    assert _lowered(args=small, backend="triton").cache == "hit"


# -- on, off, told ----------------------------------------------------------------------

def test_graphc_cache_0_turns_it_off(monkeypatch, folder):
    monkeypatch.setenv("GRAPHC_CACHE", "0")
    assert _lowered().cache == "off" and _lowered().cache == "off"
    assert _entries(folder) == []


def test_graphc_log_says_hit_or_miss(monkeypatch, capsys):
    monkeypatch.setenv("GRAPHC_LOG", "cache")
    _lowered()
    _lowered()
    err = capsys.readouterr().err
    assert "compile cache miss for model" in err and "compile cache hit for model" in err


def test_entries_are_owner_only_and_listed_by_the_cache_command(folder):
    _lowered()
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    (entry,) = _entries(folder)
    assert stat.S_IMODE(os.stat(entry).st_mode) == 0o600
    rows = {name: n for name, _, n, _ in diskcache.summary()}
    assert rows["compile"] == 1
    assert diskcache.clear() >= 1 and _entries(folder) == []


# -- bad entries heal ------------------------------------------------------------------

def _rebuilt_after(folder: Path, damage) -> None:
    cold = _lowered()
    (entry,) = _entries(folder)
    damage(entry)
    with pytest.warns(diskcache.CacheWarning, match="deleted it"):
        low = _lowered()
    assert low.cache == "miss"
    assert low.source == cold.source
    _same_outputs(low(X, W), cold(X, W))
    assert _lowered().cache == "hit"  # stored again, whole


def test_a_truncated_entry_is_rebuilt(folder):
    _rebuilt_after(folder, lambda p: p.write_bytes(p.read_bytes()[:-100]))


def test_an_overwritten_byte_is_rebuilt(folder):
    def flip(p: Path) -> None:
        data = bytearray(p.read_bytes())
        data[len(data) // 2] ^= 0xFF
        p.write_bytes(bytes(data))
    _rebuilt_after(folder, flip)


@pytest.mark.parametrize("body", [
    b"not an entry at all",
    compile_cache._FORMAT + b"\x05\x00\x00\x00\x00\x00\x00\x00{\"k\":",
    compile_cache._FORMAT + b"\x02\x00\x00\x00\x00\x00\x00\x00{}",
])
def test_a_sealed_entry_that_is_not_what_graphc_writes_is_rebuilt(folder, body):
    # sealed, so only its contents can be wrong: written by another version's bug, or
    # by hand
    _rebuilt_after(folder, lambda p: diskcache.write(p, body))


def test_an_entry_whose_record_is_wrong_is_rebuilt(folder):
    import json
    import struct

    def wrong_field(p: Path) -> None:
        body = diskcache.read(p)
        at = len(compile_cache._FORMAT)
        (size,) = struct.unpack_from("<Q", body, at)
        header = json.loads(body[at + 8:at + 8 + size])
        header["rendered"]["slot_bytes"] = "lots"
        head = json.dumps(header).encode()
        diskcache.write(p, compile_cache._FORMAT + struct.pack("<Q", len(head)) + head
                        + body[at + 8 + size:])
    _rebuilt_after(folder, wrong_field)


def test_an_unwritable_cache_folder_warns_and_compiles(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(blocker))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the cache's, and the native build's fallback
        low = _lowered()
    _close_to_numpy(low(X, W))


# -- processes ----------------------------------------------------------------------------

# A child compiles `model` and checks it against numpy (the bound of _close_to_numpy).
# It prints whether it hit, and a digest of its outputs' bytes: processes on one
# machine running the same code agree bit for bit.
_CHILD = textwrap.dedent("""
    import hashlib, sys, numpy as np, graphc
    sys.path.insert(0, {root!r})
    from tests.test_compile_cache import X, W, model
    low = graphc.compile(model, options={{"small_group": 0}}).lower(X, W)
    outs = low(X, W)
    for got, want in zip(outs, model(X, W)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    print(low.cache, hashlib.sha256(b"".join(o.tobytes() for o in outs)).hexdigest())
""")


def _children(n: int, tmp_path: Path) -> list[str]:
    env = {**os.environ, "GRAPHC_CACHE_DIR": str(tmp_path)}
    env.pop("GRAPHC_CACHE", None)
    code = _CHILD.format(root=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, cwd=str(ROOT),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(n)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        outs.append(out.strip().splitlines()[-1])
    return outs


def test_a_second_process_hits_with_the_same_outputs(tmp_path):
    (cold,) = _children(1, tmp_path)
    (hot,) = _children(1, tmp_path)
    assert cold.split()[0] == "miss" and hot.split()[0] == "hit"
    assert cold.split()[1] == hot.split()[1]


def test_processes_filling_the_cache_at_once_stay_correct(tmp_path, folder):
    outs = _children(3, tmp_path)  # each checks its outputs against numpy
    assert {o.split()[0] for o in outs} <= {"hit", "miss"}
    assert len({o.split()[1] for o in outs}) == 1
    assert len(_entries(folder)) == 1  # one key, one entry, whoever wrote it last
    (after,) = _children(1, tmp_path)
    assert after.split() == ["hit", outs[0].split()[1]]
