"""Precision analysis: at what precision each output of a graph is actually computed.

numpy 2 computes `np.where(valid, x, 0).sum(axis=1) / np.maximum(cnt, 1)` for a
float32 `x` in float32 and casts the sum to float64 only for the division: the output
is float64, its digits are float32's. Judging it against another implementation at
float64's tolerance reports rounding as a bug. This walk forward over the graph
finds, for every value, the lowest float precision of any rounding step on a path
into it, and a first-order bound on the rounding error accumulated there:

    graph masked_stats(%x: f32[512,200], %valid: bool[512,200]) -> (f64[512]) {
      %3: f32[512,200] = where %valid, %x, %2        exact: copies x
      %4: f32[512] = sum %3 {axes=(1,)}               200 float32 terms: f32, 100 ulp
      %7: f64[512] = cast %4 {dtype=float64}          exact widening
      %9: f64[512] = div %7, %8                       0.5 ulp of f64 (2**-30 ulp of f32)
      return %9                                       -> float32, 100 ulp of f32
    }

Inputs and constants are exact data: both implementations read the same bits, so a
float32 input cast to float64 and computed in float64 keeps float64's precision.
A rounding step is any op whose result is not exactly its inputs' value (its
record's `rounding`, see `graphc.ops.Rounding`); an op that only moves or picks
values (reshape, where, max, abs, ...) is exact and passes its inputs' precision on.
Integers and bools are exact unless they were
decided from a rounded float (a comparison, argmax, floor, a cast to int of a
computed float): two correct implementations may then disagree where the float sits
on the boundary; `decided` names that node.

The bound is the standard one for floating point (Higham, "Accuracy and Stability of
Numerical Algorithms", 2nd ed., sections 2.2 and 4.2): a correctly rounded op errs by
at most half an ulp (u = eps/2 relative); a sum of n terms in any order by at most
(n - 1) u times the sum of the terms' magnitudes; relative errors add through
products and quotients and do not grow through sums (relative to the magnitudes
summed). Transcendentals are taken at 4 ulp (numpy's SIMD float32 functions and
glibc's libmvec document up to 4 ulp; `python -m graphc ulp` measures them). The
bound ignores each function's condition number (exp(x) amplifies a relative error in
x by |x|): that is what the per-dtype base allowance of `graphc.check` is for.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from graphc import dtypes
from graphc.ir import Graph, Node, Value
from graphc.ops import OPS, Rounding

# the spacing of floats at 1.0 (one ulp, relative), per float dtype
EPS = {"float16": 2.0**-10, "bfloat16": 2.0**-7, "float32": 2.0**-23, "float64": 2.0**-52}
_ORDER = ("bfloat16", "float16", "float32", "float64")  # least precise first

TRANSCENDENTAL_ULP = 4.0


@dataclass(frozen=True)
class Precision:
    """What a value's digits are worth.

    `dtype` is the lowest float precision of any rounding step on a path into the
    value (None: no rounding at all, the value is exact data or exact integers);
    `ulps` bounds the rounding error accumulated on those paths, relative, in ulps
    of `dtype` (first order; see the module docstring); `decided` is the first node
    that turned a rounded float into an integer, a bool or a step (a comparison,
    argmax, floor), or None.
    """

    dtype: str | None = None
    ulps: float = 0.0
    decided: Node | None = None

    @property
    def relative_error(self) -> float:
        """The bound as a relative error (0 for exact values)."""
        return self.ulps * EPS[self.dtype] if self.dtype else 0.0


EXACT = Precision()


def _lowest(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return a or b
    return a if _ORDER.index(a) <= _ORDER.index(b) else b


# ---- the cost of one node: ulps of rounding its own computation adds ----------------
# The op's record says how it rounds (graphc.ops.Rounding); an accumulation's cost
# depends on how many terms it sums, which `TERMS` counts per op.

def _sum_terms(node: Node) -> int:
    out = max(math.prod(node.outputs[0].type.shape), 1)
    return math.prod(node.inputs[0].type.shape) // out


def _matmul_terms(node: Node) -> int:
    a = node.inputs[0].type.shape
    return max(a[-2:]) if a else 1  # the contracted axis is one of the last two


def _conv_terms(node: Node) -> int:  # every input channel and tap of a weight slice
    w = node.inputs[1].type.shape
    return math.prod(w) // max(w[0], 1) if w else 1


def _grad_input_terms(node: Node) -> int:  # every output channel and tap
    w = node.inputs[1].type.shape
    return math.prod(w) if w else 1


def _grad_weight_terms(node: Node) -> int:  # every batch row and output position
    g = node.inputs[1].type.shape  # (x, g)
    return math.prod(g) // max(g[1], 1) if len(g) > 1 else 1


def _window_terms(node: Node) -> int:
    return math.prod(node.attrs["kernel"]) + 1  # the taps, then the division


def _axis_terms(node: Node) -> int:
    return node.inputs[0].type.shape[node.attrs["axis"]]  # cumsum's axis is checked


def _scatter_terms(node: Node) -> int:  # at most every index names one element
    return math.prod(node.inputs[1].type.shape)


def _cast(node: Node) -> float:
    src, dst = node.inputs[0].type.dtype, node.outputs[0].type.dtype
    widening = src in dtypes.FLOATS and dst in dtypes.FLOATS and \
        _ORDER.index(src) <= _ORDER.index(dst) and (src, dst) != ("float16", "bfloat16")
    exact_int = src == "bool" or (src == "int32" and dst == "float64")
    return 0.0 if widening or exact_int else 0.5


# the number of terms each accumulating primitive (Rounding.ACCUMULATES) sums
TERMS: dict[str, Callable[[Node], int]] = {
    "sum": _sum_terms,
    "matmul": _matmul_terms,
    "cumsum": _axis_terms,
    "conv2d": _conv_terms,
    "conv2d_grad_input": _grad_input_terms,
    "conv2d_grad_weight": _grad_weight_terms,
    "avg_pool2d": _window_terms,
    "avg_pool2d_grad": _window_terms,
    "scatter_add": _scatter_terms,
}
# ops whose cost the record's class does not say: a cast rounds only when it narrows
OWN_COST: dict[str, Callable[[Node], float]] = {"cast": _cast}
_ULPS = {Rounding.EXACT: 0.0, Rounding.STEP: 0.0, Rounding.HALF_ULP: 0.5,
         Rounding.TRANSCENDENTAL: TRANSCENDENTAL_ULP}
# products and quotients add their operands' relative errors; every other op passes on
# the largest of them (sums: relative to the magnitudes summed)
PRODUCTS = frozenset({"mul", "div", "matmul", "conv2d", "conv2d_grad_input",
                      "conv2d_grad_weight", "pow", "reciprocal", "rsqrt"})


def rounding_cost(node: Node) -> float:
    """Ulps of rounding `node`'s own computation adds, in its output dtype."""
    if node.op in OWN_COST:
        return OWN_COST[node.op](node)
    rounding = OPS[node.op].rounding
    if rounding is Rounding.ACCUMULATES:
        # (n - 1) u for the sum, plus the products' rounding
        return 0.5 * max(TERMS[node.op](node), 1)
    return _ULPS[rounding]


