"""The Triton backend's host ops: every op that runs as a torch call, not a kernel.

The generated host program holds each value as a torch tensor on the device. Fused
groups become Triton kernels; the ops in `HOST` run between them as torch calls
("externs"): views, data movement, convolution and pooling with their gradients, the
prefix sum, and the random op. Each entry renders one Python expression over the
argument names; the generated module has `torch`, `F` (torch.nn.functional) and
`ext` (this module) in scope, and the longer forms are functions here, called as
`ext.<fn>(...)`.

Views stay views (`.reshape`, `.permute`, `.expand`, basic slicing): the kernels take
strides, so a non-contiguous result costs nothing. Attributes are rendered only after
checking their Python type here (ints, tuples of ints, finite or special floats,
dtype names from `graphc.dtypes`); no string from a graph ever reaches the code.

>>> import torch
>>> from graphc.ir import Attrs
>>> HOST["transpose"].call(["x0"], Attrs({"perm": (1, 0)}), None)
'x0.permute((1, 0))'
>>> tuple(gather(torch.arange(5.0), torch.tensor([-1, 0]), 0).tolist())
(4.0, 0.0)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from graphc import dtypes
from graphc.backends.numpy.literals import py
from graphc.errors import IndexingError, UnsupportedError
from graphc.ir.symbols import Sym
from graphc.ir.types import Attrs, Node, TensorType
from graphc.ops.random import STREAM, WORDS_PER_ELEMENT

Render = Callable[[list[str], Attrs, Node], str]


@dataclass(frozen=True)
class Extern:
    """How one op runs on the host: `call(args, attrs, node)` is a torch expression
    over the tensors named in `args`, with exactly the IR's result type; `why` says in
    one line why it is a torch call and not a Triton kernel (source and fusion report).
    """

    call: Render
    why: str


# Ops whose user data can make them fail at run time, and the GraphcError they raise
# (with no location: the generator re-points it at the node's loc with `with_loc`, as
# the numpy backend's _USER_FAILURES does).
USER_FAILURES: dict[str, type[IndexingError]] = {"gather": IndexingError,
                                                  "scatter_add": IndexingError}

# ---------------------------------------------------------------- rendering attributes

_INT_RANGE = {"int32": (-2**31, 2**31 - 1), "int64": (-2**63, 2**63 - 1)}


def _int(v: object) -> str:
    if type(v) is Sym:  # a symbolic size: arithmetic on the call's size variables
        return py(v)
    if type(v) is not int:  # bool is an int subclass, and never an axis or a size
        raise ValueError(f"expected an int attribute, got {v!r}")
    return str(v)


def _ints(v: object) -> str:
    """A tuple of ints as Python source: '(2, 3)', '(4,)', '()'."""
    if type(v) is not tuple:
        raise ValueError(f"expected a tuple of ints, got {v!r}")
    items = [_int(x) for x in v]
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


def _float(v: float) -> str:
    if math.isnan(v):
        return "float('nan')"
    if math.isinf(v):
        return "float('inf')" if v > 0 else "float('-inf')"
    return repr(float(v))


def torch_dtype(name: str) -> str:
    """The torch dtype of a graphc dtype name, as source: every graphc name is also a
    torch attribute name.

    >>> torch_dtype("bfloat16")
    'torch.bfloat16'
    """
    if name not in dtypes.DTYPES:
        raise ValueError(f"{name!r} is not a graphc dtype")
    return f"torch.{name}"


def _fill(value: object, dtype: str) -> str:
    """`value` converted to `dtype` as numpy's casts do (np.pad casts its fill), as a
    literal: bools truthy, ints truncated, floats rounded later by torch."""
    if type(value) not in (bool, int, float):
        raise ValueError(f"expected a number, got {value!r}")
    if dtype == "bool":
        return repr(bool(value))
    if dtype in _INT_RANGE:
        lo, hi = _INT_RANGE[dtype]
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"cannot pad {dtype} with {value!r}")
        if not lo <= int(value) <= hi:
            raise ValueError(f"{value!r} is out of range for {dtype}")
        return str(int(value))
    return _float(float(value))


def _in_type(node: Node, i: int = 0) -> TensorType:
    return node.inputs[i].type


def _keywords(attrs: Attrs, names: tuple[str, ...],
              rename: dict[str, str] | None = None) -> str:
    """'stride=(1, 1), groups=1': the named int or int-tuple attributes as keyword
    arguments (`rename` maps an attribute to torch's name for it)."""
    rename = rename or {}
    return ", ".join(f"{rename.get(k, k)}=" + (_int(attrs[k]) if type(attrs[k]) is int
                                               else _ints(attrs[k])) for k in names)


def _ext_call(fn: str, *names: str) -> Render:
    """Renders ext.<fn>(args..., name=attr, ...) for the functions of this module."""
    def call(args: list[str], attrs: Attrs, node: Node) -> str:
        return f"ext.{fn}({', '.join(args)}, {_keywords(attrs, names)})"
    return call


# ---------------------------------------------------------------- views


def _reshape(args: list[str], attrs: Attrs, node: Node) -> str:
    return f"{args[0]}.reshape({_ints(attrs['shape'])})"


def _transpose(args: list[str], attrs: Attrs, node: Node) -> str:
    return f"{args[0]}.permute({_ints(attrs['perm'])})"


def _broadcast_to(args: list[str], attrs: Attrs, node: Node) -> str:
    return f"{args[0]}.expand({_ints(attrs['shape'])})"


def _slice_keys(attrs: Attrs, shape: tuple[int, ...]) -> tuple[list[str], list[int]]:
    """Per axis a torch key with a positive step, and the axes to flip afterwards. A
    negative step a:b:s picks a, a+s, ..., the last (m-th) of which is a + (m-1)s: the
    positive slice from there up to a, reversed."""
    for k in ("starts", "stops", "steps"):
        _ints(attrs[k])  # checks them: every bound is then an int
    starts, stops, steps = attrs["starts"], attrs["stops"], attrs["steps"]
    if not all(type(d) is int for d in (*starts, *stops, *shape)):
        if any(s != 1 for s in steps):
            raise UnsupportedError("the triton backend slices symbolic sizes with step 1 "
                                   "only", loc=False)
        return [f"{py(a)}:{py(b)}" for a, b in zip(starts, stops)], []
    keys, flips = [], []
    for d, (a, b, s, n) in enumerate(zip(starts, stops, steps, shape)):
        m = len(range(a, b, s))
        if m == 0:
            keys.append("0:0")
            continue
        if s < 0:  # torch strides are non-negative: slice forwards, flip afterwards
            a, b, s = a + (m - 1) * s, a + 1, -s
            if m > 1:
                flips.append(d)
        if m == 1:
            b, s = a + 1, 1
        step = "" if s == 1 else f":{s}"
        keys.append(":" if (a, b, step) == (0, n, "") else f"{a}:{b}{step}")
    return keys, flips


def _slice(args: list[str], attrs: Attrs, node: Node) -> str:
    keys, flips = _slice_keys(attrs, _in_type(node).shape)
    expr = f"{args[0]}[{', '.join(keys)}]" if keys else f"{args[0]}[()]"
    # flip copies (torch has no negative strides), but only the elements kept
    return expr + (f".flip({_ints(tuple(flips))})" if flips else "")


# ---------------------------------------------------------------- data movement


def _concat(args: list[str], attrs: Attrs, node: Node) -> str:
    return f"torch.cat([{', '.join(args)}], dim={_int(attrs['axis'])})"


def _pad(args: list[str], attrs: Attrs, node: Node) -> str:
    x = _in_type(node)
    widths = attrs["widths"]
    if x.ndim == 0:
        return args[0]
    # torch lists the last axis first; constant_pad_nd takes the fill as a Scalar,
    # where F.pad would round an int64 fill through a double
    pads = tuple(w for lo_hi in reversed(widths) for w in lo_hi)
    return f"torch.constant_pad_nd({args[0]}, {_ints(pads)}, {_fill(attrs['value'], x.dtype)})"


def checked_indices(idx: torch.Tensor, size: int, axis: int) -> torch.Tensor:
    """idx flattened to int64 with negative indices wrapped, or IndexingError with
    numpy's words for the first one outside -size..size-1.

    >>> checked_indices(torch.tensor([[0, -1]]), 3, 0).tolist()
    [0, 2]
    """
    flat = idx.reshape(-1).to(torch.int64)
    bad = (flat < -size) | (flat >= size)
    if bool(bad.any()):  # one host sync: the check must come before any read
        first = int(flat[bad][0])
        raise IndexingError(f"index {first} is out of bounds for axis {axis} with size "
                            f"{size}", hint=IndexingError.run_hint, loc=False)
    return torch.where(flat < 0, flat + size, flat)


def gather(x: torch.Tensor, idx: torch.Tensor, axis: int) -> torch.Tensor:
    """np.take(x, idx, axis): negative indices wrap, others out of range raise
    IndexingError (not a device-side assert, as torch's own indexing gives on CUDA).

    >>> gather(torch.arange(6).reshape(2, 3), torch.tensor([[2], [-3]]), 1).tolist()
    [[[2], [0]], [[5], [3]]]
    """
    flat = checked_indices(idx, x.shape[axis], axis)
    out = torch.index_select(x, axis, flat)
    return out.reshape(tuple(x.shape[:axis]) + tuple(idx.shape) + tuple(x.shape[axis + 1:]))


def scatter_add(x: torch.Tensor, idx: torch.Tensor, upd: torch.Tensor,
                axis: int) -> torch.Tensor:
    """x with upd added at idx along axis, repeated indices accumulating (a copy).

    >>> scatter_add(torch.zeros(3), torch.tensor([0, 0, -1]), torch.ones(3), 0).tolist()
    [2.0, 0.0, 1.0]
    """
    flat = checked_indices(idx, x.shape[axis], axis)
    rows = upd.reshape(tuple(x.shape[:axis]) + (flat.numel(),) + tuple(x.shape[axis + 1:]))
    return x.index_add(axis, flat, rows)


def cumsum(x: torch.Tensor, axis: int) -> torch.Tensor:
    """Running sums along `axis` in x's dtype (int32 wraps as int32, not int64).

    torch starts each row from +0.0 and numpy from x[0]; since -0.0 + -0.0 is -0.0 but
    +0.0 + -0.0 is +0.0, a row's leading run of -0.0 stays -0.0 only in numpy, so it
    is put back.

    >>> torch.signbit(cumsum(torch.tensor([-0.0, -0.0, 1.0]), 0)).tolist()
    [True, True, False]
    """
    out = torch.cumsum(x, axis, dtype=x.dtype)
    if not x.dtype.is_floating_point:
        return out
    negative_zero = (x == 0) & torch.signbit(x)
    return torch.where(negative_zero.cummin(axis).values, x, out)


# ---------------------------------------------------------------- windows


_CONV = ("stride", "padding", "dilation", "groups")
_POOL = ("kernel", "stride", "padding")
_KERNEL_SIZE = {"kernel": "kernel_size"}  # torch.nn.functional's name for it


def _conv2d(args: list[str], attrs: Attrs, node: Node) -> str:
    return f"F.conv2d({args[0]}, {args[1]}, {_keywords(attrs, _CONV)})"


def conv2d_grad_input(g: torch.Tensor, w: torch.Tensor, stride, padding, dilation,
                      groups: int, input_shape: tuple[int, ...]) -> torch.Tensor:
    """dL/dx of conv2d(x, w) from the output cotangent g: torch's convolution backward,
    which reads only the shape of x (a one-element tensor expanded stands in).

    >>> conv2d_grad_input(torch.ones(1, 1, 2, 2), torch.ones(1, 1, 2, 2), (1, 1), (0, 0),
    ...                   (1, 1), 1, (1, 1, 3, 3))[0, 0, 1].tolist()
    [2.0, 4.0, 2.0]
    """
    like = g.new_empty(1).expand(input_shape)
    return torch.ops.aten.convolution_backward(
        g, like, w, None, stride, padding, dilation, False, (0, 0), groups,
        (True, False, False))[0]


def conv2d_grad_weight(x: torch.Tensor, g: torch.Tensor, stride, padding, dilation,
                       groups: int, weight_shape: tuple[int, ...]) -> torch.Tensor:
    """dL/dw of conv2d(x, w) from x and the output cotangent g.

    >>> conv2d_grad_weight(torch.ones(1, 1, 3, 3), torch.ones(1, 1, 2, 2), (1, 1), (0, 0),
    ...                    (1, 1), 1, (1, 1, 2, 2)).flatten().tolist()
    [4.0, 4.0, 4.0, 4.0]
    """
    like = g.new_empty(1).expand(weight_shape)
    return torch.ops.aten.convolution_backward(
        g, x, like, None, stride, padding, dilation, False, (0, 0), groups,
        (False, True, False))[1]


def _max_pool2d(args: list[str], attrs: Attrs, node: Node) -> str:
    if dtypes.is_float(_in_type(node).dtype):
        return f"F.max_pool2d({args[0]}, {_keywords(attrs, _POOL, _KERNEL_SIZE)})"
    return _ext_call("max_pool2d_ints", *_POOL)(args, attrs, node)


def max_pool2d_ints(x: torch.Tensor, kernel, stride, padding) -> torch.Tensor:
    """max_pool2d of an integer tensor (torch's CUDA kernel takes floats only): the
    windows of x padded with the dtype's minimum, which never beats a real element.

    >>> max_pool2d_ints(torch.tensor([[[[-5, -7], [-9, -8]]]]), (2, 2), (1, 1),
    ...                 (1, 1))[0, 0].tolist()
    [[-5, -5, -7], [-5, -5, -7], [-9, -8, -8]]
    """
    (ph, pw), (kh, kw), (sh, sw) = padding, kernel, stride
    low = torch.iinfo(x.dtype).min
    padded = torch.constant_pad_nd(x, (pw, pw, ph, ph), low)
    return padded.unfold(2, kh, sh).unfold(3, kw, sw).amax(dim=(4, 5))


def _avg_pool2d(args: list[str], attrs: Attrs, node: Node) -> str:
    return (f"F.avg_pool2d({args[0]}, {_keywords(attrs, _POOL, _KERNEL_SIZE)}, "
            "count_include_pad=True)")


def max_pool2d_grad(x: torch.Tensor, g: torch.Tensor, kernel, stride,
                    padding) -> torch.Tensor:
    """dL/dx of max_pool2d(x): each window's g added at the window's max, the one
    torch's kernels pick (the first among ties, the last NaN), as graphc's op says.

    >>> max_pool2d_grad(torch.tensor([[[[1.0, 3.0], [3.0, 0.0]]]]), torch.ones(1, 1, 1, 1),
    ...                 (2, 2), (1, 1), (0, 0)).flatten().tolist()
    [0.0, 1.0, 0.0, 0.0]
    """
    _, at = F.max_pool2d(x, kernel, stride, padding, return_indices=True)
    return torch.ops.aten.max_pool2d_with_indices_backward(
        g, x, kernel, stride, padding, (1, 1), False, at)


def max_pool2d_gather(x: torch.Tensor, h: torch.Tensor, kernel, stride,
                      padding) -> torch.Tensor:
    """h read at each window's max of x (the adjoint of max_pool2d_grad in g).

    >>> max_pool2d_gather(torch.tensor([[[[1.0, 3.0], [3.0, 0.0]]]]),
    ...                   torch.tensor([[[[5.0, 6.0], [7.0, 8.0]]]]), (2, 2), (1, 1),
    ...                   (0, 0)).flatten().tolist()
    [6.0]
    """
    _, at = F.max_pool2d(x, kernel, stride, padding, return_indices=True)
    return torch.gather(h.flatten(2), 2, at.flatten(2)).reshape(at.shape)


def avg_pool2d_grad(g: torch.Tensor, kernel, stride, padding,
                    input_shape: tuple[int, ...]) -> torch.Tensor:
    """dL/dx of avg_pool2d (padding counted): each window's g shared evenly.

    >>> avg_pool2d_grad(torch.full((1, 1, 1, 1), 4.0), (2, 2), (1, 1), (0, 0),
    ...                 (1, 1, 2, 2)).flatten().tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    # the backward reads only the input's shape; an unfilled allocation, not an
    # expanded one-element stand-in, since pooling kernels may make it contiguous first
    like = g.new_empty(input_shape)
    return torch.ops.aten.avg_pool2d_backward(g, like, kernel, stride, padding, False,
                                              True, None)


# ---------------------------------------------------------------- philox_uniform
# Philox4x32-10 on int64 tensors holding 32-bit words, the layout of graphc.ops.random
# (the key is the seed's two words, the counter (block low, block high, stream, 0)).
# Every intermediate stays below 2**63, so nothing relies on signed overflow.

_M0, _M1 = 0xD2511F53, 0xCD9E8D57    # the round multipliers
_W0, _W1 = 0x9E3779B9, 0xBB67AE85    # the key's Weyl increments
_ROUNDS = 10
_LOW32 = 0xFFFFFFFF
_CHUNK = 1 << 20  # blocks per pass: bounds the int64 temporaries (~8 lanes of 8 MiB)


def _mul_words(x: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The high and low 32-bit words of x * m (x < 2**32, m a 32-bit constant), from
    two 48-bit partial products: x * m itself would overflow int64."""
    a = x * (m >> 16)
    b = x * (m & 0xFFFF)
    mid = ((a & 0xFFFF) << 16) + b  # x * m = (a >> 16) * 2**32 + mid, mid < 2**49
    return (a >> 16) + (mid >> 32), mid & _LOW32


def _philox(blocks: torch.Tensor, seed: torch.Tensor, stream: int) -> torch.Tensor:
    """(n, 4) int64 output words of the counters (block, stream) under the seed's key."""
    x0, x1 = blocks & _LOW32, blocks >> 32
    x2, x3 = torch.full_like(blocks, stream), torch.zeros_like(blocks)
    k0, k1 = seed & _LOW32, (seed >> 32) & _LOW32  # two's-complement words
    for r in range(_ROUNDS):
        hi0, lo0 = _mul_words(x0, _M0)
        hi1, lo1 = _mul_words(x2, _M1)
        x0, x1, x2, x3 = hi1 ^ x1 ^ k0, lo1, hi0 ^ x3 ^ k1, lo0
        if r + 1 < _ROUNDS:
            k0, k1 = (k0 + _W0) & _LOW32, (k1 + _W1) & _LOW32
    return torch.stack([x0, x1, x2, x3], dim=1)


def _unit(words: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[0, 1) floats from (n, per) words: the top 24 (or 27 + 26) bits times a power of
    two, exact in the output dtype."""
    if dtype == torch.float32:
        return (words[:, 0] >> 8).to(torch.float32) * 2.0**-24
    bits = (words[:, 0] >> 5) * 2**26 + (words[:, 1] >> 6)  # < 2**53: exact as float64
    return bits.to(torch.float64) * 2.0**-53


def philox_uniform(seed: torch.Tensor, shape: tuple[int, ...], offset: int,
                   dtype: torch.dtype) -> torch.Tensor:
    """graphc's philox_uniform on the seed's device, bit for bit: element i reads
    stream position offset + i (see graphc.ops.random).

    >>> import numpy as np
    >>> from graphc.ops.random import philox_uniform as reference
    >>> got = philox_uniform(torch.tensor(7), (2, 3), 5, torch.float32)
    >>> bool(np.array_equal(got.numpy(), reference(np.int64(7), (2, 3), 5, "float32")))
    True
    """
    name = str(dtype).removeprefix("torch.")
    per = WORDS_PER_ELEMENT[name]
    span = 4 // per  # stream positions per block
    count = math.prod(shape)
    out = torch.empty(count, dtype=dtype, device=seed.device)
    seed = seed.to(torch.int64)
    for at in range(0, count, _CHUNK * span):
        n = min(_CHUNK * span, count - at)
        start = offset + at
        first, last = start // span, (start + n - 1) // span
        blocks = torch.arange(first, last + 1, dtype=torch.int64, device=seed.device)
        words = _philox(blocks, seed, STREAM[name]).reshape(-1, per)
        skip = start - first * span
        out[at:at + n] = _unit(words[skip:skip + n], dtype)
    return out.reshape(shape)


def _philox_uniform(args: list[str], attrs: Attrs, node: Node) -> str:
    name = attrs["dtype"]
    if name not in WORDS_PER_ELEMENT:
        raise ValueError(f"philox_uniform makes float32 or float64, not {name!r}")
    return (f"ext.philox_uniform({args[0]}, {_keywords(attrs, ('shape', 'offset'))}, "
            f"dtype={torch_dtype(name)})")


# ---------------------------------------------------------------- the table

_VIEW = "a view: new strides over the same storage, which the kernels read as given"
_WHY_CONV = ("a convolution: torch's implicit GEMM (cuDNN on a GPU) beats a hand-written "
             "Triton kernel here")
_WHY_POOL = "a window op: torch's pooling kernel, no arithmetic worth fusing"

HOST: dict[str, Extern] = {
    "reshape": Extern(_reshape, _VIEW + " (a copy only where strides cannot say it)"),
    "transpose": Extern(_transpose, _VIEW),
    "broadcast_to": Extern(_broadcast_to, _VIEW + " (stride 0 on the broadcast axes)"),
    "slice": Extern(_slice, _VIEW + " (a negative step: a flip, which copies the kept "
                                    "elements)"),
    "concat": Extern(_concat, "pure data movement: torch.cat copies each piece at "
                              "memory speed"),
    "pad": Extern(_pad, "pure data movement: one fill and one copy "
                        "(torch.constant_pad_nd)"),
    "gather": Extern(_ext_call("gather", "axis"),
                     "indexed reads after a host range check that raises IndexingError, "
                     "as numpy does"),
    "scatter_add": Extern(_ext_call("scatter_add", "axis"),
                          "indexed accumulation with repeated indices: torch's index_add"),
    "cumsum": Extern(_ext_call("cumsum", "axis"),
                     "a scan: graphc's kernels are pointwise maps and reductions, "
                     "torch's cumsum is a tuned scan"),
    "conv2d": Extern(_conv2d, _WHY_CONV),
    "conv2d_grad_input": Extern(_ext_call("conv2d_grad_input", *_CONV, "input_shape"),
                                _WHY_CONV + " (torch's convolution backward)"),
    "conv2d_grad_weight": Extern(_ext_call("conv2d_grad_weight", *_CONV, "weight_shape"),
                                 _WHY_CONV + " (torch's convolution backward)"),
    "max_pool2d": Extern(_max_pool2d, _WHY_POOL),
    "avg_pool2d": Extern(_avg_pool2d, _WHY_POOL),
    "max_pool2d_grad": Extern(_ext_call("max_pool2d_grad", *_POOL),
                              _WHY_POOL + " (torch's max-pool backward at its argmax)"),
    "max_pool2d_gather": Extern(_ext_call("max_pool2d_gather", *_POOL),
                                _WHY_POOL + " (a gather at torch's argmax)"),
    "avg_pool2d_grad": Extern(_ext_call("avg_pool2d_grad", *_POOL, "input_shape"),
                              _WHY_POOL + " (torch's avg-pool backward)"),
    "philox_uniform": Extern(_philox_uniform,
                             "integer Philox rounds as torch int64 ops on the device, "
                             "bit for bit the reference's"),
}
