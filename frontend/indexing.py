"""`x[...]` on a Tracer, with numpy's rules.

Basic indexing (ints, slices with any step, None, Ellipsis) becomes slice + reshape.
Integer-array indexing becomes one `gather` on the indexed axes flattened together:
`E[tokens]` gathers along axis 0, and the paired form `logp[np.arange(n), labels]`
gathers flat positions `i * C + labels[i]`. Negative indices count from the end;
out-of-range ones raise IndexingError with numpy's words (at trace time for constant
indices; for traced ones when the compiled function runs, from the gather that reads
them, at the user's line). Every index numpy refuses is an IndexingError with numpy's
message; constant boolean masks become their np.nonzero indices, as in numpy.
"""
from __future__ import annotations

import math

import numpy as np

from graphc import dtypes
from graphc.errors import IndexingError, ShapeError, UnsupportedError
from graphc.frontend import prims
from graphc.frontend.tracer import Tracer
from graphc.ir import symbols
from graphc.ops.elementwise import broadcast_shapes
from graphc.ops.shape import slice_length


# numpy's words for an index it cannot read (it raises IndexError with them)
_VALID = ("only integers, slices (`:`), ellipsis (`...`), numpy.newaxis (`None`) and "
          "integer or boolean arrays are valid indices")
_INT64 = np.iinfo(np.int64)


def _is_int(k) -> bool:
    return isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_))


def _is_array_index(k) -> bool:
    return isinstance(k, (Tracer, np.ndarray))


def getitem(x: Tracer, key) -> Tracer:
    if not isinstance(key, tuple):
        key = (key,)
    key = _constant_masks(tuple(_checked(k) for k in key), x.shape)
    if any(_is_array_index(k) for k in key):
        return _advanced(x, key)
    return _basic(x, key)


def _checked(k):
    """One index item as numpy reads it: an int, a slice, None, ..., an integer or bool
    ndarray, or an integer Tracer; anything else is numpy's IndexError, at trace time."""
    if isinstance(k, Tracer):
        if k.value.type.dtype == "bool":
            raise UnsupportedError(
                "boolean-mask indexing gives a shape that depends on the data",
                hint="use np.where(mask, x, 0) (or a masked sum) instead of x[mask]")
        if k.value.type.dtype not in dtypes.INTS:
            raise IndexingError("arrays used as indices must be of integer (or boolean) "
                                f"type, got {k.dtype}", hint="cast with .astype(np.int64)")
        return k
    if isinstance(k, (bool, np.bool_)):
        raise UnsupportedError("indexing with a Python bool (x[True]) is not supported",
                               hint="add an axis with x[None] or np.expand_dims instead")
    if _is_int(k):
        if not _INT64.min <= k <= _INT64.max:  # numpy cannot read it as an index either
            raise IndexingError(_VALID, hint=f"the index {k} does not fit in 64 bits")
        return int(k)
    if isinstance(k, slice):
        for part in (k.start, k.stop, k.step):
            if part is not None and not isinstance(part, Tracer) and \
                    not hasattr(type(part), "__index__"):
                raise IndexingError("slice indices must be integers or None or have an "
                                    "__index__ method", hint="use int(...) bounds")
        if k.step is not None and not isinstance(k.step, Tracer) and k.step == 0:
            raise IndexingError("slice step cannot be zero",
                                hint="a step is a non-zero int: x[::-1] reverses")
        return k
    if k is None or k is Ellipsis:
        return k
    if isinstance(k, (list, tuple, np.ndarray)):
        return _constant_index(k)
    raise IndexingError(_VALID, hint=f"an index of type {type(k).__name__} means nothing "
                                     "to numpy: use an int, a slice or an integer array")


def _constant_index(k) -> np.ndarray:
    """A list or ndarray index as an int64 or bool ndarray (numpy's rules and words)."""
    try:
        arr = np.asarray(k)
    except ValueError as exc:  # a ragged list: numpy's own message
        raise IndexingError(str(exc), hint="every row of a nested index list needs the "
                                           "same length") from None
    if arr.size == 0 and not isinstance(k, np.ndarray):
        return arr.astype(np.int64)  # numpy takes an empty list as an integer index
    if arr.dtype.kind == "b":
        return arr
    if arr.dtype.kind not in "iu":
        if isinstance(k, np.ndarray):
            raise IndexingError("arrays used as indices must be of integer (or boolean) "
                                f"type, got {arr.dtype}", hint="cast with .astype(np.int64)")
        raise IndexingError(_VALID, hint=f"the list holds {arr.dtype} values: make them ints")
    return arr


