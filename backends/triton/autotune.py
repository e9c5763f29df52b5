"""graphc's own autotuner for Triton kernels: the config spaces per kernel kind, the
timers, the tuner and its disk cache.

Triton's `triton.autotune` cannot serve here: under the interpreter it fails with
"0 active drivers" and its disk cache is off, and the interpreter is where CI runs.

- A `Config` is a kernel's meta-parameters: its `tl.constexpr` block sizes, `num_warps`
  and `num_stages`; `kernel[grid](*args, **config.kwargs())` launches it.
- `CONFIG_SPACES[kind](problem)` is the small space worth timing for a problem (sizes in
  a dict). Under the interpreter (`interpreting()`) each program costs ~2 ms whatever
  its size, so there the space is one config with the largest blocks: nothing is timed.
- `Tuner.pick(key, configs, launch, written)` times each config with a `Timer`
  (`WallClock` under the interpreter, `DoBench` on a GPU), returns the fastest, and
  remembers it in memory and on disk, keyed by `TuneKey` (the kernel's source hash, the
  space, the arguments' shapes, strides and dtypes, the triton and torch versions, the
  device and the interpreter flag).
- The disk cache is "triton_tune" under `diskcache.root()`: one sealed JSON file per
  key. A file is read back only if its seal holds, it names this very key and its
  config is one of the space's; else graphc warns, tunes again and rewrites it. A file
  can therefore make a kernel slower, never wrong: only configs of the space ever run.

torch and triton are imported where they are used, so this module imports without them.

>>> space = CONFIG_SPACES["pointwise"]({"numel": 100})  # interpreter or GPU alike
>>> [str(c) for c in space]  # 128 = next_pow2(100) caps every block size
['BLOCK=128, num_warps=1, num_stages=1']
>>> space[0].kwargs()
{'BLOCK': 128, 'num_warps': 1, 'num_stages': 1}
"""
from __future__ import annotations

import hashlib
import inspect
import json
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

from graphc.backends import diskcache
from graphc.backends.triton.runtime import interpreting
from graphc.errors import GraphcError

CACHE = "triton_tune"  # the folder under diskcache.root(), a row of diskcache.CACHES
_FORMAT = 1  # bumped when the file layout changes: older files then fail validation


def next_pow2(n: int) -> int:
    """The least power of two at least `n` (1 for n <= 1): block sizes are powers of two.

    >>> next_pow2(1000), next_pow2(1024), next_pow2(0)
    (1024, 1024, 1)
    """
    return 1 << max(n - 1, 0).bit_length()


# ---------------------------------------------------------------------------------------
# Configs


@dataclass(frozen=True)
class Config:
    """A kernel's meta-parameters: `blocks` are its `tl.constexpr` sizes as (name, value)
    pairs in signature order, `num_warps` and `num_stages` go to the launch. Two configs
    are equal when their text is: the text is what the disk cache stores.

    >>> cfg = Config.of(BLOCK_M=64, BLOCK_N=128, num_warps=4, num_stages=3)
    >>> str(cfg), cfg["BLOCK_N"]
    ('BLOCK_M=64, BLOCK_N=128, num_warps=4, num_stages=3', 128)
    """

    blocks: tuple[tuple[str, int], ...]
    num_warps: int = 4
    num_stages: int = 1

    def __post_init__(self) -> None:
        for name, value in self.blocks:
            if not name.isidentifier() or type(value) is not int or value < 1:
                raise ValueError(f"a config's block sizes are positive ints by name, "
                                 f"not {name}={value!r}")
        if self.num_warps < 1 or self.num_stages < 1:
            raise ValueError(f"num_warps and num_stages are positive, not "
                             f"{self.num_warps} and {self.num_stages}")

    @classmethod
    def of(cls, num_warps: int = 4, num_stages: int = 1, **blocks: int) -> Config:
        """The config with block sizes `blocks` (keyword order kept)."""
        return cls(tuple(blocks.items()), num_warps, num_stages)

    def __getitem__(self, name: str) -> int:
        for block, value in self.blocks:
            if block == name:
                return value
        raise KeyError(f"{name} is not a block size of {self}")

    @property
    def meta(self) -> dict[str, int]:
        """The block sizes by name, what a grid is computed from (`cfg["BLOCK"]`)."""
        return dict(self.blocks)

    def kwargs(self) -> dict[str, int]:
        """What a launch passes: `kernel[grid](*args, **config.kwargs())` (the
        interpreter drops num_warps and num_stages)."""
        return {**dict(self.blocks), "num_warps": self.num_warps,
                "num_stages": self.num_stages}

    def __str__(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.kwargs().items())


