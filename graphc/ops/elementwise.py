"""Elementwise primitives: unary math, binary arithmetic, comparisons, logic,
where and cast. Binary ops broadcast with numpy's rules; their inputs share one
dtype (the frontend inserts casts, see `graphc.dtypes`)."""
from __future__ import annotations

import math

import numpy as np

from graphc import dtypes
from graphc.errors import DtypeError, ShapeError
from graphc.ir.symbols import is_static
from graphc.ir.types import TensorType
from graphc.ops import Domain, Kind, OpDef, Rounding, register
from graphc.ops.schema import DTYPE, Attr

EW = Kind.ELEMENTWISE
R = Rounding
# the dtype classes of the family's rules, by the name their error messages use
ACCEPTS = {"float": frozenset(dtypes.FLOATS), "numeric": frozenset(dtypes.FLOATS | dtypes.INTS),
           "bool": frozenset({"bool"}), "any": frozenset(dtypes.DTYPES)}


def broadcast_shapes(*shapes: tuple) -> tuple:
    """numpy's broadcast of the shapes; a symbolic size is never 1 (symbols.MIN_SIZE),
    so it broadcasts a 1 and must equal any other size (a guard, while tracing)."""
    if all(is_static(s) for s in shapes):
        try:
            return tuple(np.broadcast_shapes(*shapes))
        except ValueError:
            raise _not_broadcast(shapes) from None
    rank = max(map(len, shapes))
    out = []
    for k in range(rank):
        dims = [s[len(s) - rank + k] for s in shapes if len(s) - rank + k >= 0]
        big = [d for d in dims if not (type(d) is int and d == 1)]
        if any(d != big[0] for d in big[1:]):
            raise _not_broadcast(shapes)
        out.append(big[0] if big else 1)
    return tuple(out)


def _not_broadcast(shapes) -> ShapeError:
    shown = " and ".join("[" + ", ".join(map(str, s)) + "]" for s in shapes)
    return ShapeError(f"shapes {shown} do not broadcast",
                      hint="numpy broadcasting aligns shapes from the right; each "
                           "pair of dims must be equal or 1 (reshape or add an "
                           "axis with x[:, None])")


def _same_dtype(name: str, types) -> str:
    dts = {t.dtype for t in types}
    if len(dts) != 1:
        raise DtypeError(f"{name} needs inputs of one dtype, got {sorted(dts)}")
    return dts.pop()


def _check(name: str, dtype: str, allowed: str) -> None:
    if dtype not in ACCEPTS[allowed]:
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
          doc: str = "", rounding: Rounding = R.TRANSCENDENTAL,
          domain: Domain = Domain()) -> OpDef:
    """Register an elementwise op of one input that keeps its type; `allowed` is a
    key of `ACCEPTS`.

    >>> from graphc.ops import OPS
    >>> OPS["exp"].dtypes == ACCEPTS["float"], OPS["exp"].rounding.value
    (True, 'transcendental')
    """
    return register(OpDef(name, (), _unary_rule(name, allowed), impl, EW, 1,
                          differentiable, doc, dtypes=ACCEPTS[allowed], rounding=rounding,
                          domain=domain))


def binary(name: str, impl, allowed: str = "numeric", out_dtype: str | None = None,
           differentiable: bool = True, doc: str = "", rounding: Rounding = R.HALF_ULP,
           domain: Domain | tuple[Domain, ...] = Domain()) -> OpDef:
    """Register a broadcasting elementwise op of two inputs of one dtype."""
    return register(OpDef(name, (), _binary_rule(name, allowed, out_dtype), impl, EW, 2,
                          differentiable, doc, dtypes=ACCEPTS[allowed], rounding=rounding,
                          domain=domain))


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