def _constant_masks(key: tuple, shape: tuple) -> tuple:
    """A constant boolean mask becomes its np.nonzero index arrays, as numpy does: its
    shape must match the axes it covers. (A traced mask was refused by _checked.)"""
    if not any(isinstance(k, np.ndarray) and k.dtype == np.bool_ for k in key):
        return key
    dims = [k.ndim if isinstance(k, np.ndarray) and k.dtype == np.bool_ else
            0 if k is None or k is Ellipsis else 1 for k in key]
    if sum(dims) > len(shape):
        raise IndexingError(f"too many indices for array: array is {len(shape)}-dimensional, "
                            f"but {sum(dims)} were indexed")
    ell = next((j for j, k in enumerate(key) if k is Ellipsis), None)
    out: list = []
    for j, k in enumerate(key):
        if not (isinstance(k, np.ndarray) and k.dtype == np.bool_):
            out.append(k)
            continue
        if k.ndim == 0:
            raise UnsupportedError("indexing with a 0-d boolean array is not supported",
                                   hint="add an axis with x[None] instead")
        axis = sum(dims[:j]) if ell is None or j < ell else len(shape) - sum(dims[j:])
        for d, n in enumerate(k.shape):
            if shape[axis + d] != n:
                raise IndexingError(
                    f"boolean index did not match indexed array along axis {axis + d}; size "
                    f"of axis is {shape[axis + d]} but size of corresponding boolean axis "
                    f"is {n}", hint="a mask has the shape of the axes it indexes")
        out += [i.astype(np.int64) for i in np.nonzero(k)]
    return tuple(out)


def _expand_ellipsis(key: tuple, ndim: int) -> tuple:
    n_ell = sum(1 for k in key if k is Ellipsis)
    if n_ell > 1:
        raise IndexingError("an index can only have a single ellipsis ('...')")
    used = sum(1 for k in key if k is not None and k is not Ellipsis)
    if used > ndim:
        raise IndexingError(f"too many indices for array: array is {ndim}-dimensional, but "
                            f"{used} were indexed")
    if n_ell:
        # by identity: key.index would compare index arrays (and Tracers) with ==
        i = next(j for j, k in enumerate(key) if k is Ellipsis)
        return key[:i] + (slice(None),) * (ndim - used) + key[i + 1:]
    return key + (slice(None),) * (ndim - used)


def _basic(x: Tracer, key: tuple) -> Tracer:
    key = _expand_ellipsis(key, x.ndim)
    starts, stops, steps, out_shape = [], [], [], []
    axis = 0
    for k in key:
        if k is None:
            out_shape.append(1)
            continue
        n = x.shape[axis]
        if _is_int(k):
            if not -n <= k < n:
                raise IndexingError(
                    f"index {k} is out of bounds for axis {axis} with size {n}")
            i = int(k) % n if type(n) is int else int(k) + (n if k < 0 else 0)
            starts.append(i), stops.append(i + 1), steps.append(1)
        else:  # a slice (_checked let nothing else through)
            a, b, s = symbols.slice_indices(k.start, k.stop, k.step, n)
            if not slice_length(a, b, s):
                # an empty slice: slice.indices can give a start of -1 (x[-2::-1] with
                # n=1) that the slice primitive rightly refuses; any empty range will do
                a, b, s = 0, 0, 1
            starts.append(a), stops.append(b), steps.append(s)
            out_shape.append(slice_length(a, b, s))
        axis += 1
    out = x
    if (tuple(starts), tuple(stops), tuple(steps)) != ((0,) * x.ndim, x.shape, (1,) * x.ndim):
        out = x.ctx.emit("slice", x, starts=tuple(starts), stops=tuple(stops),
                         steps=tuple(steps))
    return prims.reshape(out, tuple(out_shape))


def _constant_operand(k, axis: int, size: int) -> np.ndarray:
    """A constant index (int or array), range-checked now and wrapped to 0..size-1."""
    arr = np.asarray(k, dtype=np.int64)
    if arr.size and (arr.min() < -size or arr.max() >= size):
        bad = arr[(arr < -size) | (arr >= size)].flat[0]
        raise IndexingError(f"index {bad} is out of bounds for axis {axis} with size {size}")
    return np.where(arr < 0, arr + size, arr)


