"""torch's symbolic sizes as graphc's: a SymInt of a captured graph becomes a `Sym`.

A graph captured with dynamic dimensions (fake tensors over a torch ShapeEnv, as Dynamo
makes them, or as `torch_capture` makes them for a dimension that changed) has SymInts
in its shapes (`s45`), `aten.sym_size.int` nodes and Python arithmetic on them. Each
torch symbol becomes the graphc symbol of the same name; an expression torch built
(`2*s45`) is read with graphc's own dimension grammar (symbols.parse_dim: sums of
products, never evaluated as code), and one it cannot read (a floor division, a Max)
is an UnsupportedError, so the caller captures with fixed sizes instead. torch's guards
on the symbols become graphc guards the same way.
"""
from __future__ import annotations

import operator
from typing import Any

import torch

from graphc.errors import GraphcError, UnsupportedError
from graphc.ir import symbols
from graphc.ir.symbols import Guard, Sym

_RELATIONS = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def dim(d: Any) -> int | Sym:
    """A size from a captured graph: an int, or a SymInt as a graphc symbolic size."""
    if not isinstance(d, torch.SymInt):
        return int(d)
    expr = d.node.expr
    if expr.is_number:
        return int(expr)
    return _parse(str(expr))


def shape(dims) -> tuple:
    return tuple(dim(d) for d in dims)


def _parse(text: str) -> int | Sym:
    try:
        return symbols.parse_dim(text)
    except GraphcError:
        raise UnsupportedError(f"torch's symbolic size {text} is not a sum of products of "
                               "sizes", hint="graphc captures this model with fixed sizes "
                                             "instead", loc=False) from None


def hints(gm: torch.fx.GraphModule) -> dict[str, int]:
    """Each plain symbol of the placeholders' shapes, with the size torch traced it at."""
    out: dict[str, int] = {}
    for node in gm.graph.nodes:
        val = node.meta.get("val") if node.op == "placeholder" else None
        sizes = val.shape if isinstance(val, torch.Tensor) else \
            [val] if isinstance(val, torch.SymInt) else []
        for d in sizes:
            if isinstance(d, torch.SymInt) and d.node.expr.is_symbol:
                out[str(d.node.expr)] = int(d.node.hint)
    return out


def guards(shape_env) -> list[Guard]:
    """torch's guards on the symbols, as graphc guards (an UnsupportedError for one
    graphc's relations cannot say)."""
    out = []
    for g in getattr(shape_env, "guards", ()) if shape_env is not None else ():
        expr = g.expr
        op = getattr(expr, "rel_op", None)
        if op not in _RELATIONS:
            raise UnsupportedError(f"torch's guard {expr} on the sizes", loc=False,
                                   hint="graphc captures this model with fixed sizes instead")
        d = _parse(str(expr.lhs - expr.rhs))
        if type(d) is int:
            continue  # about fixed sizes only
        relation = _RELATIONS[op]
        if relation in (">", ">="):  # graphc keeps `expr < 0` and `expr <= 0`
            d, relation = -d, relation.replace(">", "<")
        out.append(Guard(d, relation))
    return out


# the arithmetic a captured graph does on sizes, done on graphc's sizes
SIZE_OPS = {
    operator.add: operator.add, operator.sub: operator.sub, operator.mul: operator.mul,
    operator.floordiv: operator.floordiv, operator.neg: operator.neg,
    operator.mod: operator.mod,
}
