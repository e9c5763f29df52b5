"""Shape primitives (reshape, transpose, broadcast_to, slice, concat, pad), gather,
and the sources of data (const, iota). Attributes are fully resolved by the frontend:
no -1 in a reshape, no negative axes, slices normalized as `slice.indices` does."""
from __future__ import annotations

import math

import numpy as np

from graphc import dtypes
from graphc.errors import DtypeError, ShapeError
from graphc.ir.types import ArrayLiteral, TensorType
from graphc.ops import Kind, OpDef, Rounding, register
from graphc.ops.reduction import check_axes
from graphc.ops.schema import AXIS, DTYPE, LITERAL, PERM, RANK, SCALAR, SHAPE, Attr

BOUNDS = Attr("ints", length=RANK)  # slice starts and stops: normalized by the rule


def _reshape_infer(ins, attrs):
    (x,) = ins
    shape = tuple(attrs["shape"])
    if any(d < 0 for d in shape) or math.prod(shape) != x.size:
        raise ShapeError(f"cannot reshape an array of shape {list(x.shape)} "
                         f"({x.size} elements) into shape {list(shape)}",
                         hint="the total number of elements must stay the same")
    return (TensorType(shape, x.dtype),)


register(OpDef("reshape", {"shape": SHAPE}, _reshape_infer,
               lambda x, shape: np.reshape(x, shape), Kind.SHAPE, 1,
               rounding=Rounding.EXACT))


def _transpose_infer(ins, attrs):
    (x,) = ins
    perm = tuple(attrs["perm"])
    if sorted(perm) != list(range(x.ndim)):
        raise ShapeError(f"transpose: {list(perm)} is not a permutation of the "
                         f"{x.ndim} axes of shape {list(x.shape)}")
    return (TensorType(tuple(x.shape[p] for p in perm), x.dtype),)


register(OpDef("transpose", {"perm": PERM}, _transpose_infer,
               lambda x, perm: np.transpose(x, perm), Kind.SHAPE, 1,
               rounding=Rounding.EXACT))


def _broadcast_infer(ins, attrs):
    (x,) = ins
    shape = tuple(attrs["shape"])
    lead = len(shape) - x.ndim
    ok = lead >= 0 and all(d in (1, t) for d, t in zip(x.shape, shape[lead:]))
    if not ok:
        raise ShapeError(f"cannot broadcast shape {list(x.shape)} to {list(shape)}",
                         hint="dims align from the right and must be equal or 1")
    return (TensorType(shape, x.dtype),)


register(OpDef("broadcast_to", {"shape": SHAPE}, _broadcast_infer,
               lambda x, shape: np.broadcast_to(x, shape), Kind.SHAPE, 1,
               rounding=Rounding.EXACT))


def _slice_infer(ins, attrs):
    (x,) = ins
    starts, stops, steps = attrs["starts"], attrs["stops"], attrs["steps"]
    if not len(starts) == len(stops) == len(steps) == x.ndim:
        raise ShapeError(f"slice needs one (start, stop, step) per axis of {list(x.shape)}")
    shape = []
    for d, (a, b, s) in enumerate(zip(starts, stops, steps)):
        if s == 0:
            raise ShapeError("slice step cannot be zero")
        # normalized bounds, as slice(...).indices(n) returns them: within [0, n] for a
        # positive step; start within [0, n - 1] and stop within [-1, n - 1] (-1: past
        # index 0) for a negative one. The frontend writes empty slices as 0:0:1, since
        # indices() can give a start of -1 there, which x[-1::-1] would misread.
        n = x.shape[d]
        ok = (0 <= a <= n and 0 <= b <= n) if s > 0 else (0 <= a < n and -1 <= b < n)
        if not ok:
            raise ShapeError(f"slice bounds {a}:{b}:{s} are not normalized for axis {d} "
                             f"of size {n}")
        shape.append(slice_length(a, b, s))
    return (TensorType(tuple(shape), x.dtype),)


def slice_length(a, b, s):
    """len(range(a, b, s)); with symbolic bounds, a whole quotient (step 1 or -1, or
    a span the step divides) or SymbolicError."""
    if type(a) is int and type(b) is int:
        return len(range(a, b, s))
    span = b - a if s > 0 else a - b
    if span <= 0:
        return 0
    return span if abs(s) == 1 else span // abs(s)  # (// raises unless whole)


def _slice(x, starts, stops, steps):
    index = tuple(slice(a, None if b < 0 else b, s) for a, b, s in zip(starts, stops, steps))
    return x[index]


register(OpDef("slice", {"starts": BOUNDS, "stops": BOUNDS,
                        "steps": Attr("ints", length=RANK, nonzero=True)},
               _slice_infer, _slice, Kind.SHAPE, 1,
               doc="x[start:stop:step] on every axis; steps may be negative",
               rounding=Rounding.EXACT))


def _concat_infer(ins, attrs):
    axis = attrs["axis"]
    if not ins:
        raise ShapeError("concat needs at least one array")
    first = ins[0]
    check_axes((axis,), first.ndim, "concat")
    dts = {t.dtype for t in ins}
    if len(dts) != 1:
        raise DtypeError(f"concat needs inputs of one dtype, got {sorted(dts)}")
    # tuple slices compare in C: simplify's matmul-joining rule grows concats of
    # hundreds of inputs one at a time, so this runs over every input many times
    outside = first.shape[:axis] + first.shape[axis + 1:]
    for t in ins[1:]:
        if len(t.shape) != len(first.shape) or \
                t.shape[:axis] + t.shape[axis + 1:] != outside:
            raise ShapeError("concat: shapes " + ", ".join(str(list(t.shape)) for t in ins)
                             + f" differ outside axis {axis}")
    shape = list(first.shape)
    shape[axis] = sum(t.shape[axis] for t in ins)
    return (TensorType(tuple(shape), first.dtype),)


