"""What generated numpy code calls at run time: the thread pool that runs a fused
kernel block by block, and pools of preallocated buffers.

numpy releases the GIL inside its loops, so blocks of one kernel run in parallel on
threads. Buffers come from pools (a lock-protected free list per kernel or function)
so that two calls running at once never share one, and a call in the steady state
allocates nothing but its outputs. All pools together keep at most a byte budget
(GRAPHC_POOL_BYTES) between calls: past it the least recently used let go.
"""
from __future__ import annotations

import ctypes
import itertools
import os
import sys
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np

from graphc.backends import settings
from graphc.backends.numpy import blas

_threads = settings.get("GRAPHC_NUM_THREADS") or (os.cpu_count() or 1)
_executor: ThreadPoolExecutor | None = None
_workers = 0  # the executor's size: the calling thread runs one piece itself
_executor_lock = threading.Lock()


def set_num_threads(n: int) -> None:
    """Threads used to run the blocks of one fused kernel (default: the core count,
    or GRAPHC_NUM_THREADS), for every compiled function whose options leave `threads`
    unset (a function compiled with `options={"threads": n}` keeps its own n)."""
    global _threads, _executor, _workers
    with _executor_lock:
        _threads, _workers = max(1, int(n)), 0
        if _executor is not None:
            _executor.shutdown(wait=False)
            _executor = None
    blas.set_threads(_threads)  # one budget: OpenBLAS splits its calls into as many jobs


def get_num_threads() -> int:
    return _threads


def _pool(threads: int) -> ThreadPoolExecutor:
    """The shared executor, with room for `threads - 1` pieces beside the caller's: a
    function compiled for more threads than the others grows it (never shrinks it;
    each call submits only as many pieces as its own count)."""
    global _executor, _workers
    if _executor is None or _workers < threads - 1:
        with _executor_lock:
            if _executor is None or _workers < threads - 1:
                # not shut down: a call may be about to submit to it; dropped, its
                # threads end once the last call using it is done with it
                _workers = max(1, threads - 1, _workers)
                _executor = ThreadPoolExecutor(_workers, thread_name_prefix="graphc")
    return _executor


# -- the byte budget shared by every pool ----------------------------------------------
# Each compiled signature has its own pools, so a function called with many shapes
# used to keep every shape's buffers forever (300 batch sizes of a softmax over 4099
# columns: 2.2 GB). Pools now count what they keep, and when the total passes the
# budget (GRAPHC_POOL_BYTES or set_pool_bytes) the pools used least recently drop
# their free buffers. Recency is a stamp taken on each use (one C-level `next`, no
# lock): the budget is only looked at when some pool grows, never on a warm call.
_clock = itertools.count(1)
_live: weakref.WeakSet = weakref.WeakSet()  # every pool not yet garbage
_budget_lock = threading.Lock()
_budget: int | None = None  # set_pool_bytes; None: the GRAPHC_POOL_BYTES setting


def set_pool_bytes(n: int | None) -> None:
    """Bytes that the buffer pools of all compiled functions may keep between calls
    (None: back to GRAPHC_POOL_BYTES, default 256 MiB). Past it, the pools used least
    recently let go of their free buffers; the pools of the call that is running
    keep theirs, so one call that needs more than the budget still runs.

    >>> set_pool_bytes(1 << 20); get_pool_bytes()
    1048576
    >>> set_pool_bytes(None)
    """
    global _budget
    _budget = None if n is None else max(0, int(n))
    _shrink(None)


def get_pool_bytes() -> int:
    return settings.get("GRAPHC_POOL_BYTES") if _budget is None else _budget


def pool_bytes(objects=None) -> int:
    """Bytes the pools hold now (those among `objects`, else all): free buffers kept
    for the next call and those that running calls use. An introspection hook: RSS
    also counts what numpy's allocator keeps, and is too noisy to test a budget by."""
    pools = list(_live) if objects is None else \
        [o for o in objects if isinstance(o, (BufferPool, Recycler))]
    return sum(p.held for p in pools)


def release(objects) -> int:
    """Let every pool among `objects` drop its free buffers (an evicted signature's
    namespace, say); returns the bytes let go."""
    return sum(o.release() for o in objects if isinstance(o, (BufferPool, Recycler)))


def _shrink(grown) -> None:
    """Drop the free buffers of the least recently used pools other than `grown` (the
    one that just grew: the running call needs it) until the total fits the budget."""
    with _budget_lock:
        budget = get_pool_bytes()
        pools = list(_live)
        total = sum(p.held for p in pools)
        if total <= budget:
            return
        for p in sorted(pools, key=lambda p: p.stamp):
            if p is not grown:
                total -= p.release()
                if total <= budget:
                    return


