"""The system C compiler, for every part of graphc that builds C (the numpy backend's
native kernels and its call extension, the call fast path of compiled functions, the
fuzzer): finding it, building a shared library or an extension module from C, and a
disk cache of what it built.

A library is cached under a hash of its source, the flags (the -march target among
them), the compiler's version and the CPU's feature flags (by default the code is built
with -march=native, so a library built on one machine must not load on another that
shares the cache directory). GRAPHC_MARCH picks another target instruction set
(x86-64-v3 builds the AVX2 code, and calls the AVX2 libmvec functions, that such a
machine runs), so that one machine can test what another computes.
A compiled function's options (backends/options.py) name its target; `build(source,
march)` takes it, and GRAPHC_MARCH is only the default.
The cache is the "native" folder of backends/diskcache.py's root (GRAPHC_CACHE_DIR as
given, else an owner-only ~/.cache/graphc). Building writes to a temporary file and
renames it, so parallel processes never load a half-written one; an entry whose seal
does not match or that does not load is deleted and built again, with one warning.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from types import ModuleType

from graphc.backends import diskcache, settings
from graphc.errors import OptionError

# -fno-math-errno lets sqrt vectorize; -fopenmp-simd enables only the `omp simd`
# pragmas (no OpenMP runtime), which is what allows reductions to be vectorized
# without -ffast-math changing the meaning of every other operation. -fno-trapping-math
# lets the selects of branch-free code (vmath.c) become blends below AVX-512; nothing
# reads the floating-point exception flags. -mprefer-vector-width=512: where the target
# has AVX-512, gcc's tuning for recent Intel cores still picks 256-bit vectors; 512-bit
# ones ran the suite's compute-bound kernels 1.4-2x faster on the Xeon VM (gelu 2.00 ->
# 0.98 ms, softmax 1.73 -> 1.25, chain 3.16 -> 1.80). Without AVX-512 the flag changes
# nothing (the same assembly for x86-64 and x86-64-v3).
FLAGS = ("-O3", "-fopenmp-simd", "-fno-math-errno", "-fno-trapping-math",
         "-mprefer-vector-width=512", "-fPIC", "-shared", "-std=c11")
# GRAPHC_MARCH: the -march values accepted (the x86-64 micro-architecture levels and the
# building machine's own); a closed list, since the value lands on a compiler command line
MARCHES = settings.SETTINGS["GRAPHC_MARCH"].choices  # declared in backends/settings.py
_MVEC_ISAS = (("b", 4), ("c", 8), ("d", 8), ("e", 16))  # SSE, AVX, AVX2, AVX-512

# in every key: entries of an older layout (before seals) are never read, only evicted
_ENTRY_FORMAT = "graphc native cache entry 2: sealed"

_lock = threading.Lock()
_loaded: dict[str, ctypes.CDLL | ModuleType] = {}


class BuildError(RuntimeError):
    """The compiler rejected generated C (a graphc bug; the caller falls back)."""


@functools.lru_cache(maxsize=1)
def compiler() -> str | None:
    """The C compiler native kernels are built with (CC, else gcc, else cc), or None."""
    for name in (os.environ.get("CC"), "gcc", "cc"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


@functools.lru_cache(maxsize=1)
def _libmvec() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("mvec")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


@functools.lru_cache(maxsize=8)
def vector_math(functions: frozenset[tuple[str, int]]) -> frozenset[str]:
    """Of `functions` ((C math function, arity), double spelling: what a backend's
    kernels call), the float and double forms glibc's libmvec has in every vector
    width (expf, tanhf, ...): declared `simd` in generated C, a loop calling them runs
    8 or 16 lanes at a time. Empty where there is no libmvec (the loops then call the
    scalar functions).

    >>> vector_math(frozenset({("fabs", 1)}))  # an instruction, not a libmvec call
    frozenset()
    """
    lib = _libmvec()
    if lib is None:
        return frozenset()
    found = set()
    for fn, arity in sorted(functions):
        for c_name, scale in ((fn + "f", 1), (fn, 2)):  # float, double: half the lanes
            args = "v" * arity
            if all(hasattr(lib, f"_ZGV{isa}N{lanes // scale}{args}_{c_name}")
                   for isa, lanes in _MVEC_ISAS):
                found.add(c_name)
    return frozenset(found)


def march(target: str | None = None) -> str:
    """The -march target of a native build: `target` (a compiled function's options
    give it), else GRAPHC_MARCH if it names one of `MARCHES`, else "native" (an unknown
    GRAPHC_MARCH warns once and is not used). A `target` outside `MARCHES` is an
    error: it would land on the compiler's command line.

    >>> march() in MARCHES, march("x86-64-v3")
    (True, 'x86-64-v3')
    """
    if target is None:
        return settings.get("GRAPHC_MARCH")  # a value not in MARCHES warns there, once
    if target not in MARCHES:
        raise OptionError(f"march={target!r} is not a target graphc builds for",
                          hint="one of " + ", ".join(MARCHES))
    return target


def flags(target: str | None = None) -> tuple[str, ...]:
    """The compiler flags of a native build: `FLAGS` and the -march target (see march)."""
    return (*FLAGS, f"-march={march(target)}")


def _libs() -> list[str]:
    return ["-lmvec", "-lm"] if _libmvec() is not None else ["-lm"]


def fingerprint(march: str | None = None) -> str:
    """A digest of what decides a native build for `march` besides its source: the
    compiler and its version, the CPU's features, the flags and libraries."""
    return _fingerprint_of(flags(march))


