"""The public entry points: `compile`, `trace`, and the compiled function.

A compiled function looks up the call's signature (pytree structure, shapes, dtypes,
static values) in its signature cache (graphc/cache.py). A miss traces the function,
runs the pass pipeline, and asks the backend for code (`lower_function`); a hit just
runs the code. Every retrace can be explained (graphc/retrace.py); GRAPHC_DUMP writes
each signature's stages (graphc/dump.py).
"""
from __future__ import annotations

import functools
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from graphc.backends import settings
from graphc.backends.options import Options, resolve as resolve_options
from graphc.cache import CacheInfo, Entry, SignatureCache  # noqa: F401  (CacheInfo: public)
from graphc.errors import ArgumentError, DtypeError, GraphcError, UnsupportedError
from graphc.ir import Graph
from graphc.frontend.trace import FlatCall, Traced, flat_call, signature, trace_function
from graphc.retrace import (RETRACE_WARNING_AT, RecompileWarning,  # noqa: F401  (public)
                            explain_retrace, report_retrace)


@dataclass
class Lowered:
    """One signature of a compiled function, at every stage.

    `graph` is the IR as traced, `optimized` the IR after the pass pipeline,
    `stages` maps each pass name to the IR after it, `source` is the generated code,
    `options` the backend options it was generated with (graphc.Options). `cache` says
    what the persistent compile cache did (graphc/compile_cache.py): "hit" (passes
    and codegen skipped: 0 s in `stage_seconds`, whose "cache" is the lookup and load),
    "miss" (compiled and stored), "off" (GRAPHC_CACHE=0) or "bypass: why".
    """

    traced: Traced
    stages: dict[str, Graph]
    pass_seconds: dict[str, float]
    executable: Any
    stage_seconds: dict[str, float] = field(default_factory=dict)  # trace, passes, codegen
    options: Options | None = None
    cache: str = ""
    # why this signature was traced though others were compiled (graphc/retrace.py)
    retraces: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # graphc.benchmark's runs
    dump_stem: str | None = None  # GRAPHC_DUMP's DIR/NAME.N for this signature
    dump_where: str = ""  # and the user's definition it names (file:line)
    kernel_profile: list = field(default_factory=list)  # graphc.profile's KernelTimes

    def report(self, path) -> Any:
        """Write this signature's HTML page to `path` (graphc/report: the source linked
        to its nodes, the IR after each pass with diffs, the graph drawn with its
        kernels, each kernel's code, the timings); returns the path.

        >>> import graphc, numpy as np, tempfile, os
        >>> low = graphc.compile(lambda x: x * 2.0).lower(np.ones(3))
        >>> str(low.report(os.path.join(tempfile.mkdtemp(), "f.html"))).endswith("f.html")
        True
        """
        from graphc.report import write_report
        return write_report(self, path)

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
        return self.stages[list(self.stages)[-1]]  # by name: a hit's stages are lazy

    @property
    def source(self) -> str:
        return self.executable.source

    def fusion_report(self) -> str:
        """The fusion groups (kernels), their ops, their kernel plans
        (passes/schedule.py) and why neighbours were not merged."""
        from graphc.passes.schedule import plan_kernels
        g = self.optimized
        if g.groups is None:
            return "no fusion groups: the pipeline has no fusion pass"
        before, after = self.kernels
        plural = "" if after == 1 else "s"
        lines = [f"{g.name}: {before} ops as traced -> {after} kernel{plural}"]
        for grp, plan in zip(g.groups, plan_kernels(g)):
            if grp.kind == "source":
                continue
            ops = ", ".join(n.op for n in grp.nodes)
            lines.append(f"group {plan.index}: {grp.kind}, {len(grp.nodes)} ops: {ops}")
            if plan.form is not None:
                lines.append(f"    plan: {plan.describe()}")
            lines += [f"    {note}" for note in grp.notes]
            # what the backend made of it (the Triton backend: its kernel, or externs)
            lines += [f"    {note}" for note in
                      getattr(self.executable, "notes", {}).get(plan.index, [])]
        return "\n".join(lines)

    def __call__(self, *flat_inputs):
        return self.executable.fn(*flat_inputs)


