"""The dtypes graphc knows, and the one place where type promotion is decided.

Promotion follows numpy 2 (NEP 50):

* Arrays (and numpy scalars such as ``np.float32(2)``) are *strong*: two strong
  dtypes promote with ``np.promote_types`` (``int32 + float32 -> float64``).
* Python scalars (``bool``, ``int``, ``float``) are *weak*: they take the dtype of
  the array they meet, unless their kind is higher.  ``f32 * 2.0 -> f32``,
  ``i32 + 1 -> i32``, ``i64 * 0.5 -> f64``, ``bool + 1 -> i64``.
* Math functions that only exist for floats (exp, tanh, sqrt, true division ...)
  turn integer inputs into float64 and bool into float16, as numpy's ufuncs do.
* bfloat16 is not a numpy dtype; it promotes as torch and JAX do
  (``bf16 + f16 -> f32``, ``bf16 + f32 -> f32``, ``bf16 + int -> bf16``).

The IR itself never promotes implicitly: the frontend inserts ``cast`` nodes so that
the inputs of every elementwise op have one dtype. Only this module decides which.
"""
from __future__ import annotations

import numpy as np

from graphc.errors import DtypeError

# name -> short name used in the text IR
DTYPES: dict[str, str] = {
    "bool": "bool",
    "int32": "i32",
    "int64": "i64",
    "float16": "f16",
    "bfloat16": "bf16",
    "float32": "f32",
    "float64": "f64",
}
SHORT_TO_DTYPE: dict[str, str] = {v: k for k, v in DTYPES.items()}
FLOATS = frozenset({"float16", "bfloat16", "float32", "float64"})
INTS = frozenset({"int32", "int64"})
_KIND_RANK = {"bool": 0, "int": 1, "float": 2}


def kind(dtype: str) -> str:
    """'bool', 'int' or 'float'."""
    if dtype == "bool":
        return "bool"
    return "int" if dtype in INTS else "float"


def is_float(dtype: str) -> bool:
    return dtype in FLOATS


def canonical(dtype) -> str:
    """The graphc name of a numpy dtype (or dtype name); DtypeError if unsupported."""
    name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    if name == "bfloat16" or name in DTYPES:
        return name
    try:
        name = np.dtype(name).name
    except TypeError:
        pass
    if name not in DTYPES:
        raise DtypeError(f"dtype {name} is not supported by graphc",
                         hint="supported dtypes: " + ", ".join(DTYPES))
    return name


def to_numpy(dtype: str) -> np.dtype:
    """The numpy dtype that stores `dtype` (bfloat16 has none: DtypeError)."""
    if dtype == "bfloat16":
        raise DtypeError("bfloat16 has no numpy dtype, so the numpy backend cannot run it",
                         hint="cast to float32 for the numpy backend")
    return np.dtype(dtype)


def promote(a: str, b: str) -> str:
    """Promotion of two strong dtypes."""
    if a == b:
        return a
    if "bfloat16" in (a, b):
        other = b if a == "bfloat16" else a
        if other in ("bool", "int32", "int64"):
            return "bfloat16"
        return "float32" if other in ("float16", "float32") else "float64"
    return np.promote_types(a, b).name


def result_type(*operands) -> str:
    """The dtype numpy 2 gives `operands` meeting in a binary op.

    Each operand is a dtype name (strong) or a Python bool/int/float (weak).
    """
    strong = [op for op in operands if isinstance(op, str)]
    weak = [op for op in operands if not isinstance(op, str)]
    if strong:
        out = strong[0]
        for dt in strong[1:]:
            out = promote(out, dt)
    else:
        out = weak_dtype(weak[0])
        weak = weak[1:]
    for value in weak:
        vkind = kind(weak_dtype(value))
        if _KIND_RANK[vkind] > _KIND_RANK[kind(out)]:
            out = weak_dtype(value)
    return out


def weak_dtype(value) -> str:
    """The dtype numpy gives a lone Python scalar."""
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    raise DtypeError(f"{type(value).__name__} values are not supported by graphc")


def float_result(dtype: str) -> str:
    """The dtype of a float-only math function (exp, sqrt, /) applied to `dtype`."""
    if dtype in FLOATS:
        return dtype
    return "float16" if dtype == "bool" else "float64"


def short(dtype: str) -> str:
    return DTYPES[dtype]
