"""Random numbers that compile: explicit keys, pure functions (as in JAX).

A key is a 0-d int64 array. Every draw is a pure function of its key, so the same
key gives the same numbers eagerly, traced, compiled and in the reference
interpreter, and a compiled function that takes its key as an argument draws new
numbers on every call without retracing. To draw twice, split the key and use each
part once: drawing twice from one key gives the same numbers twice.

>>> import numpy as np, graphc
>>> k = graphc.random.key(0)
>>> k_mask, k_noise = graphc.random.split(k)
>>> @graphc.compile
... def noisy_dropout(x, key):
...     keep = graphc.random.bernoulli(key, 0.9, x.shape)
...     return np.where(keep, x / 0.9, 0.0)
>>> x = np.ones((2, 3), np.float32)
>>> bool(np.array_equal(noisy_dropout(x, k_mask), noisy_dropout(x, k_mask)))
True
>>> eager = np.where(graphc.random.bernoulli(k_mask, 0.9, x.shape), x / 0.9, 0.0)
>>> bool(np.array_equal(noisy_dropout(x, k_mask), eager))
True

The numbers come from the `philox_uniform` primitive (Philox4x32-10, see
`graphc.ops.random`): a traced key makes the draw a graph node, a numpy key draws
at once. Uniform floats lie in [0, 1) on a grid of 2**-24 (float32) or 2**-53
(float64).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from graphc import dtypes, nn
from graphc.errors import ArgumentError
from graphc.frontend.tracer import Tracer

Array = Any  # np.ndarray or a Tracer while tracing

# split reads its key's stream from here: a draw of fewer elements never reaches it,
# so the keys split makes are not the numbers a draw from the same key gives
_SPLIT_OFFSET = 2**61
_FLOATS = ("float32", "float64")
_KEY_HINT = "make a key with graphc.random.key(seed), or take one of graphc.random.split's"


def key(seed: int) -> np.ndarray:
    """A key (a 0-d int64 array) from an integer seed in [-2**63, 2**64); seeds that
    agree modulo 2**64 give the same key.

    >>> key(42)
    array(42)
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, (bool, np.bool_)):
        raise ArgumentError(f"graphc.random.key takes an integer seed, got "
                            f"{type(seed).__name__}", hint="pass an int, e.g. key(0)")
    if not -2**63 <= int(seed) < 2**64:
        raise ArgumentError(f"seed {seed} does not fit in 64 bits",
                            hint="use a seed in [-2**63, 2**64)")
    return np.array(np.uint64(int(seed) % 2**64).view(np.int64))


def split(key: Array, n: int = 2) -> Array:
    """`n` new keys from `key`, as an int64 array of shape (n,): index it for each.

    >>> a, b = split(key(0))
    >>> bool(a != b), a.dtype
    (True, dtype('int64'))
    """
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ArgumentError(f"split makes n >= 1 keys, got n={n!r}")
    # each new key is 64 bits: the top 32 bits (exact: u * 2**32 only moves the
    # binary point) of two float64 uniforms, the first shifted to be signed
    n = int(n)
    first = _draw(key, (n,), "float64", offset=_SPLIT_OFFSET)
    second = _draw(key, (n,), "float64", offset=_SPLIT_OFFSET + n)
    high = (np.floor(first * 2.0**32) - 2.0**31).astype(np.int64)
    low = np.floor(second * 2.0**32).astype(np.int64)
    return high * 2**32 + low


def uniform(key: Array, shape=(), dtype=np.float32, minval: float = 0.0,
            maxval: float = 1.0) -> Array:
    """Uniform floats in [minval, maxval) of `shape` and `dtype` (float32 or float64).

    The bounds are numbers or numpy arrays that broadcast to `shape` (not traced
    values); the result is clamped below maxval, which rounding could reach.

    >>> u = uniform(key(1), (1000,), minval=-2.0, maxval=2.0)
    >>> bool(u.min() >= -2.0 and u.max() < 2.0), u.dtype
    (True, dtype('float32'))
    """
    dt, shape = _float_dtype(dtype), _shape(shape)
    u = _draw(key, shape, dt)
    if _is_unit(minval, maxval):
        return u
    lo, hi = _bounds(minval, maxval, shape, dt)
    # the largest float below maxval: u * (hi - lo) + lo may round up to hi itself
    below = np.nextafter(hi, np.array(-np.inf, hi.dtype))
    return np.minimum(u * (hi - lo) + lo, below)


