"""Typed helpers that turn numpy-style operands into primitive nodes.

An operand is a Tracer, a concrete numpy array (a constant of the graph) or a Python
scalar (weak, per NEP 50). The helpers decide the result dtype with `graphc.dtypes`,
insert the casts the IR needs, and emit the primitive. numpy's functions, operators
and indexing are written on top of these (`numpy_api`, `indexing`, `contractions`).
"""
from __future__ import annotations

import math

from typing import Any, Sequence

import numpy as np

from graphc import dtypes
from graphc.errors import DtypeError, GraphcError, ShapeError, UnsupportedError
from graphc.frontend.tracer import TraceContext, Tracer, current
from graphc.ir import symbols
from graphc.ops.shape import slice_length

Operand = Any  # Tracer | np.ndarray | np.generic | bool | int | float


def ctx_of(*xs: Operand) -> TraceContext:
    for x in xs:
        if isinstance(x, Tracer):
            return x.ctx
    ctx = current()
    if ctx is None:
        raise GraphcError("no trace is active")
    return ctx


def is_weak(x: Operand) -> bool:
    return isinstance(x, (bool, int, float)) and not isinstance(x, np.generic)


def dtype_of(x: Operand):
    """A dtype name (strong operand) or the Python scalar itself (weak operand)."""
    if isinstance(x, Tracer):
        return x.value.type.dtype
    if is_weak(x):
        return x
    if type(x) is symbols.Sym:  # a symbolic size: a weak int, as a Python int is
        return symbols.MIN_SIZE
    if isinstance(x, (np.ndarray, np.generic)):
        return dtypes.canonical(x.dtype)
    if isinstance(x, (list, tuple)):
        return dtypes.canonical(np.asarray(x).dtype)
    raise UnsupportedError(f"cannot use a {type(x).__name__} as an array operand",
                           hint="use numpy arrays or Python numbers")


def result_type(*xs: Operand) -> str:
    return dtypes.result_type(*(dtype_of(x) for x in xs))


def lift(x: Operand, dtype: str | None = None, ctx: TraceContext | None = None) -> Tracer:
    """`x` as a Tracer of `dtype` (a cast node or a const node if needed)."""
    if isinstance(x, Tracer):
        return cast(x, dtype) if dtype else x
    ctx = ctx or current()
    if type(x) is symbols.Sym:  # known per call: a size node, not a literal
        return ctx.emit("size", dims=(x,), dtype=dtypes.canonical(dtype or "int64"))
    if is_weak(x) and dtype in dtypes.INTS and not isinstance(x, bool):
        info = np.iinfo(dtype)
        if not info.min <= x <= info.max:
            raise DtypeError(f"Python integer {x} is out of bounds for {dtype}")
    return ctx.const(x, dtype)


def count(x: Tracer, axes: tuple[int, ...], dtype: str) -> Tracer:
    """How many elements of `x` the axes span, as a 0-d `dtype` value: a literal where
    the sizes are static, a `size` node (computed per call) where one is symbolic."""
    dims = tuple(x.shape[i] for i in axes)
    n = math.prod(dims)
    if type(n) is int:
        return lift(n, dtype, x.ctx)
    return x.ctx.emit("size", dims=dims, dtype=dtypes.canonical(dtype))


def cast(x: Tracer, dtype: str) -> Tracer:
    dtype = dtypes.canonical(dtype)
    if x.value.type.dtype == dtype:
        return x
    return x.ctx.emit("cast", x, dtype=dtype)


def shape_of(x: Operand) -> tuple[int, ...]:
    return x.shape if isinstance(x, Tracer) else np.shape(x)


# ---- elementwise --------------------------------------------------------------------

def binary(op: str, a: Operand, b: Operand) -> Tracer:
    """add, sub, mul, pow, maximum, minimum: inputs promoted to one dtype."""
    ctx = ctx_of(a, b)
    dt = result_type(a, b)
    if op == "div":
        # numpy's true_divide has no float16 loop for bools: bool / bool is float64
        dt = "float64" if dt == "bool" else dtypes.float_result(dt)
    elif dt == "bool" and op in _BOOL_ARITHMETIC:
        # numpy's bool loops: + and maximum are `or`, * and minimum are `and`
        op = _BOOL_ARITHMETIC[op]
    elif op == "pow" and dt in dtypes.INTS:
        _no_negative_int_power(b)
    return ctx.emit(op, lift(a, dt, ctx), lift(b, dt, ctx))


