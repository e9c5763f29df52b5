"""The numpy backend's lowering table: one entry per primitive.

`LOWERINGS[op](emitter, args, attrs)` returns a Python expression computing the op
with numpy from the argument expressions; `lower_into(node, args, out, emitter)`
returns a statement computing it into the existing array `out` (the form fused
kernels use: numpy's `out=` where the call has one, else an assignment).
A test checks that LOWERINGS covers every primitive.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from graphc import dtypes, ops
from graphc.ir import Node


class Emitter:
    """Collects hoisted constants while the body is printed."""

    def __init__(self):
        self.consts: list[np.ndarray] = []
        self.const_lines: list[str] = []

    def hoist(self, array: np.ndarray, comment: str) -> str:
        name = f"_c{len(self.consts)}"
        self.consts.append(array)
        self.const_lines.append(f"{name} = _consts[{len(self.consts) - 1}]  # {comment}")
        return name


def _np_dtype(dtype: str) -> str:
    return f"np.{dtypes.to_numpy(dtype).name}"


def _call(fn: str, **fixed: Any) -> Callable:
    """Lowering to `fn(arg0, arg1, ..., key=attr...)`; marks numpy ufuncs, which take
    `out=`."""
    def lower(em, args, attrs):
        kw = "".join(f", {k}={v!r}" for k, v in fixed.items())
        kw += "".join(f", {k}={v!r}" for k, v in attrs.items())
        return f"{fn}({', '.join(args)}{kw})"
    lower.takes_out = fn.startswith("np.") and isinstance(getattr(np, fn[3:], None), np.ufunc)
    return lower


def _reduce(fn: str, keep_dtype: bool = False) -> Callable:
    # the ufunc's own reduce: np.sum and np.max add a Python layer that costs more than
    # the reduction itself on small arrays; keep_dtype: numpy would sum int32 as int64,
    # the primitive keeps the dtype
    def lower(em, args, attrs):
        dtype = f", dtype={args[0]}.dtype" if keep_dtype else ""
        return (f"{fn}({args[0]}, axis={tuple(attrs['axes'])!r}, "
                f"keepdims={attrs['keepdims']}{dtype})")
    lower.takes_out = True
    return lower


def _slice(em, args, attrs):
    parts = []
    for a, b, s in zip(attrs["starts"], attrs["stops"], attrs["steps"]):
        stop = "" if b < 0 else str(b)
        parts.append(f"{a}:{stop}:{s}")
    if not parts:  # a 0-d array: x[] is a syntax error
        return f"{args[0]}[()]"
    return f"{args[0]}[{', '.join(parts)}{',' if len(parts) == 1 else ''}]"


def _scalar(v: Any) -> str:
    """A Python literal for an attribute scalar (repr of inf or nan is not one)."""
    if isinstance(v, float) and not np.isfinite(v):
        return f"float({str(v)!r})"
    return repr(v)


def _pad(em, args, attrs):
    if not attrs["widths"]:  # a 0-d array: nothing to pad, and np.pad rejects ()
        return f"np.array({args[0]})"
    return f"np.pad({args[0]}, {attrs['widths']!r}, constant_values={_scalar(attrs['value'])})"


def _const(em, args, attrs):
    arr = attrs["value"].array
    text = np.array2string(arr, threshold=6, precision=6).replace("\n", " ")
    return em.hoist(arr, f"{dtypes.short(dtypes.canonical(arr.dtype))}{list(arr.shape)} "
                         f"{text}")


def _iota(em, args, attrs):
    arr = ops.OPS["iota"].impl(**attrs)
    arr.flags.writeable = False
    return em.hoist(arr, f"iota {attrs['shape']} along axis {attrs['axis']}")


def matmul_operands(args: list[str], attrs) -> list[str]:
    """matmul's operands, a flagged one as a transposed view (BLAS reads it as such)."""
    return [f"np.swapaxes({x}, -1, -2)" if attrs.get(f"transpose_{k}") else x
            for x, k in zip(args, "ab")]


def _matmul(em, args, attrs):
    return f"np.matmul({', '.join(matmul_operands(args, attrs))})"


_matmul.takes_out = True


def _round(em, args, attrs):
    # decimals=0 is np.rint (a ufunc: it takes out=); otherwise np.round's own steps
    if attrs["decimals"] == 0:
        return f"np.rint({args[0]})"
    return f"np.round({args[0]}, {attrs['decimals']!r})"


def _ref(name: str) -> Callable:
    """Lowering that calls the op's numpy reference implementation (window ops, erf)."""
    return _call(f"_ref_{name}")


