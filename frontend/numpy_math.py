"""numpy's rounding, floored division, float tests, logaddexp, all/any and argmin.

These register into `frontend.numpy_api`'s tables (and add the matching methods and
operators to Tracer). floor, ceil, round, floor_divide and remainder are primitives
(numpy's semantics need them); the rest are composites of primitives, exact, and
elementwise where numpy's are, so fusion puts them into the kernels around them:

    >>> import numpy as np, graphc
    >>> f = graphc.compile(lambda x: (x // 2, x % -3, np.isnan(x)))
    >>> [r.tolist() for r in f(np.array([-7.0, 5.0, np.nan]))]
    [[-4.0, 2.0, nan], [-1.0, -1.0, nan], [False, False, True]]
"""
from __future__ import annotations

import math

import numpy as np

from graphc import dtypes
from graphc.errors import UnsupportedError
from graphc.ops.reduction import reduced_shape
from graphc.frontend import prims
from graphc.frontend.numpy_api import FUNCTIONS, UFUNCS, _no_out, argmax, implements
from graphc.frontend.prims import Operand
from graphc.frontend.tracer import Tracer


def _t(x: Operand) -> Tracer:
    return prims.lift(x, None, prims.ctx_of(x))


def _is_float(x: Operand) -> bool:
    return dtypes.is_float(prims.result_type(x))


# ---- rounding: numpy 2 keeps ints (and bools) as they are ---------------------------

def _rounding(op: str):
    def handler(x: Operand) -> Tracer:
        return prims.unary(op, x) if _is_float(x) else _t(x)
    return handler


UFUNCS[np.floor] = _rounding("floor")
UFUNCS[np.ceil] = _rounding("ceil")


def _rint(x: Operand) -> Tracer:
    # np.rint is a float ufunc: an int array gives float64, a bool one float16
    x = prims.cast(_t(x), dtypes.float_result(prims.result_type(x)))
    return x.ctx.emit("round", x, decimals=0)


UFUNCS[np.rint] = _rint


@implements(np.round, np.around)
def round(a, decimals=0, out=None):
    """np.round: half to even; ints stay ints (rounded in float64 for decimals < 0, as
    numpy does), bools become float16 for decimals=0 (numpy refuses other decimals)."""
    _no_out(out)
    if not isinstance(decimals, (int, np.integer)) or isinstance(decimals, bool):
        raise UnsupportedError(f"np.round: decimals must be a Python int, got "
                               f"{type(decimals).__name__}",
                               hint="the number of decimals is fixed when tracing")
    x, decimals = _t(a), int(decimals)
    dt = x.value.type.dtype
    if dt == "bool":
        if decimals:
            raise UnsupportedError("np.round of a bool array with decimals != 0: numpy "
                                   "raises a casting error", hint="cast to float first")
        return _rint(x)
    if dt in dtypes.INTS:
        if decimals >= 0:
            return x
        wide = x.ctx.emit("round", prims.cast(x, "float64"), decimals=decimals)
        return prims.cast(wide, dt)
    return x.ctx.emit("round", x, decimals=decimals)


# ---- floored division: numpy's signs; an integer divisor of 0 gives 0 ---------------

def _floored(op: str):
    def handler(a: Operand, b: Operand) -> Tracer:
        if prims.result_type(a, b) == "bool":
            raise UnsupportedError(f"np.{op} of two bool arrays is not supported: numpy "
                                   "gives int8, which graphc has not",
                                   hint="cast to an integer or float dtype first")
        return prims.binary(op, a, b)
    return handler


floor_divide, remainder = _floored("floor_divide"), _floored("remainder")
UFUNCS[np.floor_divide] = floor_divide
UFUNCS[np.remainder] = remainder  # np.mod is the same ufunc
UFUNCS[np.divmod] = lambda a, b: (floor_divide(a, b), remainder(a, b))


# ---- float tests: composites (x != x is how numpy's isnan reads, and no pass folds it)

def _constant_mask(x: Tracer, value: bool) -> Tracer:
    # an int or bool array holds no nan or inf
    return prims.broadcast_to(prims.lift(value, "bool", x.ctx), x.shape)


def _isnan(x: Operand) -> Tracer:
    x = _t(x)
    return prims.compare("ne", x, x) if _is_float(x) else _constant_mask(x, False)