def _no_negative_int_power(exponent: Operand) -> None:
    """numpy refuses an integer to a negative integer power; a constant exponent is seen
    now. A traced one that is negative at run time gets numpy's own ValueError from the
    call, as in eager numpy (graphc would need a check on every element to name it)."""
    if not isinstance(exponent, Tracer) and np.any(np.asarray(exponent) < 0):
        raise DtypeError("Integers to negative integer powers are not allowed.",
                         hint="make the base a float first (x.astype(np.float64) ** -1, "
                              "or np.reciprocal(x.astype(np.float64)))")


_BOOL_ARITHMETIC = {"add": "logical_or", "maximum": "logical_or",
                    "mul": "logical_and", "minimum": "logical_and"}


def compare(op: str, a: Operand, b: Operand) -> Tracer:
    ctx = ctx_of(a, b)
    dt = result_type(a, b)
    return ctx.emit(op, lift(a, dt, ctx), lift(b, dt, ctx))


def logical(op: str, *xs: Operand) -> Tracer:
    ctx = ctx_of(*xs)
    return ctx.emit(op, *(lift(x, "bool", ctx) for x in xs))


def unary(op: str, x: Operand, float_only: bool = True) -> Tracer:
    ctx = ctx_of(x)
    dt = dtype_of(x)
    dt = dtypes.weak_dtype(dt) if not isinstance(dt, str) else dt
    if float_only:
        dt = dtypes.float_result(dt)
    return ctx.emit(op, lift(x, dt, ctx))


def where(cond: Operand, a: Operand, b: Operand) -> Tracer:
    ctx = ctx_of(cond, a, b)
    dt = result_type(a, b)
    return ctx.emit("where", lift(cond, "bool", ctx), lift(a, dt, ctx), lift(b, dt, ctx))


# ---- shapes -------------------------------------------------------------------------

def norm_axis(axis: int, ndim: int) -> int:
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise UnsupportedError(f"axis must be an int, got {type(axis).__name__}")
    if not -ndim <= axis < ndim:
        raise ShapeError(f"axis {axis} is out of bounds for an array of rank {ndim}",
                         hint=f"valid axes are {-ndim}..{ndim - 1}" if ndim else
                              "a 0-d array has no axes")
    return int(axis) % ndim


def norm_axes(axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (tuple, list)):
        axes = tuple(norm_axis(a, ndim) for a in axis)
        if len(set(axes)) != len(axes):
            raise ShapeError(f"repeated axis in {tuple(axis)}")
        return tuple(sorted(axes))
    return (norm_axis(axis, ndim),)


def resolve_shape(shape, size: int, old: Sequence[int]) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    shape = [symbols.as_dim(d) for d in shape]
    if shape.count(-1) > 1:
        raise ShapeError("can only specify one unknown dimension (-1) in a reshape")
    if -1 in shape:
        known = math.prod([d for d in shape if d != -1])
        if known == 0 or size % known:
            raise ShapeError(f"cannot reshape an array of shape {list(old)} ({size} "
                             f"elements) into shape {shape}",
                             hint="the total number of elements must stay the same")
        shape[shape.index(-1)] = size // known
    if math.prod(shape) != size:
        raise ShapeError(f"cannot reshape an array of shape {list(old)} ({size} elements) "
                         f"into shape {shape}",
                         hint="the total number of elements must stay the same")
    return tuple(shape)


def reshape(x: Tracer, shape) -> Tracer:
    shape = resolve_shape(shape, x.size, x.shape)
    if shape == x.shape:
        return x
    return x.ctx.emit("reshape", x, shape=shape)


def transpose(x: Tracer, perm: Sequence[int]) -> Tracer:
    perm = tuple(norm_axis(p, x.ndim) for p in perm)
    if perm == tuple(range(x.ndim)):
        return x
    return x.ctx.emit("transpose", x, perm=perm)


def broadcast_to(x: Tracer, shape: Sequence[int]) -> Tracer:
    shape = tuple(symbols.as_dim(d) for d in shape)
    if x.shape == shape:
        return x
    return x.ctx.emit("broadcast_to", x, shape=shape)


def slice_axis(x: Tracer, axis: int, start: int, stop: int, step: int = 1) -> Tracer:
    starts = [0] * x.ndim
    stops = list(x.shape)
    steps = [1] * x.ndim
    bounds = symbols.slice_indices(start, stop, step, x.shape[axis])
    # an empty slice can start at -1, which the slice primitive refuses
    starts[axis], stops[axis], steps[axis] = bounds if slice_length(*bounds) else (0, 0, 1)
    return x.ctx.emit("slice", x, starts=tuple(starts), stops=tuple(stops), steps=tuple(steps))


def reduce(op: str, x: Tracer, axes: tuple[int, ...], keepdims: bool) -> Tracer:
    return x.ctx.emit(op, x, axes=tuple(axes), keepdims=bool(keepdims))