_VIEWS = frozenset({"reshape", "transpose", "broadcast_to", "slice"})


def _working_ops(nodes) -> int:
    from graphc.ops import OPS, Kind
    return sum(1 for n in nodes if OPS[n.op].kind is not Kind.SOURCE and n.op not in _VIEWS)


def _trimmed(fn):
    """Re-raise GraphcErrors from the call site, without the compiler's own frames."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except GraphcError as exc:
            raise exc.with_traceback(None) from exc.__cause__  # kept: internal errors
    return wrapper


class CompiledFunction(SignatureCache):
    """What `graphc.compile` returns: call it like the original function."""

    def __init__(self, fn: Callable, backend: str = "numpy", passes=None,
                 check: bool | None = None, cache_size: int | None = None,
                 options: Options | dict | None = None,
                 donate_argnums: tuple[int, ...] = (), dynamic: bool | None = None):
        from graphc.backends import get
        from graphc.passes.pipeline import resolve
        resolve(passes)  # an unknown pass name is an error here, at the compile call
        # resolved once, here: a later cache miss builds with these, whatever the
        # environment says by then
        self.options = resolve_options(options)
        self.fn = fn
        self.check = check
        self.donate_argnums = _argnums(donate_argnums)
        if dynamic not in (None, True, False):
            raise ArgumentError(f"dynamic={dynamic!r}: expected None, True or False")
        self.dynamic = dynamic
        # the symbolic entries: (entry, symbolic shapes by leaf, guards, traced key)
        self._symbolic: list[tuple[Entry, dict[int, tuple], tuple, tuple]] = []
        # (also set once a symbolic trace could not be made; a CUDA graph records one
        # set of sizes, so with cuda_graphs every signature is its own capture)
        self._static_only = dynamic is False or self.options.cuda_graphs
        if cache_size is not None and (type(cache_size) is not int or cache_size < 0):
            raise ArgumentError(f"cache_size={cache_size!r} is not a number of entries",
                                hint="pass an int >= 0 (0: no limit), or leave it out "
                                     "for GRAPHC_CACHE_ENTRIES (default 64)")
        self._init_cache(cache_size)
        self.backend_name = backend
        self.backend = get(backend)
        self.passes = passes
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
            entry.used = next(self._stats.hit_counter)  # Stats.hit, less a method call
            outputs = entry.run(*args)
            return outputs[0] if entry.rebuild is None else entry.rebuild(outputs)
        except GraphcError as exc:
            raise exc.with_traceback(None) from exc.__cause__  # kept: internal errors

    # where the C fast path (graphc/fastcall.c) sends a call it cannot serve
    _py_call = __call__

    def _call(self, args: tuple, kwargs: dict, fast_key: tuple | None) -> Any:
        """A call off the fast path: any pytree, kwargs, static values, or a first call."""
        try:
            key, leaves = signature(args, kwargs, self.fn)
        except ArgumentError:
            torch_fn = self._torch_function(args, kwargs)
            if torch_fn is None:
                raise
            return torch_fn._call(args, kwargs)
        entry = self._cache.get(key)
        symbolic = None
        if entry is None and self._symbolic:
            symbolic = entry = self._symbolic_entry(key)
        if entry is None:
            entry = self._compile(args, kwargs, flat_call(self.fn, args, kwargs, key, leaves))
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
        if symbolic is not None:
            self._enter_fast_symbolic(fast_key, entry, args)
        else:
            self._enter_fast(fast_key, key, entry, args)
        return outputs[0] if entry.rebuild is None else entry.rebuild(outputs)

    def _symbolic_entry(self, key: tuple) -> Entry | None:
        """The symbolic entry that serves this key (its sizes fit and its guards
        hold), or None."""
        from graphc.dynamic import serving
        return serving(self._symbolic, self._cache, key)

    def _enter_fast_symbolic(self, fast_key: tuple | None, entry: Entry, args: tuple):
        """The fast paths serve this exact set of shapes with the symbolic entry from
        now on (its sizes were checked once, here)."""
        if fast_key is not None and any(e is entry for e, *_ in self._symbolic):
            self._fast[fast_key] = entry
            register = getattr(self, "_register", None)
            if register is not None:
                register(args, entry.run, entry.rebuild, self._stats.hit_counter)

    def _torch_function(self, args: tuple, kwargs: dict):
        """The torch compilation of fn (graphc/torch_compile.py), made on the first call
        with torch tensors; None for a call without any (or without torch imported)."""
        torch = sys.modules.get("torch")
        if torch is None:
            return None
        from graphc.frontend.pytree import leaves
        if not any(isinstance(x, torch.Tensor) for x in leaves((args, kwargs))):
            return None
        compiled = self.__dict__.get("_torch")
        if compiled is None:
            from graphc.torch_compile import compile_function
            compiled = self._torch = compile_function(
                self.fn, backend=self.backend_name, passes=self.passes, check=self.check,
                cache_size=self.cache_size, options=self.options, dynamic=self.dynamic)
        return compiled

    @_trimmed
    def lower(self, *args, **kwargs) -> Lowered:
        """The traced, optimized and generated forms for these arguments."""
        key, leaves = signature(args, kwargs, self.fn)
        entry = self._cache.get(key) or (self._symbolic and self._symbolic_entry(key)) or \
            self._compile(args, kwargs, flat_call(self.fn, args, kwargs, key, leaves))
        return entry.lowered

    def _checked(self, lowered: Lowered) -> Callable[..., tuple]:
        return checked(self.__name__, lowered)

    def _compile(self, args: tuple, kwargs: dict, flat: FlatCall) -> Entry:
        """Trace and generate code for a signature that missed the cache (flattened and
        keyed once, by the caller), and cache it."""
        with self._stats.lock:
            entry = self._cache.get(flat.key)
            if entry is not None:  # another thread compiled it meanwhile
                self._stats.hit()
                return entry
            seen = list(self._cache.values())
            options = self.options
            if self.donate_argnums:  # this signature's graph inputs
                options = options.replace(
                    donate=donated_inputs(args, flat.key, self.donate_argnums))
            dynamic: list[str] = []  # which dimensions became dynamic, or why none did
            lowered, shapes = self._lower(args, kwargs, flat, options, dynamic)
            lowered.retraces = dynamic
            if seen:
                text = explain_retrace(self.__name__, seen, flat.paths, flat.key, dynamic)
                lowered.retraces = [text, *dynamic]
                # the user's call is 4 frames up from here, through _call and __call__,
                # or through lower and its _trimmed wrapper
                self._stats.warned = report_retrace(
                    self.__name__, seen, flat.paths, flat.key, self._stats.misses,
                    self._stats.warned, stacklevel=4, text=text)
            check = self.check if self.check is not None else \
                settings.get("GRAPHC_CHECK")
            # decided once per signature, so that a hit does not ask again
            run = self._checked(lowered) if check else lowered.executable.fn
            entry = Entry(lowered, flat.paths, flat.key, run)
            _dump(self.fn, lowered)
            self._insert(flat.key, entry)
            if shapes:
                self._symbolic.append((entry, shapes, lowered.traced.guards, flat.key))
            return entry

    def _lower(self, args: tuple, kwargs: dict, flat: FlatCall, options: Options,
               history: list[str]) -> tuple[Lowered, dict[int, tuple]]:
        """Lowered for this call: symbolic in the dimensions the dynamic policy picks
        (graphc/dynamic.py), else, or where a symbolic trace cannot be made,
        specialized; and the symbolic input shapes by leaf ({}: none)."""
        from graphc.dynamic import policy_shapes
        name = getattr(self.fn, "__name__", "fn")
        shapes, why = ({}, []) if self._static_only else policy_shapes(
            self.dynamic, self._cache.values(), self._symbolic, flat.key, flat.paths)
        if shapes:
            try:
                lowered = lower_function(self.fn, args, kwargs, self.backend, self.passes,
                                         name=name, flat=flat, options=options,
                                         shapes=shapes)
                history.extend(why)
                return lowered, _input_shapes(lowered, flat.key)
            except GraphcError as exc:  # symbolic sizes it cannot take yet: specialized
                self._static_only = True  # traced symbolically once: not again
                at = f" ({exc.loc})" if exc.loc is not None else ""
                history.append(f"the sizes stay specialized: {exc.message}{at}")
        return lower_function(self.fn, args, kwargs, self.backend, self.passes, name=name,
                              flat=flat, options=options), {}


def _input_shapes(lowered: Lowered, key: tuple) -> dict[int, tuple]:
    """The traced graph's input shapes by leaf index, where symbolic (a guard may have
    given a symbol a size, or made two one)."""
    arrays = [i for i, leaf in enumerate(key[1]) if leaf[0] == "array"]
    return {i: v.type.shape for i, v in zip(arrays, lowered.traced.graph.inputs)
            if not v.type.static}


def checked(name: str, lowered: Lowered) -> Callable[..., tuple]:
    """The generated function, comparing each call's outputs with the interpreter's."""
    from graphc.check import compare, output_tolerances
    from graphc.interpreter import interpret
    fn = lowered.executable.fn
    tolerances = output_tolerances(lowered.graph)  # at the precision computed

    donated = set(lowered.options.donate)

    def run(*flat):
        # the compiled call may write a donated input: the reference reads a copy
        before = [np.array(a, copy=True) if i in donated else a for i, a in enumerate(flat)]
        outputs = fn(*flat)
        want = interpret(lowered.graph, *before)
        want = [want] if len(lowered.graph.outputs) == 1 else list(want)
        compare(name, list(outputs), want, tolerances)
        return outputs
    return run


def lower_function(fn: Callable, args: tuple, kwargs: dict, backend, passes=None,
                   name: str | None = None, flat: FlatCall | None = None,
                   options: Options | None = None,
                   shapes: dict[int, tuple] | None = None) -> Lowered:
    """Trace, optimize and generate code; a library exception in any of these stages is
    a GraphcInternalError naming the stage and the IR file that reproduces it. `flat`:
    the arguments already flattened and keyed (a cache miss), else done here;
    `options`: the backend's (None: the environment's defaults)."""
    from graphc.internal import stage
    from graphc.progress import compiling
    t0 = time.perf_counter()
    with compiling(name or getattr(fn, "__name__", "fn")):
        with stage("trace", fn):
            traced = trace_function(fn, args, kwargs, name=name, flat=flat, shapes=shapes)
        lowered = lower_graph(traced, fn, backend, passes, options)
    lowered.stage_seconds = {"trace": time.perf_counter() - t0 - lowered.compile_seconds,
                             **lowered.stage_seconds}
    return lowered


def lower_graph(traced: Traced, fn: Callable | None, backend, passes=None,
                options: Options | None = None) -> Lowered:
    """Optimize and generate code for a graph already captured (`traced`: by the numpy
    tracer, or the torch capture); `fn` is the user's function that errors name."""
    from graphc.progress import compiling
    with compiling(getattr(fn, "__name__", traced.graph.name)):
        return _lower_graph(traced, fn, backend, passes, options)


