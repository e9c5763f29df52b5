"""Neural-network functions that work eagerly on numpy arrays and inside traced code.

Each is written with numpy operations, so called on numpy arrays it simply runs, and
called on traced values it decomposes into primitives (which fusion puts back
together). Functions that have no numpy spelling (erf, sigmoid, convolution, pooling)
call their primitive: its numpy reference eagerly, a graph node while tracing.

Conventions follow torch.nn.functional: `linear` weights are (out, in); images are
NCHW and conv weights OIHW; `cross_entropy` takes (N, C) logits and integer labels.

>>> import numpy as np
>>> from graphc import nn
>>> nn.softmax(np.array([0.0, 0.0]))
array([0.5, 0.5])
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from graphc import dtypes, ops
from graphc.errors import OptionError  # a GraphcError: never taken for a compiler bug
from graphc.ir import Attrs, TensorType
from graphc.frontend import prims
from graphc.frontend.tracer import Tracer

Array = Any  # np.ndarray or a Tracer while tracing


def _operand_dtype(op: str, dt: str) -> str:
    # an op its record says is float-only turns ints into floats, as numpy's ufuncs do
    return dtypes.float_result(dt) if ops.OPS[op].dtypes <= dtypes.FLOATS else dt


def _primitive(op: str, *xs: Array, **attrs: Any) -> Array:
    """Apply primitive `op` to operands of one dtype, traced or eagerly; ints become
    floats where the op's record accepts floats only."""
    if any(isinstance(x, Tracer) for x in xs):
        ctx = prims.ctx_of(*xs)
        dt = _operand_dtype(op, prims.result_type(*xs))
        return ctx.emit(op, *(prims.lift(x, dt, ctx) for x in xs), **attrs)
    arrays = [np.asarray(x) for x in xs]
    dt = _operand_dtype(op, dtypes.result_type(*(dtypes.canonical(a.dtype) for a in arrays)))
    arrays = [a.astype(dt, copy=False) for a in arrays]
    ops.infer_types(op, tuple(TensorType(a.shape, dt) for a in arrays), Attrs(attrs))
    return ops.OPS[op].impl(*arrays, **attrs)


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.ndim(v) == 0 else (int(v[0]), int(v[1]))


def erf(x: Array) -> Array:
    """The Gauss error function, elementwise."""
    return _primitive("erf", x)


def sigmoid(x: Array) -> Array:
    """1 / (1 + exp(-x)), without overflow for large |x|."""
    return _primitive("sigmoid", x)


def relu(x: Array) -> Array:
    """max(x, 0); its gradient at 0 is 0, as torch's relu (np.maximum would split it)."""
    return np.where(x > 0, x, 0)


def silu(x: Array) -> Array:
    """x * sigmoid(x) (also called swish)."""
    return x * sigmoid(x)


def gelu(x: Array, approximate: str = "tanh") -> Array:
    """GELU: approximate="tanh" (the BERT/GPT form) or "none" (the exact erf form)."""
    if approximate == "tanh":
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * (x * x * x))
        return 0.5 * x * (1.0 + np.tanh(inner))
    if approximate == "none":
        return 0.5 * x * (1.0 + erf(x * (1.0 / math.sqrt(2.0))))
    raise OptionError(f"approximate must be 'tanh' or 'none', not {approximate!r}")


def softmax(x: Array, axis: int = -1) -> Array:
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x: Array, axis: int = -1) -> Array:
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def logsumexp(x: Array, axis=None, keepdims: bool = False) -> Array:
    """log(sum(exp(x))) computed stably; rows of -inf give -inf, as in torch."""
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.abs(m) < np.inf, m, 0.0)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    if not keepdims:
        out = np.squeeze(out, axis=axis) if axis is not None else np.reshape(out, ())
    return out


def layer_norm(x: Array, weight: Array | None = None, bias: Array | None = None,
               eps: float = 1e-5, axis=-1) -> Array:
    """Normalize over `axis` (an int or a tuple), then scale and shift."""
    mean = np.mean(x, axis=axis, keepdims=True)
    centered = x - mean
    var = np.mean(centered * centered, axis=axis, keepdims=True)
    y = centered / np.sqrt(var + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def linear(x: Array, weight: Array, bias: Array | None = None) -> Array:
    """x @ weight.T + bias, with weight of shape (out_features, in_features)."""
    y = x @ np.transpose(weight)
    return y if bias is None else y + bias


def mse_loss(pred: Array, target: Array, reduction: str = "mean") -> Array:
    d = pred - target
    return _reduce(d * d, reduction)


def cross_entropy(logits: Array, labels: Array, reduction: str = "mean") -> Array:
    """Softmax cross-entropy of (N, C) logits against N integer class labels."""
    nll = -log_softmax(logits, axis=-1)[_rows(logits), labels]
    return _reduce(nll, reduction)


def _rows(x: Array) -> Array:
    """0, 1, ..., n-1 for the n rows of x: traced, an iota, so that a symbolic n stays
    symbolic (np.arange would need its value)."""
    if isinstance(x, Tracer):
        return x.ctx.emit("iota", shape=(x.shape[0],), axis=0, dtype="int64")
    return np.arange(np.shape(x)[0])


def _reduce(x: Array, reduction: str) -> Array:
    if reduction == "mean":
        return np.mean(x)
    if reduction == "sum":
        return np.sum(x)
    if reduction == "none":
        return x
    raise OptionError(f"reduction must be 'mean', 'sum' or 'none', not {reduction!r}")


def conv2d(x: Array, weight: Array, bias: Array | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Array:
    """2-d convolution (cross-correlation) of NCHW `x` with OIHW `weight`."""
    y = _primitive("conv2d", x, weight, stride=_pair(stride), padding=_pair(padding),
                   dilation=_pair(dilation), groups=int(groups))
    return y if bias is None else y + np.reshape(bias, (1, -1, 1, 1))


def max_pool2d(x: Array, kernel_size, stride=None, padding=0) -> Array:
    k = _pair(kernel_size)
    return _pool("max_pool2d", x, k, stride, padding)


def avg_pool2d(x: Array, kernel_size, stride=None, padding=0) -> Array:
    """Average over windows; padded zeros count in the average (torch's default)."""
    return _pool("avg_pool2d", x, _pair(kernel_size), stride, padding)


def _pool(op: str, x: Array, k, stride, padding) -> Array:
    s = k if stride is None else _pair(stride)
    return _primitive(op, x, kernel=k, stride=s, padding=_pair(padding))
