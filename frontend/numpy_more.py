"""More numpy functions on Tracers: padding, flips, triangles, cumsum, vector and
Frobenius norms, and np.asarray/np.array of traced arrays.

Its handlers register into `frontend.numpy_api`'s table (the two files would be one
but for their length). Each handler follows numpy's shape and
dtype rules and decomposes into primitives; only cumsum is a primitive of its own.

np.asarray and np.array are not dispatched to `__array_function__` (numpy calls
`__array__`, which must return real data), so while a trace runs `frontend.patching`
puts thin wrappers in their place: a traced argument comes back as a Tracer (cast
where a dtype is given), anything else goes to numpy's own function unchanged.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from graphc import dtypes
from graphc.errors import DtypeError, ShapeError, UnsupportedError
from graphc.frontend import patching, prims
from graphc.frontend.prims import Operand
from graphc.frontend.numpy_api import FUNCTIONS, implements
from graphc.frontend.tracer import Tracer



def _t(x: Operand) -> Tracer:
    return prims.lift(x, None, prims.ctx_of(x))


def _no_out(out) -> None:
    if out is not None:
        raise UnsupportedError("out= (writing into an existing array) is not supported "
                               "while tracing", hint="use the returned value instead")


def _static(value, what: str):
    if _has_tracer(value):
        raise UnsupportedError(f"{what} must be a Python or numpy value, not a traced array",
                               hint="graphc needs it while tracing: pass it as a Python "
                                    "number (a static argument)")
    return value


# ---- padding -------------------------------------------------------------------------

_PAD_MODES = ("edge", "linear_ramp", "maximum", "mean", "median", "minimum", "reflect",
              "symmetric", "wrap", "empty")


def _pad_pairs(widths, ndim: int, what: str) -> np.ndarray:
    """numpy's forms (n, (n,), (lo, hi), ((lo, hi), ...)) as an (ndim, 2) array."""
    arr = np.asarray(_static(widths, what))
    try:
        return np.broadcast_to(arr, (ndim, 2))
    except ValueError:
        raise ShapeError(f"np.pad: {what} {widths!r} does not fit an array of rank {ndim}",
                         hint="give one (before, after) pair per axis, or one pair or "
                              "number for all") from None


@implements(np.pad)
def pad(array, pad_width, mode="constant", **kwargs):
    x = _t(array)
    if callable(mode) or mode != "constant":
        name = getattr(mode, "__name__", mode)
        raise UnsupportedError(f"np.pad with mode={name!r} is not supported: graphc pads "
                               "with a constant only",
                               hint="build the border with slices and np.concatenate "
                                    "(edge: x[:1] repeated; wrap: x[-k:]), or pass the "
                                    "padded array in" if name in _PAD_MODES else
                                    "use mode='constant'")
    extra = set(kwargs) - {"constant_values"}
    if extra:
        raise UnsupportedError(f"np.pad(mode='constant') takes no {sorted(extra)}")
    widths = _pad_pairs(pad_width, x.ndim, "pad_width")
    if widths.dtype.kind not in "iu" or (widths < 0).any():
        raise ShapeError(f"np.pad: pad_width {pad_width!r} must be non-negative integers")
    values = _pad_pairs(kwargs.get("constant_values", 0), x.ndim, "constant_values")
    # numpy casts the fill to the array's dtype (1.5 pads an int array with 1)
    np_dt = dtypes.to_numpy(x.value.type.dtype)
    if np_dt.kind in "iub" and values.dtype.kind == "f" and not np.isfinite(values).all():
        raise DtypeError(f"np.pad: constant_values {values.tolist()} cannot fill a "
                         f"{x.value.type.dtype} array", hint="numpy raises here too: use "
                                                            "finite values")
    with np.errstate(all="ignore"):
        fills = values.astype(np_dt).tolist() if x.ndim else []
    if x.ndim == 0:
        return x
    first = fills[0][0]
    if all(f == first or (f != f and first != first) for pair in fills for f in pair):
        return x.ctx.emit("pad", x, widths=_pairs(widths), value=fills[0][0])
    # different values per axis: one axis at a time, as numpy fills them (a later
    # axis's value wins in the corners)
    for axis in range(x.ndim):
        for side in (0, 1):
            w = [(0, 0)] * x.ndim
            w[axis] = (int(widths[axis, 0]), 0) if side == 0 else (0, int(widths[axis, 1]))
            if w[axis] != (0, 0):
                x = x.ctx.emit("pad", x, widths=tuple(w), value=fills[axis][side])
    return x


