"""The numpy backend's lowering table: one entry per primitive.

An entry (`Lowering`) holds both of the backend's forms of an op:

* `python(emitter, args, attrs)` returns a Python expression computing the op with
  numpy from the argument expressions (`LOWERINGS[op](emitter, args, attrs)` calls
  it). `reference(name)` is the form that calls the op's own numpy reference
  implementation (bound as `_ref_<name>` in the generated module).
* `c(dt, args, math, attrs)` returns the op's C expression in a native kernel (see
  `cexpr`), or None where C would not match numpy; `c=None`: the op always runs as a
  numpy kernel. `libm` names the C math functions the C form calls (without the
  float32 suffix): the toolchain probes which of them glibc's libmvec has in vector
  form.

`lower_into(node, args, out, emitter)` returns a statement computing it into the
existing array `out` (the form fused kernels use: numpy's `out=` where the call has
one, else an assignment). A test checks that LOWERINGS covers every primitive.

A new primitive needs one entry, registered where its record is, for example:

>>> entry = Lowering(lambda em, a, at: f"({a[0]} / (1 + np.abs({a[0]})))",
...                  c=cexpr.float_only("({0} / (({t})1 + ({0} < 0 ? -{0} : {0})))"))
>>> entry(None, ["x"], {})
'(x / (1 + np.abs(x)))'
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from graphc import dtypes, ops
from graphc.backends.numpy import cexpr
from graphc.backends.numpy.literals import py
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
    py(dtype)  # a known dtype's name, or VerifyError
    return f"np.{dtypes.to_numpy(dtype).name}"


def _call(fn: str, **fixed: Any) -> Callable:
    """Lowering to `fn(arg0, arg1, ..., key=attr...)`; marks numpy ufuncs, which take
    `out=`."""
    def lower(em, args, attrs):
        kw = "".join(f", {k}={py(v)}" for k, v in fixed.items())
        kw += "".join(f", {k}={py(v)}" for k, v in attrs.items())
        return f"{fn}({', '.join(args)}{kw})"
    lower.takes_out = fn.startswith("np.") and isinstance(getattr(np, fn[3:], None), np.ufunc)
    return lower


def _reduce(fn: str, keep_dtype: bool = False) -> Callable:
    # the ufunc's own reduce: np.sum and np.max add a Python layer that costs more than
    # the reduction itself on small arrays; keep_dtype: numpy would sum int32 as int64,
    # the primitive keeps the dtype
    def lower(em, args, attrs):
        dtype = f", dtype={args[0]}.dtype" if keep_dtype else ""
        return (f"{fn}({args[0]}, axis={py(attrs['axes'])}, "
                f"keepdims={py(attrs['keepdims'])}{dtype})")
    lower.takes_out = True
    return lower


def _slice(em, args, attrs):
    parts = []
    for a, b, s in zip(attrs["starts"], attrs["stops"], attrs["steps"]):
        stop = "" if b < 0 else py(b)
        parts.append(f"{py(a)}:{stop}:{py(s)}")
    if not parts:  # a 0-d array: x[] is a syntax error
        return f"{args[0]}[()]"
    return f"{args[0]}[{', '.join(parts)}{',' if len(parts) == 1 else ''}]"


def _pad(em, args, attrs):
    if not attrs["widths"]:  # a 0-d array: nothing to pad, and np.pad rejects ()
        return f"np.array({args[0]})"
    return f"np.pad({args[0]}, {py(attrs['widths'])}, constant_values={py(attrs['value'])})"


def _const(em, args, attrs):
    arr = attrs["value"].array
    text = np.array2string(arr, threshold=6, precision=6).replace("\n", " ")
    return em.hoist(arr, f"{dtypes.short(dtypes.canonical(arr.dtype))}{list(arr.shape)} "
                         f"{text}")


def _iota(em, args, attrs):
    shape, axis = attrs["shape"], attrs["axis"]
    if not all(type(d) is int for d in shape):  # made per call, from the call's sizes
        ramp = tuple(-1 if k == axis else 1 for k in range(len(shape)))
        return (f"np.broadcast_to(np.arange({py(shape[axis])}, dtype="
                f"{_np_dtype(attrs['dtype'])}).reshape({py(ramp)}), {py(shape)})")
    arr = ops.OPS["iota"].impl(**attrs)
    arr.flags.writeable = False
    return em.hoist(arr, f"iota {py(shape)} along axis {py(axis)}")


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
    return f"np.round({args[0]}, {py(attrs['decimals'])})"


def reference(name: str) -> Callable:
    """The Python form that calls the op's numpy reference implementation (window
    ops, erf): the generated module binds it as `_ref_<name>`."""
    lower = _call(f"_ref_{name}")
    lower.reference = name
    return lower


_ref = reference


@dataclass(frozen=True)
class Lowering:
    """One primitive's forms in this backend (see the module docstring)."""

    python: Callable
    c: Callable | None = None
    libm: tuple[str, ...] = ()

    def __call__(self, em: "Emitter", args: list[str], attrs) -> str:
        return self.python(em, args, attrs)

    @property
    def takes_out(self) -> bool:
        return getattr(self.python, "takes_out", False)


