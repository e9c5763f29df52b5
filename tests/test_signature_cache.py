"""The compiled function's pieces (graphc.cache, graphc.retrace) and the one flattening
of a call's arguments on a cache miss (graphc.frontend.trace.flat_call)."""
import doctest
import importlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import graphc
import graphc.api
import graphc.frontend.trace as trace_module
from graphc.frontend.pytree import flatten
from graphc.frontend.trace import flat_call

F32 = np.float32


@pytest.mark.parametrize("module", ["graphc.cache", "graphc.retrace", "graphc.frontend.trace"])
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0 and result.attempted > 0


def test_the_public_names_stay_in_graphc_api():
    from graphc.api import (CacheInfo, CompiledFunction, Lowered, RecompileWarning,  # noqa: F401
                            compile, explain_retrace, lower_function, trace)
    assert graphc.RecompileWarning is RecompileWarning
    assert isinstance(graphc.compile(lambda x: x), CompiledFunction)


class _Counting:
    """Counts the calls of a function of graphc.frontend.trace, then calls it."""

    def __init__(self, monkeypatch, name):
        self.calls, self.fn = 0, getattr(trace_module, name)
        monkeypatch.setattr(trace_module, name, self)

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.fn(*args, **kwargs)


def _model(params, xs, scale=2.0):
    h = np.tanh(xs[0] @ params["w"] + params["b"])
    return np.sum(h * xs[1]) * scale


def _model_args(rng):
    params = {"w": rng.standard_normal((8, 4)).astype(F32),
              "b": rng.standard_normal(4).astype(F32)}
    xs = [rng.standard_normal((3, 8)).astype(F32), rng.standard_normal((3, 4)).astype(F32)]
    return params, xs


def test_a_miss_flattens_and_keys_the_arguments_once(rng, monkeypatch):
    params, xs = _model_args(rng)
    f = graphc.compile(_model)
    flattens = _Counting(monkeypatch, "flatten")
    keys = _Counting(monkeypatch, "leaf_key")
    f(params, xs, scale=3.0)
    assert f.cache_info().misses == 1
    # the arguments once (for the cache key) and the result once (to rebuild it)
    assert flattens.calls == 2
    assert keys.calls == 5  # w, b, xs[0], xs[1], scale
    flattens.calls = keys.calls = 0
    f(params, xs, scale=3.0)  # a hit off the fast path: the key only, no paths
    assert f.cache_info().hits == 1 and flattens.calls == 1 and keys.calls == 5


def test_a_miss_still_names_every_leaf(rng):  # (the values: check mode, conftest)
    params, xs = _model_args(rng)
    low = graphc.compile(_model).lower(params, xs, scale=3.0)
    assert low.traced.in_paths == ["params['w']", "params['b']", "xs[0]", "xs[1]", "scale"]
    assert [v.name for v in low.graph.inputs] == ["params.w", "params.b", "xs.0", "xs.1"]


_leaves = st.one_of(st.integers(0, 9), st.just(None),
                    st.builds(lambda n: np.zeros(n, F32), st.integers(0, 3)))
_trees = st.recursive(_leaves, lambda sub: st.one_of(
    st.lists(sub, max_size=3), st.tuples(sub, sub),
    st.dictionaries(st.sampled_from(["a", "b", "w1"]), sub, max_size=3)), max_leaves=8)


@settings(max_examples=60, deadline=None)
@given(args=st.lists(_trees, max_size=3), kwargs=st.dictionaries(
    st.sampled_from(["lr", "state"]), _trees, max_size=2))
def test_paths_from_the_treedef_are_the_pytree_paths(args, kwargs):
    def fn(x, y, *rest, **kw):
        return x

    names = ["x", "y"] + [f"rest[{i}]" for i in range(2, len(args))]
    want = [p for name, a in zip(names, args) for p in flatten(a, name)[2]]
    want += [p for k, v in kwargs.items() for p in flatten(v, k)[2]]
    flat = flat_call(fn, tuple(args), kwargs)
    assert flat.paths == want
    leaves = flatten((tuple(args), kwargs))[0]
    assert len(flat.leaves) == len(leaves) and all(a is b for a, b in zip(flat.leaves, leaves))
