"""numpy's floored division and remainder as C helper functions for native kernels.

C's `/` and `%` truncate toward zero and are undefined for a zero divisor (and for
INT_MIN / -1); numpy floors, gives 0 for an integer divisor of 0, wraps INT_MIN // -1
to INT_MIN, and for floats follows its `npy_divmod` (fmod, then a correction toward
the divisor's sign, then the quotient snapped to an integer). Each helper below is
that algorithm written out for one C type, so a native kernel gives numpy's bits:

    >>> print(helper("gc_remainder_int32_t").splitlines()[0])
    static inline int32_t gc_remainder_int32_t(int32_t a, int32_t b) {

A kernel calls `gc_<op>_<ctype>(a, b)`; `native.library_source` defines the helpers
the kernels of a library use, once, before them.
"""
from __future__ import annotations

_UNSIGNED = {"int32_t": "uint32_t", "int64_t": "uint64_t"}
_MATH_SUFFIX = {"float": "f", "double": ""}


def name(op: str, ctype: str) -> str:
    """The helper computing `op` (floor_divide or remainder) on `ctype` operands."""
    return f"gc_{op}_{ctype}"


def _int_helpers(t: str) -> dict[str, str]:
    u = _UNSIGNED[t]
    return {
        # b == -1 is a negation (wrapping, as numpy's INT_MIN // -1 does); C's / may not
        # see it or 0. q - 1 where the truncated quotient left a remainder of the other sign
        name("floor_divide", t): f"""\
static inline {t} {name("floor_divide", t)}({t} a, {t} b) {{
  if (b == 0) return 0;
  if (b == -1) return ({t})(({u})0 - ({u})a);
  const {t} q = a / b, r = a % b;
  return q - ((r != 0) & ((r < 0) != (b < 0)));
}}""",
        name("remainder", t): f"""\
static inline {t} {name("remainder", t)}({t} a, {t} b) {{
  if (b == 0 || b == -1) return 0;
  const {t} r = a % b;
  return (r != 0 && (r < 0) != (b < 0)) ? r + b : r;
}}""",
    }


def _float_helpers(t: str) -> dict[str, str]:
    f = _MATH_SUFFIX[t]
    # numpy's npy_divmod, line for line: `mod != 0` and `div != 0` are true for NaN,
    # as its `if (mod)` and `if (div)` are
    return {
        name("floor_divide", t): f"""\
static inline {t} {name("floor_divide", t)}({t} a, {t} b) {{
  if (b == 0) return a / b;
  {t} mod = fmod{f}(a, b);
  {t} div = (a - mod) / b;
  if (mod != 0 && (b < 0) != (mod < 0)) div -= 1;
  if (div == 0) return copysign{f}(0, a / b);
  {t} floordiv = floor{f}(div);
  if (div - floordiv > 0.5{f}) floordiv += 1;
  return floordiv;
}}""",
        name("remainder", t): f"""\
static inline {t} {name("remainder", t)}({t} a, {t} b) {{
  {t} mod = fmod{f}(a, b);
  if (b == 0) return mod;
  if (mod == 0) return copysign{f}(0, b);
  if ((b < 0) != (mod < 0)) mod += b;
  return mod;
}}""",
    }


HELPERS: dict[str, str] = {}
for _t in _UNSIGNED:
    HELPERS.update(_int_helpers(_t))
for _t in _MATH_SUFFIX:
    HELPERS.update(_float_helpers(_t))


def helper(helper_name: str) -> str:
    """The C definition of one helper."""
    return HELPERS[helper_name]
