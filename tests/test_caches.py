"""graphc's disk caches heal and admit no one else (issue 19, items 4 and 5).

An entry that is truncated, overwritten or does not load is deleted and built again
with one warning, and the next process is silent; GRAPHC_CACHE_MAX_MB evicts the least
recently used entries. The folders graphc creates are 0700; a default folder another
user owns, or that group or others can write, is not used at all; GRAPHC_CACHE_DIR is
used as given. `python -m graphc cache` lists the caches and `--clear` empties them.
"""
from __future__ import annotations

import ctypes
import doctest
import json
import os
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from graphc.backends import diskcache, toolchain
from graphc.backends.numpy import runtime

# these tests watch or break the passes and the code generator, which a hit of the
# persistent compile cache would skip
pytestmark = pytest.mark.usefixtures("no_compile_cache")

ROOT = Path(__file__).resolve().parent.parent
needs_cc = pytest.mark.skipif(toolchain.compiler() is None, reason="no C compiler")


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def fresh(monkeypatch):
    """No warning given yet, no private folder made, no library loaded by this test."""
    monkeypatch.setattr(diskcache, "_warned", set())
    monkeypatch.setattr(diskcache, "_private", [])
    monkeypatch.setattr(diskcache, "_total", {})
    monkeypatch.setattr(toolchain, "_loaded", {})


@pytest.fixture
def defaults(monkeypatch, tmp_path, fresh):
    """The default folders, moved into tmp_path: a home whose cache can be made, and a
    temporary directory of the test's own."""
    monkeypatch.delenv("GRAPHC_CACHE_DIR", raising=False)
    home, temp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    temp.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    return home, temp


def _cache_warnings(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, diskcache.CacheWarning)]


def test_docstring_examples_run():
    result = doctest.testmod(diskcache)
    assert result.failed == 0 and result.attempted > 0


def test_created_folders_are_owner_only(monkeypatch, tmp_path, fresh):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "new" / "cache"))
    native = toolchain.cache_dir()
    assert native == tmp_path / "new" / "cache" / "native"
    assert _mode(native) == 0o700 and _mode(native.parent) == 0o700


def test_the_default_home_folder_is_created_owner_only(defaults):
    home, _ = defaults
    assert toolchain.cache_dir() == home / ".cache" / "graphc" / "native"
    assert _mode(home / ".cache" / "graphc") == 0o700
    assert _mode(home / ".cache" / "graphc" / "native") == 0o700


def test_a_0755_folder_of_an_earlier_graphc_is_still_used(defaults):
    home, _ = defaults
    old = home / ".cache" / "graphc"
    old.mkdir(parents=True)
    os.chmod(old, 0o755)  # what graphc made before: only its owner can write it
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert diskcache.root() == old
    assert _cache_warnings(record) == []