# Elements one program holds in registers, at most, in a persistent reduction on a GPU
# (XBLOCK * RBLOCK): past it the values of a row spill to local memory.
REGISTER_ELEMENTS = 4096
# Elements of the largest block under the interpreter: a program costs ~2 ms whatever its
# size (numpy runs its block in one call), so fewer, larger programs are faster; 2**16
# float32 values (256 KiB a temporary) stay well under Triton's 2**20 elements a tensor.
INTERPRETER_ELEMENTS = 1 << 16
# Shared memory a matmul config may stage (stages * (BLOCK_M + BLOCK_N) * BLOCK_K
# elements): the 163 KiB an A100 block may opt in to; bigger configs fail to launch there.
SHARED_BYTES = 163 * 1024
_ITEMSIZE = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8, "int8": 1,
             "int32": 4, "int64": 8}


def _warps(elements: int) -> int:
    """Warps for a block of `elements`: one warp per 256 elements (eight per thread, so
    loads vectorize), between 1 and 8."""
    return min(max(elements // 256, 1), 8)


def _interpret(problem: dict) -> bool:
    """Whether `problem` is sized for the interpreter: its "interpret" entry where given
    (tests look at the GPU spaces), else `interpreting()`."""
    return bool(problem.get("interpret", interpreting()))


def _unique(configs: list[Config]) -> list[Config]:
    """`configs` without repeats (caps make several alike), first occurrences kept."""
    return list(dict.fromkeys(configs))


def pointwise_space(problem: dict) -> list[Config]:
    """BLOCK in {256, 1024, 4096}, each capped by next_pow2(numel); under the interpreter
    one block as large as the problem allows.

    >>> [c["BLOCK"] for c in pointwise_space({"numel": 2000, "interpret": False})]
    [256, 1024, 2048]
    >>> [c["BLOCK"] for c in pointwise_space({"numel": 10**6, "interpret": True})]
    [65536]
    """
    whole = next_pow2(problem["numel"])
    if _interpret(problem):
        block = min(whole, INTERPRETER_ELEMENTS)
        return [Config.of(num_warps=_warps(block), BLOCK=block)]
    blocks = (min(b, whole) for b in (256, 1024, 4096))
    return _unique([Config.of(num_warps=_warps(b), BLOCK=b) for b in blocks])


def reduction_space(problem: dict) -> list[Config]:
    """A persistent reduction (the whole row in one block): RBLOCK = next_pow2(row_length);
    XBLOCK rows a program, in {1, 2, 4, ..., 32} with XBLOCK * RBLOCK within
    REGISTER_ELEMENTS (XBLOCK = 1 always) and XBLOCK at most next_pow2(rows). Under the
    interpreter, the one largest XBLOCK within INTERPRETER_ELEMENTS.

    >>> problem = {"rows": 4096, "row_length": 781, "interpret": False}
    >>> [str(c) for c in reduction_space(problem)]
    ['XBLOCK=1, RBLOCK=1024, num_warps=4, num_stages=1', \
'XBLOCK=2, RBLOCK=1024, num_warps=8, num_stages=1', \
'XBLOCK=4, RBLOCK=1024, num_warps=8, num_stages=1']
    """
    rblock = next_pow2(problem["row_length"])
    rows = next_pow2(problem["rows"])
    interpret = _interpret(problem)
    budget = INTERPRETER_ELEMENTS if interpret else REGISTER_ELEMENTS
    xblocks = [x for x in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
               if x == 1 or (x <= rows and x * rblock <= budget)]
    if interpret:
        xblocks = xblocks[-1:]
    else:
        xblocks = [x for x in xblocks if x <= 32]
    return [Config.of(num_warps=_warps(x * rblock), XBLOCK=x, RBLOCK=rblock)
            for x in xblocks]


def looped_reduction_space(problem: dict) -> list[Config]:
    """A looped reduction (a loop over RBLOCK chunks of each row): (XBLOCK, RBLOCK) in
    (1, 1024), (1, 4096), (8, 512) and (64, 64) (many rows a program, for reductions
    whose rows are strided), capped by next_pow2 of rows and row_length. Under the
    interpreter, one config: the whole row if it fits in INTERPRETER_ELEMENTS (one trip
    round the loop), else chunks of that many elements, then as many rows as fit.

    >>> problem = {"rows": 4, "row_length": 100000, "interpret": False}
    >>> [str(c) for c in looped_reduction_space(problem)][:2]
    ['XBLOCK=1, RBLOCK=1024, num_warps=4, num_stages=1', \
'XBLOCK=1, RBLOCK=4096, num_warps=8, num_stages=1']
    """
    rows, length = next_pow2(problem["rows"]), next_pow2(problem["row_length"])
    if _interpret(problem):
        rblock = min(length, INTERPRETER_ELEMENTS)
        xblock = min(rows, INTERPRETER_ELEMENTS // rblock)
        return [Config.of(num_warps=_warps(xblock * rblock), XBLOCK=xblock, RBLOCK=rblock)]
    pairs = ((min(x, rows), min(r, length)) for x, r in ((1, 1024), (1, 4096), (8, 512),
                                                         (64, 64)))
    return _unique([Config.of(num_warps=_warps(x * r), XBLOCK=x, RBLOCK=r) for x, r in pairs])


# The tiles of Triton's matmul tutorial (03-matrix-multiplication, 16-bit inputs):
# (BLOCK_M, BLOCK_N, BLOCK_K, num_stages, num_warps).
MATMUL_TILES = ((128, 256, 64, 3, 8), (64, 256, 32, 4, 4), (128, 128, 32, 4, 4),
                (128, 64, 32, 4, 4), (64, 128, 32, 4, 4), (128, 32, 32, 4, 4),
                (64, 32, 32, 5, 2), (32, 64, 32, 5, 2))
GROUP_M = 8  # row blocks a group of programs sweeps before the next column (L2 reuse)


def matmul_space(problem: dict) -> list[Config]:
    """MATMUL_TILES with each block capped by next_pow2 of its dimension (at least 16,
    what `tl.dot` needs), without tiles whose stages overflow SHARED_BYTES for `dtype`.
    Under the interpreter one tile of up to 256 x 256 x 256 (each K step a numpy matmul).

    >>> problem = {"M": 20, "N": 20, "K": 20, "dtype": "float16", "interpret": False}
    >>> [str(c) for c in matmul_space(problem)]
    ['BLOCK_M=32, BLOCK_N=32, BLOCK_K=32, GROUP_M=8, num_warps=8, num_stages=3', \
'BLOCK_M=32, BLOCK_N=32, BLOCK_K=32, GROUP_M=8, num_warps=4, num_stages=4', \
'BLOCK_M=32, BLOCK_N=32, BLOCK_K=32, GROUP_M=8, num_warps=2, num_stages=5']
    """
    dims = [max(16, next_pow2(problem[d])) for d in ("M", "N", "K")]
    if _interpret(problem):
        bm, bn, bk = (min(d, 256) for d in dims)
        return [Config.of(BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, GROUP_M=GROUP_M)]
    itemsize = _ITEMSIZE.get(str(problem.get("dtype", "float16")).removeprefix("torch."), 4)
    configs = []
    for tile in MATMUL_TILES:
        (bm, bn, bk), (stages, warps) = (min(t, d) for t, d in zip(tile, dims)), tile[3:]
        if stages * (bm + bn) * bk * itemsize <= SHARED_BYTES:
            configs.append(Config.of(num_warps=warps, num_stages=stages, BLOCK_M=bm,
                                     BLOCK_N=bn, BLOCK_K=bk, GROUP_M=GROUP_M))
    return _unique(configs) or [Config.of(BLOCK_M=16, BLOCK_N=16, BLOCK_K=16,
                                          GROUP_M=GROUP_M)]


# kernel kind -> the configs worth timing for a problem (a dict of its sizes, and
# "interpret" where it is not `interpreting()`)
CONFIG_SPACES: dict[str, Callable[[dict], list[Config]]] = {
    "pointwise": pointwise_space,              # {"numel"}
    "reduction": reduction_space,              # {"rows", "row_length"}
    "looped_reduction": looped_reduction_space,  # {"rows", "row_length"}
    "matmul": matmul_space,                    # {"M", "N", "K", "dtype"}
}


# ---------------------------------------------------------------------------------------
# Timers


class Timer(Protocol):
    """Measures a launch: `time(fn)` runs `fn` (it may run it many times) and returns
    the seconds one run takes."""

    def time(self, fn: Callable[[], None]) -> float: ...


@dataclass(frozen=True)
class WallClock:
    """time.perf_counter around `repeats` runs after `warmup` (the first run of a kernel
    compiles or rewrites it), the fastest kept: noise only ever adds time. For the
    interpreter, where a launch returns when its work is done.

    >>> WallClock(warmup=0, repeats=2).time(lambda: None) < 0.1
    True
    """

    warmup: int = 1
    repeats: int = 3

    def time(self, fn: Callable[[], None]) -> float:
        for _ in range(self.warmup):
            fn()
        best = float("inf")
        for _ in range(max(self.repeats, 1)):
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
        return best


@dataclass(frozen=True)
class DoBench:
    """triton.testing.do_bench on a GPU (CUDA events, the L2 flushed between runs), its
    median in seconds; `warmup_ms` and `rep_ms` are do_bench's budgets."""

    warmup_ms: int = 25
    rep_ms: int = 100

    def time(self, fn: Callable[[], None]) -> float:
        from triton.testing import do_bench
        return do_bench(fn, warmup=self.warmup_ms, rep=self.rep_ms,
                        return_mode="median") / 1e3


def default_timer() -> Timer:
    """WallClock under the interpreter (do_bench needs a GPU), DoBench on a GPU.

    >>> type(default_timer()).__name__ in ("WallClock", "DoBench")
    True
    """
    return WallClock() if interpreting() else DoBench()


# ---------------------------------------------------------------------------------------
# Keys


@dataclass(frozen=True)
class TuneKey:
    """What a tuning result depends on; `digest()` names its file. `source` is the
    SHA-256 of the kernel's source text, `space` its configs' text, `args` the launch's
    arguments as `describe_arg` writes them.

    >>> key = TuneKey("add", "0" * 64, ("BLOCK=256, num_warps=1, num_stages=1",),
    ...               ("float32[1000]{1}", "int"), ("triton 3", "torch 2"), "cpu", True)
    >>> len(key.digest())
    32
    """

    name: str
    source: str
    space: tuple[str, ...]
    args: tuple[str, ...]
    versions: tuple[str, ...]
    device: str
    interpreted: bool

    @classmethod
    def of(cls, kernel: Any, configs: Sequence[Config], args: Sequence[Any]) -> TuneKey:
        """The key of tuning `kernel` (a Triton kernel, or its source text) over
        `configs` for a launch with arguments `args`, on this machine now."""
        import torch
        import triton
        text = source_of(kernel)
        return cls(name=kernel_name(kernel, text),
                   source=hashlib.sha256(text.encode()).hexdigest(),
                   space=space_text(configs),
                   args=tuple(describe_arg(a) for a in args),
                   versions=(f"triton {triton.__version__}", f"torch {torch.__version__}"),
                   device=device_name(args), interpreted=interpreting())

    def digest(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def as_json(self) -> dict:
        """The key as a JSON round trip gives it back (tuples become lists)."""
        return json.loads(json.dumps(asdict(self)))


def key_for(kernel: Any, configs: Sequence[Config], args: Sequence[Any],
            bucket: bool = False) -> TuneKey:
    """`TuneKey.of`: the key of tuning `kernel` over `configs` for arguments `args`;
    `bucket`: a kernel of symbolic sizes, keyed by its tensors' sizes rounded up to
    powers of two (one tuning serves a size bucket)."""
    return TuneKey.of(kernel, configs, [bucketed(a) for a in args] if bucket else args)


class _Bucketed:
    """A tensor argument as a bucketed key sees it: its dtype and shape rounded up."""

    def __init__(self, t: Any):
        self.dtype = t.dtype
        self.shape = tuple(next_pow2(int(d)) if d else 0 for d in t.shape)
        self.device = t.device

    def stride(self) -> tuple:
        return ()


def bucketed(arg: Any) -> Any:
    return _Bucketed(arg) if hasattr(arg, "shape") and hasattr(arg, "stride") else arg


def space_text(configs: Sequence[Config]) -> tuple[str, ...]:
    """The configs' text, in order: the space's part of a key."""
    return tuple(str(c) for c in configs)


def source_of(kernel: Any) -> str:
    """The source text of `kernel`: itself if text, a @triton.jit function's `src`, an
    interpreted one's function's source."""
    if isinstance(kernel, str):
        return kernel
    src = getattr(kernel, "src", None)
    if isinstance(src, str):
        return src
    return inspect.getsource(getattr(kernel, "fn", kernel))


def kernel_name(kernel: Any, source: str) -> str:
    """The kernel's function name (for the file name and messages)."""
    name = getattr(kernel, "__name__", None)
    if not isinstance(name, str):
        found = re.search(r"def\s+(\w+)", source)
        name = found.group(1) if found else "kernel"
    return re.sub(r"\W", "_", name)[:64]  # it names a file


def describe_arg(arg: Any) -> str:
    """One launch argument as a key sees it: a tensor by dtype, shape and strides; an
    int by what Triton specializes a kernel on (1, a multiple of 16, else nothing), so
    that a seed or a count does not make a new entry per value; other values by type.

    >>> describe_arg(1), describe_arg(4096), describe_arg(7), describe_arg(0.5)
    ('int=1', 'int%16', 'int', 'float')
    """
    if hasattr(arg, "shape") and hasattr(arg, "dtype") and hasattr(arg, "stride"):
        dtype = str(arg.dtype).removeprefix("torch.")
        shape = ",".join(map(str, arg.shape))
        strides = ",".join(map(str, arg.stride()))
        return f"{dtype}[{shape}]{{{strides}}}"
    if isinstance(arg, bool):
        return f"bool={arg}"
    if isinstance(arg, int):
        return "int=1" if arg == 1 else "int%16" if arg % 16 == 0 else "int"
    return type(arg).__name__


def device_name(args: Sequence[Any]) -> str:
    """The name of the GPU the launch's tensors are on, or "cpu" (the interpreter)."""
    for arg in args:
        device = getattr(arg, "device", None)
        if device is not None and getattr(device, "type", "cpu") == "cuda":
            import torch
            return torch.cuda.get_device_name(device)
    return "cpu"


# ---------------------------------------------------------------------------------------
# The tuner


class TuningError(GraphcError, RuntimeError):
    """Every config of a kernel's space failed to launch."""

    default_hint = ("a config that fails on this device is skipped; when all fail, the "
                    "kernel or its space is wrong (report it with the kernel's source)")


@dataclass
class TuneStats:
    """Counts of a tuner: `memory_hits` and `disk_hits` found a result, `misses` timed
    the space, `rejected` cache files were ignored (and rewritten)."""

    memory_hits: int = 0
    disk_hits: int = 0
    misses: int = 0
    rejected: int = 0

    @property
    def hits(self) -> int:
        return self.memory_hits + self.disk_hits


@dataclass
class Tuner:
    """Picks the fastest config of a kernel for a problem, once per key: memory first,
    then the disk cache, else by timing every config with `timer` (None: default_timer()
    when timing starts). Thread-safe: one tuning at a time, so timings do not overlap.

    >>> import os, tempfile
    >>> os.environ["GRAPHC_CACHE_DIR"] = tempfile.mkdtemp()
    >>> tuner = Tuner(timer=WallClock(warmup=0, repeats=1))
    >>> space = [Config.of(BLOCK=b) for b in (256, 1024)]
    >>> key = TuneKey("k", "0" * 64, space_text(space), (), ("t",), "cpu", True)
    >>> str(tuner.pick(key, space, lambda cfg: None)) in space_text(space)
    True
    >>> tuner.clear(); tuner.pick(key, space, lambda cfg: None) in space
    True
    >>> tuner.stats().disk_hits
    1
    >>> del os.environ["GRAPHC_CACHE_DIR"]
    """

    timer: Timer | None = None
    _memory: dict[TuneKey, Config] = field(default_factory=dict, repr=False)
    _stats: TuneStats = field(default_factory=TuneStats, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def pick(self, key: TuneKey, configs: Sequence[Config], launch: Callable[[Config], None],
             written: Sequence[Any] = ()) -> Config:
        """The fastest of `configs` for `key`, where `launch(config)` runs the kernel
        with `config` and `written` are the argument tensors it writes (in place or
        outputs): each is saved before tuning and restored before every trial run and
        after the last, so tuning leaves them as it found them and every run sees the
        caller's values (the copies cost every config alike, so the ranking stands).
        The caller then launches the config returned. A single config is returned as
        it is, untimed and uncached."""
        configs = list(configs)
        if not configs:
            raise ValueError("autotune: an empty config space")
        if key.space != space_text(configs):
            raise ValueError(f"autotune: the key of {key.name} was made for another "
                             "config space than the one given")
        if len(configs) == 1:
            return configs[0]
        with self._lock:
            if key in self._memory:
                self._stats.memory_hits += 1
                return self._memory[key]
            best = self._read(key, configs)
            if best is not None:
                self._stats.disk_hits += 1
            else:
                self._stats.misses += 1
                best, timings = self._tune(key, configs, launch, written)
                self._write(key, best, timings)
            self._memory[key] = best
            return best

    def stats(self) -> TuneStats:
        """A copy of the counts since this tuner was made or cleared."""
        with self._lock:
            return TuneStats(**asdict(self._stats))

    def clear(self) -> None:
        """Forget the results in memory and the counts (the disk cache stays): what a
        fresh process sees."""
        with self._lock:
            self._memory.clear()
            self._stats = TuneStats()

    def _tune(self, key: TuneKey, configs: list[Config], launch: Callable[[Config], None],
              written: Sequence[Any]) -> tuple[Config, dict[str, float | None]]:
        timer = self.timer or default_timer()
        saved = [t.clone() for t in written]

        def restore() -> None:
            for tensor, copy in zip(written, saved):
                tensor.copy_(copy)

        timings: dict[str, float | None] = {}
        failures: list[str] = []
        for config in configs:
            def trial(config: Config = config) -> None:
                restore()
                launch(config)
            try:
                timings[str(config)] = timer.time(trial)
            except Exception as exc:  # out of resources, a compile error: skip the config
                timings[str(config)] = None
                failures.append(f"{config}: {type(exc).__name__}: {exc}")
            finally:
                restore()
        timed = [c for c in configs if timings[str(c)] is not None]
        if not timed:
            raise TuningError(f"autotune: every config of kernel {key.name} failed:\n  "
                              + "\n  ".join(failures), loc=False)
        return min(timed, key=lambda c: timings[str(c)]), timings

    # --- the disk cache -----------------------------------------------------------------

    def _read(self, key: TuneKey, configs: list[Config]) -> Config | None:
        """The config the cache file of `key` names, if the file is sound; a file that
        is not is reported and left to be rewritten."""
        try:
            path = entry_path(key)
        except OSError as exc:  # GRAPHC_CACHE_DIR cannot be made: tune in memory only
            diskcache.warn(f"the autotune cache is off: {exc}")
            return None
        state = diskcache.intact(path)
        if state is None:
            return None
        if state is False:
            return self._reject(path, "is not what graphc wrote (truncated or edited)")
        try:
            record, _ = json.JSONDecoder().raw_decode(path.read_bytes().decode())
        except (OSError, ValueError) as exc:  # the seal follows the JSON object
            return self._reject(path, f"does not read as JSON ({exc})")
        if not isinstance(record, dict) or record.get("format") != _FORMAT \
                or record.get("key") != key.as_json():
            return self._reject(path, "was written for another kernel or layout")
        by_text = {str(c): c for c in configs}
        if record.get("config") not in by_text:
            return self._reject(path, f"names a config not in the kernel's space "
                                      f"({record.get('config')!r})")
        diskcache.touch(path)
        return by_text[record["config"]]  # the space's own config, never the file's

    def _reject(self, path: Path, why: str) -> None:
        self._stats.rejected += 1
        diskcache.warn(f"the autotune cache entry {path} {why}; ignored it, tuning again")
        return None

    def _write(self, key: TuneKey, best: Config, timings: dict[str, float | None]) -> None:
        record = {"format": _FORMAT, "key": asdict(key), "config": str(best),
                  "seconds": timings}
        try:
            path = entry_path(key)
            diskcache.write(path, json.dumps(record, indent=1).encode() + b"\n")
            diskcache.evict(keep=path)
        except OSError as exc:  # a full disk: the result stays in memory
            diskcache.warn(f"could not write the autotune cache: {exc}")


def entry_path(key: TuneKey) -> Path:
    """The cache file of `key` (its folder created owner-only if missing)."""
    return diskcache.folder(CACHE) / f"{key.name}-{key.digest()}.json"


# The process's tuner, which the backend's launches share.
TUNER = Tuner()


def default_tuner() -> Tuner:
    """The process's shared tuner (its timer: default_timer() when it first times)."""
    return TUNER


def pick(key: TuneKey, configs: Sequence[Config], launch: Callable[[Config], None],
         written: Sequence[Any] = ()) -> Config:
    """`TUNER.pick`: the fastest config of the process's shared tuner (see Tuner.pick)."""
    return TUNER.pick(key, configs, launch, written)


def stats() -> TuneStats:
    """The shared tuner's hit and miss counts."""
    return TUNER.stats()


def clear() -> None:
    """Forget the shared tuner's results in memory and its counts (tests)."""
    TUNER.clear()
