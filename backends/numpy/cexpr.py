"""C expressions of primitives, for the numpy backend's native kernels.

A C form is `form(dt, args, math, attrs) -> str | None`: the dtype of the op's
(last) input, its operands as C expressions, the set that collects the C functions
the expression calls (`fn` adds to it), and the node's attributes. It returns None
where C would not match numpy (an integer power, a float-to-int overflow); the group
then runs as a numpy kernel. The forms here are the building blocks the entries of
`lowering.LOWERINGS` use.

>>> used = set()
>>> math_fn("log")("float32", ["x"], used, {}), sorted(used)
('logf(x)', [('logf', 'float', 1)])
>>> math_fn("exp")("float32", ["x"], used, {})  # graphc's own (backends/numpy/cmath.py)
'gc_expf(x)'

"""
from __future__ import annotations

from typing import Callable

from graphc import dtypes
from graphc.backends.numpy import cdivision, cmath
from graphc.backends.numpy.literals import c_double, py
from graphc.ops.elementwise import power_of_ten

CTYPE = {"float32": "float", "float64": "double", "int32": "int32_t", "int64": "int64_t",
         "bool": "uint8_t"}
UNSIGNED = {"int32": "uint32_t", "int64": "uint64_t"}
FLOATS = ("float32", "float64")


def fn(name: str, dt: str, math: set, arity: int = 1) -> str:
    """The C math function `name` for dtype `dt` (expf for float32), recorded as used;
    graphc's own where libm's speed would depend on the values (cmath.OWN)."""
    full = name + ("f" if dt == "float32" else "")
    full = cmath.OWN.get((full, CTYPE[dt]), full)
    math.add((full, CTYPE[dt], arity))
    return full


def math_fn(name: str) -> Callable:
    def lower(dt, a, math, attrs):
        if dt not in FLOATS:
            return None
        return f"{fn(name, dt, math)}({a[0]})"
    return lower


def arith(op: str) -> Callable:
    def lower(dt, a, math, attrs):
        if dt in UNSIGNED:  # wrap around as numpy does; signed overflow is undefined in C
            u = UNSIGNED[dt]
            return f"({CTYPE[dt]})(({u}){a[0]} {op} ({u}){a[1]})"
        return f"({a[0]} {op} {a[1]})" if dt in FLOATS else None
    return lower


def neg(dt, a, math, attrs=None):
    if dt in UNSIGNED:
        return f"({CTYPE[dt]})(({UNSIGNED[dt]})0 - ({UNSIGNED[dt]}){a[0]})"
    return f"(-{a[0]})" if dt in FLOATS else None


def abs_(dt, a, math, attrs):
    if dt in FLOATS:
        return f"{fn('fabs', dt, math)}({a[0]})"
    if dt in UNSIGNED:
        return f"({a[0]} < 0 ? {neg(dt, a, math)} : {a[0]})"
    return None


def sign(dt, a, math, attrs):
    t = CTYPE.get(dt)
    if dt in FLOATS:  # NaN passes through; -0.0 becomes +0.0, as numpy's sign gives
        return (f"({a[0]} > 0 ? ({t})1 : {a[0]} < 0 ? ({t})-1 : "
                f"{a[0]} == 0 ? ({t})0 : {a[0]})")
    return f"({t})(({a[0]} > 0) - ({a[0]} < 0))" if dt in UNSIGNED else None


def float_only(template: str) -> Callable:
    def lower(dt, a, math, attrs):
        if dt not in FLOATS:
            return None
        return template.format(*a, t=CTYPE[dt], sqrt=fn("sqrt", dt, math) if
                               "{sqrt}" in template else "")
    return lower


def div(dt, a, math, attrs):
    """a / b. In float32: a times b's reciprocal, both in double, rounded once to float.
    No operand or result is then ever a float32 subnormal, which x86 divides in
    microcode, 15x slower per vector: softmax's quotient of an underflowed exp by its
    row sum made the speed depend on the logits. The quotient is still numpy's,
    correctly rounded: the double steps err by under 2**-52 relative, less than a
    float32 quotient's distance from a rounding midpoint (a quotient of 24-bit numbers
    is never one, and not nearer than about 2**-49), so the last rounding goes the same
    way (tests/test_cmath.py checks it bit for bit, subnormals, zeros and infinities
    included). A row's divisor is loop-invariant: its reciprocal is hoisted, and the
    loop multiplies."""
    if dt == "float64":
        return f"({a[0]} / {a[1]})"
    if dt != "float32":
        return None
    return f"(float)((double)({a[0]}) * (1.0 / (double)({a[1]})))"


def sigmoid(dt, a, math, attrs):
    if dt == "float32":  # the same expression, as one function of vmath.c
        return f"{fn('sigmoid', dt, math)}({a[0]})"
    if dt not in FLOATS:
        return None
    t, x = CTYPE[dt], a[0]
    e = f"{fn('exp', dt, math)}(-{fn('fabs', dt, math)}({x}))"
    # exp of a non-positive number only, as the reference does: no overflow
    one_plus = f"(({t})1 + {e})"
    return (f"({x} >= 0 ? {div(dt, [f'({t})1', one_plus], math, attrs)} : "
            f"{div(dt, [e, one_plus], math, attrs)})")


def extreme(cmp: str) -> Callable:
    def lower(dt, a, math, attrs):
        x, y = a
        if dt in FLOATS:  # numpy's maximum/minimum propagate a NaN from either side
            return f"(({x} {cmp}= {y} || {x} != {x}) ? {x} : {y})"
        return f"({x} {cmp} {y} ? {x} : {y})"
    return lower


def compare(op: str) -> Callable:
    return lambda dt, a, math, attrs: f"(uint8_t)({a[0]} {op} {a[1]})"


def pow_(dt, a, math, attrs):
    return f"{fn('pow', dt, math, 2)}({a[0]}, {a[1]})" if dt in FLOATS else None


def divmod_(op: str) -> Callable:
    def lower(dt, a, math, attrs):  # numpy's floored semantics: see cdivision
        helper = cdivision.name(op, CTYPE[dt])
        math.add((helper, CTYPE[dt], 2))
        return f"{helper}({a[0]}, {a[1]})"
    return lower


def round_(dt: str, a: list[str], math: set, attrs) -> str | None:
    """np.round: rint (half to even in the default rounding mode) of x * 10**d,
    divided back, in x's type, as numpy's steps are."""
    if dt not in FLOATS:
        return None
    decimals, x = attrs["decimals"], a[0]
    py(decimals)  # an int, or VerifyError
    rint = fn("rint", dt, math)
    if decimals == 0:
        return f"{rint}({x})"
    scale = f"(({CTYPE[dt]}){c_double(power_of_ten(abs(decimals)))})"
    return f"({rint}({x} * {scale}) / {scale})" if decimals > 0 else \
        f"({rint}({x} / {scale}) * {scale})"


def cast(dt: str, a: list[str], math: set, attrs) -> str | None:
    dst = dtypes.canonical(attrs["dtype"])
    if dst == "bool":
        return f"(uint8_t)({a[0]} != 0)"
    if dt in FLOATS and dst not in FLOATS:
        return None  # out-of-range float to int is undefined in C; numpy gives a value
    return f"({CTYPE[dst]}){a[0]}"
