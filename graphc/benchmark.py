"""`graphc.benchmark`: a compiled function side by side with its own eager self.

The suite of standard workloads against torch and jax lives in `graphc.bench` and
runs as `python -m graphc bench`; this is the same measurement for the user's own
function and arguments.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from graphc.backends import settings
from graphc.frontend.trace import signature, traces_started
from graphc.api import CompiledFunction, Lowered, compile
from graphc.bench.measure import interleaved_medians, mismatch
from graphc.check import output_tolerances
from graphc.errors import MismatchError
from graphc.interpreter import interpret
from graphc.transforms import _Transformed

# what the eager side of the table is (BenchmarkResult.eager)
EAGER_PYTHON = "numpy"  # the undecorated Python function, called as it is
# a function that traces when called (it takes a gradient: graphc.grad, value_and_grad,
# vjp) would time a retrace, or compiled code, as "eager"; its eager side
# is its graph as traced, run op by op through each primitive's numpy reference, as a
# tape-based framework (PyTorch eager, autograd) runs the same step
EAGER_GRAPH = "graph op by op"


@dataclass
class BenchmarkResult:
    """What `graphc.benchmark` measured; `str()` prints it as a small table.

    Times are seconds: medians of interleaved calls after warm-up for `eager_seconds`
    and `compiled_seconds`; `compile_seconds` is one fresh lowering (trace, passes,
    codegen, split in `stage_seconds`). `eager` says what the eager side ran:
    EAGER_PYTHON ("numpy", the undecorated Python function) or EAGER_GRAPH ("graph op
    by op": `graphc.interpret` of the traced graph, for a function that takes a
    gradient or otherwise traces when called, whose Python call would time a retrace).
    """

    name: str
    eager_seconds: float
    compiled_seconds: float
    compile_seconds: float
    kernels_before: int
    kernels_after: int
    repeats: int
    warmup: int
    stage_seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    eager: str = EAGER_PYTHON

    @property
    def speedup(self) -> float:
        """Eager time over compiled time (above 1: the compiled function is faster)."""
        return self.eager_seconds / self.compiled_seconds

    def to_dict(self) -> dict[str, Any]:
        """Plain values only (JSON-ready), the speedup included."""
        return {**asdict(self), "speedup": self.speedup}

    def __str__(self) -> str:
        eager = "eager ms" if self.eager == EAGER_PYTHON else f"eager ({self.eager}) ms"
        head = (eager, "compiled ms", "speedup", "kernels before", "kernels after",
                "compile ms")
        row = (f"{self.eager_seconds * 1e3:.3f}", f"{self.compiled_seconds * 1e3:.3f}",
               f"{self.speedup:.2f}x", str(self.kernels_before), str(self.kernels_after),
               f"{self.compile_seconds * 1e3:.1f}")
        widths = [max(len(h), len(r)) for h, r in zip(head, row)]
        lines = [f"{self.name}: median of {self.repeats} interleaved calls after "
                 f"{self.warmup} warm-up calls",
                 "  ".join(h.rjust(w) for h, w in zip(head, widths)),
                 "  ".join(r.rjust(w) for r, w in zip(row, widths))]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def benchmark(f: CompiledFunction | Callable[..., Any], *args: Any, repeats: int = 10,
              warmup: int = 2, rtol: float | None = None) -> BenchmarkResult:
    """Time a compiled function against its eager self on these arguments.

    `f` is a `graphc.compile`d function (a plain Python function is compiled first).
    Eager is the Python function called as it is, unless that call would trace (a
    function taking `graphc.grad`/`value_and_grad`/`vjp` inside, or a gradient function
    itself): then it is the traced graph run op by op (`graphc.interpret`), never a
    retrace, and `eager` and the table say so.
    The compiled result is checked against eager over the whole result pytree, each
    output at the precision it is computed in (`graphc.check.output_tolerances`: a
    float64 output of a float32 sum is judged as float32), relative to each element
    and to the array's largest magnitude (`rtol` overrides it); a difference raises
    `graphc.MismatchError`. Compile time is measured apart, on a fresh lowering (this
    empties `f`'s cache). Then both are warmed up and called in turn, eager then
    compiled, `repeats` times; the result holds the medians.

    >>> import graphc, numpy as np
    >>> @graphc.compile
    ... def gelu(x):
    ...     return 0.5 * x * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x**3)))
    >>> r = graphc.benchmark(gelu, np.ones(64, np.float32), repeats=3)
    >>> r.kernels_before, r.speedup > 0
    (8, True)
    >>> print(graphc.benchmark(gelu, np.ones(2**20, np.float32)))  # doctest: +SKIP
    gelu: median of 10 interleaved calls after 2 warm-up calls
    eager ms  compiled ms  speedup  kernels before  kernels after  compile ms
      66.504        1.501   44.32x               8              1         3.6
    """
    compiled = f if isinstance(f, CompiledFunction) else compile(f)
    name = getattr(compiled.fn, "__name__", "fn")

    compiled.cache_clear()
    traces = traces_started()
    lowered = compiled.lower(*args)
    # trace + passes + codegen as measured inside; timing lower() from outside would
    # also count one-time imports (networkx) on a process's first compile
    compile_seconds = lowered.compile_seconds
    # a trace that began another (a gradient's) means that a Python call of the
    # function traces or runs compiled code: its eager side is the graph op by op
    by_graph = traces_started() - traces > 1 or _traces_when_called(compiled.fn)
    if not by_graph:
        traces = traces_started()
        want = compiled.fn(*args)
        by_graph = traces_started() != traces  # it traced when called, after all
    eager = _graph_runner(lowered, compiled.fn, args) if by_graph \
        else (lambda: compiled.fn(*args))
    if by_graph:
        want = eager()

    tolerances = output_tolerances(lowered.graph)  # each output at its precision computed
    leaf_tolerances = [tolerances[s] if isinstance(s, int) else None
                       for s in lowered.traced.out_slots]
    why = mismatch(compiled(*args), want, rtol, leaf_tolerances)
    if why is not None:
        raise MismatchError(f"{name}: the compiled result differs from eager: {why}",
                            hint="compile with check=True to compare each call against "
                                 "the reference interpreter; a difference is a bug in "
                                 "graphc, please report it")

    eager_seconds, compiled_seconds = interleaved_medians(
        [eager, lambda: compiled(*args)], repeats, warmup)
    lowered.timings.update({f"eager ({EAGER_GRAPH if by_graph else EAGER_PYTHON})":
                            eager_seconds, "compiled": compiled_seconds})
    from graphc.dump import rewrite_page
    rewrite_page(lowered)  # GRAPHC_DUMP's page, with these timings now
    before, after = lowered.kernels
    notes = []
    if by_graph:
        notes.append(f"{name} takes a gradient (or otherwise traces when called), so "
                     "eager is its traced graph run op by op through numpy "
                     "(graphc.interpret), as a tape-based framework would run it")
    if compiled.check or (compiled.check is None and settings.get("GRAPHC_CHECK")):
        notes.append("check mode is on: compiled times include the reference interpreter")
    return BenchmarkResult(name, eager_seconds, compiled_seconds, compile_seconds, before,
                           after, repeats, warmup, dict(lowered.stage_seconds), notes,
                           EAGER_GRAPH if by_graph else EAGER_PYTHON)


def _traces_when_called(fn: Callable) -> bool:
    """A gradient function passed as it is: its Python call runs compiled code."""
    return isinstance(fn, _Transformed)


def _graph_runner(lowered: Lowered, fn: Callable, args: tuple) -> Callable[[], Any]:
    """The traced graph run op by op on `args`, its result shaped as `fn`'s."""
    key, leaves = signature(args, {}, fn)
    flat = [leaves[i] for i, k in enumerate(key[1]) if k[0] == "array"]
    graph, single = lowered.graph, len(lowered.graph.outputs) == 1

    def run_graph():
        out = interpret(graph, *flat)
        return lowered.traced.rebuild([out] if single else list(out))
    return run_graph