def _refused_once(planted: Path) -> Path:
    """The root graphc picks, asked twice, given that `planted` must be refused."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        first, again = diskcache.root(), diskcache.root()
    messages = _cache_warnings(record)
    assert len(messages) == 1 and str(planted) in messages[0], messages
    assert first == again and first != planted and _mode(first) == 0o700
    assert planted not in first.parents
    return first


def test_a_0777_folder_planted_in_the_temporary_directory_is_refused(defaults):
    home, temp = defaults
    (home / ".cache").write_text("a file: the home has no writable cache")
    planted = temp / f"graphc-{os.getuid()}"
    planted.mkdir()
    os.chmod(planted, 0o777)  # anyone could have made it, and put a library in it
    chosen = _refused_once(planted)
    assert chosen.parent == temp and "group or others can write it" in \
        str(diskcache._warned)
    if toolchain.compiler() is not None:  # nothing is read from it or written to it
        assert toolchain.build("int graphc_planted(void) { return 5; }\n").graphc_planted() == 5
    assert list(planted.iterdir()) == []


def test_a_folder_owned_by_someone_else_is_refused(defaults, monkeypatch):
    home, _ = defaults
    mine = home / ".cache" / "graphc"
    mine.mkdir(parents=True, mode=0o700)
    # tests cannot chown: seen from another user id, the folder belongs to someone else
    monkeypatch.setattr(diskcache, "_uid", lambda: os.getuid() + 1)
    _refused_once(mine)
    assert "owned by user id" in next(iter(diskcache._warned))
    assert list(mine.iterdir()) == []


def test_a_group_writable_home_folder_is_refused(defaults):
    home, _ = defaults
    shared = home / ".cache" / "graphc"
    shared.mkdir(parents=True)
    os.chmod(shared, 0o770)
    _refused_once(shared)


def test_graphc_cache_dir_is_used_as_given(monkeypatch, tmp_path, fresh):
    team = tmp_path / "team"
    team.mkdir()
    os.chmod(team, 0o777)  # a shared team cache: the user's deliberate choice
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(team))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert toolchain.cache_dir() == team / "native"
    assert _cache_warnings(record) == [] and _mode(team) == 0o777


def _probe(value: int, padding: int = 0) -> str:
    pad = f"const char graphc_pad_{value}[{padding}] = {{1}};\n" if padding else ""
    return f"{pad}int graphc_probe_{value}(void) {{ return {value}; }}\n"


def _entry(lib: ctypes.CDLL) -> Path:
    return Path(lib._name)


def _unloaded_entry(source: str) -> Path:
    """The cache entry of `source`, built but not loaded: a library this process has
    mapped must not be damaged in place (it would die of SIGBUS), and the loader hands
    out the mapped one again for the same path."""
    build_flags = toolchain.flags()
    path, fresh = toolchain._built(source, toolchain._key(source, build_flags), build_flags)
    assert fresh
    return path


def _damage(entry: Path, data: bytes) -> None:
    spare = entry.with_name("damaged")
    spare.write_bytes(data)
    os.replace(spare, entry)  # a new file: what this process mapped stays whole


@needs_cc
@pytest.mark.parametrize("damage", ["truncated", "garbage", "sealed but not a library"])
def test_a_damaged_entry_is_rebuilt_once_with_one_warning(monkeypatch, tmp_path, fresh,
                                                          damage):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    entry = _unloaded_entry(_probe(7))
    assert _mode(entry) == 0o700 and diskcache.intact(entry)
    data = entry.read_bytes()
    if damage == "truncated":  # loaded as it is, this one dies of SIGBUS
        _damage(entry, data[:len(data) // 2])
    elif damage == "garbage":
        _damage(entry, os.urandom(len(data)))
    else:
        diskcache.write(entry, b"\x7fELF not really", mode=0o700)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert toolchain.build(_probe(7)).graphc_probe_7() == 7
    messages = _cache_warnings(record)
    assert len(messages) == 1 and str(entry) in messages[0], messages
    assert diskcache.intact(entry)


@needs_cc
def test_a_damaged_extension_module_is_rebuilt(monkeypatch, tmp_path, fresh):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    calls = Path(runtime.__file__).parent / "calls.c"
    assert toolchain.build_extension("graphc_calls", calls) is not None
    (entry,) = (tmp_path / "native").glob("k*.so")
    _damage(entry, b"garbage")
    toolchain._loaded.clear()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        module = toolchain.build_extension("graphc_calls", calls)
    assert module is not None and callable(module.run)
    assert len(_cache_warnings(record)) == 1 and diskcache.intact(entry)


@needs_cc
def test_the_size_cap_evicts_the_least_recently_used(monkeypatch, tmp_path, fresh):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("GRAPHC_CACHE_MAX_MB", "1")
    sources = [_probe(v, padding=300_000) for v in range(4)]  # ~0.3 MB each
    entries = [_entry(toolchain.build(s)) for s in sources[:3]]
    now = time.time()
    for age, entry in zip((30, 20, 10), entries):  # built in this order, long ago
        os.utime(entry, (now - age, now - age))
    toolchain._loaded.clear()
    toolchain.build(sources[0])  # used again: now the most recent of the three
    entries.append(_entry(toolchain.build(sources[3])))  # over 1 MB: one must go
    assert [e.exists() for e in entries] == [True, False, True, True]


def test_the_caches_are_counted_once_a_process_until_near_the_cap(monkeypatch, tmp_path,
                                                                    fresh):
    # counting stats every entry (a cache of 41,000 kernels: ~0.1 s a build), so a
    # process counts once and keeps a running total, counting again only past the cap
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("GRAPHC_CACHE_MAX_MB", "3")
    folder = diskcache.folder("native")
    counts = []
    real = diskcache._all_entries
    monkeypatch.setattr(diskcache, "_all_entries", lambda: counts.append(1) or real())
    for i in range(5):  # 0.5 MB each: 2.5 MB, under the cap
        diskcache.write(folder / f"k{i}", bytes(1 << 19))
        diskcache.evict(keep=folder / f"k{i}")
    assert len(counts) == 1 and len(list(folder.iterdir())) == 5
    for i in range(5, 8):  # past 3 MB: counted again, the oldest go
        diskcache.write(folder / f"k{i}", bytes(1 << 19))
        os.utime(folder / f"k{i}", (time.time() + i, time.time() + i))
        diskcache.evict(keep=folder / f"k{i}")
    assert len(counts) > 1
    total = sum(p.stat().st_size for p in folder.iterdir())
    assert total <= 3 << 20 and (folder / "k7").exists()


def test_no_cap_keeps_everything(monkeypatch, tmp_path, fresh):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("GRAPHC_CACHE_MAX_MB", "0")
    folder = diskcache.folder("native")
    for i in range(3):
        diskcache.write(folder / f"k{i}", bytes(1 << 20))
    diskcache.evict(keep=folder / "k2")
    assert len(list(folder.iterdir())) == 3


def _clean_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()  # the suite's modes, less its settings
           if not k.startswith("GRAPHC_") or k == "GRAPHC_MARCH"}
    env["GRAPHC_CACHE_DIR"] = str(cache)
    return env


def test_the_cache_command_lists_and_clears(tmp_path, fresh):
    env = _clean_env(tmp_path)
    folder = tmp_path / "native"
    folder.mkdir()
    for i in range(2):
        (folder / f"k{i}.so").write_bytes(bytes(1 << 19))

    def run(*args):
        done = subprocess.run([sys.executable, "-m", "graphc", "cache", *args], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout
    listed = run()
    assert f"native: {folder}, 2 entries, 1.0 MB" in listed
    assert "cleared 2 entries" in run("--clear") and list(folder.iterdir()) == []
    assert "native: " in run() and "0 entries" in run()


_SCRIPT = textwrap.dedent("""
    import ctypes, json, warnings
    import numpy as np
    import graphc
    from graphc.backends import toolchain
    warnings.simplefilter("always")

    def f(x):
        return np.sum(np.tanh(x) * 2.0 + 1.0, axis=1)

    x = np.random.default_rng(0).standard_normal((64, 300)).astype(np.float32)
    g = graphc.compile(f, options={"small_group": 0, "native": True})
    got = g(x)
    want = f(x.astype(np.float64))
    print(json.dumps({
        "native": "_runc(" in g.lower(x).source,
        "error": float(np.max(np.abs(got - want) / np.abs(want).max())),
        "libraries": [lib._name for lib in toolchain._loaded.values()
                      if isinstance(lib, ctypes.CDLL)]}))
