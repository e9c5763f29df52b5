"""Max pooling and its two gradient ops as C loops (windows.c), and the convolutions
with their column copies in C, for the numpy backend.

The lowering table sends max_pool2d, max_pool2d_grad, max_pool2d_gather, conv2d,
conv2d_grad_input and conv2d_grad_weight here. Each function takes the op's arguments
and attributes, as its reference implementation in graphc/ops/linalg.py does, and
gives the same result: the same window maxima, picked by the same rule; the
convolutions run the reference's GEMMs on the same columns, built (im2col) and added
back (col2im) by C loops instead of numpy's strided copies, so the same sums. Where C
cannot run (native off, no compiler, an integer or float16 array) it calls the
reference implementation. Generated code
binds `native`, `threads` and `march` from the compiled function's options
(backends/options.py); called directly, they default to GRAPHC_NATIVE, the runtime's
thread count and GRAPHC_MARCH.
"""
from __future__ import annotations

import ctypes
import functools
from pathlib import Path

import numpy as np

from graphc.backends import settings
from graphc import ops
from graphc.ops.linalg import window_out
from graphc.backends import toolchain
from graphc.backends.numpy import runtime

_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}
_NAMES = ("h", "w", "ho", "wo", "kh", "kw", "sh", "sw", "ph", "pw", "n", "c", "dh", "dw",
          "per_image")
_ARRAYS = {"max_pool2d": 2, "max_pool2d_grad": 3, "max_pool2d_gather": 3, "im2col": 2,
           "col2im": 2}  # each C function's array arguments, the geometry after them


class _Geometry(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int64) for name in _NAMES]


@functools.lru_cache(maxsize=None)
def _library(march: str | None = None) -> ctypes.CDLL | None:
    if toolchain.compiler() is None:
        return None
    try:
        lib = toolchain.build((Path(__file__).parent / "windows.c").read_text(), march)
    except toolchain.BuildError:
        return None
    for suffix in _SUFFIX.values():
        for op, arrays in _ARRAYS.items():
            fn = getattr(lib, f"{op}_{suffix}")
            fn.argtypes = [ctypes.c_int64] * 2 + [ctypes.c_void_p] * (arrays + 1)
            fn.restype = None
    return lib


def _c_function(op: str, *arrays: np.ndarray, native: bool | None = None,
                march: str | None = None):
    """The C function of `op` for these arrays' dtype, or None (then: the reference).
    `native`: C allowed at all (None: GRAPHC_NATIVE); `march`: its target (None:
    GRAPHC_MARCH)."""
    if not (settings.get("GRAPHC_NATIVE") if native is None else native):
        return None
    dtype = arrays[0].dtype
    if dtype not in _SUFFIX or any(a.dtype != dtype for a in arrays):
        return None
    lib = _library(toolchain.march(march))
    return getattr(lib, f"{op}_{_SUFFIX[dtype]}") if lib is not None else None


def max_pool2d(x: np.ndarray, kernel, stride, padding, *, native: bool | None = None,
               threads: int | None = None, march: str | None = None) -> np.ndarray:
    return _window_op("max_pool2d", (x,), _pooled(x.shape, kernel, stride, padding),
                      kernel, stride, padding, (native, threads, march))


def max_pool2d_grad(x: np.ndarray, g: np.ndarray, kernel, stride, padding, *,
                    native: bool | None = None, threads: int | None = None,
                    march: str | None = None) -> np.ndarray:
    return _window_op("max_pool2d_grad", (x, g), x.shape, kernel, stride, padding,
                      (native, threads, march))


def max_pool2d_gather(x: np.ndarray, h: np.ndarray, kernel, stride, padding, *,
                      native: bool | None = None, threads: int | None = None,
                      march: str | None = None) -> np.ndarray:
    return _window_op("max_pool2d_gather", (x, h), _pooled(x.shape, kernel, stride, padding),
                      kernel, stride, padding, (native, threads, march))


