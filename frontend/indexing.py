"""`x[...]` on a Tracer, with numpy's rules.

Basic indexing (ints, slices with any step, None, Ellipsis) becomes slice + reshape.
Integer-array indexing becomes one `gather` on the indexed axes flattened together:
`E[tokens]` gathers along axis 0, and the paired form `logp[np.arange(n), labels]`
gathers flat positions `i * C + labels[i]`. Negative indices count from the end;
out-of-range ones raise IndexError (at trace time for constant indices, when the
compiled function runs for traced ones).
"""
from __future__ import annotations

import numpy as np

from graphc import dtypes
from graphc.errors import IndexingError, UnsupportedError
from frontend import prims
from frontend.tracer import Tracer


def _is_int(k) -> bool:
    return isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_))


def _is_array_index(k) -> bool:
    if isinstance(k, Tracer):
        return True
    if isinstance(k, (list, np.ndarray)):
        return True
    return False


def getitem(x: Tracer, key) -> Tracer:
    if not isinstance(key, tuple):
        key = (key,)
    for k in key:
        if isinstance(k, (bool, np.bool_)) or (
                _is_array_index(k) and np.dtype(getattr(k, "dtype", None) or
                                                np.asarray(k).dtype) == np.bool_):
            raise UnsupportedError(
                "boolean-mask indexing gives a shape that depends on the data",
                hint="use np.where(mask, x, 0) (or a masked sum) instead of x[mask]")
    if any(_is_array_index(k) for k in key):
        return _advanced(x, key)
    return _basic(x, key)


def _expand_ellipsis(key: tuple, ndim: int) -> tuple:
    n_ell = sum(1 for k in key if k is Ellipsis)
    if n_ell > 1:
        raise IndexingError("an index can only have a single ellipsis ('...')")
    used = sum(1 for k in key if k is not None and k is not Ellipsis)
    if used > ndim:
        raise IndexingError(f"too many indices: array is {ndim}-dimensional, but {used} "
                            "were indexed")
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
            i = int(k) % n
            starts.append(i), stops.append(i + 1), steps.append(1)
        elif isinstance(k, slice):
            a, b, s = k.indices(n)
            if not len(range(a, b, s)):
                # an empty slice: slice.indices can give a start of -1 (x[-2::-1] with
                # n=1) that the slice primitive rightly refuses; any empty range will do
                a, b, s = 0, 0, 1
            starts.append(a), stops.append(b), steps.append(s)
            out_shape.append(len(range(a, b, s)))
        else:
            raise UnsupportedError(f"indexing with a {type(k).__name__} is not supported",
                                   hint="use ints, slices, None, ..., or integer arrays")
        axis += 1
    out = x
    if (tuple(starts), tuple(stops), tuple(steps)) != ((0,) * x.ndim, x.shape, (1,) * x.ndim):
        out = x.ctx.emit("slice", x, starts=tuple(starts), stops=tuple(stops),
                         steps=tuple(steps))
    return prims.reshape(out, tuple(out_shape))


def _index_operand(x: Tracer, k, size: int):
    """An integer index array as a Tracer with negatives wrapped (and range-checked)."""
    if isinstance(k, Tracer):
        if k.value.type.dtype not in dtypes.INTS:
            raise UnsupportedError(f"array indices must be integers, got {k.dtype}",
                                   hint="cast with .astype(np.int64)")
        neg = prims.compare("lt", k, 0)
        return prims.where(neg, prims.binary("add", k, size), k), k
    arr = np.asarray(k)
    if arr.size == 0 and isinstance(k, list):
        arr = arr.astype(np.int64)  # numpy takes an empty list as an integer index
    if arr.dtype.kind not in "iu":
        raise UnsupportedError(f"array indices must be integers, got {arr.dtype}")
    if arr.size and (arr.min() < -size or arr.max() >= size):
        bad = arr[(arr < -size) | (arr >= size)].flat[0]
        raise IndexingError(f"index {bad} is out of bounds for an axis of size {size}")
    arr = np.where(arr < 0, arr + size, arr).astype(np.int64)
    return arr, None


def _advanced(x: Tracer, key: tuple) -> Tracer:
    if any(k is None for k in key):
        raise UnsupportedError("mixing None with integer-array indexing is not supported",
                               hint="index first, then add axes with np.expand_dims")
    key = _expand_ellipsis(key, x.ndim)
    # slices apply first (they keep their axes); ints and arrays are the advanced part
    basic = tuple(k if isinstance(k, slice) else slice(None) for k in key)
    x = _basic(x, basic)
    adv = [i for i, k in enumerate(key) if not isinstance(k, slice)]
    contiguous = adv == list(range(adv[0], adv[-1] + 1))
    rest = [i for i in range(x.ndim) if i not in adv]
    moved = prims.transpose(x, adv + rest)
    sizes = [x.shape[i] for i in adv]
    flat = prims.reshape(moved, (int(np.prod(sizes)),) + tuple(x.shape[i] for i in rest))
    # flat position = sum_k index_k * stride_k over the indexed axes
    strides = [int(np.prod(sizes[j + 1:])) for j in range(len(sizes))]
    pos, raw = None, []
    for i, stride in zip(adv, strides):
        idx, orig = _index_operand(x, key[i], x.shape[i])
        raw.append((orig, x.shape[i]))
        term = idx if stride == 1 else (
            idx * stride if not isinstance(idx, Tracer) else prims.binary("mul", idx, stride))
        pos = term if pos is None else (pos + term if not isinstance(pos, Tracer) and
                                        not isinstance(term, Tracer)
                                        else prims.binary("add", pos, term))
    if isinstance(pos, Tracer):
        # a traced index out of range must not land in range after flattening: send
        # the whole position out of range so that the gather raises IndexError
        for orig, size in raw:
            if orig is not None:
                bad = prims.logical("logical_or", prims.compare("lt", orig, -size),
                                    prims.compare("ge", orig, size))
                pos = prims.where(bad, flat.shape[0], pos)
        pos = prims.cast(pos, "int64")
    else:
        pos = x.ctx.const(np.asarray(pos, dtype=np.int64))
    out = x.ctx.emit("gather", flat, pos, axis=0)
    if contiguous and adv[0] > 0:
        b = pos.ndim
        perm = list(range(b, b + adv[0])) + list(range(b)) + list(range(b + adv[0], out.ndim))
        out = prims.transpose(out, perm)
    return out