def normal(key: Array, shape=(), dtype=np.float32) -> Array:
    """Standard normal floats of `shape` and `dtype`, by the Box-Muller transform
    (cosine branch): z = sqrt(-2 log(1 - u1)) cos(2 pi u2) from uniforms in the same
    dtype, u1 the key's stream positions [0, n) and u2 the next n. 1 - u1 >= 2**-24
    in float32, so |z| < 5.8 there (a tail of 8e-9 is cut); in float64 |z| < 8.6.

    >>> z = normal(key(2), (20000,), np.float64)
    >>> bool(abs(z.mean()) < 0.03 and abs(z.std() - 1) < 0.03)
    True
    """
    dt, shape = _float_dtype(dtype), _shape(shape)
    # u1 and u2 are stream positions [0, n) and [n, 2n): two nodes, no slicing
    u1 = _draw(key, shape, dt)
    u2 = _draw(key, shape, dt, offset=math.prod(shape))
    radius = np.sqrt(-2.0 * np.log1p(-u1))
    return radius * np.cos(u2 * (2.0 * math.pi))


def bernoulli(key: Array, p: Array = 0.5, shape=None) -> Array:
    """True with probability `p` (a number or an array, traced or not, that
    broadcasts to `shape`; `shape` defaults to p's), as a bool array: u < p for
    float32 uniforms u, so p is resolved to 2**-24.

    >>> b = bernoulli(key(3), 0.25, (10000,))
    >>> b.dtype, bool(abs(b.mean() - 0.25) < 0.02)
    (dtype('bool'), True)
    """
    shape = _shape(np.shape(p) if shape is None else shape)
    return _draw(key, shape, "float32") < p


def _draw(key: Array, shape: tuple[int, ...], dtype: str, offset: int = 0) -> Array:
    """The primitive's uniforms: a graph node for a traced key, numbers for a numpy one."""
    return nn._primitive("philox_uniform", _check_key(key), shape=shape, offset=offset,
                         dtype=dtype)


def _check_key(key: Array) -> Array:
    if isinstance(key, Tracer):
        t = key.value.type
        ok = t.dtype == "int64" and t.shape == ()
    else:
        ok = isinstance(key, (np.ndarray, np.integer)) and np.shape(key) == () \
            and np.asarray(key).dtype == np.int64
        key = np.asarray(key) if ok else key
    if not ok:
        what = key.value.type if isinstance(key, Tracer) else _describe(key)
        raise ArgumentError(f"a graphc.random key is a 0-d int64 array, got {what}",
                            hint=_KEY_HINT + " (index split's result for one key)")
    return key


def _describe(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return f"{dtypes.short(dtypes.canonical(v.dtype))}{list(v.shape)}"
    return type(v).__name__


def _float_dtype(dtype: Any) -> str:
    try:
        name = dtypes.canonical(dtype)
    except Exception:  # noqa: BLE001  not a dtype at all: the same answer as float16
        name = repr(dtype)
    if name not in _FLOATS:
        raise ArgumentError(f"graphc.random draws float32 or float64, not {name}",
                            hint="draw float32 and cast the result")
    return name


def _shape(shape: Any) -> tuple[int, ...]:
    shape = (shape,) if isinstance(shape, (int, np.integer)) else shape
    try:
        out = tuple(int(d) for d in shape)
    except TypeError:
        out = None
    if out is None or any(d < 0 for d in out):
        raise ArgumentError(f"a shape is a tuple of sizes >= 0, got {shape!r}")
    return out


def _is_unit(minval: Any, maxval: Any) -> bool:
    return np.ndim(minval) == 0 and np.ndim(maxval) == 0 and not isinstance(
        minval, Tracer) and not isinstance(maxval, Tracer) and minval == 0 and maxval == 1


def _bounds(minval: Any, maxval: Any, shape: tuple[int, ...],
            dt: str) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(minval, Tracer) or isinstance(maxval, Tracer):
        raise ArgumentError("uniform's minval and maxval must be numbers or numpy arrays, "
                            "not traced values",
                            hint="draw uniform(key, shape) in [0, 1) and scale it yourself")
    lo, hi = np.asarray(minval, dt), np.asarray(maxval, dt)
    if np.broadcast_shapes(lo.shape, hi.shape, shape) != shape:
        raise ArgumentError(f"bounds of shapes {lo.shape} and {hi.shape} do not broadcast "
                            f"to the shape {shape}")
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(lo < hi)):
        raise ArgumentError("uniform needs finite bounds with minval < maxval")
    return lo, hi
