"""numpy on Tracers: the ufunc table, the numpy-function table, methods and operators.

`UFUNCS` maps numpy ufuncs (what `np.exp(t)` and `t + 1` reach through
`__array_ufunc__`) and `FUNCTIONS` maps numpy functions (what `np.sum(t)` reaches
through `__array_function__`) to handlers written with `frontend.prims`. Composite
functions (mean, var, clip, ...) decompose into primitives here. Anything missing
raises UnsupportedError naming the function and the closest supported one.
"""
from __future__ import annotations

import inspect
import math
from typing import Any, Callable

import numpy as np

from graphc import dtypes
from graphc.errors import ShapeError, UnsupportedError
from graphc.frontend import contractions, indexing, prims, suggestions
from graphc.frontend.prims import Operand
from graphc.frontend.tracer import Tracer

FUNCTIONS: dict[Callable, Callable] = {}
UFUNCS: dict[np.ufunc, Callable] = {}


def implements(*funcs: Callable):
    def register(handler: Callable) -> Callable:
        for f in funcs:
            FUNCTIONS[f] = handler
        return handler
    return register


def _no_out(out) -> None:
    if out is not None:
        raise UnsupportedError("out= (writing into an existing array) is not supported "
                               "while tracing", hint="use the returned value instead")


def _t(x: Operand) -> Tracer:
    return prims.lift(x, None, prims.ctx_of(x))


# ---- ufuncs -------------------------------------------------------------------------

for _uf, _op in [(np.add, "add"), (np.subtract, "sub"), (np.multiply, "mul"),
                 (np.power, "pow"), (np.maximum, "maximum"), (np.minimum, "minimum"),
                 (np.true_divide, "div")]:
    UFUNCS[_uf] = (lambda op: lambda a, b: prims.binary(op, a, b))(_op)
for _uf, _op in [(np.equal, "eq"), (np.not_equal, "ne"), (np.less, "lt"),
                 (np.less_equal, "le"), (np.greater, "gt"), (np.greater_equal, "ge")]:
    UFUNCS[_uf] = (lambda op: lambda a, b: prims.compare(op, a, b))(_op)
for _uf, _op in [(np.exp, "exp"), (np.log, "log"), (np.log1p, "log1p"),
                 (np.expm1, "expm1"), (np.sqrt, "sqrt"), (np.tanh, "tanh"),
                 (np.sin, "sin"), (np.cos, "cos"), (np.reciprocal, "reciprocal")]:
    UFUNCS[_uf] = (lambda op: lambda x: prims.unary(op, x))(_op)
UFUNCS[np.negative] = lambda x: prims.unary("neg", x, float_only=False)
UFUNCS[np.sign] = lambda x: prims.unary("sign", x, float_only=False)


def _absolute(x: Operand) -> Tracer:
    # np.abs of a bool array is the array itself (numpy has a bool loop)
    return _t(x) if prims.result_type(x) == "bool" else prims.unary("abs", x, float_only=False)


def _no_bool(name: str, why: str, handler: Callable) -> Callable:
    """numpy refuses (or leaves graphc's dtypes for) bool inputs of `name`: so do we."""
    def checked(*xs):
        if all(prims.result_type(x) == "bool" for x in xs):
            raise UnsupportedError(f"{name} of a bool array is not supported: {why}",
                                   hint="cast to an integer or float dtype first")
        return handler(*xs)
    return checked


UFUNCS[np.absolute] = _absolute
UFUNCS[np.positive] = _no_bool("np.positive", "numpy raises a TypeError", _t)
UFUNCS[np.square] = _no_bool("np.square", "numpy gives int8, which graphc has not",
                             lambda x: prims.binary("mul", x, x))
UFUNCS[np.logical_and] = lambda a, b: prims.logical("logical_and", a, b)
UFUNCS[np.logical_or] = lambda a, b: prims.logical("logical_or", a, b)
UFUNCS[np.logical_not] = lambda x: prims.logical("logical_not", x)
UFUNCS[np.matmul] = contractions.matmul


def _bitwise(op: str):
    def handler(a, b=None):
        xs = (a,) if b is None else (a, b)
        if all(prims.result_type(x) == "bool" for x in xs):
            return prims.logical(op, *xs)
        raise UnsupportedError("bitwise operations on integers are not supported",
                               hint="&, | and ~ work on bool arrays (masks)")
    return handler


