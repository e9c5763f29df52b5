"""Tracing a Python function into a Graph, and the input signature it is cached under.

Arrays (numpy arrays and numpy scalars) at the leaves of the arguments become graph
inputs; every other leaf (Python numbers, strings, None, other hashable objects) is
static: baked into the graph and part of the cache key. Whatever else the function
reads while it is traced (a global array, a closed-over number) is baked in as it was
then, by design; a call whose result changes from call to call (np.random, a generator,
the clock) is refused instead (frontend.impure).
"""
from __future__ import annotations

import enum
import inspect
import re
import threading
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from graphc import dtypes
from graphc.errors import ArgumentError
from graphc.ir import Graph, TensorType, sizes, symbols
from graphc.frontend import impure, patching
from graphc.frontend import numpy_api  # noqa: F401  (installs the numpy protocols on Tracer)
from graphc.frontend.pytree import flatten, unflatten
from graphc.frontend.tracer import TraceContext, Tracer


# Leaves of these types are static: baked into the graph and part of the cache key.
STATIC_TYPES = (bool, int, float, complex, str, bytes, type(None), np.dtype, type, enum.Enum,
                slice, type(Ellipsis))


# numpy dtype -> graphc's name for it, filled as dtypes are met (np.dtype.name is slow
# enough to show in the per-call cost of a compiled function)
_DTYPE_NAMES: dict[np.dtype, str] = {}


def leaf_key(leaf: Any, path: str) -> tuple:
    """The part of the cache key a leaf contributes: ('array', shape, dtype) or
    ('static', type, value)."""
    if isinstance(leaf, (np.ndarray, np.generic)):
        name = _DTYPE_NAMES.get(leaf.dtype)
        if name is None:
            if leaf.dtype.kind in "OUSVcMm":
                raise ArgumentError(f"argument {path} is an array of dtype {leaf.dtype}, "
                                    "which graphc cannot compile",
                                    hint="graphc takes bool, int32/int64 and float arrays; "
                                         "convert or leave this argument out")
            name = _DTYPE_NAMES[leaf.dtype] = dtypes.canonical(leaf.dtype)
        return ("array", leaf.shape, name)
    if isinstance(leaf, Tracer):
        return ("array", leaf.shape, leaf.value.type.dtype)
    if inspect.isgenerator(leaf) or (hasattr(leaf, "__next__") and hasattr(leaf, "__iter__")):
        raise ArgumentError(f"argument {path} is a {type(leaf).__name__}: an iterator is "
                            "used up by tracing and cannot be part of a cache key",
                            hint="pass a list or tuple instead (list(gen))")
    if isinstance(leaf, float) and leaf != leaf:
        return ("static", "float", "nan")
    if not isinstance(leaf, STATIC_TYPES) and not callable(leaf):
        raise ArgumentError(f"argument {path or '?'} is a {type(leaf).__name__}, which graphc "
                            "takes neither as an array nor as a static value")
    try:
        hash(leaf)
    except TypeError:
        raise ArgumentError(f"argument {path or '?'} is an unhashable "
                            f"{type(leaf).__name__}, so it cannot be a static value") from None
    return ("static", type(leaf).__name__, leaf)


def signature(args: tuple, kwargs: dict, fn: Callable | None = None) -> tuple[tuple, list]:
    """The cache key of a call (pytree structure plus one key per leaf), and the leaves."""
    leaves, treedef, _ = flatten((args, kwargs), with_paths=False)
    try:
        return (treedef, tuple(leaf_key(x, "") for x in leaves)), leaves
    except ArgumentError:
        # the fast path does not know names: find the argument's path for the message
        for leaf, path in zip(leaves, arg_paths(fn or (lambda *a, **k: None), args, kwargs)):
            leaf_key(leaf, path)
        raise


@dataclass(frozen=True)
class FlatCall:
    """A call's arguments flattened and keyed once: a cache miss hands this to the
    retrace explanation, the cache entry and `trace_function`, so none does it again.

    `key` is the cache key (the treedef of (args, kwargs), one key per leaf), `leaves`
    the arguments' leaves, `paths` their readable paths (`params['w1']`, `xs[0]`).
    """

    leaves: list
    key: tuple
    paths: list[str]


def flat_call(fn: Callable, args: tuple, kwargs: dict, key: tuple | None = None,
              leaves: list | None = None) -> FlatCall:
    """The call flattened and keyed; `key` and `leaves` from `signature` where the
    caller has them. The paths come from the treedef, without walking the arguments.

    >>> flat_call(lambda x, params: x, (1.0, {"w": 2}), {}).paths
    ['x', "params['w']"]
    """
    if key is None:
        key, leaves = signature(args, kwargs, fn)
    return FlatCall(leaves, key, _paths(fn, key[0]))


def arg_paths(fn: Callable, args: tuple, kwargs: dict) -> list[str]:
    """Readable paths (`params['w1']`, `xs[0]`) for the leaves of (args, kwargs)."""
    return _paths(fn, flatten((args, kwargs), with_paths=False)[1])


def _paths(fn: Callable, treedef: tuple) -> list[str]:
    """The leaf paths of the treedef of (args, kwargs): positional arguments named for
    fn's parameters, keyword arguments for their keywords (pytree.flatten's paths)."""
    (_, (args_def, kwargs_def)) = treedef
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    paths: list[str] = []
    for i, sub in enumerate(args_def[1]):
        if i < len(params) and params[i].kind in (params[i].POSITIONAL_ONLY,
                                                  params[i].POSITIONAL_OR_KEYWORD):
            name = params[i].name
        else:
            var = next((p.name for p in params if p.kind == p.VAR_POSITIONAL), "arg")
            name = f"{var}[{i}]"
        _tree_paths(sub, name, paths)
    for k, sub in zip(kwargs_def[1], kwargs_def[2]):
        _tree_paths(sub, k, paths)
    return paths


