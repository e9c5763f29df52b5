"""The signature cache of a compiled function: its entries, their LRU eviction, and the
fast paths that serve a signature without flattening the arguments.

`SignatureCache` is the base of `graphc.api.CompiledFunction`, which compiles what
misses. Two tables hold the same entries: `_cache` by the full key (pytree structure
plus one key per leaf), `_fast` by the shapes and dtypes of plain positional arrays;
where the C fast path is built (graphc/fastcall.c), its own table serves those calls
first and its hits advance the same clock, so eviction sees every use.

>>> import graphc, numpy as np
>>> f = graphc.compile(lambda x: x + 1.0, cache_size=1)
>>> _ = f(np.ones(2)); _ = f(np.ones(3))  # the second signature evicts the first
>>> f.cache_info()
CacheInfo(hits=0, misses=2, entries=1)
"""
from __future__ import annotations

import itertools
import threading
from collections import namedtuple
from dataclasses import dataclass
from typing import Any, Callable

from graphc.backends import settings

CacheInfo = namedtuple("CacheInfo", ["hits", "misses", "entries"])


@dataclass
class Entry:
    """One cached signature. A hit calls `run(*flat_inputs)`, which returns the output
    tuple (in check mode it also compares against the interpreter), then `rebuild`s the
    user's result from it; `rebuild` is None when that result is just the one output."""

    lowered: Any  # graphc.api.Lowered
    paths: list[str]
    keys: tuple
    run: Callable[..., tuple]
    used: int = 0  # the hit clock at its last call here: eviction drops the oldest

    def __post_init__(self):
        traced = self.lowered.traced
        single = traced.out_treedef == ("leaf",) and traced.out_slots == [0]
        self.rebuild = None if single else traced.rebuild


def release(entry: Entry) -> None:
    """Let a dropped entry's buffer pools go now: a generated function and its
    namespace form a reference cycle, which only the cyclic collector would free."""
    release_pools = getattr(entry, "release", None) or \
        getattr(entry.lowered.executable, "release", None)  # a torch entry: all its halves
    if release_pools is not None:
        release_pools()


class Stats:
    """Hits, misses, and whether the retrace warning was given.

    A hit is counted on every call, so without a lock: `next()` on an itertools.count
    is a single C call, which no other thread can interleave with (`+= 1` on an
    attribute can lose counts). The count cannot be read without advancing it, so
    `hits` takes off the steps that earlier reads added.
    """

    def __init__(self, clock=None):
        # the C fast path's Clock where it is built: its hits advance the same count
        self.hit_counter = itertools.count() if clock is None else clock
        self.misses = 0
        self.warned = False
        self.lock = threading.Lock()  # compiling
        self._read_lock = threading.Lock()
        self._reads = 0

    def hit(self) -> int:
        """Count a hit; its value on the clock (the LRU stamp of the entry hit)."""
        return next(self.hit_counter)

    def now(self) -> int:
        """The clock's value now, as a stamp, without counting a hit."""
        with self._read_lock:
            self._reads += 1
            return next(self.hit_counter)

    @property
    def hits(self) -> int:
        with self._read_lock:
            steps = next(self.hit_counter)
            self._reads += 1
            return steps - (self._reads - 1)


class SignatureCache:
    """The compiled signatures of one function (the base of CompiledFunction).

    The C fast path, where built, is a base class too: its `_register`, `_forget`,
    `_fast_used` and `_clear_fast` keep its table in step with these.
    """

    # the hit counter; the C fast path's own (which it advances on its hits) overrides
    _new_clock = staticmethod(itertools.count)

    def _init_cache(self, cache_size: int | None) -> None:
        self.cache_size = cache_size  # None: GRAPHC_CACHE_ENTRIES; 0: no limit
        self._cache: dict[tuple, Entry] = {}
        self._fast: dict[tuple, Entry] = {}  # (shape, dtype, ...) of plain array calls
        self._stats = Stats(self._new_clock())

    def cache_info(self) -> CacheInfo:
        """Hits, misses (traces) and cached signatures so far."""
        # the C fast path counts its hits on our clock too (see graphc/fastcall.c)
        return CacheInfo(self._stats.hits, self._stats.misses, len(self._cache))

    def cache_clear(self) -> None:
        """Forget every compiled signature, and let their buffers go."""
        entries = list(self._cache.values())
        self._cache.clear()
        self._fast.clear()
        if hasattr(self, "_clear_fast"):
            self._clear_fast()
        self._stats = Stats(self._new_clock())
        for entry in entries:
            release(entry)

    def _insert(self, key: tuple, entry: Entry) -> None:
        """Cache a freshly compiled signature, evicting past the limit first."""
        self._evict()
        entry.used = self._stats.now()
        self._cache[key] = entry
        self._stats.misses += 1

    def _enter_fast(self, fast_key: tuple | None, key: tuple, entry: Entry, args: tuple):
        """Serve this signature from the fast paths from now on. Only a signature whose
        code ran once (or raised a GraphcError of its own) gets there: the fast paths do
        not look at other exceptions, so until then each call comes here and gets the
        full report."""
        if fast_key is not None and self._cache.get(key) is entry:  # not evicted meanwhile
            self._fast[fast_key] = entry
            register = getattr(self, "_register", None)  # the C fast path, if built
            if register is not None:  # its hits advance (and stamp with) our clock
                register(args, entry.run, entry.rebuild, self._stats.hit_counter)

    def _cache_limit(self) -> int:
        return settings.get("GRAPHC_CACHE_ENTRIES") if self.cache_size is None \
            else self.cache_size

    def _evict(self) -> None:
        """Make room for one more signature: drop the least recently used past the
        limit, from every table that calls it (the C fast path's too), and let its
        buffer pools go. Stamps come from one clock that every hit advances."""
        limit = self._cache_limit()
        excess = len(self._cache) + 1 - limit
        if limit <= 0 or excess <= 0:
            return
        used = getattr(self, "_fast_used", None)
        c_used = {id(run): t for run, t in used()} if used is not None else {}
        order = sorted(self._cache.items(),
                       key=lambda item: max(item[1].used, c_used.get(id(item[1].run), 0)))
        forget = getattr(self, "_forget", None)
        for key, entry in order[:excess]:
            del self._cache[key]
            for fast_key, e in list(self._fast.items()):
                if e is entry:
                    del self._fast[fast_key]
            if forget is not None:
                forget(entry.run)
            release(entry)