UFUNCS[np.bitwise_and] = _bitwise("logical_and")
UFUNCS[np.bitwise_or] = _bitwise("logical_or")
UFUNCS[np.invert] = _bitwise("logical_not")


def array_ufunc(self, ufunc, method, *inputs, **kwargs):
    name = f"np.{ufunc.__name__}"
    if method != "__call__":
        hint = "use np.sum / np.max / np.min" if method == "reduce" else None
        raise UnsupportedError(f"{name}.{method} is not supported while tracing", hint=hint)
    _no_out(kwargs.pop("out", None))
    if kwargs:
        raise UnsupportedError(f"{name}: arguments {sorted(kwargs)} are not supported "
                               "while tracing")
    handler = UFUNCS.get(ufunc)
    if handler is None:
        _unsupported(name)
    return handler(*inputs)


def _unsupported(name: str):
    # a hand-written suggestion, never a look-alike name (np.sort is not np.sum)
    raise UnsupportedError(f"numpy function {name} is not supported by graphc",
                           hint=suggestions.hint_for(name))


def array_function(self, func, types, args, kwargs):
    handler = FUNCTIONS.get(func)
    module = getattr(func, "__module__", "numpy") or "numpy"
    prefix = "np." + module[len("numpy."):] + "." if module.startswith("numpy.") and \
        not module.startswith("numpy._") and module != "numpy.lib" else "np."
    name = f"{prefix}{func.__name__}"
    if handler is None:
        _unsupported(name)
    try:
        inspect.signature(handler).bind(*args, **kwargs)
    except TypeError as exc:
        raise UnsupportedError(f"{name}: {exc}; graphc supports the arguments "
                               f"{list(inspect.signature(handler).parameters)}") from None
    return handler(*args, **kwargs)


# ---- elementwise functions ----------------------------------------------------------

@implements(np.where)
def where(condition, x=None, y=None):
    if x is None or y is None:
        raise UnsupportedError("np.where(cond) with one argument returns indices whose "
                               "number depends on the data",
                               hint="use the three-argument form np.where(cond, a, b)")
    return prims.where(condition, x, y)


@implements(np.clip)
def clip(a, a_min=None, a_max=None, out=None, *, min=None, max=None):
    _no_out(out)
    lo = a_min if a_min is not None else min
    hi = a_max if a_max is not None else max
    if lo is None and hi is None:
        raise UnsupportedError("np.clip needs a_min or a_max")
    res = a
    if lo is not None:
        res = prims.binary("maximum", res, lo)
    if hi is not None:
        res = prims.binary("minimum", res, hi)
    return _t(res)


# ---- reductions ---------------------------------------------------------------------

def _sum_dtype(x: Tracer, dtype) -> str:
    if dtype is not None:
        return dtypes.canonical(dtype)
    dt = x.value.type.dtype
    return "int64" if dt in ("bool", "int32") else dt


@implements(np.sum)
def sum(a, axis=None, dtype=None, out=None, keepdims=False):
    _no_out(out)
    x = _t(a)
    x = prims.cast(x, _sum_dtype(x, dtype))
    return prims.reduce("sum", x, prims.norm_axes(axis, x.ndim), keepdims)


def _mean_dtype(x: Tracer) -> str:
    # np.mean / np.var of bool and int arrays are float64 (not float16 for bool, as
    # the float-only ufuncs give): numpy accumulates them in 'f8'
    dt = x.value.type.dtype
    return dt if dtypes.is_float(dt) else "float64"


@implements(np.mean)
def mean(a, axis=None, dtype=None, out=None, keepdims=False):
    _no_out(out)
    x = _t(a)
    dt = dtypes.canonical(dtype) if dtype else _mean_dtype(x)
    # numpy accumulates float16 in float32 and rounds the result back
    acc = "float32" if dt == "float16" else dt
    axes = prims.norm_axes(axis, x.ndim)
    s = prims.reduce("sum", prims.cast(x, acc), axes, keepdims)
    return prims.cast(prims.binary("div", s, prims.count(x, axes, acc)), dt)


