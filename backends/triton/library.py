"""graphc's own Triton device functions: the math the elementwise forms call as
`lib.<name>(...)` where `tl` has no exact match that also runs under the interpreter.

Every function is a `@triton.jit` function of tensors (blocks or 0-d values) held in
their compute dtype (float32 for float16/bfloat16/float32 data, float64, int32,
int64), built from core `tl` operations only: no libdevice (the interpreter cannot run
it), no data-dependent Python control flow (branches are `tl.where`; the `if`s on a
dtype are resolved when the kernel is compiled). They follow numpy's semantics,
special values included.

Accuracy, measured under `TRITON_INTERPRET=1` over dense samples of the float32 range
(tests/triton/test_elementwise.py) against numpy in float64, in float32 ulps of the
exact result. No function here calls `tl.exp` or `tl.log` (hardware approximations
on a GPU, numpy's SIMD code under the interpreter): exp and log reduce the argument
themselves and evaluate polynomials, the others build on them, so the table holds
on both.

| function | measured | bound | why the bound                                          |
|----------|----------|-------|--------------------------------------------------------|
| exp      | 0.83     | 1.5   | 2**k (1 + expm1(r)): expm1(r)'s ulp, one rounding       |
| log      | 0.81     | 1.5   | e ln2 + log1p(m - 1): the series' ulp, split ln2's      |
| expm1    | 1.09     | 2     | Taylor-Horner below abs(x) = 1; beyond, the two terms   |
|          |          |       | of 2**k expm1(r) + (2**k - 1) never cancel              |
| log1p    | 1.06     | 2     | the series keeps x exact near 0; beyond, log's error    |
|          |          |       | plus the rounding of 1 + x, corrected                   |
| tanh     | 2.64     | 3     | -e / (2 + e), e = expm1(-2 abs(x)): expm1's 2, then     |
|          |          |       | the roundings of 2 + e and of the division              |
| sigmoid  | 1.86     | 2.5   | exp's ulp, 1 + e's half ulp, the division's half ulp    |
| pow      | 0.50     | 1     | float32 in float64 (error near 2**-45), one rounding    |
| rint, sign, floor_divide, remainder | 0 | 0 | numpy's algorithms step for step     |

float64 inputs use the same algorithms with float64 polynomials and constants, with
errors of the same size in float64 ulps, except pow: exp(y log x) in float64, whose
error grows with the condition number abs(y log x), about abs(y log x) + 2 ulp.
pow uses this exp and log (in float64 for float32 data); floor_divide and
remainder call Triton's float `%` (fmod; exact under the interpreter, LLVM's frem
lowering on a GPU, exact while the quotient fits the mantissa).

>>> import os; os.environ.setdefault("TRITON_INTERPRET", "1")  # doctest: +SKIP
>>> from graphc.backends.triton import library as lib  # doctest: +SKIP
>>> # a generated kernel: y = lib.expm1(tl.load(x_ptr + offs)).to(tl.float32)
"""
from __future__ import annotations

import triton
import triton.language as tl

# ---- sign ------------------------------------------------------------------------------


@triton.jit
def sign(x):
    """numpy's sign: -1, 0 or 1 in x's dtype; nan stays nan, -0.0 gives +0.0."""
    return tl.where(x > 0, 1, tl.where(x < 0, -1, tl.where(x == 0, 0, x)))


# ---- exponentials and logarithms -------------------------------------------------------


@triton.jit
def _expm1_low(p, x):
    # Horner over 1/10! .. 1/2!, the coefficients both precisions share
    p = p * x + 2.755731922398589e-07
    p = p * x + 2.7557319223985893e-06
    p = p * x + 2.48015873015873e-05
    p = p * x + 0.0001984126984126984
    p = p * x + 0.001388888888888889
    p = p * x + 0.008333333333333333
    p = p * x + 0.041666666666666664
    p = p * x + 0.16666666666666666
    p = p * x + 0.5
    return p


@triton.jit
def _expm1_taylor32(x):
    # x + x**2 (1/2! + x/3! + ... + x**9/11!): the tail past x**11 is below 2**-28 of
    # the result for abs(x) < 1; x itself is added last, exactly
    p = _expm1_low(2.505210838544172e-08 + 0 * x, x)
    return x + x * x * p


@triton.jit
def _expm1_taylor64(x):
    # as above to x**19/19!: the tail is below 2**-61 of the result
    p = 8.22063524662433e-18 + 0 * x
    p = p * x + 1.5619206968586225e-16
    p = p * x + 2.8114572543455206e-15
    p = p * x + 4.779477332387385e-14
    p = p * x + 7.647163731819816e-13
    p = p * x + 1.1470745597729725e-11
    p = p * x + 1.6059043836821613e-10
    p = p * x + 2.08767569878681e-09
    p = p * x + 2.505210838544172e-08
    return x + x * x * _expm1_low(p, x)


