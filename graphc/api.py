"""The public entry points: `compile`, `trace`, and the compiled function with its cache.

A compiled function looks up the call's signature (pytree structure, shapes, dtypes,
static values). A miss traces the function, runs the pass pipeline, and asks the
backend for code; a hit just runs the code. Every retrace can be explained: with
GRAPHC_LOG=recompiles graphc says which argument changed, and after 8 retraces of one
function it warns with the same explanation.
"""
from __future__ import annotations

import functools
import itertools
import logging
import re
import sys
import threading
import time
import warnings
from collections import namedtuple
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from graphc.backends import settings
from graphc.errors import ArgumentError, DtypeError, GraphcError
from graphc.ir import Graph
from graphc.frontend.trace import Traced, arg_paths, signature, trace_function

CacheInfo = namedtuple("CacheInfo", ["hits", "misses", "entries"])
RETRACE_WARNING_AT = 8

log = logging.getLogger("graphc")


class RecompileWarning(UserWarning):
    """A compiled function was traced again many times: see the message for why."""


@dataclass
class Lowered:
    """One signature of a compiled function, at every stage.

    `graph` is the IR as traced, `optimized` the IR after the pass pipeline,
    `stages` maps each pass name to the IR after it, `source` is the generated code.
    """

    traced: Traced
    stages: dict[str, Graph]
    pass_seconds: dict[str, float]
    executable: Any
    stage_seconds: dict[str, float] = field(default_factory=dict)  # trace, passes, codegen

    @property
    def compile_seconds(self) -> float:
        return sum(self.stage_seconds.values())

    @property
    def kernels(self) -> tuple[int, int]:
        """(before, after) fusion: ops that do work as traced, and kernels launched by
        the optimized graph (its fusion groups, or its working ops if unfused).
        Constants and pure re-indexing (reshape, transpose, broadcast_to, slice: views,
        which a backend folds into the indexing of their readers) are not counted."""
        before = _working_ops(self.graph.nodes)
        opt = self.optimized
        if opt.groups is None:
            return before, _working_ops(opt.nodes)
        return before, sum(1 for g in opt.groups if _working_ops(g.nodes))

    @property
    def graph(self) -> Graph:
        return self.traced.graph

    @property
    def optimized(self) -> Graph:
        return list(self.stages.values())[-1]

    @property
    def source(self) -> str:
        return self.executable.source

    def fusion_report(self) -> str:
        """The fusion groups (kernels), their ops, and why neighbours were not merged."""
        g = self.optimized
        if g.groups is None:
            return "no fusion groups: the pipeline has no fusion pass"
        before, after = self.kernels
        plural = "" if after == 1 else "s"
        lines = [f"{g.name}: {before} ops as traced -> {after} kernel{plural}"]
        for i, grp in enumerate(g.groups):
            if grp.kind == "source":
                continue
            ops = ", ".join(n.op for n in grp.nodes)
            lines.append(f"group {i}: {grp.kind}, {len(grp.nodes)} ops: {ops}")
            lines += [f"    {note}" for note in grp.notes]
        return "\n".join(lines)

    def __call__(self, *flat_inputs):
        return self.executable.fn(*flat_inputs)


_VIEWS = frozenset({"reshape", "transpose", "broadcast_to", "slice"})


def _working_ops(nodes) -> int:
    from graphc.ops import OPS, Kind
    return sum(1 for n in nodes if OPS[n.op].kind is not Kind.SOURCE and n.op not in _VIEWS)


@dataclass
class _Entry:
    """One cached signature. A hit calls `run(*flat_inputs)`, which returns the output
    tuple (in check mode it also compares against the interpreter), then `rebuild`s the
    user's result from it; `rebuild` is None when that result is just the one output."""

    lowered: Lowered
    paths: list[str]
    keys: tuple
    run: Callable[..., tuple]
    used: int = 0  # the hit clock at its last call here: eviction drops the oldest

    def __post_init__(self):
        traced = self.lowered.traced
        single = traced.out_treedef == ("leaf",) and traced.out_slots == [0]
        self.rebuild = None if single else traced.rebuild


def _release(entry: _Entry) -> None:
    """Let a dropped entry's buffer pools go now: a generated function and its
    namespace form a reference cycle, which only the cyclic collector would free."""
    release = getattr(entry.lowered.executable, "release", None)
    if release is not None:
        release()


class _Stats:
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