@implements(np.var)
def var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
    _no_out(out)
    x = _t(a)
    dt = dtypes.canonical(dtype) if dtype else _mean_dtype(x)
    acc = "float32" if dt == "float16" else dt
    x = prims.cast(x, acc)
    axes = prims.norm_axes(axis, x.ndim)
    centered = prims.binary("sub", x, mean(x, axis=axes, keepdims=True))
    ss = prims.reduce("sum", prims.binary("mul", centered, centered), axes, keepdims)
    return prims.cast(prims.binary("div", ss, _dof(x, axes, ddof, acc)), dt)


def _dof(x: Tracer, axes: tuple[int, ...], ddof, acc: str):
    """var's divisor, max(n - ddof, 0): numpy's, inf or nan where ddof >= n."""
    n = math.prod(x.shape[i] for i in axes)
    if type(n) is int:
        return prims.lift(float(builtin_max(n - ddof, 0)), acc)
    less = prims.binary("sub", prims.count(x, axes, acc), prims.lift(float(ddof), acc))
    return prims.binary("maximum", less, prims.lift(0.0, acc))


@implements(np.std)
def std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
    return prims.unary("sqrt", var(a, axis, dtype, out, ddof, keepdims))


builtin_max = max


def _minmax(op: str):
    def handler(a, axis=None, out=None, keepdims=False):
        _no_out(out)
        x = _t(a)
        return prims.reduce(op, x, prims.norm_axes(axis, x.ndim), keepdims)
    return handler


FUNCTIONS[np.max] = FUNCTIONS[np.amax] = _minmax("max")
FUNCTIONS[np.min] = FUNCTIONS[np.amin] = _minmax("min")


@implements(np.argmax)
def argmax(a, axis=None, out=None, *, keepdims=False):
    _no_out(out)
    x = _t(a)
    if axis is None:
        res = x.ctx.emit("argmax", prims.reshape(x, (-1,)), axis=0, keepdims=False)
        return prims.reshape(res, (1,) * x.ndim) if keepdims else res
    return x.ctx.emit("argmax", x, axis=prims.norm_axis(axis, x.ndim), keepdims=keepdims)


# ---- shapes -------------------------------------------------------------------------

@implements(np.reshape)
def reshape(a, shape=None, order="C", *, newshape=None, copy=None):
    if order != "C":
        raise UnsupportedError(f"reshape with order={order!r}: only 'C' is supported")
    return prims.reshape(_t(a), shape if shape is not None else newshape)


@implements(np.transpose)
def transpose(a, axes=None):
    x = _t(a)
    return prims.transpose(x, range(x.ndim)[::-1] if axes is None else axes)


@implements(np.swapaxes)
def swapaxes(a, axis1, axis2):
    x = _t(a)
    perm = list(range(x.ndim))
    i, j = prims.norm_axis(axis1, x.ndim), prims.norm_axis(axis2, x.ndim)
    perm[i], perm[j] = perm[j], perm[i]
    return prims.transpose(x, perm)


@implements(np.expand_dims)
def expand_dims(a, axis):
    x = _t(a)
    axes = prims.norm_axes(axis, x.ndim + len(axis) if isinstance(axis, (tuple, list))
                           else x.ndim + 1)
    shape = list(x.shape)
    for ax in axes:
        shape.insert(ax, 1)
    return prims.reshape(x, shape)


@implements(np.squeeze)
def squeeze(a, axis=None):
    x = _t(a)
    axes = [i for i, d in enumerate(x.shape) if d == 1] if axis is None else \
        prims.norm_axes(axis, x.ndim)
    for ax in axes:
        if x.shape[ax] != 1:
            raise ShapeError(f"cannot squeeze axis {ax} of size {x.shape[ax]} "
                             f"(shape {list(x.shape)})", hint="only size-1 axes squeeze")
    return prims.reshape(x, [d for i, d in enumerate(x.shape) if i not in axes])


@implements(np.ravel)
def ravel(a, order="C"):
    return reshape(a, (-1,), order)


@implements(np.broadcast_to)
def broadcast_to(array, shape, subok=False):
    x = _t(array)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return prims.broadcast_to(x, shape)