@functools.lru_cache(maxsize=None)
def _fingerprint_of(build_flags: tuple[str, ...]) -> str:
    cc = compiler() or ""
    try:
        version = subprocess.run([cc, "--version"], capture_output=True, text=True,
                                 timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        version = ""
    cpu = " ".join(sorted(cpu_flags()))
    return hashlib.sha256("\n".join([_ENTRY_FORMAT, cc, version, cpu, *build_flags,
                                     *_libs()]).encode()).hexdigest()


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags as /proc/cpuinfo names them (empty where it cannot)."""
    try:
        with open("/proc/cpuinfo") as fh:
            return frozenset(next((ln.split()[2:] for ln in fh if ln.startswith("flags")), ()))
    except OSError:
        return frozenset()


# what code built for each -march level needs of the CPU that runs it
_MARCH_NEEDS = {"x86-64-v2": ("sse4_2", "popcnt"), "x86-64-v3": ("avx2", "fma", "bmi2"),
                "x86-64-v4": ("avx512f", "avx512bw", "avx512vl", "avx512dq")}


def runnable(march: str) -> bool:
    """Whether this CPU runs code built for `march` (a kernel built for more features
    would die of an illegal instruction)."""
    return cpu_flags().issuperset(_MARCH_NEEDS.get(march, ()))


def cache_dir() -> Path:
    """The folder of the native build cache: "native" in diskcache.root() (GRAPHC_CACHE_DIR
    as given, else an owner-only ~/.cache/graphc or graphc-<uid> in the temporary
    directory, else a private folder for the process), created 0700 if missing."""
    return diskcache.folder("native")


def build(source: str, march: str | None = None) -> ctypes.CDLL:
    """The shared library compiled from C `source` for the -march target `march` (None:
    GRAPHC_MARCH), built once and cached on disk; the key holds the target used."""
    build_flags = flags(march)
    key = _key(source, build_flags)
    with _lock:
        if key not in _loaded:
            _loaded[key] = _cached(source, key, build_flags, lambda p: ctypes.CDLL(str(p)))
        return _loaded[key]


def _key(text: str, build_flags: tuple[str, ...]) -> str:
    return hashlib.sha256((_fingerprint_of(build_flags) + text).encode()).hexdigest()[:32]


def build_extension(name: str, c_file: Path, march: str | None = None) -> ModuleType | None:
    """The Python extension module `name` compiled from `c_file` against this Python's
    and numpy's headers (for `march`, None: GRAPHC_MARCH), built once per Python and
    numpy and cached; None where it cannot be (no compiler, no Python headers): callers
    then take their Python path."""
    import sysconfig
    import numpy
    if compiler() is None:
        return None
    source = c_file.read_text()
    include_dirs = [sysconfig.get_paths()["include"], numpy.get_include()]
    stamp = "\n".join([sys.version, numpy.__version__, *include_dirs])
    build_flags = flags(march)
    key = _key(stamp + source, build_flags)

    def load(path: Path) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    with _lock:
        if key not in _loaded:
            try:
                _loaded[key] = _cached(source, key, (*build_flags, *(f"-I{d}" for d in
                                                                     include_dirs)), load)
            except BuildError:
                return None
        return _loaded[key]


def _cached(source: str, key: str, flags: tuple[str, ...], load):
    """load(path) of the library built from `source` (cache entry `key`), found on disk
    or built. An entry that does not load (built by a compiler or for a CPU this one is
    not, a loader that changed) is deleted and built once more."""
    path, fresh = _built(source, key, flags)
    try:
        return load(path)
    except (OSError, ImportError) as exc:
        if fresh:  # what was just built does not load: no better than none
            raise BuildError(f"loading {path} failed: {exc}") from exc
        diskcache.discard(path, f"did not load ({exc})")
    path, _ = _built(source, key, flags)
    try:
        return load(path)
    except (OSError, ImportError) as exc:
        raise BuildError(f"loading {path} failed: {exc}") from exc


def _built(source: str, key: str, flags: tuple[str, ...]) -> tuple[Path, bool]:
    """The cache entry of `key` and whether it was built just now. One whose seal does
    not match (truncated, overwritten) is deleted and built again."""
    try:
        directory = cache_dir()
        path = directory / f"k{key}.so"
        state = diskcache.intact(path)
        if state:
            diskcache.touch(path)
            return path, False
        if state is False:
            diskcache.discard(path, "is not what graphc wrote (truncated or overwritten)")
        _compile(source, directory, path, flags)
    except (OSError, subprocess.SubprocessError) as exc:  # unwritable cache, timeout
        raise BuildError(f"building in the native cache failed: {exc}") from exc
    diskcache.evict(keep=path)
    return path, True


def _compile(source: str, directory: Path, path: Path, flags: tuple[str, ...]) -> None:
    cc = compiler()
    if cc is None:
        raise BuildError("no C compiler found (set CC)")
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        src = Path(tmp) / "kernels.c"
        src.write_text(source)
        out = Path(tmp) / "kernels.so"
        done = subprocess.run([cc, *flags, str(src), "-o", str(out), *_libs()],
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise BuildError(f"{cc} failed:\n{done.stderr[-4000:]}")
        diskcache.write(path, out.read_bytes(), mode=0o700)  # 0700: the loader maps it
