"""matmul (batched, broadcasting), conv2d (NCHW, OIHW weights), 2-d pooling, and the
gradients of conv2d and pooling as primitives of their own (the end of this file).

Window ops follow torch's conventions: symmetric zero padding `(ph, pw)`,
`stride`, `dilation`, `groups`; out = (in + 2 pad - dilation (k - 1) - 1) // stride + 1.
avg_pool2d counts padded zeros in the average (torch's count_include_pad=True).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from graphc import dtypes
from graphc.errors import DtypeError, GraphcError, ShapeError
from graphc.ir.types import TensorType
from graphc.ops import Kind, OpDef, Rounding, register
from graphc.ops.elementwise import broadcast_shapes
from graphc.ops.schema import BOOL, NON_NEGATIVE_PAIR, POSITIVE_PAIR, Attr

_FLOATS = frozenset(dtypes.FLOATS)


def _swapped(t: TensorType, flag: bool) -> TensorType:
    """t with its last two axes swapped where `flag` (matmul's transpose flags)."""
    if not flag or t.ndim < 2:
        return t
    return TensorType(t.shape[:-2] + (t.shape[-1], t.shape[-2]), t.dtype)


def _matmul_infer(ins, attrs):
    a, b = (_swapped(t, attrs.get(f"transpose_{s}", False)) for t, s in zip(ins, "ab"))
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


def _matmul(a, b, transpose_a=False, transpose_b=False):
    return np.matmul(np.swapaxes(a, -1, -2) if transpose_a else a,
                     np.swapaxes(b, -1, -2) if transpose_b else b)


register(OpDef("matmul", (), _matmul_infer, _matmul, Kind.MATMUL, 2,
               doc="a @ b over the last two axes; leading axes broadcast; "
                   "transpose_a/transpose_b (optional) swap an operand's last two axes",
               optional=(("transpose_a", False, BOOL), ("transpose_b", False, BOOL)),
               rounding=Rounding.ACCUMULATES))


# the window ops' attributes: strides, dilations, kernels and groups positive
CONV_ATTRS = {"stride": POSITIVE_PAIR, "padding": NON_NEGATIVE_PAIR,
              "dilation": POSITIVE_PAIR, "groups": Attr("int", lo=1)}
POOL_ATTRS = {"kernel": POSITIVE_PAIR, "stride": POSITIVE_PAIR, "padding": NON_NEGATIVE_PAIR}
SHAPE4 = Attr("shape", length=4)  # the gradient's shape (N, C, H, W)


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


def _im2col(x, k, stride, padding, dilation, groups, per_image=False):
    """Each window of x as a column, grouped by channels, and (ho, wo): one matrix a
    group, (groups, cg*kh*kw, n*ho*wo), or with `per_image` one an image and group,
    (n, groups, cg*kh*kw, ho*wo). One copy from the windows view, in runs along the
    output's rows."""
    win = _windows(x, k, stride, padding, dilation, 0)   # (n, c, ho, wo, kh, kw) view
    n, c, ho, wo, kh, kw = win.shape
    rows = c // groups * kh * kw
    if per_image:
        cols = win.transpose(0, 1, 4, 5, 2, 3)            # (n, c, kh, kw, ho, wo)
        return cols.reshape(n, groups, rows, ho * wo), (ho, wo)
    cols = win.transpose(1, 4, 5, 0, 2, 3)                # (c, kh, kw, n, ho, wo)
    return cols.reshape(groups, rows, n * ho * wo), (ho, wo)


def _by_group(t, groups):
    """(n, o, ho, wo) -> (groups, o/groups, n*ho*wo): channels first, as im2col's."""
    n, o, ho, wo = t.shape
    return t.reshape(n, groups, o // groups, ho * wo).transpose(1, 2, 0, 3).reshape(
        groups, o // groups, n * ho * wo)


def _conv2d(x, w, stride, padding, dilation, groups, *, im2col=None):
    """`im2col`: a function like `_im2col` that builds the same columns (the numpy
    backend passes its C loop; the GEMMs around it stay these)."""
    n = x.shape[0]
    o, cg, kh, kw = w.shape
    cols, (ho, wo) = (im2col or _im2col)(x, (kh, kw), stride, padding, dilation, groups,
                                         per_image=True)
    # one GEMM an image and group, (o/g, cg*kh*kw) @ (cg*kh*kw, ho*wo): NCHW as it lands
    out = np.matmul(w.reshape(groups, o // groups, cg * kh * kw), cols)
    return out.reshape(n, o, ho, wo).astype(x.dtype, copy=False)


register(OpDef("conv2d", CONV_ATTRS, _conv2d_infer,
               _conv2d, Kind.OPAQUE, 2,
               doc="2-d cross-correlation, NCHW input, OIHW weight (no bias)",
               rounding=Rounding.ACCUMULATES, dtypes=_FLOATS))


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


register(OpDef("max_pool2d", POOL_ATTRS, _pool_infer("max_pool2d"),
               _max_pool2d, Kind.OPAQUE, 1, doc="max over windows; padding is -inf",
               rounding=Rounding.EXACT, dtypes=frozenset(dtypes.FLOATS | dtypes.INTS)))
register(OpDef("avg_pool2d", POOL_ATTRS, _pool_infer("avg_pool2d"),
               _avg_pool2d, Kind.OPAQUE, 1,
               doc="mean over windows, padded zeros counted (count_include_pad)",
               rounding=Rounding.ACCUMULATES, dtypes=_FLOATS))


# ---------------------------------------------------------------- conv/pool gradients
# Each is the adjoint (transpose) of a window op, so the VJP of one is the other:
#
#     conv2d_grad_input(g, w)   dL/dx of y = conv2d(x, w); linear in g (adjoint: conv2d)
#     conv2d_grad_weight(x, g)  dL/dw of y = conv2d(x, w); linear in g and in x
#     avg_pool2d_grad(g)        dL/dx of avg_pool2d; linear (adjoint: avg_pool2d)
#     max_pool2d_grad(x, g)     dL/dx of max_pool2d: g goes to each window's max
#     max_pool2d_gather(x, h)   h read at each window's max (the adjoint in g of the above)
#
# The shape attributes (`input_shape`, `weight_shape`) name the shape of the gradient,
# since a strided window need not reach the last rows and columns of its input (those
# get zero gradient). Every rule checks its inputs by asking the forward op's own rule
# what the forward output would be.
#
# Which element of a max-pool window is "the max" follows torch's CPU kernel: scanning
# the window in row-major order, an element wins if it is greater than the best so far
# or is NaN; so among ties the first wins, among NaNs the last, and a window whose real
# elements are all -inf gives its first real (unpadded) element.



def _shape_attr(name: str, attrs, key: str) -> tuple[int, ...]:
    shape = attrs[key]
    if len(shape) != 4 or any(not isinstance(d, int) or d < 0 for d in shape):
        raise ShapeError(f"{name}: {key} must be 4 non-negative ints (N, C, H, W), "
                         f"got {shape}")
    return tuple(shape)


def _forward_type(name: str, forward, ins, attrs) -> TensorType:
    """The forward op's output type, with its errors re-raised under `name`."""
    try:
        (out,) = forward(ins, attrs)
    except GraphcError as err:
        raise type(err)(f"{name}: {err.message}", hint=err.hint) from None
    return out


def _check_float_pair(name: str, a: TensorType, b: TensorType) -> None:
    if a.dtype != b.dtype or not dtypes.is_float(a.dtype):
        raise DtypeError(f"{name} needs two float inputs of one dtype, got "
                         f"{a.dtype} and {b.dtype}")


def _check_cotangent(name: str, g: TensorType, want: TensorType) -> None:
    if g.shape != want.shape:
        raise ShapeError(f"{name}: the cotangent is {list(g.shape)} but the forward "
                         f"output is {list(want.shape)}")


def _conv2d_grad_input_infer(ins, attrs):
    g, w = ins
    _check_float_pair("conv2d_grad_input", g, w)
    x = TensorType(_shape_attr("conv2d_grad_input", attrs, "input_shape"), g.dtype)
    fwd = {k: attrs[k] for k in CONV_ATTRS}
    _check_cotangent("conv2d_grad_input", g,
                     _forward_type("conv2d_grad_input", _conv2d_infer, (x, w), fwd))
    return (x,)


def _conv2d_grad_weight_infer(ins, attrs):
    x, g = ins
    _check_float_pair("conv2d_grad_weight", x, g)
    w = TensorType(_shape_attr("conv2d_grad_weight", attrs, "weight_shape"), g.dtype)
    fwd = {k: attrs[k] for k in CONV_ATTRS}
    _check_cotangent("conv2d_grad_weight", g,
                     _forward_type("conv2d_grad_weight", _conv2d_infer, (x, w), fwd))
    return (w,)


def _max_pool2d_pair_infer(name: str, scatter: bool):
    """max_pool2d_grad (scatter): (x, g shaped like the pooled output) -> x's type;
    max_pool2d_gather: (x, h shaped like x) -> the pooled output's type."""
    def infer(ins, attrs):
        x, g = ins
        _check_float_pair(name, x, g)
        y = _forward_type(name, _pool_infer("max_pool2d"), (x,), attrs)
        _check_cotangent(name, g, y if scatter else x)
        return (x,) if scatter else (y,)
    return infer


def _avg_pool2d_grad_infer(ins, attrs):
    (g,) = ins
    if not dtypes.is_float(g.dtype):
        raise DtypeError(f"avg_pool2d_grad needs a float cotangent, got {g.dtype}")
    x = TensorType(_shape_attr("avg_pool2d_grad", attrs, "input_shape"), g.dtype)
    fwd = {k: attrs[k] for k in POOL_ATTRS}
    _check_cotangent("avg_pool2d_grad", g,
                     _forward_type("avg_pool2d_grad", _pool_infer("avg_pool2d"), (x,), fwd))
    return (x,)


def col2im(cols, input_shape, stride, padding, dilation):
    """The adjoint of `_windows`: add each window element back onto the input.

    `cols` is (N, C, Ho, Wo, kh, kw), what every element of every window receives.
    One strided slice-add per kernel offset; within one offset no two windows touch
    the same input element, so `+=` on the slice is exact. Padding is cut off.
    """
    n, c, h, w = input_shape
    ho, wo, kh, kw = cols.shape[2:]
    (ph, pw), (sh, sw), (dh, dw) = padding, stride, dilation
    out = np.zeros((n, c, h + 2 * ph, w + 2 * pw), cols.dtype)
    for a in range(kh):
        for b in range(kw):
            rs = slice(a * dh, a * dh + (ho - 1) * sh + 1, sh)  # rows offset a reads
            cs = slice(b * dw, b * dw + (wo - 1) * sw + 1, sw)
            out[:, :, rs, cs] += cols[:, :, :, :, a, b]
    return out[:, :, ph:ph + h, pw:pw + w]


def _fold(cols, input_shape, kernel, out_hw, stride, padding, dilation):
    """(n, groups, cg*kh*kw, ho*wo) columns, as `_im2col` lays them out per image,
    added back into an (n, c, h, w) array by `col2im`."""
    n, c = input_shape[:2]
    cols = cols.reshape((n, c) + tuple(kernel) + tuple(out_hw))
    dx = col2im(cols.transpose(0, 1, 4, 5, 2, 3), tuple(input_shape), stride, padding,
                dilation)
    return np.ascontiguousarray(dx)


def _conv2d_grad_input(g, w, stride, padding, dilation, groups, input_shape, *,
                       fold=None):
    """`fold`: a function like `_fold` (the numpy backend passes its C loop)."""
    o, cg, kh, kw = w.shape
    n, _, ho, wo = g.shape
    # every window element gets the sum over its group's output channels of g * w: one
    # GEMM an image and group, reading g in NCHW as it is
    wg = w.reshape(groups, o // groups, cg * kh * kw)
    cols = np.matmul(wg.transpose(0, 2, 1), g.reshape(n, groups, o // groups, ho * wo))
    dx = (fold or _fold)(cols, tuple(input_shape), (kh, kw), g.shape[2:], stride,
                          padding, dilation)
    return dx.astype(g.dtype, copy=False)


def _conv2d_grad_weight(x, g, stride, padding, dilation, groups, weight_shape, *,
                        im2col=None):
    o, cg, kh, kw = weight_shape
    # dw[o, c, i, j] = sum over n and positions of g[n, o, pos] * window[n, c, pos, i, j]:
    # one GEMM a group over every image's positions at once (per image, it would be a
    # GEMM an image and an (n, o, cg*kh*kw) sum after them)
    cols, _ = (im2col or _im2col)(x, (kh, kw), stride, padding, dilation, groups)
    dw = np.matmul(_by_group(g, groups), cols.transpose(0, 2, 1))  # (groups, o/g, cg*kh*kw)
    return dw.reshape(weight_shape).astype(g.dtype, copy=False)


def max_positions(x, kernel, stride, padding):
    """(N, C, Ho, Wo, kh, kw) bool: the one element of each window that is its max."""
    kh, kw = kernel
    win = _windows(x, kernel, stride, padding, (1, 1), 0)
    real = _windows(np.ones((1, 1) + x.shape[2:], bool), kernel, stride, padding, (1, 1),
                    False)                                 # False on padding
    best = np.zeros(win.shape[:4], x.dtype)
    arg = np.full(win.shape[:4], -1)
    for t in range(kh * kw):  # row-major scan, as torch's kernel does
        v, ok = win[..., t // kw, t % kw], real[..., t // kw, t % kw]
        take = ok & ((arg < 0) | (v > best) | np.isnan(v))
        best = np.where(take, v, best)
        arg = np.where(take, t, arg)
    return arg[..., None, None] == np.arange(kh * kw).reshape(kh, kw)


def _max_pool2d_grad(x, g, kernel, stride, padding):
    hit = max_positions(x, kernel, stride, padding)
    cols = np.where(hit, g[..., None, None], np.zeros((), g.dtype))
    return col2im(cols, x.shape, stride, padding, (1, 1))


def _max_pool2d_gather(x, h, kernel, stride, padding):
    hit = max_positions(x, kernel, stride, padding)
    win = _windows(h, kernel, stride, padding, (1, 1), 0)
    return np.where(hit, win, np.zeros((), h.dtype)).sum(axis=(4, 5), dtype=h.dtype)


def _avg_pool2d_grad(g, kernel, stride, padding, input_shape):
    share = g / np.array(kernel[0] * kernel[1], g.dtype)
    cols = np.broadcast_to(share[..., None, None], g.shape + tuple(kernel))
    return col2im(cols, input_shape, stride, padding, (1, 1))


register(OpDef("conv2d_grad_input", {**CONV_ATTRS, "input_shape": SHAPE4}, _conv2d_grad_input_infer,
               _conv2d_grad_input, Kind.OPAQUE, 2,
               doc="dL/dx of conv2d(x, w) from the output cotangent g and w",
               rounding=Rounding.ACCUMULATES))
register(OpDef("conv2d_grad_weight", {**CONV_ATTRS, "weight_shape": SHAPE4},
               _conv2d_grad_weight_infer, _conv2d_grad_weight, Kind.OPAQUE, 2,
               doc="dL/dw of conv2d(x, w) from x and the output cotangent g",
               rounding=Rounding.ACCUMULATES))
register(OpDef("max_pool2d_grad", POOL_ATTRS, _max_pool2d_pair_infer("max_pool2d_grad", True),
               _max_pool2d_grad, Kind.OPAQUE, 2,
               doc="dL/dx of max_pool2d(x): g goes to each window's max (torch's choice)",
               rounding=Rounding.STEP))
register(OpDef("max_pool2d_gather", POOL_ATTRS,
               _max_pool2d_pair_infer("max_pool2d_gather", False), _max_pool2d_gather,
               Kind.OPAQUE, 2, doc="h at each window's max of x; the adjoint of "
                                   "max_pool2d_grad in its cotangent",
               rounding=Rounding.STEP))
register(OpDef("avg_pool2d_grad", {**POOL_ATTRS, "input_shape": SHAPE4}, _avg_pool2d_grad_infer,
               _avg_pool2d_grad, Kind.OPAQUE, 1,
               doc="dL/dx of avg_pool2d: each window's g shared evenly (padding counted)",
               rounding=Rounding.ACCUMULATES))