def _pairs(widths: np.ndarray) -> tuple[tuple[int, int], ...]:
    return tuple((int(lo), int(hi)) for lo, hi in widths)


# ---- flips and triangles ---------------------------------------------------------------

def _flip_axes(x: Tracer, axes: tuple[int, ...]) -> Tracer:
    """x[::-1] on each axis in `axes`: one slice node with negative steps."""
    starts, stops, steps = [0] * x.ndim, list(x.shape), [1] * x.ndim
    for a in axes:
        if x.shape[a]:  # a size-0 axis stays 0:0:1 (the slice rule's empty form)
            starts[a], stops[a], steps[a] = x.shape[a] - 1, -1, -1
    if all(s == 1 for s in steps):
        return x
    return x.ctx.emit("slice", x, starts=tuple(starts), stops=tuple(stops),
                      steps=tuple(steps))


@implements(np.flip)
def flip(m, axis=None):
    x = _t(m)
    return _flip_axes(x, prims.norm_axes(_static(axis, "axis"), x.ndim))


@implements(np.fliplr)
def fliplr(m):
    x = _t(m)
    if x.ndim < 2:
        raise ShapeError("np.fliplr needs an array of rank >= 2", hint="use np.flip(x)")
    return _flip_axes(x, (1,))


@implements(np.flipud)
def flipud(m):
    x = _t(m)
    if x.ndim < 1:
        raise ShapeError("np.flipud needs an array of rank >= 1")
    return _flip_axes(x, (0,))


def _triangle(name: str, lower: bool):
    def handler(m, k=0):
        x = _t(m)
        k = int(_static(k, "k"))
        if x.ndim == 0:
            raise ShapeError(f"np.{name} needs an array of rank >= 1")
        shape = tuple(x.shape[-2:]) if x.ndim >= 2 else (x.shape[-1],) * 2
        # the mask from two iotas (no constant of the matrix's size): column j of row i
        # is kept where j <= i + k (tril) or j >= i + k (triu), as np.tri decides
        row = x.ctx.emit("iota", shape=shape, axis=0, dtype="int64")
        col = x.ctx.emit("iota", shape=shape, axis=1, dtype="int64")
        diag = prims.binary("add", row, k)
        keep = prims.compare("le" if lower else "ge", col, diag)
        return prims.where(keep, x, prims.lift(0, x.value.type.dtype, x.ctx))
    handler.__name__ = name
    return handler


FUNCTIONS[np.tril] = _triangle("tril", lower=True)
FUNCTIONS[np.triu] = _triangle("triu", lower=False)


# ---- cumsum --------------------------------------------------------------------------

def _accumulate_dtype(x: Tracer, dtype) -> str:
    """numpy's: an explicit dtype (the input is cast to it first, unsafely: float to
    int truncates); else bool and int32 accumulate as int64 (the platform's long on
    64-bit Linux), the rest in their own dtype."""
    if dtype is not None:
        return dtypes.canonical(dtype)
    dt = x.value.type.dtype
    return "int64" if dt in ("bool", "int32") else dt


@implements(np.cumsum)
def cumsum(a, axis=None, dtype=None, out=None):
    _no_out(out)
    x = _t(a)
    dt = _accumulate_dtype(x, dtype)
    if dt == "bool":
        raise DtypeError("np.cumsum with dtype=bool is not supported: numpy's bool "
                         "addition is `or`", hint="use an integer dtype")
    if axis is None:  # numpy flattens
        x, axis = prims.reshape(x, (-1,)), 0
    axis = prims.norm_axis(axis, x.ndim)
    return x.ctx.emit("cumsum", prims.cast(x, dt), axis=axis)


