"""Reductions: sum, max, min over a set of axes, and argmax over one axis; and the
prefix sum (cumsum) along one axis.

`axes` is a sorted tuple of non-negative axes (the frontend normalizes negative ones
and `axis=None`); `keepdims` keeps reduced axes with size 1. The output dtype is the
input's: the frontend casts first where numpy accumulates in a wider type (an int32
or bool sum is int64).
"""
from __future__ import annotations

import numpy as np

from graphc.errors import DtypeError, ShapeError
from graphc.ir.types import TensorType
from graphc.ops import Kind, OpDef, Rounding, register
from graphc.ops.schema import AXES, AXIS, BOOL


def check_axes(axes, ndim: int, name: str) -> tuple[int, ...]:
    axes = tuple(axes)
    for a in axes:
        if not isinstance(a, int) or not 0 <= a < ndim:
            raise ShapeError(f"{name}: axis {a} is out of range for an array of rank {ndim}",
                             hint=f"valid axes are {-ndim}..{ndim - 1}")
    if len(set(axes)) != len(axes) or list(axes) != sorted(axes):
        raise ShapeError(f"{name}: axes {axes} must be sorted and distinct")
    return axes


def reduced_shape(shape, axes, keepdims: bool) -> tuple[int, ...]:
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _reduce_rule(name: str, needs_identity: bool):
    def infer(ins, attrs):
        (x,) = ins
        axes = check_axes(attrs["axes"], x.ndim, name)
        if name == "sum" and x.dtype == "bool":
            raise DtypeError("sum of bool: cast to an integer dtype first")
        if needs_identity and any(x.shape[a] == 0 for a in axes):
            raise ShapeError(f"{name} over a zero-size axis has no identity",
                             hint="numpy raises here too; use an initial value with "
                                  "np.where, or skip empty inputs")
        return (TensorType(reduced_shape(x.shape, axes, attrs["keepdims"]), x.dtype),)
    return infer


def _reduction(name: str, fn, needs_identity: bool, rounding: Rounding) -> None:
    def impl(x, axes, keepdims):
        # numpy would sum int32 in int64; the primitive keeps the input's dtype
        kw = {"dtype": x.dtype} if name == "sum" else {}
        return np.asarray(fn(x, axis=tuple(axes), keepdims=keepdims, **kw))
    register(OpDef(name, {"axes": AXES, "keepdims": BOOL}, _reduce_rule(name, needs_identity), impl,
                   Kind.REDUCTION, 1, rounding=rounding))


_reduction("sum", np.sum, needs_identity=False, rounding=Rounding.ACCUMULATES)
_reduction("max", np.max, needs_identity=True, rounding=Rounding.EXACT)
_reduction("min", np.min, needs_identity=True, rounding=Rounding.EXACT)


def _argmax_infer(ins, attrs):
    (x,) = ins
    (axis,) = check_axes((attrs["axis"],), x.ndim, "argmax")
    if x.shape[axis] == 0:
        raise ShapeError("argmax of an empty axis")
    shape = reduced_shape(x.shape, (axis,), attrs["keepdims"])
    return (TensorType(shape, "int64"),)


def _argmax(x, axis, keepdims):
    return np.asarray(np.argmax(x, axis=axis, keepdims=keepdims)).astype(np.int64)


register(OpDef("argmax", {"axis": AXIS, "keepdims": BOOL}, _argmax_infer, _argmax,
               Kind.REDUCTION, 1,
               differentiable=False, doc="index of the first maximum along one axis",
               rounding=Rounding.STEP))


# ---- cumsum: a prefix sum along one axis (a scan, not a reduction: the output keeps
# the input's shape, so fusion treats it as an opaque op with a kernel of its own)

def _cumsum_infer(ins, attrs):
    (x,) = ins
    check_axes((attrs["axis"],), x.ndim, "cumsum")
    if x.dtype == "bool":
        raise DtypeError("cumsum of bool: cast to an integer dtype first")
    return (x,)


def _cumsum(x, axis):
    # numpy would accumulate int32 in int64; the primitive keeps the dtype (the
    # frontend casts first), and adds in order, as np.add.accumulate does
    return np.cumsum(x, axis=axis, dtype=x.dtype)


register(OpDef("cumsum", {"axis": AXIS}, _cumsum_infer, _cumsum, Kind.OPAQUE, 1,
               doc="running sum along one axis, in index order, in the input's dtype",
               rounding=Rounding.ACCUMULATES))
