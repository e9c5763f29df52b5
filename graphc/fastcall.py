"""The call fast path of compiled functions: a C base class where a C compiler is
at hand (graphc/fastcall.c, built on first use and cached), else none.

A compiled function's steady-state call is a guard (do the arguments' dtypes and
shapes match a compiled signature?) and the generated function. In Python the guard
costs about as much as one numpy call on a small array, which made a compiled
`x + 1.0` slower than the eager one; in C it costs a few dozen nanoseconds. JAX and
torch.compile keep their guards in C++ for the same reason.
"""
from __future__ import annotations

import functools
from pathlib import Path

from graphc.backends import settings


@functools.lru_cache(maxsize=1)
def dispatcher() -> type | None:
    """The C base type (with `_register`, `_clear_fast`, `_fast_hits`), or None where
    it cannot be built or GRAPHC_FASTCALL=0."""
    if not settings.get("GRAPHC_FASTCALL"):
        return None
    from graphc.backends.toolchain import build_extension
    module = build_extension("graphc_fastcall", Path(__file__).parent / "fastcall.c")
    return module.Dispatcher if module is not None else None