def _m(fn: str, *libm: str) -> Lowering:
    """np.<fn> in Python; the C math function of the same name in C."""
    return Lowering(_call(f"np.{fn}"), cexpr.math_fn(libm[0] if libm else fn), libm or (fn,))


def _e(python: Callable, c: Callable | None = None, *libm: str) -> Lowering:
    return Lowering(python, c, libm)


# the names of libm functions of two arguments (their vector forms take two vectors)
_TWO_ARGUMENTS = frozenset({"pow", "atan2", "hypot", "fmod"})


def libm_functions() -> frozenset[tuple[str, int]]:
    """(C math function, arity) for every libm function an entry's C form calls (the
    double spelling: exp, not expf): what the toolchain probes libmvec for.

    >>> ("pow", 2) in libm_functions()
    True
    """
    return frozenset((name, 2 if name in _TWO_ARGUMENTS else 1)
                     for entry in LOWERINGS.values() for name in getattr(entry, "libm", ()))


def reference_ops() -> list[str]:
    """The primitives whose Python form calls their reference implementation."""
    return [name for name, entry in LOWERINGS.items()
            if getattr(getattr(entry, "python", entry), "reference", None) == name]


LOWERINGS: dict[str, Lowering] = {
    "neg": _e(_call("np.negative"), cexpr.neg),
    "abs": _e(_call("np.abs"), cexpr.abs_, "fabs"),
    "sign": _e(_call("np.sign"), cexpr.sign),
    "exp": _m("exp"), "expm1": _m("expm1"), "log": _m("log"), "log1p": _m("log1p"),
    "sqrt": _m("sqrt"), "tanh": _m("tanh"), "sin": _m("sin"), "cos": _m("cos"),
    "rsqrt": _e(lambda em, a, at: f"np.reciprocal(np.sqrt({a[0]}))",
                cexpr.float_only("(({t})1 / {sqrt}({0}))"), "sqrt"),
    "reciprocal": _e(_call("np.reciprocal"), cexpr.float_only("(({t})1 / {0})")),
    "sigmoid": _e(_ref("sigmoid"), cexpr.sigmoid, "exp", "fabs"),
    "erf": _e(_ref("erf"), cexpr.math_fn("erf"), "erf"),
    "logical_not": _e(_call("np.logical_not"), lambda dt, a, math, at: f"(uint8_t)!{a[0]}"),
    "add": _e(_call("np.add"), cexpr.arith("+")),
    "sub": _e(_call("np.subtract"), cexpr.arith("-")),
    "mul": _e(_call("np.multiply"), cexpr.arith("*")),
    "div": _e(_call("np.true_divide"), cexpr.div),
    "pow": _e(_call("np.power"), cexpr.pow_, "pow"),
    "maximum": _e(_call("np.maximum"), cexpr.extreme(">")),
    "minimum": _e(_call("np.minimum"), cexpr.extreme("<")),
    "eq": _e(_call("np.equal"), cexpr.compare("==")),
    "ne": _e(_call("np.not_equal"), cexpr.compare("!=")),
    "lt": _e(_call("np.less"), cexpr.compare("<")),
    "le": _e(_call("np.less_equal"), cexpr.compare("<=")),
    "gt": _e(_call("np.greater"), cexpr.compare(">")),
    "ge": _e(_call("np.greater_equal"), cexpr.compare(">=")),
    "logical_and": _e(_call("np.logical_and"),
                      lambda dt, a, math, at: f"(uint8_t)({a[0]} && {a[1]})"),
    "logical_or": _e(_call("np.logical_or"),
                     lambda dt, a, math, at: f"(uint8_t)({a[0]} || {a[1]})"),
    "where": _e(_call("np.where"), lambda dt, a, math, at: f"({a[0]} ? {a[1]} : {a[2]})"),
    "floor": _m("floor"), "ceil": _m("ceil"),
    "round": _e(_round, cexpr.round_, "rint"),
    "floor_divide": _e(_call("np.floor_divide"), cexpr.divmod_("floor_divide")),
    "remainder": _e(_call("np.remainder"), cexpr.divmod_("remainder")),
    "cast": _e(lambda em, a, at: f"{a[0]}.astype({_np_dtype(at['dtype'])})", cexpr.cast),
    # reductions: native kernels generate their loops themselves (native.REDUCTIONS)
    "sum": _e(_reduce("np.add.reduce", keep_dtype=True)),
    "max": _e(_reduce("np.maximum.reduce")), "min": _e(_reduce("np.minimum.reduce")),
    "argmax": _e(lambda em, a, at: (f"np.argmax({a[0]}, axis={py(at['axis'])}, "
                                    f"keepdims={py(at['keepdims'])}).astype(np.int64)")),
    "reshape": _e(lambda em, a, at: f"np.reshape({a[0]}, {py(at['shape'])})"),
    "transpose": _e(lambda em, a, at: f"np.transpose({a[0]}, {py(at['perm'])})"),
    "broadcast_to": _e(lambda em, a, at: f"np.broadcast_to({a[0]}, {py(at['shape'])})"),
    "slice": _e(_slice),
    "concat": _e(lambda em, a, at: f"np.concatenate(({', '.join(a)},), "
                                   f"axis={py(at['axis'])})"),
    "pad": _e(_pad),
    "gather": _e(_call("np.take")), "scatter_add": _e(_ref("scatter_add")),
    # dtype: numpy would accumulate int32 in int64, the primitive keeps the dtype
    "cumsum": _e(lambda em, a, at: f"np.cumsum({a[0]}, axis={py(at['axis'])}, "
                                   f"dtype={a[0]}.dtype)"),
    "iota": _e(_iota), "const": _e(_const),
    # the product of the sizes, at run time where symbolic: `(_dim0*64)`
    "size": _e(lambda em, a, at: f"np.array({py(math.prod(at['dims']))}, "
                                 f"{_np_dtype(at['dtype'])})"),
    "matmul": _e(_matmul),
    "conv2d": _e(_call("_win_conv2d")), "max_pool2d": _e(_call("_win_max_pool2d")),
    "avg_pool2d": _e(_ref("avg_pool2d")),
    "conv2d_grad_input": _e(_call("_win_conv2d_grad_input")),
    "conv2d_grad_weight": _e(_call("_win_conv2d_grad_weight")),
    "max_pool2d_grad": _e(_call("_win_max_pool2d_grad")),
    "max_pool2d_gather": _e(_call("_win_max_pool2d_gather")),
    "avg_pool2d_grad": _e(_ref("avg_pool2d_grad")),
    # Philox runs as a numpy kernel of its own (its reference is vectorized integer
    # arithmetic); a C form would need the element's index, which cexpr does not see
    "philox_uniform": _e(_ref("philox_uniform")),
}


def lower_into(node: Node, args: list[str], out: str, em: Emitter | None = None) -> str:
    """A statement that computes `node` into the array named `out`."""
    lower = LOWERINGS[node.op]
    x = node.inputs[0].type if node.inputs else None
    if node.op == "sum" and em is not None and x.dtype in ("float32", "float64") and \
            x.ndim >= 2 and tuple(node.attrs["axes"]) == (x.ndim - 1,) and \
            type(x.shape[-1]) is int and x.shape[-1] > 1:
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
        return f"np.argmax({args[0]}, axis={py(node.attrs['axis'])}, " \
               f"keepdims={py(node.attrs['keepdims'])}, out={out})"
    return f"{out}[...] = {lower(em, args, node.attrs)}"