class BufferPool:
    """A free list of buffer sets, each made by `make()` and `set_bytes` long; `get`
    and `put` are thread-safe, so concurrent users never share a set. `held` counts
    the bytes of every set made and not yet released (free or in use)."""

    def __init__(self, make: Callable[[], list], set_bytes: int = 0):
        self._make = make
        self._set_bytes = set_bytes
        self._free: list[list] = []
        self._lock = threading.Lock()
        self.held = 0
        self.stamp = 0
        _live.add(self)

    def get(self) -> list:
        self.stamp = next(_clock)
        with self._lock:
            if self._free:
                return self._free.pop()
        buffers = self._make()
        if self._set_bytes:
            with self._lock:
                self.held += self._set_bytes
            _shrink(self)
        return buffers

    def put(self, buffers: list) -> None:
        with self._lock:
            self._free.append(buffers)

    def release(self) -> int:
        """Drop the free sets (those in use come back and are kept); the bytes freed."""
        with self._lock:
            freed = len(self._free) * self._set_bytes
            self._free.clear()
            self.held -= freed
        return freed


class Recycler:
    """Output arrays of one compiled function, handed out again once the caller has
    dropped every reference to them.

    A large fresh array costs a page fault per 4 KiB on first touch (glibc maps big
    blocks afresh each time), which can dominate a memory-bound function: Adam on 16M
    parameters returns 192 MB of new arrays per step. In a loop such as
    `p, m, v = step(p, g, m, v)` the arrays of two steps ago are dead by the next
    call; the recycler finds them by their reference count (only its own list holds
    them, and no view keeps them alive) and returns their warm memory. The arrays it
    remembers count against the pools' budget like any pool's buffers.
    """

    MIN_BYTES = 1 << 20  # smaller arrays come back warm from malloc anyway
    KEEP = 8             # arrays remembered per (shape, dtype): a step that returns
    #                      three (Adam) while its last three are its inputs needs six

    def __init__(self):
        self._arrays: dict[tuple, list[np.ndarray]] = {}
        self._lock = threading.Lock()
        self.held = 0
        self.stamp = 0
        _live.add(self)

    def empty(self, shape: tuple[int, ...], dtype) -> np.ndarray:
        key = (shape, dtype)
        self.stamp = next(_clock)
        with self._lock:
            kept = self._arrays.setdefault(key, [])
            for a in kept:
                # referents: the list, this loop's name, getrefcount's own argument
                if sys.getrefcount(a) == 3:
                    return a
            a = np.empty(shape, dtype)
            if len(kept) >= self.KEEP:
                return a
            kept.append(a)
            self.held += a.nbytes
        _shrink(self)
        return a

    def release(self) -> int:
        """Forget every remembered array (the caller may still hold some: they stay
        valid, and are the caller's alone); the bytes let go."""
        with self._lock:
            freed, self.held = self.held, 0
            self._arrays.clear()
        return freed


def scratch_pool(specs: list[tuple[tuple[int, ...], str]]) -> BufferPool:
    """Per-block scratch arrays of the given (shape, dtype)s."""
    nbytes = sum(int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
                 for shape, dtype in specs)
    return BufferPool(lambda: [np.empty(shape, dtype) for shape, dtype in specs], nbytes)


def arena_pool(slot_bytes: list[int]) -> BufferPool:
    """Byte buffers for the intermediates that pass between kernels (see memory plan)."""
    return BufferPool(lambda: [np.empty(n, np.uint8) for n in slot_bytes], sum(slot_bytes))


class SizedArenas:
    """Arenas for a graph whose planned buffers have symbolic sizes: one pool per
    tuple of slot sizes a call needs, the `KEPT` most recently used kept."""

    KEPT = 8

    def __init__(self):
        self._pools: dict[tuple[int, ...], BufferPool] = {}
        self._lock = threading.Lock()

    def get(self, slot_bytes: tuple[int, ...]) -> list:
        with self._lock:
            pool = self._pools.pop(slot_bytes, None) or arena_pool(list(slot_bytes))
            self._pools[slot_bytes] = pool  # most recent last
            while len(self._pools) > self.KEPT:
                self._pools.pop(next(iter(self._pools))).release()
        return pool.get()

    def put(self, slot_bytes: tuple[int, ...], buffers: list) -> None:
        with self._lock:
            pool = self._pools.get(slot_bytes)
        if pool is not None:
            pool.put(buffers)


class SizedScratch:
    """A block kernel's per-thread scratch where its rows have symbolic sizes: one
    pool per tuple of (shape, dtype) specs a call needs, the `KEPT` most recently used
    kept (the call works its block size and the specs out from its own sizes)."""

    KEPT = 8

    def __init__(self):
        self._pools: dict[tuple, BufferPool] = {}
        self._lock = threading.Lock()

    def at(self, specs: tuple) -> BufferPool:
        with self._lock:
            pool = self._pools.pop(specs, None) or scratch_pool(list(specs))
            self._pools[specs] = pool  # most recent last
            while len(self._pools) > self.KEPT:
                self._pools.pop(next(iter(self._pools))).release()
        return pool


def view(buf: np.ndarray, shape: tuple[int, ...], dtype) -> np.ndarray:
    """`buf`'s first bytes as an array of `shape` and `dtype`."""
    n = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    return buf[:n].view(dtype).reshape(shape)