def decides(op: str) -> bool:
    """Whether `op`'s result jumps where an input crosses a boundary (a comparison,
    floor, argmax): fed a rounded float, two correct implementations may differ by a
    whole step there."""
    return OPS[op].rounding is Rounding.STEP


def _node_precision(node: Node, ins: list[Precision]) -> Precision:
    dtype = None
    for p in ins:
        dtype = _lowest(dtype, p.dtype)
    # carried error, converted to ulps of the (possibly new) lowest dtype
    errors = [p.relative_error for p in ins]
    carried = sum(errors) if node.op in PRODUCTS else max(errors, default=0.0)
    out_dtype = node.outputs[0].type.dtype
    cost = rounding_cost(node)
    own = cost * EPS[out_dtype] if cost and out_dtype in EPS else 0.0
    if own:
        dtype = _lowest(dtype, out_dtype)
    decided = next((p.decided for p in ins if p.decided is not None), None)
    if decided is None and decides(node.op) and dtype is not None:
        decided = node
    if node.op == "cast" and out_dtype not in dtypes.FLOATS and dtype is not None \
            and decided is None:
        decided = node  # a rounded float truncated to an integer or a bool
    if dtype is None:
        return Precision(None, 0.0, decided)
    return Precision(dtype, (carried + own) / EPS[dtype], decided)


def value_precisions(graph: Graph) -> dict[Value, Precision]:
    """The precision of every value of `graph` (inputs and constants are exact).

    >>> import graphc, numpy as np
    >>> g = graphc.trace(lambda x: np.sum(x, axis=1) / 2, np.ones((4, 100), np.float32))
    >>> p = value_precisions(g)[g.outputs[0]]  # 100 float32 terms, then a division
    >>> p.dtype, p.ulps
    ('float32', 50.5)
    """
    table: dict[Value, Precision] = {v: EXACT for v in graph.inputs}
    for node in graph.nodes:
        p = _node_precision(node, [table.get(v, EXACT) for v in node.inputs])
        for v in node.outputs:
            table[v] = p
    return table


def output_precisions(graph: Graph) -> list[Precision]:
    """The precision of each output of `graph`, in order."""
    table = value_precisions(graph)
    return [table.get(v, EXACT) for v in graph.outputs]
