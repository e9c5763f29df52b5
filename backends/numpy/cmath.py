"""graphc's own float32 math functions for native kernels (`vmath.c`), where glibc's
would make the speed depend on the values.

glibc's vector functions (libmvec) take a scalar path for every lane that is special
to them: an `expf` whose result underflows, a `sinf` of a large argument, a `logf` of a
subnormal. Softmax over logits of std 30 ran 18x slower than over logits of std 1,
and a user's logits late in training look like the std-30 case. The functions in
`vmath.c` are branch-free and never compute with a subnormal float, so every input
costs the same; their accuracy over the whole float32 range is in the README (`python
-m graphc ulp`), and tests/test_cmath.py checks it at the bound `BOUNDS` states. float64 kernels keep glibc's functions.

>>> OWN[("expf", "float")]
'gc_expf'
>>> "static inline float gc_expf(float x)" in source()
True
"""
from __future__ import annotations

import functools
from pathlib import Path

# (libm's C name, C type) -> graphc's function in vmath.c that replaces it
OWN = {("expf", "float"): "gc_expf", ("logf", "float"): "gc_logf",
       ("log1pf", "float"): "gc_log1pf", ("expm1f", "float"): "gc_expm1f",
       ("tanhf", "float"): "gc_tanhf", ("sigmoidf", "float"): "gc_sigmoidf",
       ("erff", "float"): "gc_erff", ("powf", "float"): "gc_powf",
       ("sinf", "float"): "gc_sinf", ("cosf", "float"): "gc_cosf"}

# Max error in float32 ulp against float64 that each is documented to keep over the
# whole float32 range (subnormal results in units of the subnormal spacing), by the
# name `python -m graphc ulp` gives it (measured, 65,536 significands per binade: exp
# 0.99, log 1.18, log1p 1.28, expm1 1.23, tanh 1.38, sigmoid 2.14; the README has the
# table). sigmoid's is exp's carried through its quotient plus that quotient's rounding.
# erf, sin and cos: measured over every float32, with FMA and without (x86-64): erf
# 1.28 and 1.19, sin and cos 1.79 and 2.03 (the reduction is exact to ~2^-50 relative;
# the float polynomial and its argument's rounding make the rest). pow, computed in
# double (0.5 of it the final rounding): 0.53 on every target over x of every exponent
# against 20 exponents, 0.55 over 200M random pairs with results across the range; its
# bound covers the two-argument inputs no sweep exhausts.
BOUNDS = {"exp": 1.5, "log": 2.0, "log1p": 2.0, "expm1": 2.0, "tanh": 2.0, "sigmoid": 3.0,
          "erf": 2.0, "pow": 1.0, "sin": 2.5, "cos": 2.5}


@functools.lru_cache(maxsize=1)
def source() -> str:
    """vmath.c's text: included once in a library that calls any of `OWN`."""
    return (Path(__file__).parent / "vmath.c").read_text()