""")


def _run_script(cache: Path) -> tuple[dict, str]:
    done = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=ROOT, env=_clean_env(cache),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1]), done.stderr


@needs_cc
def test_a_corrupt_entry_heals_and_the_next_process_is_silent(tmp_path):
    first, _ = _run_script(tmp_path)
    assert first["native"] and first["libraries"]
    for name in first["libraries"]:  # the kernels of f (and the BLAS pool's library),
        Path(name).write_bytes(os.urandom(Path(name).stat().st_size))  # as in the issue
    healed, stderr = _run_script(tmp_path)
    assert stderr.count("CacheWarning") == len(first["libraries"]), stderr  # one each
    assert "deleted it, building it again" in stderr and "failed to build" not in stderr
    assert healed["native"] and healed["error"] < 1e-5
    inodes = [os.stat(name).st_ino for name in healed["libraries"]]
    again, stderr = _run_script(tmp_path)
    assert stderr == "" and again["native"] and again["error"] < 1e-5
    assert [os.stat(name).st_ino for name in again["libraries"]] == inodes  # not rebuilt


def test_evict_soon_evicts_off_the_callers_thread(monkeypatch, tmp_path, fresh):
    # the compile cache stores an entry and leaves the counting to a thread of its own
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("GRAPHC_CACHE_MAX_MB", "1")
    folder = diskcache.folder("compile")
    threads = []
    real = diskcache.evict
    monkeypatch.setattr(diskcache, "evict",
                        lambda keep: threads.append(threading.current_thread()) or real(keep))
    for i in range(4):  # 0.4 MB each, the newest last
        diskcache.write(folder / f"c{i}.entry", bytes(400_000))
        os.utime(folder / f"c{i}.entry", (time.time() - 10 + i, time.time() - 10 + i))
        diskcache.evict_soon(keep=folder / f"c{i}.entry")
    diskcache.wait_for_eviction(timeout=30)
    assert threads and threading.main_thread() not in threads
    left = sorted(p.name for p in folder.iterdir())
    assert "c3.entry" in left and sum(p.stat().st_size for p in folder.iterdir()) <= 1 << 20