def _lower_graph(traced: Traced, fn: Callable | None, backend, passes,
                 options: Options | None) -> Lowered:
    options = resolve_options(options)
    from graphc import compile_cache
    from graphc.passes.pipeline import resolve
    symbolic = _symbolic(traced.graph, backend)
    t0 = time.perf_counter()
    pipeline = resolve(passes, backend.FUSION_POLICY)  # fusion follows the backend's rules
    digest, status = (None, "bypass: symbolic sizes") if symbolic else \
        compile_cache.key(traced.graph, backend, options, pipeline)
    hit = compile_cache.load(digest, traced, backend, options, pipeline) if digest else None
    name = traced.graph.name
    if hit is not None:
        stages, pass_seconds, executable = hit
        seconds = time.perf_counter() - t0
        compile_cache.report(name, "hit", digest, seconds)
        return Lowered(traced, stages, pass_seconds, executable,
                       {"passes": 0.0, "codegen": 0.0, "cache": seconds}, options, "hit")
    looked = time.perf_counter() - t0
    lowered = _compile_graph(traced, fn, backend, pipeline, options, digest)
    lowered.cache = status or "miss"
    lowered.stage_seconds["cache"] = looked + lowered.stage_seconds.pop("cache")
    compile_cache.report(name, lowered.cache, digest, lowered.stage_seconds["cache"])
    return lowered