LOWERINGS: dict[str, Callable] = {
    "neg": _call("np.negative"), "abs": _call("np.abs"), "sign": _call("np.sign"),
    "exp": _call("np.exp"), "expm1": _call("np.expm1"), "log": _call("np.log"),
    "log1p": _call("np.log1p"), "sqrt": _call("np.sqrt"),
    "rsqrt": lambda em, a, at: f"np.reciprocal(np.sqrt({a[0]}))",
    "reciprocal": _call("np.reciprocal"), "tanh": _call("np.tanh"),
    "sigmoid": _ref("sigmoid"), "sin": _call("np.sin"), "cos": _call("np.cos"),
    "erf": _ref("erf"), "logical_not": _call("np.logical_not"),
    "add": _call("np.add"), "sub": _call("np.subtract"), "mul": _call("np.multiply"),
    "div": _call("np.true_divide"), "pow": _call("np.power"),
    "maximum": _call("np.maximum"), "minimum": _call("np.minimum"),
    "eq": _call("np.equal"), "ne": _call("np.not_equal"), "lt": _call("np.less"),
    "le": _call("np.less_equal"), "gt": _call("np.greater"),
    "ge": _call("np.greater_equal"), "logical_and": _call("np.logical_and"),
    "logical_or": _call("np.logical_or"), "where": _call("np.where"),
    "floor": _call("np.floor"), "ceil": _call("np.ceil"), "round": _round,
    "floor_divide": _call("np.floor_divide"), "remainder": _call("np.remainder"),
    "cast": lambda em, a, at: f"{a[0]}.astype({_np_dtype(at['dtype'])})",
    "sum": _reduce("np.add.reduce", keep_dtype=True), "max": _reduce("np.maximum.reduce"),
    "min": _reduce("np.minimum.reduce"),
    "argmax": lambda em, a, at: (f"np.argmax({a[0]}, axis={at['axis']}, "
                                 f"keepdims={at['keepdims']}).astype(np.int64)"),
    "reshape": lambda em, a, at: f"np.reshape({a[0]}, {tuple(at['shape'])!r})",
    "transpose": lambda em, a, at: f"np.transpose({a[0]}, {tuple(at['perm'])!r})",
    "broadcast_to": lambda em, a, at: f"np.broadcast_to({a[0]}, {tuple(at['shape'])!r})",
    "slice": _slice,
    "concat": lambda em, a, at: f"np.concatenate(({', '.join(a)},), axis={at['axis']})",
    "pad": _pad,
    "gather": _call("np.take"), "scatter_add": _ref("scatter_add"),
    # dtype: numpy would accumulate int32 in int64, the primitive keeps the dtype
    "cumsum": lambda em, a, at: f"np.cumsum({a[0]}, axis={at['axis']}, dtype={a[0]}.dtype)",
    "iota": _iota, "const": _const,
    "matmul": _matmul,
    "conv2d": _ref("conv2d"), "max_pool2d": _call("_win_max_pool2d"),
    "avg_pool2d": _ref("avg_pool2d"), "conv2d_grad_input": _ref("conv2d_grad_input"),
    "conv2d_grad_weight": _ref("conv2d_grad_weight"),
    "max_pool2d_grad": _call("_win_max_pool2d_grad"),
    "max_pool2d_gather": _call("_win_max_pool2d_gather"),
    "avg_pool2d_grad": _ref("avg_pool2d_grad"),
}


def lower_into(node: Node, args: list[str], out: str, em: Emitter | None = None) -> str:
    """A statement that computes `node` into the array named `out`."""
    lower = LOWERINGS[node.op]
    x = node.inputs[0].type if node.inputs else None
    if node.op == "sum" and em is not None and x.dtype in ("float32", "float64") and \
            x.ndim >= 2 and tuple(node.attrs["axes"]) == (x.ndim - 1,) and x.shape[-1] > 1:
        # a row sum as a matrix-vector product: BLAS runs it ~3x faster than numpy's
        # pairwise add.reduce (float32 accumulation either way, different rounding)
        ones = np.ones((x.shape[-1],) + ((1,) if node.attrs["keepdims"] else ()),
                       dtypes.to_numpy(x.dtype))
        ones.flags.writeable = False
        return f"np.matmul({args[0]}, {em.hoist(ones, f'ones for row sums of {x.shape[-1]}')}, " \
               f"out={out})"
    if getattr(lower, "takes_out", False):
        return lower(em, args, node.attrs)[:-1] + f", out={out})"
    if node.op == "cast":
        return f"np.copyto({out}, {args[0]}, casting='unsafe')"
    if node.op == "rsqrt":
        return f"np.sqrt({args[0]}, out={out}); np.reciprocal({out}, out={out})"
    if node.op == "round" and node.attrs["decimals"] == 0:
        return f"np.rint({args[0]}, out={out})"
    if node.op == "argmax":
        return f"np.argmax({args[0]}, axis={node.attrs['axis']}, " \
               f"keepdims={node.attrs['keepdims']}, out={out})"
    return f"{out}[...] = {lower(em, args, node.attrs)}"
