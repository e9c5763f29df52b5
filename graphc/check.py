"""Check mode: compare a compiled call against the reference interpreter.

`graphc.compile(fn, check=True)` or GRAPHC_CHECK=1 runs every call twice, once
through the generated code and once through `graphc.interpret` on the graph as
traced, and raises MismatchError when an output differs beyond its tolerance.

Each output is judged at the precision it is actually computed in, not at its dtype:
a float64 output whose digits come from a float32 sum (numpy 2 promotes a float32
result to float64 when a float64 scalar or an int count enters at the end) gets
float32's tolerance. `output_tolerances(graph)` decides this from the graph
(`passes.precision`), and check mode, `graphc.benchmark` and `graphc.debug.bisect`
all use it.

>>> import graphc, numpy as np
>>> g = graphc.trace(lambda x, n: x.sum(axis=1) / n, np.ones((8, 300), np.float32),
...                  np.ones(8, np.int64))
>>> t = output_tolerances(g)[0]
>>> g.outputs[0].type.dtype, t.precision.dtype, t.rtol
('float64', 'float32', 0.0001)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graphc import dtypes
from graphc.errors import MismatchError
from graphc.ir import Graph
from graphc.ir.sizes import substitute_graph
from graphc.ir.symbols import shape_symbols
import graphc.passes.precision as analysis  # a module: `import passes.precision` alone must work

# (rtol, atol) per precision: the base allowance, for any output computed at that
# precision. It is not a rounding bound (output_tolerances widens it to twice the
# bound of passes.precision where that is larger) but room for the conditioning of the
# expression, which the graph does not show: a relative error in x becomes |x| times
# larger through exp(x), and 1 + tanh(x) near x = -3 loses 2 digits to cancellation.
# In ulps of each dtype (passes.precision.EPS): float32's 1e-4 is 839 ulp, room for a
# few 4-ulp transcendentals each amplified up to ~100-fold; float64's 1e-9 is 4.5e6 ulp,
# looser in ulps but still 100 times below one float32 ulp (1.2e-7), so a float64
# result computed in float32 by mistake fails; float16's 1e-2 is 10 ulp and bfloat16's
# 2e-2 is 2.6 ulp (numpy computes each float16 op in float32 and rounds its result
# once), and a chain of more than a few ops gets the rounding bound instead. These are
# the values graphc had before this analysis: not fitted to one machine's output.
# atol is for results near 0 that are differences of larger numbers.
TOLERANCES = {
    "float16": (1e-2, 1e-3),
    "bfloat16": (2e-2, 1e-2),
    "float32": (1e-4, 1e-5),
    "float64": (1e-9, 1e-12),
}


@dataclass(frozen=True)
class Tolerance:
    """How closely one output must match: `rtol`/`atol` as np.isclose takes them
    (0 and 0: exactly), and the `precision` they come from."""

    rtol: float
    atol: float
    precision: analysis.Precision

    def describe(self, dtype: str) -> str:
        """Why this tolerance, for a message ("" when it is just the dtype's): the
        precision where it is not the output's dtype, the rounding bound, and a
        decision on rounded floats that may flip."""
        p = self.precision
        parts = []
        if p.dtype is not None and p.dtype != dtype and dtype in dtypes.FLOATS:
            parts.append(f"the output is {dtype} but computed in {p.dtype}")
        if p.dtype is not None and 0 < self.rtol <= 2 * p.relative_error:  # it set rtol
            parts.append(f"twice the rounding bound of {p.ulps:.3g} ulp of {p.dtype}")
        if p.decided is not None:
            where = f" at {p.decided.loc.file}:{p.decided.loc.line}" if p.decided.loc else ""
            parts.append(f"it depends on {p.decided.op}{where} of rounded {p.dtype} "
                         "values, which two correct implementations may decide "
                         "differently at a tie")
        return "; ".join(parts)


def tolerance(precision: analysis.Precision, dtype: str) -> Tolerance:
    """The tolerance of an output of `dtype` whose digits are worth `precision`.

    The base allowance of the precision computed in (TOLERANCES), widened where the
    rounding bound is larger: each side may err by `precision.relative_error`, so the
    two may differ by twice that; atol is widened in proportion.
    """
    if dtype not in dtypes.FLOATS:
        return Tolerance(0.0, 0.0, precision)
    computed = precision.dtype or dtype
    rtol, atol = TOLERANCES[computed]
    bound = 2.0 * precision.relative_error
    if bound > rtol:
        rtol, atol = bound, atol * bound / rtol
    return Tolerance(rtol, atol, precision)


# a symbolic graph's tolerances are those of its sizes at this (error bounds grow with
# the terms a sum adds: they hold for every size up to it)
SYMBOLIC_SIZE = 1 << 16


def output_tolerances(graph: Graph) -> list[Tolerance]:
    """The tolerance of each output of `graph`, from the precision it is computed in."""
    names = {d_name for v in graph.inputs for d_name in shape_symbols(v.type.shape)}
    if names:
        graph = substitute_graph(graph, dict.fromkeys(names, SYMBOLIC_SIZE))
    return [tolerance(p, v.type.dtype)
            for p, v in zip(analysis.output_precisions(graph), graph.outputs)]


def compare(name: str, got: list, want: list,
            tolerances: list[Tolerance] | None = None) -> None:
    """Raise MismatchError naming the first output of `name` that differs.

    `tolerances` (from `output_tolerances` of the graph computed) gives each output's;
    without it each output is judged at its dtype's base tolerance.
    """
    for i, (g, w) in enumerate(zip(got, want)):
        g, w = np.asarray(g), np.asarray(w)
        dt = dtypes.canonical(w.dtype)
        if g.shape != w.shape or dtypes.canonical(g.dtype) != dt:
            raise MismatchError(f"{name}: output {i} is {g.dtype}{list(g.shape)}, the "
                                f"reference gives {w.dtype}{list(w.shape)}")
        tol = tolerances[i] if tolerances is not None else tolerance(analysis.EXACT, dt)
        if dt in dtypes.FLOATS:
            close = np.isclose(g, w, rtol=tol.rtol, atol=tol.atol, equal_nan=True)
        else:
            close = g == w
        if not np.all(close):
            bad = int(np.size(close) - np.count_nonzero(close))
            with np.errstate(all="ignore"):
                err = np.abs(g.astype(np.float64) - w.astype(np.float64))
                finite = np.isfinite(err)
                max_abs = float(err[finite].max()) if finite.any() else float("nan")
                rel = err / np.maximum(np.abs(w.astype(np.float64)), 1e-300)
                max_rel = float(rel[finite].max()) if finite.any() else float("nan")
            why = tol.describe(dt) and f"; {tol.describe(dt)}"
            # the first element that differs, shown as it is: an inf against a -inf
            # (or a nan against a number) has no finite error to report above
            first = tuple(int(k) for k in np.argwhere(~np.asarray(close))[0])
            raise MismatchError(
                f"{name}: output {i} ({dt}{list(w.shape)}) differs from the reference "
                f"interpreter in {bad} of {np.size(close)} elements: max abs error "
                f"{max_abs:.3g}, max rel error {max_rel:.3g} (tolerance "
                f"rtol={tol.rtol:.3g}, atol={tol.atol:.3g}{why}); first at index "
                f"{list(first)}: {g[first]!r} against {w[first]!r}", hint=_hint(tol))


def _hint(tol: Tolerance) -> str | None:
    """MismatchError's usual hint, unless rounding may have decided the difference."""
    if tol.precision.decided is None:
        return None
    return (f"if the differing elements are where {tol.precision.decided.op} compares "
            "values equal to within rounding, both results are right; otherwise "
            + MismatchError.default_hint)