def _symbolic(graph: Graph, backend) -> bool:
    """Whether the graph has symbolic sizes, which the numpy and Triton backends
    generate code for (the compile cache keeps fixed-size entries only)."""
    for v in (*graph.inputs, *(v for n in graph.nodes for v in n.outputs)):
        if not v.type.static:
            if getattr(backend, "__name__", "").endswith((".numpy", ".triton")):
                return True
            raise UnsupportedError(
                f"graph {graph.name}: %{v.name} has the symbolic type {v.type}; this "
                "backend compiles fixed sizes only",
                hint="use the numpy backend, run it with graphc.interpret, or give each "
                     "size a value with graphc.ir.sizes.substitute_graph(graph, "
                     "{name: size}) first",
                loc=(v.node.loc if v.node is not None else None) or False)
    return False


def _compile_graph(traced: Traced, fn: Callable | None, backend, pipeline: list,
                   options: Options, digest: str | None) -> Lowered:
    """Run the passes and the backend; store the result under `digest` (None: not)."""
    from graphc import compile_cache
    from graphc.internal import stage
    from graphc.passes.pipeline import run
    t1 = time.perf_counter()
    with stage("passes", fn, traced.graph, pipeline):
        stages = run(traced.graph, pipeline,
                     verify=True if settings.get("GRAPHC_VERIFY") else "end")
    t2 = time.perf_counter()
    optimized = stages[-1].graph
    try:
        with stage("codegen", fn, optimized):
            executable = backend.compile_graph(optimized, options)
    except DtypeError as exc:
        raise exc.with_loc(_dtype_origin(traced.graph, exc.message)) from None
    t3 = time.perf_counter()
    rendered = getattr(executable, "rendered", None)
    if digest is not None and rendered is not None:
        compile_cache.store(digest, optimized, rendered)
    return Lowered(traced, {s.name: s.graph for s in stages},
                   {s.name: s.seconds for s in stages}, executable,
                   {"passes": t2 - t1, "codegen": t3 - t2,
                    "cache": time.perf_counter() - t3}, options)


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
            passes=None, check: bool | None = None, cache_size: int | None = None,
            options: Options | dict | None = None,
            donate_argnums: int | tuple[int, ...] = (),
            dynamic: bool | None = None) -> Any:
    """Compile a numpy function: traced once per input signature, then cached.

    Use as `@graphc.compile` or `@graphc.compile(backend="numpy")`. A torch
    `nn.Module`, or a function called with torch tensors, is captured through torch and
    trains with graphc's own backward (graphc/torch_compile.py). `passes` replaces
    the pass pipeline (a list of (name, Graph -> Graph) pairs); `check=True` (or
    GRAPHC_CHECK=1) compares every call against the reference interpreter.
    `cache_size` caps the signatures kept compiled (default GRAPHC_CACHE_ENTRIES, 64;
    0: no cap): past it the least recently used is dropped, with its buffers.
    `options` (a `graphc.Options` or a dict of its fields, such as `{"native": False}`)
    sets how the backend builds and runs the code; the fields left out come from their
    GRAPHC_* variables, read once, at this call. `donate_argnums` (as in `jax.jit`)
    names positional arguments whose arrays the caller hands over: an output of the
    same shape and dtype that an elementwise kernel computes after the argument's last
    read is written into it, so a step such as `p, m, v = adam(p, g, m, v)` updates
    its state in place instead of writing fresh arrays (the numpy backend; an argument
    that is not a writeable, aligned, C-contiguous array sharing no memory with another
    argument is left alone, and the output is fresh).
    `dynamic` (as in torch.compile): None, the default, specializes the first call's
    sizes and makes a dimension symbolic once a call changes only sizes, so that one
    trace serves every size of it (graphc/dynamic.py; sizes 0 and 1 stay specialized);
    True makes every dimension of size 2 or more symbolic from the first call; False
    specializes every size. A torch module or function follows the same policy (its
    symbolic capture goes through torch's fake tensors).

    >>> import graphc, numpy as np
    >>> @graphc.compile
    ... def gelu(x):
    ...     return 0.5 * x * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x**3)))
    >>> gelu(np.zeros(4, np.float32))
    array([0., 0., 0., 0.], dtype=float32)
    >>> gelu.cache_info()
    CacheInfo(hits=0, misses=1, entries=1)
    >>> blocked = graphc.compile(gelu.fn, options={"native": False, "block_elements": 4096})
    >>> blocked.options.native
    False
    >>> scale = graphc.compile(lambda p, g: p - 0.5 * g, donate_argnums=0)
    >>> p = np.ones(1 << 16, np.float32)
    >>> scale(p, np.ones(1 << 16, np.float32)) is p  # p's buffer took the result
    True
    """
    options = resolve_options(options)  # a bad option fails here, even as a decorator
    donate = _argnums(donate_argnums)

    def build(f):
        torch = sys.modules.get("torch")  # an nn.Module means torch is imported already
        if torch is not None and isinstance(f, torch.nn.Module):
            if donate:
                raise ArgumentError("donate_argnums is for numpy functions, not an "
                                    "nn.Module", hint="leave donate_argnums out")
            from graphc.torch_compile import compile_module
            return compile_module(f, backend=backend, passes=passes, check=check,
                                  cache_size=cache_size, options=options, dynamic=dynamic)
        return _compiled_class()(f, backend=backend, passes=passes, check=check,
                                 cache_size=cache_size, options=options,
                                 donate_argnums=donate, dynamic=dynamic)
    return build if fn is None else build(fn)


