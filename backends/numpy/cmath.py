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
       ("tanhf", "float"): "gc_tanhf", ("sigmoidf", "float"): "gc_sigmoidf"}

# Max error in float32 ulp against float64 that each is documented to keep over the
# whole float32 range (subnormal results in units of the subnormal spacing), by the
# name `python -m graphc ulp` gives it (measured, 65,536 significands per binade: exp
# 0.99, log 1.18, log1p 1.28, expm1 1.23, tanh 1.38, sigmoid 2.14; the README has the
# table). sigmoid's is exp's carried through its quotient plus that quotient's rounding.
BOUNDS = {"exp": 1.5, "log": 2.0, "log1p": 2.0, "expm1": 2.0, "tanh": 2.0, "sigmoid": 3.0}


@functools.lru_cache(maxsize=1)
def source() -> str:
    """vmath.c's text: included once in a library that calls any of `OWN`."""
    return (Path(__file__).parent / "vmath.c").read_text()
