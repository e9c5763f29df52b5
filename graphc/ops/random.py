"""The counter-based random primitive: `philox_uniform(seed)`.

Random numbers that keep graphs pure: the output is a function of the seed (a graph
value) and the attributes alone, so a graph that draws them can be traced once, run
many times with new seeds, differentiated (the backward recomputes the forward's
mask from the same seed) and checked against the interpreter bit for bit.

The generator is Philox4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel Random
Numbers: As Easy as 1, 2, 3", SC'11): a 128-bit counter and a 64-bit key go through
ten rounds of two 32x32->64-bit multiplications and xors, the key bumped by the
Weyl constants between rounds, giving four 32-bit words per counter. Here the key
is the seed's two 32-bit halves (low word first) and the counter is a 64-bit block
number (low word first), then a word naming the output dtype (0 for float32, 1 for
float64), then 0. Element `i` of an output of `n` elements reads stream position
`j = offset + i` of its dtype's stream:

* float32: word `j % 4` of block `j // 4`; its top 24 bits times 2**-24;
* float64: words `2 (j % 2)` and `2 (j % 2) + 1` of block `j // 2`; the first's top
  27 bits and the second's top 26 bits make 53 bits, times 2**-53.

So element `i` depends on `(seed, offset + i)` only: a slice of a larger draw equals
a draw at the shifted offset, and draws over disjoint `[offset, offset + n)` ranges
of one seed are independent streams, and so are a seed's float32 and float64
streams, whatever their offsets. The values lie in [0, 1) (never 1.0) on a grid
of 2**-24 (float32) or 2**-53 (float64). Every step is integer arithmetic or an
exact scaling by a power of two, so all backends agree bit for bit.

>>> import numpy as np
>>> u = philox_uniform(np.int64(7), shape=(2, 3), offset=0, dtype="float32")
>>> u.shape, u.dtype, bool(np.all((0 <= u) & (u < 1)))
((2, 3), dtype('float32'), True)
>>> later = philox_uniform(np.int64(7), shape=(4,), offset=2, dtype="float32")
>>> bool(np.array_equal(u.ravel()[2:], later))
True
"""
from __future__ import annotations

import math

import numpy as np

from graphc import dtypes
from graphc.errors import DtypeError, ShapeError
from graphc.ir.types import TensorType
from graphc.ops import Kind, OpDef, Rounding, register
from graphc.ops.schema import SHAPE, Attr

# Philox4x32's multipliers and Weyl key increments (the paper's table of constants)
_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_W0, _W1 = 0x9E3779B9, 0xBB67AE85
_ROUNDS = 10
_LOW32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)

# the stream positions one 4-word block serves, per output dtype (see the docstring)
WORDS_PER_ELEMENT = {"float32": 1, "float64": 2}
STREAM = {"float32": 0, "float64": 1}  # the counter's third word: one stream per dtype
_CHUNK = 8192  # blocks per pass: the six uint64 lanes stay in the L2 cache
_OFFSET_LIMIT = 2**62  # block numbers stay below 2**64 with room for any size


def philox4x32(counter: np.ndarray, key: tuple[int, int],
               rounds: int = _ROUNDS) -> np.ndarray:
    """Philox4x32-`rounds` of each row of `counter` (uint32, shape (n, 4)) under
    `key` (two 32-bit ints): the (n, 4) uint32 output words.

    >>> philox4x32(np.zeros((1, 4), np.uint32), (0, 0))[0].tolist() == [
    ...     0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
    True
    """
    counter = np.asarray(counter, np.uint32)
    out = np.empty(counter.shape, np.uint32)
    for at in range(0, len(counter), _CHUNK):
        out[at:at + _CHUNK] = _rounds(counter[at:at + _CHUNK], key, rounds)
    return out


def _rounds(counter: np.ndarray, key: tuple[int, int], rounds: int) -> np.ndarray:
    # uint64 lanes holding 32-bit words: a 32x32 product fits exactly in 64 bits;
    # every step writes into the six lanes in place (allocation would cost more
    # than the arithmetic)
    x0, x1, x2, x3 = (counter[:, k].astype(np.uint64) for k in range(4))
    p0, p1 = np.empty_like(x0), np.empty_like(x0)
    k0, k1 = key[0] & 0xFFFFFFFF, key[1] & 0xFFFFFFFF
    for _ in range(rounds):
        np.multiply(x0, _M0, out=p0)
        np.multiply(x2, _M1, out=p1)
        np.right_shift(p1, _SHIFT32, out=x0)
        x0 ^= x1
        x0 ^= np.uint64(k0)
        np.bitwise_and(p1, _LOW32, out=x1)
        np.right_shift(p0, _SHIFT32, out=x2)
        x2 ^= x3
        x2 ^= np.uint64(k1)
        np.bitwise_and(p0, _LOW32, out=x3)
        k0, k1 = (k0 + _W0) & 0xFFFFFFFF, (k1 + _W1) & 0xFFFFFFFF
    return np.stack([x0, x1, x2, x3], axis=1)


