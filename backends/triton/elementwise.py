"""The Triton forms of graphc's elementwise primitives: `ELEMENTWISE[op]`.

A form is `form(args, attrs, ins, out) -> str`: a Triton expression computing the op
from its argument expressions (names of values in their compute dtype: float32 for
float16/bfloat16/float32, float64, int32, int64, tl.int1 for bool), giving a value in
`out`'s compute dtype. The generator rounds a float16/bfloat16 result to its dtype
after each node. The semantics are numpy's, as `OPS[op].impl` defines them; where `tl`
has no exact match, the form calls graphc's device library (`lib`, see `library`).

>>> from graphc.ir.types import TensorType
>>> f32 = TensorType((4,), "float32")
>>> ELEMENTWISE["add"](["a", "b"], {}, [f32, f32], f32)
'(a + b)'
>>> ELEMENTWISE["div"](["a", "b"], {}, [f32, f32], f32)
'tl.math.div_rn(a, b)'

Decisions a user can see:
- div, reciprocal, rsqrt and sqrt are IEEE-rounded (float32 through `div_rn` and
  `sqrt_rn`), as numpy's are; Triton's plain `/` and `tl.sqrt` on float32 are
  approximations on a GPU.
- exp and log are graphc's own (`lib.exp`, `lib.log`, within 1.5 ulp), not tl.exp and
  tl.log, which on a GPU are the hardware's approximations (tl.exp's error grows with
  abs(x), tl.log's near 1); a few more flops in kernels that are memory-bound.
- maximum/minimum propagate nan (numpy's rule); of +0.0 and -0.0 they give IEEE's
  answer (+0.0 for maximum), where numpy's own answer varies with its SIMD path.
- a float cast to an int out of the int's range (or nan) gives the int's minimum, as
  numpy does on x86; an integer power with a negative exponent (numpy raises) gives 0.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from graphc import dtypes
from graphc.backends.triton.emit import TL_DTYPES, compute_dtype, rounded
from graphc.ir.types import TensorType
from graphc.ops.elementwise import power_of_ten

Form = Callable[[list[str], Any, list[TensorType], TensorType], str]

# dtype -> the tl dtype a kernel holds its values in (the generator upcasts the
# 16-bit floats on load), and the one it stores: emit.py's table
STORAGE = TL_DTYPES
COMPUTE = {name: compute_dtype(name) for name in TL_DTYPES}
_NARROW = frozenset({"float16", "bfloat16"})


def literal(value: float, dtype: str) -> str:
    """A float constant as a Triton expression of `dtype`'s compute type: plain Python
    when the literal means the same in every dtype, a typed `tl.full` otherwise
    (Triton types a bare literal float32, or float64 beyond float32's range).

    >>> literal(0.5, "float64"), literal(1e-300, "float64"), literal(math.inf, "float32")
    ('0.5', 'tl.full([], 1e-300, tl.float64)', "float('inf')")
    """
    if math.isnan(value) or math.isinf(value):
        return f"float('{value}')"
    if float(np.float32(value)) == value and (value == 0 or 2**-126 <= abs(value) < 2**128):
        return repr(value)
    return f"tl.full([], {value!r}, {COMPUTE[dtype]})"


def round_to(expr: str, dtype: str) -> str:
    """`expr` rounded to `dtype`'s storage and held in its compute type again: numpy
    takes every step of a float16 computation in float16."""
    return rounded(expr, dtype) if dtype in _NARROW else expr


# ---- form builders: one per shape of expression ---------------------------------------

def infix(op: str) -> Form:
    return lambda a, attrs, ins, out: f"({a[0]} {op} {a[1]})"


def call(fn: str) -> Form:
    return lambda a, attrs, ins, out: f"{fn}({', '.join(a)})"


def ordering(op: str) -> Form:
    # tl.int1 is a signed 1-bit int (True is -1), so bools compare as int32
    def form(a, attrs, ins, out):
        if ins[0].dtype == "bool":
            return f"({a[0]}.to(tl.int32) {op} {a[1]}.to(tl.int32))"
        return f"({a[0]} {op} {a[1]})"
    return form


def extreme(fn: str) -> Form:
    def form(a, attrs, ins, out):
        if dtypes.is_float(ins[0].dtype):
            return f"{fn}({a[0]}, {a[1]}, propagate_nan=tl.PropagateNan.ALL)"
        return f"{fn}({a[0]}, {a[1]})"
    return form


def ieee_div(x: str, y: str, dtype: str) -> str:
    """x / y rounded as IEEE rounds it: float64's `/` is; float32's needs div_rn
    (which takes float32 only)."""
    return f"({x} / {y})" if dtype == "float64" else f"tl.math.div_rn({x}, {y})"


def ieee_sqrt(x: str, dtype: str) -> str:
    return f"tl.sqrt({x})" if dtype == "float64" else f"tl.sqrt_rn({x})"


def _reciprocal(a, attrs, ins, out):
    return ieee_div("1.0", a[0], out.dtype)


def _rsqrt(a, attrs, ins, out):
    # graphc's reference is 1 / sqrt(x), two IEEE roundings
    return ieee_div("1.0", ieee_sqrt(a[0], out.dtype), out.dtype)


def _sqrt(a, attrs, ins, out):
    return ieee_sqrt(a[0], out.dtype)


def _round(a, attrs, ins, out):
    """np.round's own steps: rint(x * 10**d) / 10**d (rint(x / 10**-d) * 10**-d for
    d < 0), each in x's dtype, with 10**d rounded to that dtype first (so float16
    gives nan from d = 5 on, as numpy does)."""
    d, x, dt = attrs["decimals"], a[0], out.dtype
    if d == 0:
        return f"lib.rint({x})"
    scale = float(np.asarray(power_of_ten(abs(d))).astype(_numpy_storage(dt)))
    s = literal(scale, dt)
    if d > 0:
        return ieee_div(f"lib.rint({round_to(f'({x} * {s})', dt)})", s, dt)
    return f"(lib.rint({round_to(ieee_div(x, s, dt), dt)}) * {s})"


def _numpy_storage(dt: str) -> np.dtype:
    # numpy has no bfloat16: its scale is rounded as a float32 would round it; the
    # product is rounded to bfloat16 by round_to
    return np.dtype("float32") if dt == "bfloat16" else np.dtype(dt)


# the range of each int dtype a float truncates into: [-2**(bits-1), 2**(bits-1))
_INT_LIMIT = {"int32": 2.0**31, "int64": 2.0**63}


def _cast(a, attrs, ins, out):
    """ndarray.astype: floats truncate toward 0 into ints, anything to bool is
    x != 0; a float out of an int's range (nan too) gives the int's minimum, which
    the select keeps the conversion itself from seeing (it is undefined there)."""
    src, dst, x = ins[0].dtype, dtypes.canonical(attrs["dtype"]), a[0]
    if dst == src:
        return x
    if dst == "bool":
        return f"({x} != 0)"
    if dtypes.is_float(src) and dst in _INT_LIMIT:
        lim = literal(_INT_LIMIT[dst], src)
        ok = f"(({x} >= -{lim}) & ({x} < {lim}))"
        return (f"tl.where({ok}, tl.where({ok}, {x}, 0).to({STORAGE[dst]}), "
                f"{-int(_INT_LIMIT[dst])})")
    if dst in _NARROW:  # one rounding, from the source straight to 16 bits
        return f"{x}.to({STORAGE[dst]}).to(tl.float32)"
    return f"{x}.to({COMPUTE[dst]})"


def _div(a, attrs, ins, out):
    return ieee_div(a[0], a[1], out.dtype)


ELEMENTWISE: dict[str, Form] = {
    # unary
    "neg": lambda a, attrs, ins, out: f"(-{a[0]})",
    "abs": call("tl.abs"),
    "sign": call("lib.sign"),
    "exp": call("lib.exp"),
    "expm1": call("lib.expm1"),
    "log": call("lib.log"),
    "log1p": call("lib.log1p"),
    "sqrt": _sqrt,
    "rsqrt": _rsqrt,
    "reciprocal": _reciprocal,
    "tanh": call("lib.tanh"),
    "sigmoid": call("lib.sigmoid"),
    "sin": call("tl.sin"),
    "cos": call("tl.cos"),
    "erf": call("tl.erf"),
    "logical_not": lambda a, attrs, ins, out: f"({a[0]} == 0)",
    "floor": call("tl.floor"),
    "ceil": call("tl.ceil"),
    "round": _round,
    "cast": _cast,
    # binary
    "add": infix("+"),
    "sub": infix("-"),
    "mul": infix("*"),
    "div": _div,
    "pow": call("lib.pow"),
    "maximum": extreme("tl.maximum"),
    "minimum": extreme("tl.minimum"),
    "eq": infix("=="),
    "ne": infix("!="),
    "lt": ordering("<"),
    "le": ordering("<="),
    "gt": ordering(">"),
    "ge": ordering(">="),
    "logical_and": infix("&"),
    "logical_or": infix("|"),
    "floor_divide": call("lib.floor_divide"),
    "remainder": call("lib.remainder"),
    # ternary
    "where": call("tl.where"),
}
