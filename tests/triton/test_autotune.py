"""graphc's Triton autotuner (backends/triton/autotune.py) under the interpreter: the
fastest config wins, one config is never timed, results come back from memory and from
disk, every key ingredient makes a new entry, a bad cache file warns and is rewritten
(and the kernel is still right), in-place arguments survive tuning, the cache folder is
owner-only, and the config spaces keep to their bounds.

A fake timer returns chosen times (so which config wins is known) and counts its calls
(so "not timed" is checked); it still runs each trial, so the kernel really launches.
"""
import dataclasses
import doctest
import os
import stat
import warnings

import pytest

os.environ.setdefault("TRITON_INTERPRET", "1")
pytest.importorskip("triton")
torch = pytest.importorskip("torch")
import triton  # noqa: E402
import triton.language as tl  # noqa: E402

from graphc.backends import diskcache  # noqa: E402
from graphc.backends.triton import autotune  # noqa: E402
from graphc.backends.triton.autotune import (  # noqa: E402
    CONFIG_SPACES, Config, Tuner, TuneKey, TuningError, WallClock)

N = 5000  # not a multiple of any block: the last program of every config is masked


@triton.jit
def add_kernel(x_ptr, y_ptr, out_ptr,  # pointers
               n,  # sizes
               BLOCK: tl.constexpr):  # meta-parameters
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    x = tl.load(x_ptr + offsets, mask=mask)
    y = tl.load(y_ptr + offsets, mask=mask)
    tl.store(out_ptr + offsets, x + y, mask=mask)


@triton.jit
def sub_kernel(x_ptr, y_ptr, out_ptr,  # pointers
               n,  # sizes
               BLOCK: tl.constexpr):  # meta-parameters
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    x = tl.load(x_ptr + offsets, mask=mask)
    y = tl.load(y_ptr + offsets, mask=mask)
    tl.store(out_ptr + offsets, x - y, mask=mask)


@triton.jit
def add_into_kernel(x_ptr, y_ptr,  # pointers (x is read and written)
                    n,  # sizes
                    BLOCK: tl.constexpr):  # meta-parameters
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    x = tl.load(x_ptr + offsets, mask=mask)
    y = tl.load(y_ptr + offsets, mask=mask)
    tl.store(x_ptr + offsets, x + y, mask=mask)


SPACE = [Config.of(num_warps=4, BLOCK=b) for b in (1024, 2048, 4096)]


class FakeTimer:
    """Runs the trial once and returns the time chosen for the config it launched."""

    def __init__(self, seconds: dict[int, float], launched: list[Config]):
        self.seconds, self.launched, self.calls = seconds, launched, 0

    def time(self, fn) -> float:
        self.calls += 1
        fn()
        return self.seconds[self.launched[-1]["BLOCK"]]


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def data():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(N, generator=gen)
    y = torch.randn(N, generator=gen)
    return x, y, torch.empty(N)


def launcher(kernel, args, launched):
    """launch(config) for `kernel` over `args`: the grid from the config's BLOCK."""
    def launch(config: Config) -> None:
        launched.append(config)
        kernel[(triton.cdiv(N, config["BLOCK"]),)](*args, N, **config.kwargs())
    return launch


def tuned(kernel, args, seconds, space=SPACE, written=(), tuner=None):
    """(picked config, tuner, timer) of tuning `kernel` with a fake timer."""
    launched: list[Config] = []
    timer = FakeTimer(seconds, launched)
    tuner = tuner or Tuner(timer=timer)
    tuner.timer = timer
    key = TuneKey.of(kernel, space, (*args, N))
    return tuner.pick(key, space, launcher(kernel, args, launched), written), tuner, timer


def check_add(config, data):
    """Launch add_kernel with `config` and compare with torch: float32 addition is
    correctly rounded in both, so the results are equal bit for bit."""
    x, y, out = data
    out.fill_(float("nan"))
    launcher(add_kernel, (x, y, out), [])(config)
    torch.testing.assert_close(out, x + y, rtol=0, atol=0)


