"""Max pooling and its two gradient ops as C loops (windows.c), for the numpy backend.

The lowering table sends max_pool2d, max_pool2d_grad and max_pool2d_gather here.
Each function takes the op's arguments and attributes, as its reference
implementation in graphc/ops/linalg.py does, and gives the same result: the same
window maxima, picked by the same rule. Where C cannot run (GRAPHC_NATIVE=0, no
compiler, an integer or float16 array) it calls the reference implementation.
"""
from __future__ import annotations

import ctypes
import functools
import os
from pathlib import Path

import numpy as np

from graphc import ops
from backends.numpy import runtime, toolchain

_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}
_NAMES = ("h", "w", "ho", "wo", "kh", "kw", "sh", "sw", "ph", "pw")


class _Geometry(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int64) for name in _NAMES]


@functools.lru_cache(maxsize=1)
def _library() -> ctypes.CDLL | None:
    if toolchain.compiler() is None:
        return None
    try:
        lib = toolchain.build((Path(__file__).parent / "windows.c").read_text())
    except toolchain.BuildError:
        return None
    for suffix in _SUFFIX.values():
        for op, arrays in (("max_pool2d", 2), ("max_pool2d_grad", 3),
                           ("max_pool2d_gather", 3)):
            fn = getattr(lib, f"{op}_{suffix}")
            fn.argtypes = [ctypes.c_int64] * 2 + [ctypes.c_void_p] * (arrays + 1)
            fn.restype = None
    return lib


def _c_function(op: str, *arrays: np.ndarray):
    """The C function of `op` for these arrays' dtype, or None (then: the reference)."""
    if os.environ.get("GRAPHC_NATIVE", "1") == "0":
        return None
    dtype = arrays[0].dtype
    if dtype not in _SUFFIX or any(a.dtype != dtype for a in arrays):
        return None
    lib = _library()
    return getattr(lib, f"{op}_{_SUFFIX[dtype]}") if lib is not None else None


def _run(fn, planes: int, plane_elements: int, geometry: _Geometry, *arrays) -> None:
    """fn over the planes (N * C of them), split across the runtime's threads."""
    runs = min(runtime.get_num_threads(),
               max(1, planes * plane_elements // runtime.NATIVE_SPLIT_ELEMENTS))
    runtime.run_split(fn, planes, 1, runs, *[a.ctypes.data for a in arrays],
                      ctypes.addressof(geometry))


def _geometry(x_shape, y_shape, kernel, stride, padding) -> _Geometry:
    return _Geometry(*x_shape[2:], *y_shape[2:], *kernel, *stride, *padding)


def max_pool2d(x: np.ndarray, kernel, stride, padding) -> np.ndarray:
    fn = _c_function("max_pool2d", x)
    if fn is None:
        return ops.OPS["max_pool2d"].impl(x, kernel, stride, padding)
    x = np.ascontiguousarray(x)
    y = np.empty(_pooled(x.shape, kernel, stride, padding), x.dtype)
    _run(fn, x.shape[0] * x.shape[1], x.shape[2] * x.shape[3],
         _geometry(x.shape, y.shape, kernel, stride, padding), x, y)
    return y


def max_pool2d_grad(x: np.ndarray, g: np.ndarray, kernel, stride, padding) -> np.ndarray:
    fn = _c_function("max_pool2d_grad", x, g)
    if fn is None:
        return ops.OPS["max_pool2d_grad"].impl(x, g, kernel, stride, padding)
    x, g = np.ascontiguousarray(x), np.ascontiguousarray(g)
    dx = np.empty(x.shape, x.dtype)
    _run(fn, x.shape[0] * x.shape[1], x.shape[2] * x.shape[3],
         _geometry(x.shape, g.shape, kernel, stride, padding), x, g, dx)
    return dx


def max_pool2d_gather(x: np.ndarray, h: np.ndarray, kernel, stride, padding) -> np.ndarray:
    fn = _c_function("max_pool2d_gather", x, h)
    if fn is None:
        return ops.OPS["max_pool2d_gather"].impl(x, h, kernel, stride, padding)
    x, h = np.ascontiguousarray(x), np.ascontiguousarray(h)
    y = np.empty(_pooled(x.shape, kernel, stride, padding), x.dtype)
    _run(fn, x.shape[0] * x.shape[1], x.shape[2] * x.shape[3],
         _geometry(x.shape, y.shape, kernel, stride, padding), x, h, y)
    return y


def _pooled(shape, kernel, stride, padding) -> tuple[int, ...]:
    n, c, h, w = shape
    return (n, c) + tuple((size + 2 * p - k) // s + 1
                          for size, k, s, p in zip((h, w), kernel, stride, padding))