@triton.jit
def _expm1_small(x):
    if x.dtype == tl.float64:
        return _expm1_taylor64(x)
    else:
        return _expm1_taylor32(x)


@triton.jit
def _pow2(k, dtype: tl.constexpr):
    # 2**k for an integral float k in the dtype's normal exponent range, exactly,
    # from its bits (tl.exp2 is an approximation on a GPU)
    if dtype == tl.float64:
        return ((k.to(tl.int64) + 1023) << 52).to(tl.float64, bitcast=True)
    else:
        return ((k.to(tl.int32) + 127) << 23).to(tl.float32, bitcast=True)


@triton.jit
def _reduce(x):
    # x = k ln2 + r with abs(r) <= ln2 / 2: k ln2_hi is exact (ln2_hi has few
    # bits), so r carries only the rounding of k ln2_lo. x is clamped first to where
    # exp is finite and nonzero (the scale is applied in two halves, so k may
    # reach the denormals); the caller restores inf, 0 and nan
    if x.dtype == tl.float64:
        xc = tl.minimum(tl.maximum(x, -760.0), 710.0)
        k = tl.floor(xc * 1.4426950408889634 + 0.5)
        r = (xc - k * 0.6931471803691238) - k * 1.9082149292705877e-10
    else:
        xc = tl.minimum(tl.maximum(x, -110.0), 89.0)
        k = tl.floor(xc * 1.4426950408889634 + 0.5)
        r = (xc - k * 0.693359375) + k * 2.1219444005469057e-04
    return k, r


@triton.jit
def exp(x):
    """e**x within about an ulp from core arithmetic alone: 2**k (1 + expm1(r))
    after the reduction x = k ln2 + r."""
    k, r = _reduce(x)
    half = tl.floor(k * 0.5)
    # two power-of-two factors, so that the product rounds once into the denormals
    y = (_expm1_small(r) + 1) * _pow2(half, x.dtype) * _pow2(k - half, x.dtype)
    # the clamp made inf and -inf overflow and underflow; nan it lost
    return tl.where(x != x, x, y)


@triton.jit
def expm1(x):
    """exp(x) - 1 without the cancellation near 0: a Taylor polynomial for
    abs(x) < 1; beyond, 2**k expm1(r) + (2**k - 1) after x = k ln2 + r, whose two
    terms never cancel there."""
    k, r = _reduce(x)
    half = tl.floor(k * 0.5)
    s1 = _pow2(half, x.dtype)
    s2 = _pow2(k - half, x.dtype)
    # (p 2**h + (2**h - 2**(h-k))) 2**(k-h): the last product alone may overflow;
    # 2**h - 2**(h-k) is exact up to k = the mantissa's bits, beyond it is lost in
    # the rounding anyway
    big = (_expm1_small(r) * s1 + (s1 - 1 / s2)) * s2
    big = tl.where(x != x, x, big)
    return tl.where(tl.abs(x) < 1, _expm1_small(x), big)


@triton.jit
def _log1p_series(x, s):
    # log1p(x) = 2 atanh(s) with s = x / (2 + x); 2 s = x - s x, so
    # log1p(x) = x - s (x - 2 s**2 (1/3 + s**2/5 + ...)): x itself stays exact.
    # abs(s) <= 0.1716 here, s**2 <= 0.0295: 11 terms reach below 2**-57
    z = s * s
    if x.dtype == tl.float64:
        q = 0.043478260869565216 + 0 * z
        q = q * z + 0.047619047619047616
        q = q * z + 0.05263157894736842
        q = q * z + 0.058823529411764705
        q = q * z + 0.06666666666666667
        q = q * z + 0.07692307692307693
        q = q * z + 0.09090909090909091
        q = q * z + 0.1111111111111111
        q = q * z + 0.14285714285714285
        q = q * z + 0.2
        q = q * z + 0.3333333333333333
    else:
        q = 0.09090909090909091 + 0 * z
        q = q * z + 0.1111111111111111
        q = q * z + 0.14285714285714285
        q = q * z + 0.2
        q = q * z + 0.3333333333333333
    return x - s * (x - 2 * z * q)