def seed_key(seed) -> tuple[int, int]:
    """The Philox key of an int64 seed: its two's-complement low and high words."""
    bits = int(np.asarray(seed, np.int64)) & 0xFFFFFFFFFFFFFFFF
    return bits & 0xFFFFFFFF, bits >> 32


def stream_words(seed, start: int, count: int, dtype: str) -> np.ndarray:
    """The (count, per) uint32 words of `dtype`'s stream positions start .. start +
    count - 1, `per` words each (1 for float32, 2 for float64), from blocks of 4 //
    per positions."""
    per = WORDS_PER_ELEMENT[dtype]
    span = 4 // per
    first, last = start // span, (start + count - 1) // span
    blocks = np.arange(first, last + 1, dtype=np.uint64)
    counter = np.zeros((blocks.size, 4), np.uint32)
    counter[:, 0] = blocks & _LOW32
    counter[:, 1] = blocks >> _SHIFT32
    counter[:, 2] = STREAM[dtype]
    words = philox4x32(counter, seed_key(seed)).reshape(-1, per)
    skip = start - first * span
    return words[skip:skip + count]


def _to_unit(words: np.ndarray, dtype: str) -> np.ndarray:
    """Uniform floats in [0, 1) from uint32 words, (n, 1) for float32, (n, 2) for
    float64: the top 24 (or 27 + 26 = 53) bits scaled by a power of two, exactly."""
    if dtype == "float32":
        return (words[:, 0] >> np.uint32(8)).astype(np.float32) * np.float32(2.0**-24)
    hi = (words[:, 0] >> np.uint32(5)).astype(np.float64)
    lo = (words[:, 1] >> np.uint32(6)).astype(np.float64)
    return (hi * 2.0**26 + lo) * 2.0**-53


def philox_uniform(seed: np.ndarray, shape, offset: int, dtype: str) -> np.ndarray:
    """Uniform [0, 1) floats of `shape` from stream positions offset, offset + 1, ...
    of `seed` (see the module docstring for the layout)."""
    shape = tuple(shape)
    count = math.prod(shape)
    if count == 0:
        return np.zeros(shape, dtypes.to_numpy(dtype))
    words = stream_words(seed, offset, count, dtype)
    return _to_unit(words, dtype).reshape(shape)


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _infer(ins, attrs):
    (seed,) = ins
    if seed.dtype != "int64" or seed.shape != ():
        raise DtypeError(f"philox_uniform takes a 0-d int64 seed, got {seed}")
    shape, offset, dtype = attrs["shape"], attrs["offset"], attrs["dtype"]
    if not isinstance(shape, tuple) or not all(_is_int(d) and d >= 0 for d in shape):
        raise ShapeError(f"philox_uniform: shape must be a tuple of sizes >= 0, got {shape!r}")
    if not _is_int(offset) or not 0 <= offset < _OFFSET_LIMIT:
        raise ShapeError(f"philox_uniform: offset must be an int in [0, 2**62), got "
                         f"{offset!r}")
    if dtype not in WORDS_PER_ELEMENT:
        raise DtypeError(f"philox_uniform makes float32 or float64, not {dtype!r}")
    return (TensorType(tuple(int(d) for d in shape), dtype),)


# OPAQUE, not SOURCE: its output depends on a graph value (the seed), so it is
# neither hoisted as a constant nor folded unless the seed itself is one; CSE may
# merge two equal calls, which are the same numbers
register(OpDef("philox_uniform",
               {"shape": SHAPE, "offset": Attr("int", lo=0, hi=_OFFSET_LIMIT - 1),
                "dtype": Attr("dtype", choices=frozenset(WORDS_PER_ELEMENT))},
               _infer, philox_uniform, Kind.OPAQUE, 1, differentiable=False,
               doc="uniform [0, 1) floats from Philox4x32-10: element i reads stream "
                   "position offset + i of the seed",
               dtypes=frozenset({"int64"}), rounding=Rounding.EXACT))