def _traced_operand(k: Tracer, axis: int, size: int) -> Tracer:
    """A traced index wrapped to 0..size-1 by reading it out of arange(size) laid along
    `axis`: np.take wraps negatives and raises numpy's own "index 12 is out of bounds
    for axis 1 with size 10" for the rest (one pass over the index array, no loop)."""
    shape = (1,) * axis + (size,)
    table = k.ctx.emit("iota", shape=shape, axis=axis, dtype="int64")
    return prims.reshape(k.ctx.emit("gather", table, k, axis=axis), k.shape)


def _advanced(x: Tracer, key: tuple) -> Tracer:
    if any(k is None for k in key):
        # numpy reads None as a new axis of size 1 that the rest then slices whole
        x = _basic(x, tuple(k if k is None or k is Ellipsis else slice(None) for k in key))
        key = tuple(slice(None) if k is None else k for k in key)
    key = _expand_ellipsis(key, x.ndim)
    adv = [i for i, k in enumerate(key) if not isinstance(k, slice)]
    shapes = [tuple(np.shape(key[i])) if not isinstance(key[i], Tracer) else key[i].shape
              for i in adv]
    try:
        broadcast_shapes(*shapes)
    except ShapeError:
        raise IndexingError("shape mismatch: indexing arrays could not be broadcast "
                            f"together with shapes {' '.join(map(str, shapes))}",
                            hint="index arrays pair up element by element, so their "
                                 "shapes must broadcast") from None
    # slices apply first (they keep their axes); ints and arrays are the advanced part
    x = _basic(x, tuple(k if isinstance(k, slice) else slice(None) for k in key))
    if len(adv) == 1:
        # one index array: a gather along its own axis, so that an index out of range
        # raises numpy's own message (the index as given, this axis, its size)
        (i,) = adv
        idx = key[i] if isinstance(key[i], Tracer) else x.ctx.const(
            _constant_operand(key[i], i, x.shape[i]))
        return x.ctx.emit("gather", x, idx, axis=i)
    contiguous = adv == list(range(adv[0], adv[-1] + 1))
    rest = [i for i in range(x.ndim) if i not in adv]
    moved = prims.transpose(x, adv + rest)
    sizes = [x.shape[i] for i in adv]
    flat = prims.reshape(moved, (math.prod(sizes),) + tuple(x.shape[i] for i in rest))
    # flat position = sum_k index_k * stride_k over the indexed axes, each index wrapped
    # (and checked) on its own axis first
    strides = [math.prod(sizes[j + 1:]) for j in range(len(sizes))]
    pos = None
    for i, stride in zip(adv, strides):
        if isinstance(key[i], Tracer):
            idx = _traced_operand(key[i], i, x.shape[i])
            term = idx if stride == 1 else prims.binary("mul", idx, stride)
        else:
            term = _constant_operand(key[i], i, x.shape[i]) * stride
        traced = isinstance(pos, Tracer) or isinstance(term, Tracer)
        pos = term if pos is None else (prims.binary("add", pos, term) if traced
                                        else pos + term)
    if not isinstance(pos, Tracer):
        pos = x.ctx.const(np.asarray(pos, dtype=np.int64))
    out = x.ctx.emit("gather", flat, pos, axis=0)
    if contiguous and adv[0] > 0:
        b = pos.ndim
        perm = list(range(b, b + adv[0])) + list(range(b)) + list(range(b + adv[0], out.ndim))
        out = prims.transpose(out, perm)
    return out


def take_mode(indices, mode: str | None, size: int):
    """np.take's `mode` applied to its indices: "raise" (the default) keeps them, so an
    index out of range raises; "clip" clips to 0..size-1 (a negative index gives 0, as in
    numpy); "wrap" takes them modulo size."""
    if mode in (None, "raise"):
        return indices
    if mode not in ("clip", "wrap"):
        raise UnsupportedError(f"clipmode must be one of 'clip', 'raise', or 'wrap' (got "
                               f"{mode!r})", hint="np.take's mode is 'raise', 'clip' or 'wrap'")
    if size == 0:
        raise IndexingError("cannot do a non-empty take from an empty axes.")
    if not isinstance(indices, Tracer):
        idx = _checked(indices) if isinstance(indices, (list, tuple)) else np.asarray(indices)
        if np.asarray(idx).dtype.kind not in "iu":
            raise IndexingError(_VALID)
        return np.clip(idx, 0, size - 1) if mode == "clip" else np.mod(idx, size)
    if indices.value.type.dtype not in dtypes.INTS:
        _checked(indices)  # numpy's words for a float or bool index
    if mode == "clip":
        return prims.binary("minimum", prims.binary("maximum", indices, 0), size - 1)
    return indices.ctx.emit("remainder", indices, prims.lift(size, indices.value.type.dtype,
                                                             indices.ctx))