def _magnitude_test(op: str, otherwise: bool):
    def handler(x: Operand) -> Tracer:
        x = _t(x)
        if not _is_float(x):
            return _constant_mask(x, otherwise)
        # |x| == inf is isinf, |x| < inf is isfinite (nan compares false to both)
        return prims.compare(op, prims.unary("abs", x, float_only=False), math.inf)
    return handler


UFUNCS[np.isnan] = _isnan
UFUNCS[np.isinf] = _magnitude_test("eq", False)
UFUNCS[np.isfinite] = _magnitude_test("lt", True)


def _logaddexp(a: Operand, b: Operand) -> Tracer:
    """log(exp(a) + exp(b)) = hi + log1p(exp(lo - hi)) without overflow (the exp of a
    number <= 0 only). Both branches are that identity, exact for every a and b, so its
    derivatives (the softmax weights, 0.5 each at a tie) and second derivatives hold at
    ties too; equal infinities, whose difference is nan, add log 2 as numpy does."""
    ctx = prims.ctx_of(a, b)
    dt = dtypes.float_result(prims.result_type(a, b))
    work = "float32" if dt == "float16" else dt  # numpy's float16 loop runs in float32
    a, b = prims.lift(a, work, ctx), prims.lift(b, work, ctx)
    first = prims.compare("ge", a, b)  # false for a nan: then lo - hi is nan
    hi = prims.where(first, a, b)
    gap = prims.where(first, prims.binary("sub", b, a), prims.binary("sub", a, b))
    same_inf = prims.logical("logical_and", prims.compare("eq", a, b),
                             prims.compare("ne", gap, gap))
    gap = prims.where(same_inf, prims.lift(0.0, work, ctx), gap)
    tail = prims.unary("log1p", prims.unary("exp", gap))
    return prims.cast(prims.binary("add", hi, tail), dt)


UFUNCS[np.logaddexp] = _logaddexp


# ---- all / any: min / max of the array as bools -------------------------------------

def _all_any(op: str, empty: bool):
    def handler(a, axis=None, out=None, keepdims=False, *, where=None):
        _no_out(out)
        if where is not None:
            raise UnsupportedError("where= in np.all/np.any is not supported while "
                                   "tracing", hint="use np.all(mask | ~where) instead")
        x = _t(a)
        axes = prims.norm_axes(axis, x.ndim)
        if any(x.shape[i] == 0 for i in axes):  # the empty all is True, any False
            return prims.broadcast_to(prims.lift(empty, "bool", x.ctx),
                                      reduced_shape(x.shape, axes, keepdims))
        # to bool is x != 0 (nan is true, as in numpy)
        return prims.reduce(op, prims.cast(x, "bool"), axes, keepdims)
    return handler


FUNCTIONS[np.all] = _all_any("min", True)
FUNCTIONS[np.any] = _all_any("max", False)


@implements(np.argmin)
def argmin(a, axis=None, out=None, *, keepdims=False):
    """argmax of an order-reversing map that is exact: -x for floats (nan stays nan,
    the first one wins in both), -1 - x for ints (no overflow, unlike -x at INT_MIN),
    not x for bools. Ties keep the first index either way."""
    _no_out(out)
    x = _t(a)
    dt = x.value.type.dtype
    if dt == "bool":
        flipped = prims.logical("logical_not", x)
    elif dt in dtypes.INTS:
        flipped = prims.binary("sub", -1, x)
    else:
        flipped = prims.unary("neg", x, float_only=False)
    return argmax(flipped, axis, keepdims=keepdims)


# ---- methods and operators ----------------------------------------------------------

def _install() -> None:
    T = Tracer
    T.__floordiv__ = lambda a, b: floor_divide(a, b)
    T.__rfloordiv__ = lambda a, b: floor_divide(b, a)
    T.__mod__ = lambda a, b: remainder(a, b)
    T.__rmod__ = lambda a, b: remainder(b, a)
    T.__divmod__ = lambda a, b: UFUNCS[np.divmod](a, b)
    T.__rdivmod__ = lambda a, b: UFUNCS[np.divmod](b, a)
    T.round = lambda a, decimals=0, out=None: round(a, decimals, out)
    T.all = lambda a, axis=None, out=None, keepdims=False, *, where=None: FUNCTIONS[np.all](
        a, axis, out, keepdims, where=where)
    T.any = lambda a, axis=None, out=None, keepdims=False, *, where=None: FUNCTIONS[np.any](
        a, axis, out, keepdims, where=where)
    T.argmin = lambda a, axis=None, out=None, keepdims=False: argmin(a, axis, out,
                                                                     keepdims=keepdims)


_install()