@implements(np.concatenate)
def concatenate(arrays, axis=0, out=None, *, dtype=None, casting=None):
    _no_out(out)
    arrays = list(arrays)
    ctx = prims.ctx_of(*arrays)
    dt = dtypes.canonical(dtype) if dtype else prims.result_type(*[
        a if not prims.is_weak(a) else np.asarray(a) for a in arrays])
    xs = [prims.lift(a if not prims.is_weak(a) else np.asarray(a), dt, ctx) for a in arrays]
    if axis is None:
        xs = [prims.reshape(x, (-1,)) for x in xs]
        axis = 0
    if any(x.ndim == 0 for x in xs):
        raise ShapeError("zero-dimensional arrays cannot be concatenated",
                         hint="use np.stack, or reshape them to (1,)")
    axis = prims.norm_axis(axis, xs[0].ndim)
    return xs[0] if len(xs) == 1 else ctx.emit("concat", *xs, axis=axis)


@implements(np.stack)
def stack(arrays, axis=0, out=None, *, dtype=None, casting=None):
    _no_out(out)
    arrays = list(arrays)
    shapes = {tuple(prims.shape_of(a)) for a in arrays}
    if len(shapes) != 1:
        raise ShapeError(f"np.stack needs arrays of one shape, got {sorted(shapes)}")
    ndim = len(shapes.pop()) + 1
    ax = prims.norm_axis(axis, ndim)
    return concatenate([expand_dims(_t(a), ax) for a in arrays], axis=ax, dtype=dtype)


def _like(fill):
    def handler(a, dtype=None, order="K", subok=True, shape=None, device=None, **kw):
        x = _t(a)
        dt = dtypes.canonical(dtype) if dtype else x.value.type.dtype
        shp = x.shape if shape is None else ((shape,) if isinstance(shape, int) else shape)
        return prims.broadcast_to(prims.lift(fill if fill is not None else kw["fill_value"],
                                             dt, x.ctx), shp)
    return handler


FUNCTIONS[np.zeros_like] = _like(0)
FUNCTIONS[np.ones_like] = _like(1)


@implements(np.full_like)
def full_like(a, fill_value, dtype=None, order="K", subok=True, shape=None, device=None):
    return _like(None)(a, dtype, shape=shape, fill_value=fill_value)


@implements(np.take)
def take(a, indices, axis=None, out=None, mode=None):
    _no_out(out)
    x = _t(a)
    if axis is None:
        x, axis = prims.reshape(x, (-1,)), 0
    axis = prims.norm_axis(axis, x.ndim)
    return indexing.getitem(x, (slice(None),) * axis +
                            (indexing.take_mode(indices, mode, x.shape[axis]),))


@implements(np.copy)
def copy(a, order="K", subok=False):
    return _t(a)


@implements(np.shape)
def shape(a):
    return prims.shape_of(a)


@implements(np.ndim)
def ndim(a):
    return len(prims.shape_of(a))


@implements(np.size)
def size(a, axis=None):
    shp = prims.shape_of(a)
    return math.prod(shp) if axis is None else shp[axis]


@implements(np.result_type)
def result_type(*arrays_and_dtypes):
    return np.dtype(dtypes.result_type(*[
        prims.dtype_of(x) if not isinstance(x, (np.dtype, type, str)) else
        dtypes.canonical(x) for x in arrays_and_dtypes]))


# ---- numpy functions that are also ufuncs or contractions ---------------------------

FUNCTIONS[np.dot] = contractions.dot
FUNCTIONS[np.tensordot] = contractions.tensordot
FUNCTIONS[np.outer] = contractions.outer
FUNCTIONS[np.einsum] = lambda subscripts, *operands: contractions.einsum(subscripts, *operands)


# ---- methods and operators on Tracer ------------------------------------------------

def _method_axes(args):
    # x.transpose(1, 0), x.transpose((1, 0)), x.transpose() and x.transpose(None)
    if len(args) == 1 and (args[0] is None or isinstance(args[0], (tuple, list))):
        return args[0]
    return args