@pytest.mark.parametrize("seconds, fastest", [
    ({1024: 3e-3, 2048: 1e-3, 4096: 2e-3}, 2048),
    ({1024: 3e-3, 2048: 2e-3, 4096: 1e-3}, 4096),
    ({1024: 1e-3, 2048: 1e-3, 4096: 2e-3}, 1024),  # a tie: the first in the space
])
def test_fastest_config_wins(data, seconds, fastest):
    picked, tuner, timer = tuned(add_kernel, data, seconds)
    assert picked["BLOCK"] == fastest and picked in SPACE
    assert timer.calls == 3
    assert dataclasses.asdict(tuner.stats()) == {"memory_hits": 0, "disk_hits": 0,
                                                 "misses": 1, "rejected": 0}
    check_add(picked, data)


def test_single_config_is_not_timed(data):
    only = [Config.of(BLOCK=8192)]
    picked, tuner, timer = tuned(add_kernel, data, {8192: 1.0}, space=only)
    assert picked is only[0] and timer.calls == 0 and not timer.launched
    assert tuner.stats().misses == 0


def test_interpreter_spaces_time_nothing():
    for kind, problem in [("pointwise", {"numel": 10**6}),
                          ("reduction", {"rows": 1823, "row_length": 781}),
                          ("looped_reduction", {"rows": 7, "row_length": 300000}),
                          ("matmul", {"M": 1823, "N": 781, "K": 333, "dtype": "float32"})]:
        assert len(CONFIG_SPACES[kind]({**problem, "interpret": True})) == 1, kind


def test_memory_then_disk_hits(data, cache_dir):
    first, tuner, _ = tuned(add_kernel, data, {1024: 3e-3, 2048: 1e-3, 4096: 2e-3})
    again, _, timer = tuned(add_kernel, data, {1024: 1e-3, 2048: 3e-3, 4096: 2e-3},
                            tuner=tuner)
    assert again == first and timer.calls == 0 and tuner.stats().memory_hits == 1
    tuner.clear()  # a fresh process: only the disk remembers
    with warnings.catch_warnings():
        warnings.simplefilter("error", diskcache.CacheWarning)
        from_disk, _, timer = tuned(add_kernel, data, {1024: 1e-3, 2048: 3e-3, 4096: 2e-3},
                                    tuner=tuner)
    assert from_disk == first and timer.calls == 0
    assert dataclasses.asdict(tuner.stats()) == {"memory_hits": 0, "disk_hits": 1,
                                                 "misses": 0, "rejected": 0}
    assert len(list((cache_dir / autotune.CACHE).glob("add_kernel-*.json"))) == 1
    check_add(from_disk, data)


def test_module_tuner_counts(data):
    autotune.clear()
    launched: list[Config] = []
    autotune.TUNER.timer = FakeTimer({1024: 3e-3, 2048: 1e-3, 4096: 2e-3}, launched)
    try:
        key = TuneKey.of(add_kernel, SPACE, (*data, N))
        for _ in range(2):
            autotune.pick(key, SPACE, launcher(add_kernel, data, launched))
        assert (autotune.stats().misses, autotune.stats().hits) == (1, 1)
    finally:
        autotune.TUNER.timer = None
        autotune.clear()


def _changed(ingredient, data, monkeypatch):
    """(kernel, args, space) of the base problem with one key ingredient changed."""
    x, y, out = data
    kernel, args, space = add_kernel, (x, y, out), SPACE
    if ingredient == "source":
        kernel = sub_kernel
    elif ingredient == "shapes":
        args = (x.reshape(50, 100), y.reshape(50, 100), out.reshape(50, 100))
    elif ingredient == "strides":
        args = (torch.randn(2 * N)[::2], y, out)
    elif ingredient == "dtypes":
        args = (x.double(), y.double(), out.double())
    elif ingredient == "space":
        space = SPACE[:2]
    elif ingredient == "interpreter flag":
        monkeypatch.setenv("TRITON_INTERPRET", "0")  # the key reads it; triton does not
    elif ingredient == "triton version":
        monkeypatch.setattr(triton, "__version__", triton.__version__ + "+other")
    elif ingredient == "torch version":
        monkeypatch.setattr(torch, "__version__", torch.__version__ + "+other")
    return kernel, args, space


@pytest.mark.parametrize("ingredient", ["source", "shapes", "strides", "dtypes", "space",
                                        "interpreter flag", "triton version",
                                        "torch version"])
