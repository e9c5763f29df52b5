"""matmul (batched, broadcasting), conv2d (NCHW, OIHW weights) and 2-d pooling.

Window ops follow torch's conventions: symmetric zero padding `(ph, pw)`,
`stride`, `dilation`, `groups`; out = (in + 2 pad - dilation (k - 1) - 1) // stride + 1.
avg_pool2d counts padded zeros in the average (torch's count_include_pad=True).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from graphc import dtypes
from graphc.errors import DtypeError, ShapeError
from graphc.ir.types import TensorType
from graphc.ops import Kind, OpDef, register
from graphc.ops.elementwise import broadcast_shapes


def _matmul_infer(ins, attrs):
    a, b = ins
    if a.dtype != b.dtype or a.dtype == "bool":
        raise DtypeError(f"matmul needs two numeric inputs of one dtype, got "
                         f"{a.dtype} and {b.dtype}")
    if a.ndim < 2 or b.ndim < 2:
        raise ShapeError("the matmul primitive takes arrays of rank >= 2")
    if a.shape[-1] != b.shape[-2]:
        raise ShapeError(f"matmul: inner dimensions differ: {list(a.shape)} @ "
                         f"{list(b.shape)} ({a.shape[-1]} != {b.shape[-2]})",
                         hint="the last axis of the left operand must match the "
                              "second-to-last of the right one; transpose with .T?")
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
    return (TensorType(batch + (a.shape[-2], b.shape[-1]), a.dtype),)


register(OpDef("matmul", (), _matmul_infer, np.matmul, Kind.MATMUL, 2,
               doc="a @ b over the last two axes; leading axes broadcast"))


def window_out(size: int, k: int, stride: int, pad: int, dilation: int = 1) -> int:
    return (size + 2 * pad - dilation * (k - 1) - 1) // stride + 1


def _pairs(attrs, names):
    for n in names:
        v = attrs[n]
        if len(v) != 2 or any(not isinstance(x, int) for x in v):
            raise ShapeError(f"{n} must be a pair of ints, got {v}")
    return [tuple(attrs[n]) for n in names]


def _conv2d_infer(ins, attrs):
    x, w = ins
    if x.dtype != w.dtype or not dtypes.is_float(x.dtype):
        raise DtypeError(f"conv2d needs float input and weight of one dtype, got "
                         f"{x.dtype} and {w.dtype}")
    stride, padding, dilation = _pairs(attrs, ("stride", "padding", "dilation"))
    groups = attrs["groups"]
    if x.ndim != 4 or w.ndim != 4:
        raise ShapeError(f"conv2d takes input (N, C, H, W) and weight (O, C/groups, kH, kW); "
                         f"got {list(x.shape)} and {list(w.shape)}")
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    if groups < 1 or c % groups or o % groups or cg * groups != c:
        raise ShapeError(f"conv2d: input has {c} channels, weight {list(w.shape)} expects "
                         f"{cg} per group with groups={groups}")
    if min(stride) < 1 or min(dilation) < 1 or min(padding) < 0:
        raise ShapeError("conv2d: stride and dilation must be >= 1, padding >= 0")
    ho = window_out(h, kh, stride[0], padding[0], dilation[0])
    wo = window_out(wd, kw, stride[1], padding[1], dilation[1])
    if ho < 1 or wo < 1:
        raise ShapeError(f"conv2d: kernel {kh}x{kw} does not fit the padded input {h}x{wd}")
    return (TensorType((n, o, ho, wo), x.dtype),)


def _windows(x, k, stride, padding, dilation, fill):
    """(N, C, Ho, Wo, kh, kw) view of the padded input's windows."""
    (ph, pw), (sh, sw), (dh, dw) = padding, stride, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    span = ((k[0] - 1) * dh + 1, (k[1] - 1) * dw + 1)
    win = sliding_window_view(xp, span, axis=(2, 3))
    return win[:, :, ::sh, ::sw, ::dh, ::dw]


def _conv2d(x, w, stride, padding, dilation, groups):
    n, c, _, _ = x.shape
    o, cg, kh, kw = w.shape
    win = _windows(x, (kh, kw), stride, padding, dilation, 0)
    ho, wo = win.shape[2:4]
    win = win.reshape(n, groups, cg, ho, wo, kh, kw)
    wg = w.reshape(groups, o // groups, cg, kh, kw)
    out = np.einsum("ngchwij,gocij->ngohw", win, wg, optimize=True)
    return out.reshape(n, o, ho, wo).astype(x.dtype, copy=False)


register(OpDef("conv2d", ("stride", "padding", "dilation", "groups"), _conv2d_infer,
               _conv2d, Kind.OPAQUE, 2,
               doc="2-d cross-correlation, NCHW input, OIHW weight (no bias)"))


def _pool_infer(name):
    def infer(ins, attrs):
        (x,) = ins
        kernel, stride, padding = _pairs(attrs, ("kernel", "stride", "padding"))
        if x.ndim != 4:
            raise ShapeError(f"{name} takes (N, C, H, W), got {list(x.shape)}")
        if x.dtype == "bool" or (name == "avg_pool2d" and not dtypes.is_float(x.dtype)):
            raise DtypeError(f"{name} does not accept {x.dtype}")
        if min(kernel) < 1 or min(stride) < 1 or min(padding) < 0 or any(
                2 * p > k for p, k in zip(padding, kernel)):
            raise ShapeError(f"{name}: kernel and stride must be >= 1 and padding at most "
                             f"half the kernel (got kernel={kernel}, padding={padding})")
        ho = window_out(x.shape[2], kernel[0], stride[0], padding[0])
        wo = window_out(x.shape[3], kernel[1], stride[1], padding[1])
        if ho < 1 or wo < 1:
            raise ShapeError(f"{name}: window {kernel} does not fit input {list(x.shape)}")
        return (TensorType(x.shape[:2] + (ho, wo), x.dtype),)
    return infer


def _max_pool2d(x, kernel, stride, padding):
    low = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    return _windows(x, kernel, stride, padding, (1, 1), low).max(axis=(4, 5))


def _avg_pool2d(x, kernel, stride, padding):
    win = _windows(x, kernel, stride, padding, (1, 1), 0)
    return (win.sum(axis=(4, 5)) / (kernel[0] * kernel[1])).astype(x.dtype, copy=False)


register(OpDef("max_pool2d", ("kernel", "stride", "padding"), _pool_infer("max_pool2d"),
               _max_pool2d, Kind.OPAQUE, 1, doc="max over windows; padding is -inf"))
register(OpDef("avg_pool2d", ("kernel", "stride", "padding"), _pool_infer("avg_pool2d"),
               _avg_pool2d, Kind.OPAQUE, 1,
               doc="mean over windows, padded zeros counted (count_include_pad)"))