def _tree_paths(treedef: tuple, path: str, paths: list[str]) -> None:
    kind = treedef[0]
    if kind == "leaf":
        paths.append(path)
    elif kind == "dict":
        for k, sub in zip(treedef[1], treedef[2]):
            _tree_paths(sub, f"{path}[{k!r}]", paths)
    elif kind != "none":  # a tuple or a list
        for i, sub in enumerate(treedef[1]):
            _tree_paths(sub, f"{path}[{i}]", paths)


def _value_name(path: str, taken: set[str]) -> str:
    name = re.sub(r"\[['\"]?([^\]'\"]*)['\"]?\]", r".\1", path)
    name = re.sub(r"[^A-Za-z0-9_.]", "_", name).strip(".") or "arg"
    if name[0].isdigit():
        name = "a" + name
    base, n = name, 1
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


@dataclass
class Traced:
    """A traced function: its graph and how to rebuild the Python result.

    `out_slots[i]` is an int (the index of a graph output) or ('static', value) for a
    result leaf that did not depend on the inputs and is returned as it was.
    """

    graph: Graph
    out_treedef: tuple
    out_slots: list
    in_paths: list[str]
    guards: tuple = ()  # graphc.ir.symbols.Guard: where a symbolic trace holds

    def rebuild(self, outputs: list) -> Any:
        leaves = [outputs[s] if isinstance(s, int) else s[1] for s in self.out_slots]
        return unflatten(self.out_treedef, leaves)


_traces = threading.local()  # per thread: another thread's traces are not this call's


def traces_started() -> int:
    """How many traces this thread has begun (nested ones, as a gradient's, count
    too): `graphc.benchmark` tells a function that traces when called from one that
    does not by this count."""
    return getattr(_traces, "count", 0)


def trace_function(fn: Callable, args: tuple, kwargs: dict | None = None,
                   name: str | None = None, flat: FlatCall | None = None,
                   shapes: dict[int, tuple] | None = None) -> Traced:
    """Trace `fn` on example arguments; `flat`: those arguments already flattened and
    keyed (by `flat_call`, as a cache miss has them). `shapes` gives some array
    leaves (by leaf index) a shape with symbolic sizes (graphc.ir.symbols.Sym): the
    trace then answers comparisons of sizes from the example's shapes and keeps each
    answer as a guard (`Traced.guards`); one that equates a symbol with a size puts
    that size in its place (`Traced.graph` names only the symbols that stay)."""
    if shapes:
        return _symbolic_trace(fn, args, kwargs, name, flat, shapes)
    return _trace(fn, args, kwargs, name, flat, None)


def _trace(fn, args, kwargs, name, flat, shapes) -> Traced:
    _traces.count = traces_started() + 1
    kwargs = kwargs or {}
    flat = flat or flat_call(fn, args, kwargs)
    leaves, (treedef, keys), paths = flat.leaves, flat.key, flat.paths
    name = re.sub(r"\W", "_", (name or getattr(fn, "__name__", "fn")).strip("<>")) or "fn"
    ctx = TraceContext(name)
    # np.asarray(traced) gives the Tracer back; np.random and the clock are refused
    with ctx, patching.installed(), impure.refusing(fn, ctx):
        taken: set[str] = set()
        traced_leaves = []
        for i, (leaf, path, key) in enumerate(zip(leaves, paths, keys)):
            if key[0] == "array":
                shape = (shapes or {}).get(i, key[1])
                traced_leaves.append(
                    ctx.new_input(_value_name(path, taken), TensorType(shape, key[2])))
            else:
                traced_leaves.append(leaf)
        t_args, t_kwargs = unflatten(treedef, traced_leaves)
        result = fn(*t_args, **t_kwargs)
        out_leaves, out_treedef, _ = flatten(result)
        slots: list = []
        for leaf in out_leaves:
            if isinstance(leaf, Tracer):
                ctx.check_owned(leaf)
                ctx.graph.outputs.append(leaf.value)
                slots.append(len(ctx.graph.outputs) - 1)
            elif isinstance(leaf, (np.ndarray, np.generic)):
                ctx.graph.outputs.append(ctx.const(leaf).value)
                slots.append(len(ctx.graph.outputs) - 1)
            else:
                slots.append(("static", leaf))
    return Traced(ctx.graph, out_treedef, slots, paths)


def _symbolic_trace(fn, args, kwargs, name, flat, shapes: dict[int, tuple]) -> Traced:
    flat = flat or flat_call(fn, args, kwargs or {})
    hints: dict[str, int] = {}
    for i, dims in shapes.items():
        for d, n in zip(dims, flat.key[1][i][1]):
            if isinstance(d, symbols.Sym) and d.name is not None:
                hints[d.name] = n
    env = symbols.ShapeEnv(hints)
    with env.tracing():
        traced = _trace(fn, args, kwargs, name, flat, shapes)
    replaced = symbols.replacements(env.guards)
    graph = sizes.substitute_graph(traced.graph, replaced) if replaced else traced.graph
    guards = [symbols.Guard(symbols.substitute(g.expr, replaced), g.relation)
              for g in env.guards if g.relation != "=="]
    graph.guards = tuple(g for g in guards if type(g.expr) is symbols.Sym)
    return Traced(graph, traced.out_treedef, traced.out_slots, traced.in_paths,
                  graph.guards)