# ---- norms ---------------------------------------------------------------------------

def _sumsq(x: Tracer, axes: tuple[int, ...], keepdims: bool) -> Tracer:
    return prims.unary("sqrt", prims.reduce("sum", prims.binary("mul", x, x), axes,
                                            keepdims))


def _vector_norm(x: Tracer, ord, axis: int, keepdims: bool) -> Tracer:
    axes = (axis,)
    if ord is None or ord == 2:
        return _sumsq(x, axes, keepdims)
    if isinstance(ord, str):
        raise UnsupportedError(f"np.linalg.norm: ord={ord!r} is a matrix norm; this is "
                               "a norm over one axis", hint="numpy raises here too: use "
                               "ord=None (2), 1, np.inf, -np.inf, 0 or a number")
    mag = prims.unary("abs", x, float_only=False)
    if ord == math.inf:
        if x.shape[axis] == 0:  # numpy's max starts from 0 here (initial=0): no error
            shape = [1 if i == axis else d for i, d in enumerate(x.shape)]
            out = prims.broadcast_to(prims.lift(0, x.value.type.dtype, x.ctx), shape)
            return out if keepdims else prims.reshape(out, shape[:axis] + shape[axis + 1:])
        return prims.reduce("max", mag, axes, keepdims)
    if ord == -math.inf:
        return prims.reduce("min", mag, axes, keepdims)
    if ord == 0:  # the number of non-zeros, in x's float dtype
        nz = prims.cast(prims.compare("ne", x, 0), x.value.type.dtype)
        return prims.reduce("sum", nz, axes, keepdims)
    if ord == 1:
        return prims.reduce("sum", mag, axes, keepdims)
    p = float(ord)  # numpy's general p: (sum |x|**p) ** (1 / p)
    s = prims.reduce("sum", prims.binary("pow", mag, p), axes, keepdims)
    return prims.binary("pow", s, 1.0 / p)


def _matrix_norm(x: Tracer, ord, axes: tuple[int, int], keepdims: bool) -> Tracer:
    row, col = axes
    if ord is None or ord == "fro":
        out = _sumsq(x, tuple(sorted(axes)), keepdims=False)
    elif ord in (1, -1, math.inf, -math.inf) and not isinstance(ord, bool):
        # 1: the largest column sum of |x|; inf: the largest row sum (min for -1, -inf)
        summed, then = (row, col) if ord in (1, -1) else (col, row)
        s = prims.reduce("sum", prims.unary("abs", x, float_only=False), (summed,), False)
        out = prims.reduce("max" if ord > 0 else "min", s,
                           (then - (then > summed),), False)
    else:
        raise UnsupportedError(f"np.linalg.norm with ord={ord!r} over two axes is not "
                               "supported", hint="graphc has no SVD (ord=2, -2, 'nuc'); "
                                                 "ord='fro', 1, -1, np.inf and -np.inf work")
    if keepdims:
        out = prims.reshape(out, [1 if i in axes else d for i, d in enumerate(x.shape)])
    return out


