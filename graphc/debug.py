"""Debugging tools: find the compiler stage that changed a function's result.

`bisect(fn, *args)` traces `fn`, runs the reference interpreter on the graph as traced
and after every pass of the pipeline, then runs the generated code, and names the first
stage whose result differs from the traced graph's (with graphc.check's tolerances: each output at
the precision it is computed in, as check mode judges it). It prints the IR before and after that stage.

>>> import graphc, numpy as np
>>> def f(x):
...     return np.tanh(x) * 2.0 + 1.0
>>> r = graphc.debug.bisect(f, np.ones(3, np.float32), quiet=True)
>>> r.stage is None  # every pass and the generated code agree with the traced graph
True
>>> def broken(g):  # a pass that returns a graph computing something else
...     return graphc.trace(lambda x: x * 3.0, np.ones(3, np.float32))
>>> r = graphc.debug.bisect(f, np.ones(3, np.float32), quiet=True,
...                         passes=["simplify", ("broken", broken), "dce"])
>>> r.stage
'broken'
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from graphc.errors import GraphcError, MismatchError
from graphc.ir import Graph

CODEGEN = "codegen"  # the stage name of the backend's generated code


@dataclass
class BisectResult:
    """Where a function's result first changed while compiling it.

    `stage` is the name of the first pass that changed the result ("codegen" for the
    backend's generated code), or None when every stage agrees. `before` is the graph
    that stage received and `after` the graph it produced (for "codegen", the graph it
    compiled; `source` then holds the generated code). `details` says how the results
    differ (MismatchError's statistics, or the exception the stage raised).
    """

    stage: str | None
    before: Graph | None
    after: Graph | None
    details: str
    stages: list[str]  # every stage checked, in order
    source: str | None = None

    def __bool__(self) -> bool:  # truthy when a stage was found
        return self.stage is not None

    def __str__(self) -> str:
        checked = " -> ".join(self.stages)
        if self.stage is None:
            return f"bisect: all {len(self.stages)} stages agree ({checked})"
        lines = [f"bisect: the result first differs after stage {self.stage!r} "
                 f"(checked {checked})", f"  {self.details}", "",
                 f"--- IR before {self.stage!r} ---", str(self.before)]
        if self.stage == CODEGEN:
            lines += ["", f"--- generated code ({CODEGEN}) ---", self.source or "<none>"]
        else:
            lines += ["", f"--- IR after {self.stage!r} ---",
                      str(self.after) if self.after is not None else "<none: it raised>"]
        return "\n".join(lines)

    __repr__ = __str__


def _as_list(out: Any, n: int) -> list:
    return [out] if n == 1 else list(out)


def _differs(name: str, got: list, want: list, tolerances: list) -> str | None:
    """None when `got` matches `want` within tolerance, else a description."""
    from graphc.check import compare
    if len(got) != len(want):
        return f"{name}: {len(got)} outputs, the traced graph has {len(want)}"
    try:
        compare(name, got, want, tolerances)
    except MismatchError as exc:
        return exc.message
    return None


def bisect(fn: Callable, *args: Any, passes=None, backend: str | None = None,
           quiet: bool = False) -> BisectResult:
    """Find the first compiler stage (pass, or the generated code) that changes the
    result of `fn(*args)`, and print the IR before and after it (unless `quiet`).

    `fn` is a plain function or a `graphc.compile`d one (whose function, pass pipeline,
    backend and options are used; `passes` and `backend` override them). `passes` takes what
    `graphc.compile(passes=...)` takes. See the module docstring for an example.
    """
    from graphc.backends import get
    from graphc.frontend.trace import signature, trace_function
    from graphc.api import CompiledFunction
    from graphc.check import output_tolerances
    from graphc.interpreter import interpret
    from graphc.passes.pipeline import resolve

    options = None  # a plain function: the environment's defaults
    if isinstance(fn, CompiledFunction):
        options = fn.options
        passes = fn.passes if passes is None else passes
        backend = fn.backend_name if backend is None else backend
        fn = fn.fn
    backend_mod = get(backend or "numpy")
    pipeline = resolve(passes, backend_mod.FUSION_POLICY)

    key, leaves = signature(args, {}, fn)
    flat = [leaves[i] for i, k in enumerate(key[1]) if k[0] == "array"]
    traced = trace_function(fn, args, {}, name=getattr(fn, "__name__", "fn"))
    graph = traced.graph
    n_out = len(graph.outputs)
    want = _as_list(interpret(graph, *flat), n_out)
    tolerances = output_tolerances(graph)  # the traced graph's: what every stage computes
    names = ["traced"]

    def found(stage, before, after, details, source=None) -> BisectResult:
        result = BisectResult(stage, before, after, details, names, source)
        if not quiet:
            print(result)
        return result

    for name, pass_fn in pipeline:
        names.append(name)
        before = graph
        try:
            after = pass_fn(before)
            after.verify()
        except Exception as exc:  # noqa: BLE001  (a pass that crashes is the culprit)
            return found(name, before, None, f"{name} raised {type(exc).__name__}: {exc}")
        try:
            got = _as_list(interpret(after, *flat), len(after.outputs))
        except Exception as exc:  # noqa: BLE001
            return found(name, before, after, "the interpreter failed on the graph after "
                         f"{name}: {type(exc).__name__}: {exc}")
        diff = _differs(name, got, want, tolerances)
        if diff is not None:
            return found(name, before, after, diff)
        graph = after

    names.append(CODEGEN)
    source = None
    try:
        executable = backend_mod.compile_graph(graph, options)
        source = executable.source
        got = list(executable.fn(*flat))
    except GraphcError:
        raise
    except Exception as exc:  # noqa: BLE001
        return found(CODEGEN, graph, graph, f"{CODEGEN} raised {type(exc).__name__}: {exc}",
                     source)
    diff = _differs(CODEGEN, got, want, tolerances)
    if diff is not None:
        return found(CODEGEN, graph, graph, diff, source)
    return found(None, None, None, "", source)