I = Domain.interval
unary("neg", np.negative, "numeric", rounding=R.EXACT)
unary("abs", np.abs, "numeric", rounding=R.EXACT)
unary("sign", np.sign, "numeric", differentiable=False, rounding=R.STEP)
unary("exp", np.exp, domain=I(-4, 4))
unary("expm1", np.expm1, domain=I(-2, 2))
unary("log", np.log, domain=Domain.positive(0.05, 8))
unary("log1p", np.log1p, domain=I(-0.9, 8))
unary("sqrt", np.sqrt, rounding=R.HALF_ULP, domain=I(0, 8))
# two roundings (sqrt, then 1/x): ~1 ulp, counted as a transcendental's
unary("rsqrt", _rsqrt, doc="1 / sqrt(x)", domain=Domain.positive(0.05, 8))
unary("reciprocal", np.reciprocal, doc="1 / x", rounding=R.HALF_ULP,
      domain=Domain.nonzero(0.25, 4))
unary("tanh", np.tanh, domain=I(-4, 4))
unary("sigmoid", _sigmoid, doc="1 / (1 + exp(-x)), computed without overflow",
      domain=I(-8, 8))
unary("sin", np.sin, domain=I(-4, 4))
unary("cos", np.cos, domain=I(-4, 4))
unary("erf", _erf, doc="the Gauss error function")
unary("logical_not", np.logical_not, "bool", differentiable=False, rounding=R.EXACT)

binary("add", np.add)
binary("sub", np.subtract)
binary("mul", np.multiply)
binary("div", np.true_divide, "float", domain=(Domain(), Domain.nonzero(0.25, 4)))
# float bases positive (a float exponent of a negative base is nan)
binary("pow", np.power, rounding=R.TRANSCENDENTAL, domain=(I(0.1, 3), I(-2, 2)))
binary("maximum", np.maximum, rounding=R.EXACT)
binary("minimum", np.minimum, rounding=R.EXACT)
for _name, _impl in [("eq", np.equal), ("ne", np.not_equal), ("lt", np.less),
                     ("le", np.less_equal), ("gt", np.greater), ("ge", np.greater_equal)]:
    binary(_name, _impl, "any", out_dtype="bool", differentiable=False, rounding=R.STEP)
binary("logical_and", np.logical_and, "bool", differentiable=False, rounding=R.EXACT)
binary("logical_or", np.logical_or, "bool", differentiable=False, rounding=R.EXACT)


def _where_infer(ins, attrs):
    cond, a, b = ins
    if cond.dtype != "bool":
        raise DtypeError(f"where needs a bool condition, got {cond.dtype}")
    dt = _same_dtype("where", (a, b))
    return (TensorType(broadcast_shapes(cond.shape, a.shape, b.shape), dt),)


register(OpDef("where", (), _where_infer, np.where, EW, 3,
               doc="cond ? a : b, broadcasting all three", rounding=R.EXACT))


def _cast_infer(ins, attrs):
    return (TensorType(ins[0].shape, dtypes.canonical(attrs["dtype"])),)


def _cast(x, dtype):
    return x.astype(dtypes.to_numpy(dtype))


register(OpDef("cast", {"dtype": DTYPE}, _cast_infer, _cast, EW, 1,
               doc="convert to another dtype, as ndarray.astype does", rounding=R.HALF_ULP))


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


# beyond +-400 places every float rounds to itself (or to 0, inf or nan); the bound
# keeps power_of_ten's loop short
DECIMALS = Attr("int", lo=-10_000, hi=10_000)
unary("floor", np.floor, differentiable=False, rounding=R.STEP)
unary("ceil", np.ceil, differentiable=False, rounding=R.STEP)
register(OpDef("round", {"decimals": DECIMALS}, _round_infer, _round, EW, 1, differentiable=False,
               doc="np.round: half to even, at `decimals` places (as numpy computes it)",
               dtypes=ACCEPTS["float"], rounding=R.STEP))
binary("floor_divide", np.floor_divide, differentiable=False, rounding=R.STEP,
       doc="a // b: the floor of the quotient; 0 for an integer b = 0")
binary("remainder", np.remainder, rounding=R.STEP,
       doc="a % b: takes the divisor's sign; 0 for an integer b = 0")
