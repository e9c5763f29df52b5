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
import os
import re
import sys
import threading
import time
import warnings
from collections import namedtuple
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from graphc.errors import DtypeError, GraphcError
from graphc.ir import Graph
from frontend.trace import Traced, arg_paths, signature, trace_function

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

    def __post_init__(self):
        traced = self.lowered.traced
        single = traced.out_treedef == ("leaf",) and traced.out_slots == [0]
        self.rebuild = None if single else traced.rebuild


class _Stats:
    """Hits, misses, and whether the retrace warning was given.

    A hit is counted on every call, so without a lock: `next()` on an itertools.count
    is a single C call, which no other thread can interleave with (`+= 1` on an
    attribute can lose counts). The count cannot be read without advancing it, so
    `hits` takes off the steps that earlier reads added.
    """

    def __init__(self):
        self.hit_counter = itertools.count()
        self.misses = 0
        self.warned = False
        self.lock = threading.Lock()  # compiling
        self._read_lock = threading.Lock()
        self._reads = 0

    def hit(self) -> None:
        next(self.hit_counter)

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
            raise exc.with_traceback(None) from None
    return wrapper


class CompiledFunction:
    """What `graphc.compile` returns: call it like the original function."""

    def __init__(self, fn: Callable, backend: str = "numpy", passes=None,
                 check: bool | None = None):
        from backends import get
        from passes.pipeline import resolve
        resolve(passes)  # an unknown pass name is an error here, at the compile call
        self.fn = fn
        self.check = check
        self.backend_name = backend
        self.backend = get(backend)
        self.passes = passes
        self._cache: dict[tuple, _Entry] = {}
        self._fast: dict[tuple, _Entry] = {}  # (shape, dtype, ...) of plain array calls
        self._stats = _Stats()
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
            next(self._stats.hit_counter)  # what _Stats.hit does, less a method call
            outputs = entry.run(*args)
            return outputs[0] if entry.rebuild is None else entry.rebuild(outputs)
        except GraphcError as exc:
            raise exc.with_traceback(None) from None

    # where the C fast path (graphc/fastcall.c) sends a call it cannot serve
    _py_call = __call__

    def _call(self, args: tuple, kwargs: dict, fast_key: tuple | None) -> Any:
        """A call off the fast path: any pytree, kwargs, static values, or a first call."""
        key, leaves = signature(args, kwargs, self.fn)
        entry = self._cache.get(key)
        if entry is None:
            entry = self._compile(args, kwargs, key)
        else:
            self._stats.hit()
        if fast_key is not None:
            self._fast[fast_key] = entry
            register = getattr(self, "_register", None)  # the C fast path, if built
            if register is not None:
                register(args, entry.run, entry.rebuild)
        flat = [leaves[i] for i, k in enumerate(key[1]) if k[0] == "array"]
        outputs = entry.run(*flat)
        return outputs[0] if entry.rebuild is None else entry.rebuild(outputs)

    @_trimmed
    def lower(self, *args, **kwargs) -> Lowered:
        """The traced, optimized and generated forms for these arguments."""
        key, _ = signature(args, kwargs, self.fn)
        entry = self._cache.get(key) or self._compile(args, kwargs, key)
        return entry.lowered

    def _checked(self, lowered: Lowered) -> Callable[..., tuple]:
        """The generated function, comparing each call's outputs with the interpreter's."""
        from graphc.check import compare
        from graphc.interpreter import interpret
        fn = lowered.executable.fn

        def run(*flat):
            outputs = fn(*flat)
            want = interpret(lowered.graph, *flat)
            want = [want] if len(lowered.graph.outputs) == 1 else list(want)
            compare(self.__name__, list(outputs), want)
            return outputs
        return run

    def cache_info(self) -> CacheInfo:
        """Hits, misses (traces) and cached signatures so far."""
        hits = self._stats.hits + getattr(self, "_fast_hits", 0)
        return CacheInfo(hits, self._stats.misses, len(self._cache))

    def cache_clear(self) -> None:
        self._cache.clear()
        self._fast.clear()
        if hasattr(self, "_clear_fast"):
            self._clear_fast()
        self._stats = _Stats()

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
                os.environ.get("GRAPHC_CHECK") == "1"
            # decided once per signature, so that a hit does not ask again
            run = self._checked(lowered) if check else lowered.executable.fn
            entry = _Entry(lowered, paths, key, run)
            _dump(lowered, len(self._cache))
            self._cache[key] = entry
            self._stats.misses += 1
            return entry

    def _explain_retrace(self, paths: list[str], key: tuple) -> None:
        retraces = self._stats.misses  # the traces before this one, less the first, plus this
        want_log = "recompiles" in os.environ.get("GRAPHC_LOG", "").split(",")
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
    if not log.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.propagate = False


def lower_function(fn: Callable, args: tuple, kwargs: dict, backend, passes=None,
                   name: str | None = None) -> Lowered:
    from passes.pipeline import run
    t0 = time.perf_counter()
    traced = trace_function(fn, args, kwargs, name=name)
    t1 = time.perf_counter()
    stages = run(traced.graph, passes)
    t2 = time.perf_counter()
    try:
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


def _dump(lowered: Lowered, index: int) -> None:
    directory = os.environ.get("GRAPHC_DUMP")
    if not directory:
        return
    os.makedirs(directory, exist_ok=True)
    base = os.path.join(directory, f"{re.sub(r'[^A-Za-z0-9_.-]', '_', lowered.graph.name)}"
                                   f".{index}")
    names = list(lowered.stages)
    for i, name in enumerate(names):
        stem = "traced" if name == "traced" else f"{i:02d}-{name}"
        header = f"# {name}" + (f" (took {lowered.pass_seconds[name] * 1e3:.2f} ms)"
                                if name != "traced" else " (as traced)")
        with open(f"{base}.{stem}.ir", "w") as fh:
            fh.write(header + "\n" + str(lowered.stages[name]) + "\n")
    with open(f"{base}.optimized.ir", "w") as fh:
        fh.write(str(lowered.optimized) + "\n")
    times = ", ".join(f"{stage} {secs * 1e3:.2f} ms" for stage, secs in
                      lowered.stage_seconds.items())
    with open(f"{base}.py", "w") as fh:
        fh.write(f"# compile time: {times}\n" + lowered.source)
    native = getattr(lowered.executable, "native_source", "")
    if native:  # also inside the .py; on its own, it compiles as it is
        with open(f"{base}.c", "w") as fh:
            fh.write(native)


def compile(fn: Callable | None = None, *, backend: str = "numpy",
            passes=None, check: bool | None = None) -> Any:
    """Compile a numpy function: traced once per input signature, then cached.

    Use as `@graphc.compile` or `@graphc.compile(backend="numpy")`. `passes` replaces
    the pass pipeline (a list of (name, Graph -> Graph) pairs); `check=True` (or
    GRAPHC_CHECK=1) compares every call against the reference interpreter.

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
        return lambda f: cls(f, backend=backend, passes=passes, check=check)
    return cls(fn, backend=backend, passes=passes, check=check)


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