def _trimmed(fn):
    """Re-raise GraphcErrors from the call site, without the compiler's own frames."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except GraphcError as exc:
            raise exc.with_traceback(None) from exc.__cause__  # kept: internal errors
    return wrapper


class CompiledFunction:
    """What `graphc.compile` returns: call it like the original function."""

    def __init__(self, fn: Callable, backend: str = "numpy", passes=None,
                 check: bool | None = None, cache_size: int | None = None):
        from graphc.backends import get
        from graphc.passes.pipeline import resolve
        resolve(passes)  # an unknown pass name is an error here, at the compile call
        self.fn = fn
        self.check = check
        if cache_size is not None and (type(cache_size) is not int or cache_size < 0):
            raise ArgumentError(f"cache_size={cache_size!r} is not a number of entries",
                                hint="pass an int >= 0 (0: no limit), or leave it out "
                                     "for GRAPHC_CACHE_ENTRIES (default 64)")
        self.cache_size = cache_size  # None: GRAPHC_CACHE_ENTRIES; 0: no limit
        self.backend_name = backend
        self.backend = get(backend)
        self.passes = passes
        self._cache: dict[tuple, _Entry] = {}
        self._fast: dict[tuple, _Entry] = {}  # (shape, dtype, ...) of plain array calls
        self._stats = _Stats(self._new_clock())
        functools.update_wrapper(self, fn, updated=())  # not __dict__: ours stays ours

    def __call__(self, *args, **kwargs):
        try:
            # the fast path: positional numpy arrays (or numpy scalars) only, looked up
            # by their shapes and dtypes, with no pytree flattening
            if kwargs:
                return self._call(args, kwargs, None)
            if len(args) == 1:  # the commonest call: even a one-round loop costs ~40 ns
                a = args[0]
                if type(a) is not np.ndarray and not isinstance(a, np.generic):
                    return self._call(args, kwargs, None)
                fast_key = (a.shape, a.dtype)
            else:
                fast_key = ()
                for a in args:
                    if type(a) is not np.ndarray and not isinstance(a, np.generic):
                        return self._call(args, kwargs, None)
                    fast_key += (a.shape, a.dtype)
            entry = self._fast.get(fast_key)
            if entry is None:
                return self._call(args, kwargs, fast_key)
            entry.used = next(self._stats.hit_counter)  # _Stats.hit, less a method call
            outputs = entry.run(*args)
            return outputs[0] if entry.rebuild is None else entry.rebuild(outputs)
        except GraphcError as exc:
            raise exc.with_traceback(None) from exc.__cause__  # kept: internal errors

    # where the C fast path (graphc/fastcall.c) sends a call it cannot serve
    _py_call = __call__
    # the hit counter; the C fast path's own (which it advances on its hits) overrides
    _new_clock = staticmethod(itertools.count)

    def _call(self, args: tuple, kwargs: dict, fast_key: tuple | None) -> Any:
        """A call off the fast path: any pytree, kwargs, static values, or a first call."""
        key, leaves = signature(args, kwargs, self.fn)
        entry = self._cache.get(key)
        if entry is None:
            entry = self._compile(args, kwargs, key)
        else:
            entry.used = self._stats.hit()
        flat = [leaves[i] for i, k in enumerate(key[1]) if k[0] == "array"]
        try:
            outputs = entry.run(*flat)
        except GraphcError:
            # the run's own verdict (check mode's MismatchError, a traced index out of
            # range), which the fast paths give on every call too
            self._enter_fast(fast_key, key, entry, args)
            raise
        except Exception as exc:  # generated code failing: a compiler bug (graphc.internal)
            from graphc.internal import run_failure
            err = run_failure(self.fn, entry.lowered, exc)
            if err is None:
                raise
            raise err from exc
        self._enter_fast(fast_key, key, entry, args)
        return outputs[0] if entry.rebuild is None else entry.rebuild(outputs)

    def _enter_fast(self, fast_key: tuple | None, key: tuple, entry: _Entry, args: tuple):
        """Serve this signature from the fast paths from now on. Only a signature whose
        code ran once (or raised a GraphcError of its own) gets there: the fast paths do
        not look at other exceptions, so until then each call comes here and gets the
        full report."""
        if fast_key is not None and self._cache.get(key) is entry:  # not evicted meanwhile
            self._fast[fast_key] = entry
            register = getattr(self, "_register", None)  # the C fast path, if built
            if register is not None:  # its hits advance (and stamp with) our clock
                register(args, entry.run, entry.rebuild, self._stats.hit_counter)

    @_trimmed
    def lower(self, *args, **kwargs) -> Lowered:
        """The traced, optimized and generated forms for these arguments."""
        key, _ = signature(args, kwargs, self.fn)
        entry = self._cache.get(key) or self._compile(args, kwargs, key)
        return entry.lowered

    def _checked(self, lowered: Lowered) -> Callable[..., tuple]:
        """The generated function, comparing each call's outputs with the interpreter's."""
        from graphc.check import compare, output_tolerances
        from graphc.interpreter import interpret
        fn = lowered.executable.fn
        tolerances = output_tolerances(lowered.graph)  # at the precision computed

        def run(*flat):
            outputs = fn(*flat)
            want = interpret(lowered.graph, *flat)
            want = [want] if len(lowered.graph.outputs) == 1 else list(want)
            compare(self.__name__, list(outputs), want, tolerances)
            return outputs
        return run

    def cache_info(self) -> CacheInfo:
        """Hits, misses (traces) and cached signatures so far."""
        # the C fast path counts its hits on our clock too (see graphc/fastcall.c)
        return CacheInfo(self._stats.hits, self._stats.misses, len(self._cache))

    def cache_clear(self) -> None:
        entries = list(self._cache.values())
        self._cache.clear()
        self._fast.clear()
        if hasattr(self, "_clear_fast"):
            self._clear_fast()
        self._stats = _Stats(self._new_clock())
        for entry in entries:
            _release(entry)

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
            _release(entry)

    def _compile(self, args, kwargs, key) -> _Entry:
        with self._stats.lock:
            entry = self._cache.get(key)
            if entry is not None:  # another thread compiled it meanwhile
                self._stats.hit()
                return entry
            paths = arg_paths(self.fn, args, kwargs)
            if self._cache:
                self._explain_retrace(paths, key)
            lowered = lower_function(self.fn, args, kwargs, self.backend, self.passes,
                                     name=getattr(self.fn, "__name__", "fn"))
            check = self.check if self.check is not None else \
                settings.get("GRAPHC_CHECK")
            # decided once per signature, so that a hit does not ask again
            run = self._checked(lowered) if check else lowered.executable.fn
            entry = _Entry(lowered, paths, key, run)
            _dump(self.fn, lowered)
            self._evict()
            entry.used = self._stats.now()
            self._cache[key] = entry
            self._stats.misses += 1
            return entry

    def _explain_retrace(self, paths: list[str], key: tuple) -> None:
        retraces = self._stats.misses  # the traces before this one, less the first, plus this
        want_log = "recompiles" in settings.get("GRAPHC_LOG")
        want_warn = retraces >= RETRACE_WARNING_AT and not self._stats.warned
        if not (want_log or want_warn):
            return
        text = explain_retrace(self.__name__, list(self._cache.values()), paths, key)
        if want_log:
            _log_handler()
            log.warning(text)
        if want_warn:
            self._stats.warned = True
            # the user's call is 5 frames up, through __call__ and _call, or through
            # lower and its _trimmed wrapper
            warnings.warn(f"{self.__name__} has been traced {retraces + 1} times; each "
                          f"trace compiles it again.\n{text}", RecompileWarning, stacklevel=5)


def explain_retrace(name: str, entries: list[_Entry], paths: list[str], key: tuple) -> str:
    """Why `key` missed the cache: the argument that changed, old and new, what to do."""
    treedef, leaf_keys = key
    same_tree = [e for e in entries if e.keys[0] == treedef]
    if not same_tree:
        old = entries[-1]
        return (f"graphc: recompiling {name}: the structure of the arguments changed "
                f"(leaves {old.paths} -> {paths})\n  hint: call it with the same nesting "
                "of tuples/lists/dicts each time")
    best = min(same_tree, key=lambda e: sum(a != b for a, b in zip(e.keys[1], leaf_keys)))
    lines = [f"graphc: recompiling {name} because:"]
    hints = set()
    for path, old, new in zip(paths, best.keys[1], leaf_keys):
        if old == new:
            continue
        if old[0] == new[0] == "array":
            what = "shape" if old[1] != new[1] else "dtype"
            if old[1] != new[1] and old[2] != new[2]:
                what = "shape and dtype"
            lines.append(f"  {path}: {what} changed from {_spec(old)} to {_spec(new)}")
            hints.add("pad or bucket inputs to a few fixed shapes, and keep one dtype "
                      "(cast with .astype before the call)")
        elif old[0] == new[0] == "static":
            lines.append(f"  {path}: static value changed from {old[2]!r} to {new[2]!r}")
            hints.add("Python numbers are static (each new value compiles again); pass "
                      "a changing number as a numpy array, e.g. np.float32(lr), to make "
                      "it a traced input")
        else:
            lines.append(f"  {path}: changed from {_spec(old)} to {_spec(new)}")
            hints.add("pass the same kind of value (array or Python number) each time")
    for h in sorted(hints):
        lines.append(f"  hint: {h}")
    return "\n".join(lines)


def _spec(k: tuple) -> str:
    if k[0] == "array":
        return f"{k[2]}{list(k[1])}"
    return f"{k[1]} {k[2]!r}"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (it may be replaced after setup)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def _log_handler() -> None:
    # GRAPHC_LOG asks for stderr: other handlers on the logger (the user's, a test
    # runner's) do not replace ours
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.propagate = False


def lower_function(fn: Callable, args: tuple, kwargs: dict, backend, passes=None,
                   name: str | None = None) -> Lowered:
    """Trace, optimize and generate code; a library exception in any of these stages is
    a GraphcInternalError naming the stage and the IR file that reproduces it."""
    from graphc.internal import stage
    from graphc.passes.pipeline import resolve, run
    t0 = time.perf_counter()
    with stage("trace", fn):
        traced = trace_function(fn, args, kwargs, name=name)
    t1 = time.perf_counter()
    pipeline = resolve(passes)
    with stage("passes", fn, traced.graph, pipeline):
        stages = run(traced.graph, pipeline)
    t2 = time.perf_counter()
    try:
        with stage("codegen", fn, stages[-1].graph):
            executable = backend.compile_graph(stages[-1].graph)
    except DtypeError as exc:
        raise exc.with_loc(_dtype_origin(traced.graph, exc.message)) from None
    t3 = time.perf_counter()
    return Lowered(traced, {s.name: s.graph for s in stages},
                   {s.name: s.seconds for s in stages}, executable,
                   {"trace": t1 - t0, "passes": t2 - t1, "codegen": t3 - t2})


def _dtype_origin(graph: Graph, message: str):
    """The user's line that made the first value of a dtype named in `message` (a
    backend rejects a dtype without knowing where it came from), or None."""
    named = set(re.findall(r"\w+", message))
    for node in graph.nodes:
        if node.loc is not None and any(v.type.dtype in named for v in node.outputs):
            return node.loc
    return None


def _dump(fn: Callable, lowered: Lowered) -> None:
    """GRAPHC_DUMP's files for one signature (see graphc.dump: names never collide)."""
    from graphc.dump import write_lowered
    write_lowered(fn, lowered)