def test_each_key_ingredient_misses(data, monkeypatch, ingredient):
    seconds = {1024: 3e-3, 2048: 1e-3, 4096: 2e-3}
    _, tuner, _ = tuned(add_kernel, data, seconds)
    base = TuneKey.of(add_kernel, SPACE, (*data, N))
    kernel, args, space = _changed(ingredient, data, monkeypatch)
    changed = TuneKey.of(kernel, space, (*args, N))
    assert changed.digest() != base.digest()
    tuner.clear()
    _, tuner, timer = tuned(kernel, args, seconds, space=space, tuner=tuner)
    assert timer.calls == len(space) and tuner.stats().misses == 1


def test_device_is_in_the_key(data):
    base = TuneKey.of(add_kernel, SPACE, (*data, N))
    assert base.device == "cpu"
    assert dataclasses.replace(base, device="NVIDIA H200").digest() != base.digest()


def test_a_seed_does_not_make_a_new_entry(data):
    keys = {TuneKey.of(add_kernel, SPACE, (*data, seed)) for seed in (12345, 67891)}
    assert len(keys) == 1


def _entry(cache_dir):
    (path,) = (cache_dir / autotune.CACHE).glob("add_kernel-*.json")
    return path


def _truncated(path):
    path.write_bytes(path.read_bytes()[:-20])


def _edited(path):  # the config edited by hand, the seal left as it was
    path.write_bytes(path.read_bytes().replace(b'"BLOCK=2048', b'"BLOCK=1024'))


def _outside_space(path):  # sealed as graphc seals, naming a config not in the space
    body = path.read_bytes().split(diskcache._SEAL)[0]
    diskcache.write(path, body.replace(b'"config": "BLOCK=2048', b'"config": "BLOCK=512'))


def _not_json(path):
    diskcache.write(path, b"{ this is not json")


def _other_key(path):
    body = path.read_bytes().split(diskcache._SEAL)[0]
    diskcache.write(path, body.replace(b'"device": "cpu"', b'"device": "NVIDIA H200"'))


@pytest.mark.parametrize("spoil", [_truncated, _edited, _outside_space, _not_json,
                                   _other_key], ids=lambda f: f.__name__.strip("_"))
def test_bad_cache_file_warns_and_is_rewritten(data, cache_dir, spoil):
    seconds = {1024: 3e-3, 2048: 1e-3, 4096: 2e-3}
    first, tuner, _ = tuned(add_kernel, data, seconds)
    path = _entry(cache_dir)
    good = path.read_bytes()
    spoil(path)
    assert path.read_bytes() != good
    tuner.clear()
    with pytest.warns(diskcache.CacheWarning, match="autotune cache entry"):
        picked, tuner, timer = tuned(add_kernel, data, seconds, tuner=tuner)
    assert picked == first and picked in SPACE and timer.calls == 3
    assert tuner.stats().rejected == 1 and tuner.stats().misses == 1
    assert diskcache.intact(path) and path.read_bytes() == good  # rewritten
    check_add(picked, data)


def test_in_place_argument_survives_tuning(data):
    x, y, _ = data
    before = x.clone()
    launched: list[Config] = []
    key = TuneKey.of(add_into_kernel, SPACE, (x, y, N))
    launch = launcher(add_into_kernel, (x, y), launched)
    picked = Tuner(timer=WallClock(warmup=1, repeats=2)).pick(key, SPACE, launch,
                                                              written=[x])
    assert len(launched) == 3 * 3  # three configs, three runs each
    torch.testing.assert_close(x, before, rtol=0, atol=0)  # tuning left x as it was
    launch(picked)
    torch.testing.assert_close(x, before + y, rtol=0, atol=0)  # as one run leaves it


def test_without_written_tuning_corrupts(data):
    """The check above has teeth: not naming x lets the trial runs add y nine times."""
    x, y, _ = data
    before = x.clone()
    key = TuneKey.of(add_into_kernel, SPACE, (x, y, N))
    Tuner(timer=WallClock(warmup=1, repeats=2)).pick(
        key, SPACE, launcher(add_into_kernel, (x, y), []))
    assert not torch.equal(x, before)


def test_failing_config_is_skipped(data):
    launched: list[Config] = []

    def launch(config: Config) -> None:
        if config["BLOCK"] == 2048:  # as a config past the device's shared memory
            raise RuntimeError("out of resources")
        launcher(add_kernel, data, launched)(config)
    timer = FakeTimer({1024: 3e-3, 2048: 1e-3, 4096: 2e-3}, launched)
    key = TuneKey.of(add_kernel, SPACE, (*data, N))
    picked = Tuner(timer=timer).pick(key, SPACE, launch)
    assert picked["BLOCK"] == 4096
    check_add(picked, data)