register(OpDef("concat", {"axis": AXIS}, _concat_infer,
               lambda *xs, axis: np.concatenate(xs, axis=axis), Kind.SHAPE, None,
               rounding=Rounding.EXACT))


def _pad_infer(ins, attrs):
    (x,) = ins
    widths = attrs["widths"]
    if len(widths) != x.ndim or any(lo < 0 or hi < 0 for lo, hi in widths):
        raise ShapeError(f"pad widths {widths} need one non-negative (low, high) "
                         f"pair per axis of {list(x.shape)}")
    shape = tuple(d + lo + hi for d, (lo, hi) in zip(x.shape, widths))
    return (TensorType(shape, x.dtype),)


def _pad(x, widths, value):
    if x.ndim == 0:  # np.pad rejects the empty widths of a 0-d array
        return np.array(x)
    return np.pad(x, widths, mode="constant", constant_values=value)


register(OpDef("pad", {"widths": Attr("pairs", lo=0, length=RANK), "value": SCALAR},
               _pad_infer, _pad, Kind.SHAPE, 1,
               doc="constant padding: widths is ((low, high), ...) per axis",
               rounding=Rounding.EXACT))


def _gather_infer(ins, attrs):
    x, idx = ins
    (axis,) = check_axes((attrs["axis"],), x.ndim, "gather")
    if idx.dtype not in dtypes.INTS:
        raise DtypeError(f"gather indices must be integers, got {idx.dtype}")
    if x.shape[axis] == 0 and idx.size:
        raise ShapeError("gather from an empty axis")
    return (TensorType(x.shape[:axis] + idx.shape + x.shape[axis + 1:], x.dtype),)


register(OpDef("gather", {"axis": AXIS}, _gather_infer,
               lambda x, idx, axis: np.take(x, idx, axis=axis), Kind.OPAQUE, 2,
               doc="np.take(x, idx, axis): negative indices wrap, others out of "
                   "range raise IndexError",
               rounding=Rounding.EXACT))


def _scatter_add_infer(ins, attrs):
    x, idx, upd = ins
    (axis,) = check_axes((attrs["axis"],), x.ndim, "scatter_add")
    if idx.dtype not in dtypes.INTS:
        raise DtypeError(f"scatter_add indices must be integers, got {idx.dtype}")
    want = x.shape[:axis] + idx.shape + x.shape[axis + 1:]
    if upd.shape != want or upd.dtype != x.dtype:
        raise ShapeError(f"scatter_add: updates are {upd.dtype}{list(upd.shape)}, expected "
                         f"{x.dtype}{list(want)}")
    return (x,)


def _scatter_add(x, idx, upd, axis):
    out = np.array(x, copy=True)
    np.add.at(out, (slice(None),) * axis + (idx,), upd)
    return out


register(OpDef("scatter_add", {"axis": AXIS}, _scatter_add_infer, _scatter_add, Kind.OPAQUE, 3,
               doc="x with upd added at idx along axis (repeated indices accumulate); "
                   "the gradient of gather",
               rounding=Rounding.ACCUMULATES))


def _iota_infer(ins, attrs):
    shape = tuple(attrs["shape"])
    check_axes((attrs["axis"],), len(shape), "iota")
    return (TensorType(shape, dtypes.canonical(attrs["dtype"])),)


def _iota(shape, axis, dtype):
    ramp = np.arange(shape[axis], dtype=dtypes.to_numpy(dtype))
    ramp = ramp.reshape([-1 if i == axis else 1 for i in range(len(shape))])
    return np.array(np.broadcast_to(ramp, shape))


register(OpDef("iota", {"shape": SHAPE, "axis": Attr("axis", of="shape"), "dtype": DTYPE},
               _iota_infer, _iota, Kind.SOURCE, 0,
               differentiable=False, doc="0, 1, 2, ... along `axis`, broadcast to shape",
               rounding=Rounding.EXACT))


def _const_infer(ins, attrs):
    value = attrs["value"]
    if not isinstance(value, ArrayLiteral):
        raise ShapeError("const needs an array value")
    return (TensorType(value.array.shape, dtypes.canonical(value.array.dtype)),)


register(OpDef("const", {"value": LITERAL}, _const_infer, lambda value: value.array, Kind.SOURCE,
               0, differentiable=False, doc="a literal array held in the graph",
               rounding=Rounding.EXACT))


def _size_infer(ins, attrs):
    return (TensorType((), dtypes.canonical(attrs["dtype"])),)


def _size(dims, dtype):
    return np.array(math.prod(dims), dtypes.to_numpy(dtype))


# OPAQUE, not SOURCE: a symbolic count is known only once the call's sizes are, so it
# is computed in the program (once) and read by kernels as a scalar input; with static
# dims the frontend writes a const instead
register(OpDef("size", {"dims": SHAPE, "dtype": DTYPE}, _size_infer, _size, Kind.OPAQUE, 0,
               differentiable=False,
               doc="the product of `dims` (sizes, symbolic ones included) as a 0-d array: "
                   "a mean's count over a dynamic axis",
               rounding=Rounding.EXACT))