def donatable(a: Any, others: tuple) -> bool:
    """Whether a donated argument's buffer may take an output: an ndarray the kernels
    read in place (writeable, aligned, C-contiguous, the machine's byte order) that
    shares no memory with any other argument (`others`; the same array passed twice
    shares), so that writing it changes nothing the call still reads."""
    if type(a) is not np.ndarray:
        return False
    flags = a.flags
    if not (flags.writeable and flags.aligned and flags.c_contiguous and a.dtype.isnative):
        return False
    return not any(np.may_share_memory(a, o) for o in others if type(o) is np.ndarray)


def run_blocks(kernel: Callable, rows: int, block: int, scratch: BufferPool, *args,
               threads: int | None = None) -> None:
    """Run `kernel(lo, hi, scratch_arrays, *args)` over rows [0, rows) in blocks of
    `block` rows, the blocks split into contiguous runs, one run per thread (`threads`
    of them; None: the count set_num_threads set)."""
    threads = threads or _threads
    starts = list(range(0, rows, block))
    runs = min(threads, len(starts))
    if runs <= 1:
        _run(kernel, starts, rows, block, scratch, args)
        return
    per = -(-len(starts) // runs)
    chunks = [starts[i:i + per] for i in range(0, len(starts), per)]
    pool = _pool(threads)
    futures = [pool.submit(_run, kernel, c, rows, block, scratch, args)
               for c in chunks[1:]]
    try:
        _run(kernel, chunks[0], rows, block, scratch, args)
    finally:
        for f in futures:
            f.result()


def _run(kernel, starts, rows, block, scratch, args) -> None:
    s = scratch.get()
    try:
        for lo in starts:
            kernel(lo, min(lo + block, rows), s, *args)
    finally:
        scratch.put(s)


# A native kernel runs on one thread below this many elements: handing work to a
# thread costs ~10-20 us, the time to stream ~256 KB.
NATIVE_SPLIT_ELEMENTS = 1 << 16


def run_native(kernel: int, rows: int, align: int, elements: int, n_inputs: int,
               *arrays: np.ndarray, threads: int | None = None) -> None:
    """Run the native kernel at address `kernel` over [0, rows) on the arrays' data,
    split into one contiguous run per thread (at most `threads`; None: the count
    set_num_threads set; the call releases the GIL). The kernel
    reads C-contiguous, aligned arrays in the machine's byte order: inputs that are
    not are copied first (the outputs are the backend's own buffers, always so)."""
    call = native_caller()
    if not call(0, 0, kernel, arrays):  # an empty range: only the arrays are checked
        fixed = list(arrays)
        for i in range(n_inputs):
            a = np.asarray(fixed[i])  # a numpy scalar, say
            fixed[i] = np.require(a, a.dtype.newbyteorder("="), ["C", "A"])
        arrays = tuple(fixed)
        if not call(0, 0, kernel, arrays):
            raise AssertionError("an output buffer of a native kernel is not C-contiguous")
    runs = min(threads or _threads, max(1, elements // NATIVE_SPLIT_ELEMENTS))
    run_split(call, rows, align, runs, kernel, arrays)


_caller: Callable | None = None


def native_caller() -> Callable:
    """run(lo, hi, kernel_address, arrays) -> bool: backends/numpy/calls.c where it
    builds, else the same through ctypes (slower: ~2 us an array)."""
    global _caller
    if _caller is None:
        from pathlib import Path
        from graphc.backends import toolchain
        module = toolchain.build_extension("graphc_calls", Path(__file__).parent / "calls.c")
        _caller = module.run if module is not None else _ctypes_run
    return _caller


_KERNEL_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_int64,
                                ctypes.POINTER(ctypes.c_void_p))
_kernels: dict[int, Callable] = {}


def _ctypes_run(lo: int, hi: int, kernel: int, arrays: tuple) -> bool:
    for a in arrays:
        if type(a) is not np.ndarray or not (a.flags.c_contiguous and a.flags.aligned
                                             and a.dtype.isnative):
            return False
    fn = _kernels.get(kernel)
    if fn is None:
        fn = _kernels[kernel] = _KERNEL_TYPE(kernel)
    fn(lo, hi, (ctypes.c_void_p * len(arrays))(*[a.ctypes.data for a in arrays]))
    return True


def run_split(fn: Callable, count: int, align: int, runs: int, *args) -> None:
    """fn(lo, hi, *args) over [0, count) in at most `runs` contiguous pieces, one per
    thread, each piece (but the last) a multiple of `align` long."""
    runs = min(runs, -(-count // align))
    if runs <= 1:
        fn(0, count, *args)
        return
    per = -(-count // runs // align) * align
    bounds = [(lo, min(lo + per, count)) for lo in range(0, count, per)]
    pool = _pool(len(bounds))
    futures = [pool.submit(fn, lo, hi, *args) for lo, hi in bounds[1:]]
    try:
        fn(bounds[0][0], bounds[0][1], *args)
    finally:
        for f in futures:
            f.result()