def test_all_configs_failing_is_a_clear_error(data):
    def launch(config: Config) -> None:
        raise RuntimeError(f"out of resources at {config}")
    key = TuneKey.of(add_kernel, SPACE, (*data, N))
    with pytest.raises(TuningError, match="every config of kernel add_kernel failed"):
        Tuner(timer=WallClock(warmup=0, repeats=1)).pick(key, SPACE, launch)


def test_key_of_another_space_is_refused(data):
    key = TuneKey.of(add_kernel, SPACE[:2], (*data, N))
    with pytest.raises(ValueError, match="another config space"):
        Tuner().pick(key, SPACE, lambda config: None)


def test_cache_folder_is_owner_only(data, cache_dir):
    tuned(add_kernel, data, {1024: 3e-3, 2048: 1e-3, 4096: 2e-3})
    folder = cache_dir / autotune.CACHE
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(_entry(cache_dir).stat().st_mode) == 0o600


def test_config_text_and_kwargs():
    cfg = Config.of(num_warps=8, num_stages=3, BLOCK_M=128, BLOCK_N=64, BLOCK_K=32,
                    GROUP_M=8)
    assert str(cfg) == ("BLOCK_M=128, BLOCK_N=64, BLOCK_K=32, GROUP_M=8, num_warps=8, "
                        "num_stages=3")
    assert cfg.kwargs() == {"BLOCK_M": 128, "BLOCK_N": 64, "BLOCK_K": 32, "GROUP_M": 8,
                            "num_warps": 8, "num_stages": 3}
    with pytest.raises(ValueError):
        Config.of(BLOCK=0)


@pytest.mark.parametrize("numel", [1, 100, 5000, 10**7])
def test_pointwise_space_bounds(numel):
    gpu = CONFIG_SPACES["pointwise"]({"numel": numel, "interpret": False})
    assert 1 <= len(gpu) <= 3
    assert all(c["BLOCK"] <= max(autotune.next_pow2(numel), 1) for c in gpu)
    (interp,) = CONFIG_SPACES["pointwise"]({"numel": numel, "interpret": True})
    assert interp["BLOCK"] == max(c["BLOCK"] for c in gpu) or interp["BLOCK"] > 4096


@pytest.mark.parametrize("rows, length", [(1, 1), (1823, 781), (4, 4096), (10**5, 64)])
def test_reduction_space_bounds(rows, length):
    space = CONFIG_SPACES["reduction"]({"rows": rows, "row_length": length,
                                        "interpret": False})
    rblock = autotune.next_pow2(length)
    assert space and all(c["RBLOCK"] == rblock for c in space)
    assert all(c["XBLOCK"] == 1 or c["XBLOCK"] * rblock <= autotune.REGISTER_ELEMENTS
               for c in space)
    assert all(c["XBLOCK"] <= autotune.next_pow2(rows) for c in space)


@pytest.mark.parametrize("M, N, K, dtype", [(16, 16, 16, "float16"), (1823, 781, 333,
                                            "float32"), (4096, 4096, 4096, "bfloat16")])
def test_matmul_space_bounds(M, N, K, dtype):
    space = CONFIG_SPACES["matmul"]({"M": M, "N": N, "K": K, "dtype": dtype,
                                     "interpret": False})
    size = {"float16": 2, "bfloat16": 2, "float32": 4}[dtype]
    assert space and len(space) == len(set(space))
    for c in space:
        assert c["GROUP_M"] == 8 and min(c["BLOCK_M"], c["BLOCK_N"], c["BLOCK_K"]) >= 16
        assert c["BLOCK_M"] <= max(16, autotune.next_pow2(M))
        assert c["BLOCK_N"] <= max(16, autotune.next_pow2(N))
        assert c["BLOCK_K"] <= max(16, autotune.next_pow2(K))
        staged = c.num_stages * (c["BLOCK_M"] + c["BLOCK_N"]) * c["BLOCK_K"] * size
        assert staged <= autotune.SHARED_BYTES


def test_docstring_examples():
    result = doctest.testmod(autotune)
    assert result.failed == 0 and result.attempted > 20