def _install() -> None:
    T = Tracer
    T.__array_ufunc__ = array_ufunc
    T.__array_function__ = array_function
    T.__getitem__ = indexing.getitem
    ops2: dict[str, Callable[[Any, Any], Tracer]] = {
        "add": lambda a, b: prims.binary("add", a, b),
        "sub": lambda a, b: prims.binary("sub", a, b),
        "mul": lambda a, b: prims.binary("mul", a, b),
        "truediv": lambda a, b: prims.binary("div", a, b),
        "pow": lambda a, b: prims.binary("pow", a, b),
        "matmul": contractions.matmul,
        "and": UFUNCS[np.bitwise_and],
        "or": UFUNCS[np.bitwise_or],
    }
    for name, fn in ops2.items():
        setattr(T, f"__{name}__", (lambda f: lambda a, b: f(a, b))(fn))
        setattr(T, f"__r{name}__", (lambda f: lambda a, b: f(b, a))(fn))
    for name, op in [("eq", "eq"), ("ne", "ne"), ("lt", "lt"), ("le", "le"),
                     ("gt", "gt"), ("ge", "ge")]:
        setattr(T, f"__{name}__", (lambda o: lambda a, b: prims.compare(o, a, b))(op))
    # bool ** int: numpy's operator takes a shortcut through np.square and gives int8
    T.__pow__ = _pow_operator
    T.__neg__ = lambda a: prims.unary("neg", a, float_only=False)
    T.__pos__ = lambda a: UFUNCS[np.positive](a)
    T.__abs__ = _absolute
    T.__invert__ = lambda a: UFUNCS[np.invert](a)
    for unsupported in ("xor", "lshift", "rshift"):
        setattr(T, f"__{unsupported}__", (lambda n: lambda a, b: _no_operator(n))(unsupported))
    T.T = property(lambda a: transpose(a))
    T.mT = property(lambda a: swapaxes(a, -1, -2))
    T.reshape = lambda a, *shape, order="C": reshape(
        a, shape[0] if len(shape) == 1 else shape, order)
    T.transpose = lambda a, *axes: transpose(a, _method_axes(axes) or None)
    T.swapaxes = swapaxes
    T.squeeze = lambda a, axis=None: squeeze(a, axis)
    T.ravel = T.flatten = lambda a, order="C": ravel(a, order)
    T.astype = lambda a, dtype, copy=True: prims.cast(a, dtypes.canonical(dtype))
    T.copy = lambda a: a
    T.sum = lambda a, axis=None, dtype=None, out=None, keepdims=False: sum(
        a, axis, dtype, out, keepdims)
    T.mean = lambda a, axis=None, dtype=None, out=None, keepdims=False: mean(
        a, axis, dtype, out, keepdims)
    T.var = lambda a, axis=None, dtype=None, out=None, ddof=0, keepdims=False: var(
        a, axis, dtype, out, ddof, keepdims)
    T.std = lambda a, axis=None, dtype=None, out=None, ddof=0, keepdims=False: std(
        a, axis, dtype, out, ddof, keepdims)
    T.max = lambda a, axis=None, out=None, keepdims=False: FUNCTIONS[np.max](
        a, axis, out, keepdims)
    T.min = lambda a, axis=None, out=None, keepdims=False: FUNCTIONS[np.min](
        a, axis, out, keepdims)
    T.argmax = lambda a, axis=None, out=None, keepdims=False: argmax(a, axis, out,
                                                                     keepdims=keepdims)
    T.clip = lambda a, min=None, max=None: clip(a, min, max)
    T.dot = lambda a, b: contractions.dot(a, b)


def _pow_operator(a, b):
    if prims.result_type(a) == "bool":
        raise UnsupportedError("bool_array ** n is not supported: numpy gives int8 there, "
                               "which graphc has not", hint="cast to an integer or float "
                               "dtype first, or use np.power (int64)")
    return prims.binary("pow", a, b)


def _no_operator(name: str):
    raise UnsupportedError(f"the operator __{name}__ is not supported on traced arrays",
                           hint="rewrite it with supported numpy functions")


_install()
# rounding, floored division (// and %), isnan and kin, logaddexp, all/any, argmin
from graphc.frontend import numpy_math  # noqa: E402,F401  (registers into the tables above)
# padding, flips, triangles, cumsum, norms, asarray
from graphc.frontend import numpy_more  # noqa: E402,F401  (registers into the tables above)