def _window_op(op: str, inputs: tuple, out_shape, kernel, stride, padding,
               how: tuple) -> np.ndarray:
    """`op` on its inputs in C, the N * C planes split across `threads` threads (None:
    the runtime's count); how = (native, threads, march)."""
    native, threads, march = how
    fn = _c_function(op, *inputs, native=native, march=march)
    if fn is None:
        return ops.OPS[op].impl(*inputs, kernel=kernel, stride=stride, padding=padding)
    x = inputs[0]
    arrays = [np.ascontiguousarray(a) for a in inputs] + [np.empty(out_shape, x.dtype)]
    pooled = _pooled(x.shape, kernel, stride, padding)
    geometry = _Geometry(*x.shape[2:], *pooled[2:], *kernel, *stride, *padding)
    _split(fn, x.shape[0] * x.shape[1], x.size, threads, *arrays, geometry)
    return arrays[-1]


def _pooled(shape, kernel, stride, padding) -> tuple[int, ...]:
    n, c, h, w = shape
    return (n, c) + tuple((size + 2 * p - k) // s + 1
                          for size, k, s, p in zip((h, w), kernel, stride, padding))


def conv2d(x: np.ndarray, w: np.ndarray, stride, padding, dilation, groups, *,
           native: bool | None = None, threads: int | None = None,
           march: str | None = None) -> np.ndarray:
    return ops.OPS["conv2d"].impl(x, w, stride, padding, dilation, groups,
                                  im2col=_im2col(x, (native, threads, march)))


def conv2d_grad_weight(x: np.ndarray, g: np.ndarray, stride, padding, dilation, groups,
                       weight_shape, *, native: bool | None = None,
                       threads: int | None = None, march: str | None = None) -> np.ndarray:
    return ops.OPS["conv2d_grad_weight"].impl(
        x, g, stride, padding, dilation, groups, weight_shape,
        im2col=_im2col(x, (native, threads, march)))


def conv2d_grad_input(g: np.ndarray, w: np.ndarray, stride, padding, dilation, groups,
                      input_shape, *, native: bool | None = None,
                      threads: int | None = None, march: str | None = None) -> np.ndarray:
    return ops.OPS["conv2d_grad_input"].impl(
        g, w, stride, padding, dilation, groups, input_shape,
        fold=_fold(g, (native, threads, march)))


def _im2col(x: np.ndarray, how: tuple):
    """A C function with the signature and result of linalg's `_im2col` for x's dtype,
    or None (then the reference's numpy copy)."""
    fn = _c_function("im2col", x, native=how[0], march=how[2])
    return None if fn is None else functools.partial(_c_im2col, fn, how[1])


def _fold(g: np.ndarray, how: tuple):
    """A C function with the signature and result of linalg's `_fold` (columns per
    image) for columns of g's dtype, or None."""
    fn = _c_function("col2im", g, native=how[0], march=how[2])
    return None if fn is None else functools.partial(_c_fold, fn, how[1])


def _c_im2col(fn, threads, x, kernel, stride, padding, dilation, groups, per_image=False):
    n, c, h, w = x.shape
    geometry = _conv_geometry(x.shape, kernel, stride, padding, dilation, per_image)
    positions, rows = geometry.ho * geometry.wo, c // groups * kernel[0] * kernel[1]
    shape = (n, groups, rows, positions) if per_image else (groups, rows, n * positions)
    cols = np.empty(shape, x.dtype)
    _split(fn, n * c, cols.size, threads, np.ascontiguousarray(x), cols, geometry)
    return cols, (geometry.ho, geometry.wo)


def _c_fold(fn, threads, cols, input_shape, kernel, out_hw, stride, padding, dilation):
    geometry = _conv_geometry(input_shape, kernel, stride, padding, dilation, True)
    dx = np.empty(input_shape, cols.dtype)
    _split(fn, input_shape[0] * input_shape[1], cols.size, threads,
           np.ascontiguousarray(cols), dx, geometry)
    return dx


def _conv_geometry(shape, kernel, stride, padding, dilation, per_image) -> _Geometry:
    n, c, h, w = shape
    out = [window_out(*a) for a in zip((h, w), kernel, stride, padding, dilation)]
    return _Geometry(h, w, *out, *kernel, *stride, *padding, n, c, *dilation, per_image)


def _split(fn, planes: int, elements: int, threads: int | None, *args) -> None:
    """fn over the planes, split across threads when there is enough work for them."""
    *arrays, geometry = args
    runs = min(threads or runtime.get_num_threads(),
               max(1, elements // runtime.NATIVE_SPLIT_ELEMENTS))
    runtime.run_split(fn, planes, 1, runs, *[a.ctypes.data for a in arrays],
                      ctypes.addressof(geometry))
