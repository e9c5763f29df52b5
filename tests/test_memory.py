"""Memory stays bounded: buffer pools keep at most a byte budget between calls, and the
signature cache keeps at most `cache_size` entries, dropping the least recently used
(from the C fast path's table too) with its buffers.

Pool bytes are measured by the runtime's own count (`pool_bytes`), not RSS, which also
holds what numpy's allocator keeps; one coarse RSS check runs in a fresh process.
"""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import graphc
from graphc.backends.numpy import runtime

pytestmark = pytest.mark.filterwarnings("ignore::graphc.RecompileWarning")
ROOT = Path(__file__).resolve().parent.parent
COLS = 4099  # the width: rows of 16 KB, so 64 rows make a 1 MB output


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def reference(x):
    x = x.astype(np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.fixture
def budget():
    """A small pool budget for the test, the setting's own afterwards."""
    runtime.set_pool_bytes(4 << 20)
    yield 4 << 20
    runtime.set_pool_bytes(None)


def _check(f, x):
    # float32 softmax: exp's and the division's rounding (a few ulp) times a sum over
    # 4099 positive terms, whose relative error stays below ~n * eps32 / 2 in the worst
    # case; the values lie in (0, 1], so an absolute floor of that size suffices too
    got = f(x)
    bound = COLS * np.finfo(np.float32).eps / 2
    np.testing.assert_allclose(got, reference(x), rtol=bound, atol=bound * 1e-3)


def test_pools_of_many_shapes_stay_within_the_budget(budget, rng):
    f = graphc.compile(softmax, cache_size=0, dynamic=False)  # no entry limit: only the budget bounds
    peak_own = 0
    for n in range(64, 64 + 4 * 20, 4):  # outputs of 1 to 2.3 MB each
        x = rng.random((n, COLS), dtype=np.float32)
        _check(f, x)
        own = f.lower(x).executable.pool_bytes()  # the last call's pools keep theirs
        peak_own = max(peak_own, own)
        assert runtime.pool_bytes() - own <= budget, (n, runtime.pool_bytes(), own)
    assert f.cache_info().entries == 20
    # the budget had something to bound: 20 signatures' pools hold several times it
    assert 20 * peak_own > 4 * budget


def test_a_larger_budget_keeps_more(rng):
    f = graphc.compile(softmax, cache_size=0, dynamic=False)
    runtime.set_pool_bytes(1 << 40)
    try:
        xs = [rng.random((n, COLS), dtype=np.float32) for n in (64, 96, 128)]
        for x in xs:
            f(x)
        kept = sum(f.lower(x).executable.pool_bytes() for x in xs)
        assert kept >= sum(x.nbytes for x in xs)  # each keeps at least its output
        runtime.set_pool_bytes(0)  # shrinking the budget lets go at once
        assert runtime.pool_bytes() == 0
    finally:
        runtime.set_pool_bytes(None)


def test_the_cache_evicts_the_least_recently_used_signature(rng):
    f = graphc.compile(softmax, cache_size=3, dynamic=False)
    xs = {n: rng.random((n, COLS), dtype=np.float32) for n in (64, 65, 66, 67)}
    for n in (64, 65, 66):
        f(xs[n])
        f(xs[n])  # the second call is served by the fast path (the C one if built)
    lowered_65 = f.lower(xs[65])
    f(xs[64])  # the oldest now is 65
    f(xs[67])
    info = f.cache_info()
    assert (info.misses, info.entries) == (4, 3)
    assert lowered_65.executable.pool_bytes() == 0  # its buffers went with it
    for n in (64, 66, 67):  # still compiled: no new miss
        _check(f, xs[n])
    assert f.cache_info().misses == 4
    assert len(f._fast) <= 3
    if hasattr(f, "_fast_used"):  # the C fast path's table forgot it too
        runs = {id(run) for run, _ in f._fast_used()}
        assert id(lowered_65.executable.fn) not in runs and len(runs) <= 3
    _check(f, xs[65])  # compiled again
    assert f.cache_info().misses == 5 and f.cache_info().entries == 3


def test_hits_off_the_fast_path_count_as_use(rng):
    f = graphc.compile(lambda x, scale: softmax(x) * scale["s"], cache_size=2, dynamic=False)
    a, b, c = (rng.random((n, 8), dtype=np.float32) for n in (2, 3, 4))
    s = {"s": np.float32(2.0)}
    f(a, s)
    f(b, s)
    f(a, s)  # a pytree call: the Python path stamps it; b is now the oldest
    f(c, s)
    misses = f.cache_info().misses
    f(a, s)
    assert f.cache_info().misses == misses  # a survived, b did not
    f(b, s)
    assert f.cache_info().misses == misses + 1


def test_the_entry_limit_comes_from_the_setting(monkeypatch, rng):
    monkeypatch.setenv("GRAPHC_CACHE_ENTRIES", "2")
    f = graphc.compile(lambda x: x * 2.0 + 1.0, dynamic=False)
    for n in range(1, 6):
        x = rng.random(n, dtype=np.float32)
        np.testing.assert_array_equal(f(x), x * np.float32(2.0) + np.float32(1.0))
    assert f.cache_info().entries == 2 and f.cache_info().misses == 5


def test_cache_clear_lets_the_buffers_go(rng):
    f = graphc.compile(softmax, dynamic=False)
    x = rng.random((80, COLS), dtype=np.float32)
    f(x)
    lowered = f.lower(x)
    assert lowered.executable.pool_bytes() > 0
    f.cache_clear()
    assert lowered.executable.pool_bytes() == 0 and f.cache_info().entries == 0


_RSS_SCRIPT = textwrap.dedent("""
    import warnings
    import numpy as np
    import graphc
    from graphc.backends.numpy import runtime
    warnings.simplefilter("ignore", graphc.RecompileWarning)

    def rss():
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * 4096

    @graphc.compile(dynamic=False)
    def softmax(x):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    softmax(np.random.rand(1, 4099).astype(np.float32))
    start = rss()
    for n in range(2, 301, 2):
        softmax(np.random.rand(n, 4099).astype(np.float32))
    print(rss() - start, runtime.get_pool_bytes(), softmax.cache_info().entries)
""")


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads /proc (Linux)")
def test_the_process_stays_small_over_300_batch_sizes():
    # The loop (every other size, to keep the test short): it grew the process
    # by over 1 GB; pools now keep at most their budget (32 MB here) and the cache 64
    # entries. The bound leaves room for what the budget does not cover: numpy's
    # allocator holding freed pages, the code and IR of 64 entries (~0.3 MB each).
    env = {k: v for k, v in os.environ.items()  # the suite's modes, less its settings
           if not k.startswith("GRAPHC_") or k in ("GRAPHC_CACHE_DIR", "GRAPHC_MARCH")}
    env.update(GRAPHC_POOL_BYTES=str(32 << 20), GRAPHC_NATIVE="0")
    out = subprocess.run([sys.executable, "-c", _RSS_SCRIPT], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    grown, budget, entries = map(int, out.stdout.split())
    assert budget == 32 << 20 and entries == 64
    assert grown < 4 * budget + (64 << 20), f"grew by {grown / 2**20:.0f} MB"


def test_docstring_examples_run():
    import doctest
    result = doctest.testmod(runtime)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize("bad", [-1, 2.5, "64"])
def test_a_bad_cache_size_is_an_error_at_the_call(bad):
    with pytest.raises(graphc.ArgumentError, match="cache_size") as info:
        graphc.compile(softmax, cache_size=bad)
    assert info.value.loc.file == __file__