def compile(fn: Callable | None = None, *, backend: str = "numpy",
            passes=None, check: bool | None = None, cache_size: int | None = None) -> Any:
    """Compile a numpy function: traced once per input signature, then cached.

    Use as `@graphc.compile` or `@graphc.compile(backend="numpy")`. `passes` replaces
    the pass pipeline (a list of (name, Graph -> Graph) pairs); `check=True` (or
    GRAPHC_CHECK=1) compares every call against the reference interpreter.
    `cache_size` caps the signatures kept compiled (default GRAPHC_CACHE_ENTRIES, 64;
    0: no cap): past it the least recently used is dropped, with its buffers.

    >>> import graphc, numpy as np
    >>> @graphc.compile
    ... def gelu(x):
    ...     return 0.5 * x * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x**3)))
    >>> gelu(np.zeros(4, np.float32))
    array([0., 0., 0., 0.], dtype=float32)
    >>> gelu.cache_info()
    CacheInfo(hits=0, misses=1, entries=1)
    """
    cls = _compiled_class()
    if fn is None:
        return lambda f: cls(f, backend=backend, passes=passes, check=check,
                             cache_size=cache_size)
    return cls(fn, backend=backend, passes=passes, check=check, cache_size=cache_size)


@functools.lru_cache(maxsize=1)
def _compiled_class() -> type:
    """CompiledFunction on top of the C fast path where that builds (see fastcall)."""
    from graphc.fastcall import dispatcher
    base = dispatcher()
    if base is None:
        return CompiledFunction
    return type("CompiledFunction", (base, CompiledFunction),
                {"__doc__": CompiledFunction.__doc__, "__module__": __name__})


@_trimmed
def trace(fn: Callable, *args: Any, **kwargs: Any) -> Graph:
    """Trace `fn` on example arguments and return the graph (no passes).

    >>> import graphc, numpy as np
    >>> g = graphc.trace(lambda x: np.sum(x * x), np.ones(3))
    >>> [n.op for n in g.nodes]
    ['mul', 'sum']
    """
    return trace_function(fn, args, kwargs).graph
