"""One thread budget for numpy's BLAS and graphc's kernels: OpenBLAS's parallel jobs
run on a pool of graphc's (blaspool.c) instead of OpenBLAS's own threads.

OpenBLAS's threads spin for about 0.1 s after each parallel call, waiting for the next;
graphc's kernels that follow a matmul then share the cores with them (on two cores, an
im2col copy after a GEMM ran at half speed, and the CNN example's step took 34.5 ms
against 27 ms with the pool). OpenBLAS 0.3.27 and later take a callback that runs
their jobs on the caller's threads; blaspool.c's workers poll for 200 us (long enough
for the LSTM's back-to-back small GEMMs) and then sleep. OpenBLAS still splits each
call into jobs as before, so results do not change, bit for bit.

The pool is installed once, by the first native program graphc loads
(`install()`), for the process: numpy's other BLAS calls use it too. It is not
installed with GRAPHC_BLAS_POOL=0 or GRAPHC_NATIVE=0, without threadpoolctl (which
finds the BLAS numpy loaded), for a BLAS other than OpenBLAS or an OpenBLAS without
the callback, or without a C compiler; numpy's BLAS then runs as it always did.
OpenBLAS's thread count is set to graphc's (`runtime.set_num_threads` keeps them
equal): one budget.
"""
from __future__ import annotations

import ctypes
import itertools
import threading
from pathlib import Path

from graphc.backends import settings, toolchain

SPIN_US = 200  # how long an idle worker polls before sleeping (see the docstring)

_lock = threading.Lock()
_state: dict = {}  # "pool": blaspool's library, "controller": threadpoolctl's; or "off"


def install(threads: int) -> bool:
    """Run OpenBLAS's jobs on graphc's pool of `threads` threads (the caller's
    included), once per process; True if the pool is in place."""
    with _lock:
        if not _state:
            _state.update(_install(threads) or {"off": True})
        return "pool" in _state


def installed() -> bool:
    return "pool" in _state


def set_threads(threads: int) -> None:
    """The budget changed (runtime.set_num_threads): OpenBLAS splits into as many jobs,
    and the pool has the workers for them."""
    with _lock:
        if "pool" in _state and _state["pool"].gc_blas_pool_start(threads, SPIN_US):
            _state["controller"].set_num_threads(threads)


def _install(threads: int) -> dict | None:
    if not (settings.get("GRAPHC_BLAS_POOL") and settings.get("GRAPHC_NATIVE")):
        return None
    controller = _openblas()
    setter = _callback_setter(controller) if controller is not None else None
    if setter is None or toolchain.compiler() is None:
        return None
    try:
        pool = toolchain.build((Path(__file__).parent / "blaspool.c").read_text())
    except toolchain.BuildError:
        return None
    pool.gc_blas_pool_start.argtypes = [ctypes.c_int, ctypes.c_int64]
    pool.gc_blas_pool_start.restype = ctypes.c_int
    if not pool.gc_blas_pool_start(threads, SPIN_US):
        return None  # the system gave fewer threads: OpenBLAS keeps its own
    controller.set_num_threads(threads)
    setter(ctypes.cast(pool.gc_blas_pool_run, ctypes.c_void_p).value)
    return {"pool": pool, "controller": controller}


def _openblas():
    """threadpoolctl's controller of the OpenBLAS numpy loaded, or None."""
    try:  # (numpy, and with it its BLAS, is loaded: graphc imports it)
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    found = ThreadpoolController().select(internal_api="openblas").lib_controllers
    return found[0] if len(found) == 1 else None  # two OpenBLAS: which numpy's is unclear


def _callback_setter(controller):
    """OpenBLAS's openblas_set_threads_callback_function under the names its builds
    give it (scipy-openblas prefixes scipy_ and suffixes 64_), or None before 0.3.27."""
    for prefix, suffix in itertools.product(("", "scipy_"), ("", "64_", "_64")):
        fn = getattr(controller.dynlib, f"{prefix}openblas_set_threads_callback_function"
                                        f"{suffix}", None)
        if fn is not None:
            fn.argtypes, fn.restype = [ctypes.c_void_p], None
            return fn
    return None
