"""Elementwise primitives: unary math, binary arithmetic, comparisons, logic,
where and cast. Binary ops broadcast with numpy's rules; their inputs share one
dtype (the frontend inserts casts, see `graphc.dtypes`)."""
from __future__ import annotations

import math

import numpy as np

from graphc import dtypes
from graphc.errors import DtypeError, ShapeError
from graphc.ir.types import TensorType
from graphc.ops import Kind, OpDef, register

EW = Kind.ELEMENTWISE


def broadcast_shapes(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        shown = " and ".join(str(list(s)) for s in shapes)
        raise ShapeError(f"shapes {shown} do not broadcast",
                         hint="numpy broadcasting aligns shapes from the right; each "
                              "pair of dims must be equal or 1 (reshape or add an "
                              "axis with x[:, None])") from None


def _same_dtype(name: str, types) -> str:
    dts = {t.dtype for t in types}
    if len(dts) != 1:
        raise DtypeError(f"{name} needs inputs of one dtype, got {sorted(dts)}")
    return dts.pop()


def _check(name: str, dtype: str, allowed: str) -> None:
    ok = {"float": dtypes.FLOATS, "numeric": dtypes.FLOATS | dtypes.INTS,
          "bool": {"bool"}, "any": set(dtypes.DTYPES)}[allowed]
    if dtype not in ok:
        raise DtypeError(f"{name} does not accept {dtype} inputs ({allowed} only)")


def _unary_rule(name: str, allowed: str):
    def infer(ins, attrs):
        _check(name, ins[0].dtype, allowed)
        return (ins[0],)
    return infer


def _binary_rule(name: str, allowed: str, out_dtype: str | None = None):
    def infer(ins, attrs):
        dt = _same_dtype(name, ins)
        _check(name, dt, allowed)
        return (TensorType(broadcast_shapes(*(t.shape for t in ins)), out_dtype or dt),)
    return infer


def unary(name: str, impl, allowed: str = "float", differentiable: bool = True,
          doc: str = "") -> OpDef:
    return register(OpDef(name, (), _unary_rule(name, allowed), impl, EW, 1,
                          differentiable, doc))


def binary(name: str, impl, allowed: str = "numeric", out_dtype: str | None = None,
           differentiable: bool = True, doc: str = "") -> OpDef:
    return register(OpDef(name, (), _binary_rule(name, allowed, out_dtype), impl, EW, 2,
                          differentiable, doc))


def _sigmoid(x):
    # exp of a non-positive number only, so large |x| neither overflows nor loses 1s
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


_erf_scalar = np.frompyfunc(math.erf, 1, 1)


def _erf(x):
    # np.array: on a 0-d input the object ufunc returns a bare Python float
    return np.array(_erf_scalar(x), dtype=x.dtype)


def _rsqrt(x):
    return np.reciprocal(np.sqrt(x))


unary("neg", np.negative, "numeric")
unary("abs", np.abs, "numeric")
unary("sign", np.sign, "numeric", differentiable=False)
unary("exp", np.exp)
unary("expm1", np.expm1)
unary("log", np.log)
unary("log1p", np.log1p)
unary("sqrt", np.sqrt)
unary("rsqrt", _rsqrt, doc="1 / sqrt(x)")
unary("reciprocal", np.reciprocal, doc="1 / x")
unary("tanh", np.tanh)
unary("sigmoid", _sigmoid, doc="1 / (1 + exp(-x)), computed without overflow")
unary("sin", np.sin)
unary("cos", np.cos)
unary("erf", _erf, doc="the Gauss error function")
unary("logical_not", np.logical_not, "bool", differentiable=False)

binary("add", np.add)
binary("sub", np.subtract)
binary("mul", np.multiply)
binary("div", np.true_divide, "float")
binary("pow", np.power)
binary("maximum", np.maximum)
binary("minimum", np.minimum)
for _name, _impl in [("eq", np.equal), ("ne", np.not_equal), ("lt", np.less),
                     ("le", np.less_equal), ("gt", np.greater), ("ge", np.greater_equal)]:
    binary(_name, _impl, "any", out_dtype="bool", differentiable=False)
binary("logical_and", np.logical_and, "bool", differentiable=False)
binary("logical_or", np.logical_or, "bool", differentiable=False)


def _where_infer(ins, attrs):
    cond, a, b = ins
    if cond.dtype != "bool":
        raise DtypeError(f"where needs a bool condition, got {cond.dtype}")
    dt = _same_dtype("where", (a, b))
    return (TensorType(broadcast_shapes(cond.shape, a.shape, b.shape), dt),)


register(OpDef("where", (), _where_infer, np.where, EW, 3,
               doc="cond ? a : b, broadcasting all three"))


def _cast_infer(ins, attrs):
    return (TensorType(ins[0].shape, dtypes.canonical(attrs["dtype"])),)


def _cast(x, dtype):
    return x.astype(dtypes.to_numpy(dtype))


register(OpDef("cast", ("dtype",), _cast_infer, _cast, EW, 1,
               doc="convert to another dtype, as ndarray.astype does"))


# ---- rounding and floored division: numpy's own semantics -----------------------------
# The frontend passes integer inputs of floor/ceil/round through (numpy 2 keeps them),
# so these three are float-only; their derivative is zero almost everywhere, so they
# carry no gradient, as sign does. floor_divide and remainder floor the quotient for
# ints and floats alike (C's / and % truncate toward zero); an integer divisor of 0
# gives 0 and a float one gives a / b (inf or nan) and fmod's nan, as numpy does.

def power_of_ten(n: int) -> float:
    # numpy's round builds 10**n by repeated multiplication past 1e8: so do we
    ret = float(10 ** min(n, 8)) if n < 9 else 1e9
    for _ in range(n - 9):
        ret *= 10.0
    return ret


def _round_infer(ins, attrs):
    if not isinstance(attrs["decimals"], int) or isinstance(attrs["decimals"], bool):
        raise DtypeError(f"round: decimals must be an int, got {attrs['decimals']!r}")
    _check("round", ins[0].dtype, "float")
    return (ins[0],)


def _round(x, decimals):
    # np.round: rint (half to even) of x * 10**d, divided back, each step in x's dtype
    return np.asarray(np.round(x, decimals))


unary("floor", np.floor, differentiable=False)
unary("ceil", np.ceil, differentiable=False)
register(OpDef("round", ("decimals",), _round_infer, _round, EW, 1, differentiable=False,
               doc="np.round: half to even, at `decimals` places (as numpy computes it)"))
binary("floor_divide", np.floor_divide, differentiable=False,
       doc="a // b: the floor of the quotient; 0 for an integer b = 0")
binary("remainder", np.remainder, doc="a % b: takes the divisor's sign; 0 for an integer b = 0")