@triton.jit
def _split(u):
    # u = m 2**e with sqrt(1/2) <= m < sqrt(2), from the bits of a positive finite u;
    # a denormal is scaled into the normals first
    if u.dtype == tl.float64:
        tiny = u < 2.2250738585072014e-308
        v = tl.where(tiny, u * 18014398509481984.0, u)  # 2**54
        bits = v.to(tl.int64, bitcast=True)
        e = (bits >> 52) - tl.where(tiny, 1023 + 54, 1023)
        m = ((bits & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000).to(tl.float64, bitcast=True)
    else:
        tiny = u < 1.1754943508222875e-38
        v = tl.where(tiny, u * 16777216.0, u)  # 2**24
        bits = v.to(tl.int32, bitcast=True)
        e = (bits >> 23) - tl.where(tiny, 127 + 24, 127)
        m = ((bits & 0x007FFFFF) | 0x3F800000).to(tl.float32, bitcast=True)
    high = m > 1.4142135623730951
    return tl.where(high, m * 0.5, m), tl.where(high, e + 1, e).to(u.dtype)


@triton.jit
def log1p(x):
    """log(1 + x), accurate near 0; -1 gives -inf, below -1 nan, inf inf. From
    core arithmetic alone (tl.log is an approximation on a GPU)."""
    # sqrt(1/2) - 1 < x < sqrt(2) - 1: the series in x itself; beyond, u = 1 + x
    # = m 2**e and log(u) = e ln2 + log1p(m - 1) (m - 1 is exact), corrected by the
    # rounding error of 1 + x, (x - (u - 1)) / u
    near = (x > -0.2928932188134524) & (x < 0.41421356237309503)
    series = _log1p_series(x, x / (2 + x))
    u = 1 + x
    return tl.where(near, series, _log_of(u, tl.where(u > 0, (x - (u - 1)) / u, 0)))


@triton.jit
def _log_of(u, corr):
    # log(u) + corr for a small correction corr: u = m 2**e, log(u) = e ln2 +
    # log1p(m - 1) with m - 1 exact and ln2 split in two; 0, negatives, inf and nan
    # as log gives them
    ok = (u > 0) & (u != float("inf"))
    m, e = _split(tl.where(ok, u, 1.0))
    f = m - 1
    if u.dtype == tl.float64:
        hi = e * 0.6931471803691238
        lo = e * 1.9082149292705877e-10
    else:
        hi = e * 0.693359375
        lo = e * -2.1219444005469057e-04
    result = hi + (_log1p_series(f, f / (2 + f)) + (lo + tl.where(ok, corr, 0)))
    edge = tl.where(u == 0, -float("inf"), tl.where(u > 0, u, float("nan")))
    return tl.where(ok, result, edge)


@triton.jit
def log(x):
    """The natural log within about an ulp, from core arithmetic alone."""
    return _log_of(x, 0.0 * x)


@triton.jit
def tanh(x):
    """tanh from expm1 of -2 abs(x): no cancellation near 0, and no overflow (the
    argument is never positive), so large abs(x) gives +-1."""
    e = expm1(-2 * tl.abs(x))
    t = -e / (2 + e)
    # x == 0 passes x through, so tanh(-0.0) is -0.0
    return tl.where(x == 0, x, tl.where(x < 0, -t, t))


@triton.jit
def sigmoid(x):
    """1 / (1 + exp(-x)) as graphc's reference computes it: exp of -abs(x) only, so
    neither sign overflows."""
    e = exp(-tl.abs(x))
    return tl.where(x >= 0, 1 / (1 + e), e / (1 + e))


# ---- powers ----------------------------------------------------------------------------


@triton.jit
def _signbit(x):
    # x < 0 misses -0.0; 1 / -0.0 is -inf
    return (x < 0) | ((x == 0) & ((1 / x) < 0))


@triton.jit
def _pow_float(x, y):
    # abs(x) ** y as exp(y log abs(x)), then C99's (numpy's) special cases: x ** 0 and
    # 1 ** y are 1 (nan too); a negative base takes an integral exponent's parity and
    # gives nan for a non-integral one, unless it is -0.0 or -inf
    x, y = tl.broadcast(x, y)  # the selects below want one shape
    ax = tl.abs(x)
    r = exp(y * log(ax))
    integral = tl.floor(y) == y
    half = y * 0.5
    odd = integral & (tl.floor(half) != half)
    neg = _signbit(x)
    finite_base = (ax != 0) & (ax != float("inf"))
    r = tl.where(neg & odd, -r, r)
    r = tl.where(neg & finite_base & ~integral, float("nan"), r)
    # (-1) ** +-inf is 1 as well, where exp(inf * 0) is nan
    one = (y == 0) | (x == 1) | ((x == -1) & (tl.abs(y) == float("inf")))
    return tl.where(one, 1, r)


@triton.jit
def _pow_int(x, y):
    # repeated squaring over every bit of y (no data-dependent trip count); the
    # products wrap as numpy's do, which is x ** y modulo 2**bits whatever the order.
    # numpy refuses a negative exponent; here it gives 0
    # every loop-carried value has the broadcast shape and x's dtype from the start
    base = x + 0 * y
    result = tl.where(y < 0, 0, 1) + 0 * base
    e = y + 0 * x
    for _ in range(x.dtype.primitive_bitwidth - 1):
        result = tl.where((e & 1) != 0, result * base, result)
        base = base * base
        e = e >> 1
    return result


@triton.jit
def pow(x, y):
    """numpy's power: floats with C99's special cases (float32 computed in float64,
    so within a rounding of the exact result), ints by repeated squaring."""
    if x.dtype.is_floating():
        if x.dtype == tl.float32:
            return _pow_float(x.to(tl.float64), y.to(tl.float64)).to(tl.float32)
        else:
            return _pow_float(x, y)
    else:
        return _pow_int(x, y)


# ---- rounding and floored division -----------------------------------------------------


@triton.jit
def rint(x):
    """Round to the nearest integer, half to even (numpy's rint), keeping x's sign
    on a zero result; inf and nan pass through."""
    f = tl.floor(x)
    d = x - f  # exact: below 2**(mantissa bits) x - floor(x) needs no rounding
    half = f * 0.5
    even = tl.floor(half) == half
    r = tl.where(d > 0.5, f + 1, tl.where(d < 0.5, f, tl.where(even, f, f + 1)))
    return tl.where(r == 0, x * 0, r)


@triton.jit
def _floor_divide_float(a, b):
    a, b = tl.broadcast(a, b)
    # numpy's npy_divmod step for step: fmod, the quotient corrected toward the
    # divisor's sign, snapped to an integer; `mod != 0` holds for nan, as numpy's does
    mod = a % b
    div = (a - mod) / b
    div = tl.where((mod != 0) & ((b < 0) != (mod < 0)), div - 1, div)
    floordiv = tl.floor(div)
    floordiv = tl.where(div - floordiv > 0.5, floordiv + 1, floordiv)
    q = a / b
    # a zero quotient takes the sign of a / b (q * 0 is +-0 for a finite q)
    floordiv = tl.where(div == 0, q * 0, floordiv)
    return tl.where(b == 0, q, floordiv)


@triton.jit
def _remainder_float(a, b):
    a, b = tl.broadcast(a, b)
    mod = a % b
    zero = tl.where(b < 0, -tl.abs(mod), tl.abs(mod))  # +-0 with the divisor's sign
    moved = tl.where((b < 0) != (mod < 0), mod + b, mod)
    return tl.where(b == 0, mod, tl.where(mod == 0, zero, moved))


@triton.jit
def _floor_divide_int(a, b):
    a, b = tl.broadcast(a, b)
    # C's / truncates and is undefined for b == 0 and for INT_MIN / -1: divide by a
    # safe divisor, then give numpy's 0 and its wrapping negation for those two
    safe = tl.where((b == 0) | (b == -1), 1, b)
    q = a // safe
    r = a % safe
    q = tl.where((r != 0) & ((r < 0) != (safe < 0)), q - 1, q)
    return tl.where(b == 0, 0, tl.where(b == -1, 0 - a, q))


@triton.jit
def _remainder_int(a, b):
    a, b = tl.broadcast(a, b)
    safe = tl.where((b == 0) | (b == -1), 1, b)
    r = a % safe
    r = tl.where((r != 0) & ((r < 0) != (safe < 0)), r + safe, r)
    return tl.where((b == 0) | (b == -1), 0, r)


@triton.jit
def floor_divide(a, b):
    """numpy's a // b: floors the quotient; an integer b = 0 gives 0, a float one
    a / b."""
    if a.dtype.is_floating():
        return _floor_divide_float(a, b)
    else:
        return _floor_divide_int(a, b)


@triton.jit
def remainder(a, b):
    """numpy's a % b: takes the divisor's sign; an integer b = 0 gives 0, a float one
    nan."""
    if a.dtype.is_floating():
        return _remainder_float(a, b)
    else:
        return _remainder_int(a, b)


@triton.jit
def round_bfloat16(x):
    """float32 `x` rounded to the nearest bfloat16 (ties to even), held in float32. The
    interpreter's own float32 -> bfloat16 conversion truncates, which would leave the
    kernels' bfloat16 numbers a machine's choice: this is the same on both."""
    bits = x.to(tl.uint32, bitcast=True)
    lsb = (bits >> 16) & 1
    kept = (bits + 0x7FFF + lsb) & 0xFFFF0000
    return tl.where(x != x, x, kept.to(tl.float32, bitcast=True))