def _argnums(argnums: Any) -> tuple[int, ...]:
    """donate_argnums as a sorted tuple of distinct positions (an int is one)."""
    if type(argnums) is int:
        argnums = (argnums,)
    if not isinstance(argnums, (tuple, list)) or \
            not all(type(i) is int and i >= 0 for i in argnums) or \
            len(set(argnums)) != len(argnums):
        raise ArgumentError(f"donate_argnums={argnums!r} is not a set of argument "
                            "positions", hint="pass an int or a tuple of distinct ints "
                                              ">= 0, such as donate_argnums=(0, 2)")
    return tuple(sorted(argnums))


def donated_inputs(args: tuple, key: tuple, argnums: tuple[int, ...]) -> tuple[int, ...]:
    """The positions among a call's array leaves (the graph's inputs) of the leaves of
    the positional arguments `argnums` (their pytrees' arrays, all of them)."""
    from graphc.frontend.pytree import leaves
    if argnums and argnums[-1] >= len(args):
        raise ArgumentError(f"donate_argnums names argument {argnums[-1]}, but the call "
                            f"passes {len(args)} positional argument(s)",
                            hint="donate positional arguments only, counted from 0")
    owner = [i for i, a in enumerate(args) for _ in leaves(a)]
    wanted = set(argnums)
    arrays = [j for j, k in enumerate(key[1]) if k[0] == "array"]
    return tuple(g for g, j in enumerate(arrays) if j < len(owner) and owner[j] in wanted)


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
