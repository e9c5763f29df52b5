"""The kinds of fusion group that Group's docstring names are the kinds fusion makes."""
import re

import numpy as np

import graphc
from graphc.ir import Group

F32 = np.float32


def _documented() -> set[str]:
    # the quoted words of the docstring's kind list are the kinds
    return set(re.findall(r'"(\w+)"', Group.__doc__))


def _programs(rng):
    """One program per kind (together they make every kind), with its arguments."""
    x = rng.standard_normal((64, 32)).astype(F32)
    w = rng.standard_normal((32, 16)).astype(F32)
    b = rng.standard_normal(16).astype(F32)
    return [
        (lambda x: np.tanh(x) * 2.0 + 1.0, (x,)),                          # elementwise
        (lambda x: x / np.sum(np.exp(x), axis=-1, keepdims=True), (x,)),  # reduction
        (lambda x, w, b: np.maximum(x @ w + b, 0.0), (x, w, b)),          # matmul
        (lambda x: np.sum(x * x, axis=0), (x,)),                          # reduce_all
        (lambda s: np.exp(s) * 2.0 + s, (np.asarray(2.0, F32),)),         # scalar, source
        (lambda x: np.concatenate([x, x], axis=0), (x,)),                 # single
    ]


def test_every_kind_fusion_makes_is_documented_and_every_documented_kind_is_made(rng):
    made = set()
    for fn, args in _programs(rng):
        groups = graphc.compile(fn).lower(*args).optimized.groups
        made |= {g.kind for g in groups}
    assert made == _documented()


def test_the_numpy_backend_renders_every_documented_kind():
    from graphc.backends.numpy.codegen import RENDERERS
    assert set(RENDERERS) == _documented()