@implements(np.linalg.norm)
def norm(x, ord=None, axis=None, keepdims=False):
    t = _t(x)
    if not dtypes.is_float(t.value.type.dtype):
        t = prims.cast(t, "float64")  # as numpy: ints and bools become float64
    ord = _static(ord, "ord")
    if axis is None:
        if ord is None:  # the 2-norm of the flattened array, whatever its rank
            out = _sumsq(t, tuple(range(t.ndim)), keepdims=False)
            return prims.reshape(out, (1,) * t.ndim) if keepdims else out
        if t.ndim not in (1, 2):
            raise ShapeError(f"np.linalg.norm with ord={ord!r} needs a 1-d or 2-d array, "
                             f"got rank {t.ndim}", hint="give axis=, as numpy wants")
        axis = tuple(range(t.ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    norm_axes = tuple(prims.norm_axis(a, t.ndim) for a in axes)
    if len(norm_axes) == 1:
        return _vector_norm(t, ord, norm_axes[0], keepdims)
    if len(norm_axes) == 2 and norm_axes[0] != norm_axes[1]:
        return _matrix_norm(t, ord, norm_axes, keepdims)
    raise ShapeError(f"np.linalg.norm: axis={axis!r} must name one axis or two "
                     "different ones")


# ---- np.asarray / np.array of traced arrays --------------------------------------------

def _has_tracer(obj) -> bool:
    if isinstance(obj, Tracer):
        return True
    return isinstance(obj, (list, tuple)) and any(_has_tracer(o) for o in obj)


def _as_tracer(obj, dtype, copy, ndmin: int = 0) -> Tracer:
    x = _stack(obj) if isinstance(obj, (list, tuple)) else obj
    if dtype is not None:
        dt = dtypes.canonical(dtype)
        if copy is False and dt != x.value.type.dtype:
            raise UnsupportedError(f"np.asarray(..., dtype={dt}, copy=False) of a "
                                   f"{x.value.type.dtype} array needs a copy",
                                   hint="numpy raises here too: drop copy=False")
        x = prims.cast(x, dt)
    if x.ndim < ndmin:
        x = prims.reshape(x, (1,) * (ndmin - x.ndim) + tuple(x.shape))
    return x


def _stack(items) -> Tracer:
    """np.array([a, b, ...]) with traced pieces: the pieces, promoted to one dtype as
    numpy does, stacked along a new first axis."""
    parts = [_stack(o) if isinstance(o, (list, tuple)) else o for o in items]
    shapes = {tuple(prims.shape_of(p)) for p in parts}
    if len(shapes) != 1:
        raise ShapeError(f"np.array of traced pieces of shapes {sorted(shapes)}: the "
                         "pieces need one shape (numpy raises on a ragged list too)",
                         hint="slice or pad the pieces to one shape, then np.array([...]) "
                              "or np.stack them")
    ctx = prims.ctx_of(*parts)
    dt = prims.result_type(*[np.asarray(p) if prims.is_weak(p) else p for p in parts])
    shape = (1,) + shapes.pop()
    xs = [prims.reshape(prims.lift(p, dt, ctx), shape) for p in parts]
    return xs[0] if len(xs) == 1 else ctx.emit("concat", *xs, axis=0)


def _asarray(real: Callable) -> Callable:
    def asarray(a, dtype=None, order=None, *, device=None, copy=None, **kw):
        if _has_tracer(a):
            return _as_tracer(a, dtype, copy)
        return real(a, dtype, order, device=device, copy=copy, **kw)
    asarray.__wrapped__ = real
    return asarray


def _array(real: Callable) -> Callable:
    def array(object, dtype=None, *, copy=True, order="K", subok=False, ndmin=0, **kw):
        if _has_tracer(object):
            return _as_tracer(object, dtype, copy, ndmin)
        return real(object, dtype, copy=copy, order=order, subok=subok, ndmin=ndmin, **kw)
    array.__wrapped__ = real
    return array


def _ascontiguous(real: Callable) -> Callable:
    def ascontiguousarray(a, dtype=None, **kw):
        if _has_tracer(a):
            return _as_tracer(a, dtype, None)
        return real(a, dtype, **kw)
    ascontiguousarray.__wrapped__ = real
    return ascontiguousarray


_CONVERSIONS = {"asarray": _asarray, "asanyarray": _asarray,
                "ascontiguousarray": _ascontiguous, "array": _array}
# The wrappers' code: a failure inside them on untraced data is numpy's own (a ragged
# list), so graphc.internal does not count their frames as the compiler's.
PASSTHROUGH = frozenset(wrap(np.asarray).__code__ for wrap in _CONVERSIONS.values())
# while a trace runs, np.asarray / np.array / np.asanyarray / np.ascontiguousarray of a
# traced array give the Tracer back; calls on anything else reach numpy's function
patching.register(lambda: [(np, name, wrap) for name, wrap in _CONVERSIONS.items()])


def install_methods(T: type) -> None:
    """The Tracer methods of this module's functions."""
    T.cumsum = lambda a, axis=None, dtype=None, out=None: cumsum(a, axis, dtype, out)


install_methods(Tracer)
