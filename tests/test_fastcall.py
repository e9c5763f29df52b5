"""The C call fast path (graphc/fastcall.c): same results, counts and errors as the
Python path, for every kind of call that reaches it or must not."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import graphc
from graphc.api import CompiledFunction
from graphc.fastcall import dispatcher

pytestmark = pytest.mark.skipif(dispatcher() is None,
                                reason="the C fast path did not build here")
F32 = np.float32


def test_compiled_functions_are_served_by_the_c_base():
    f = graphc.compile(lambda x: x + 1.0)
    assert isinstance(f, CompiledFunction) and isinstance(f, dispatcher())
    x = np.arange(5, dtype=F32)
    np.testing.assert_array_equal(f(x), x + 1.0)   # compiles, registers
    np.testing.assert_array_equal(f(x), x + 1.0)   # the C path
    assert f._fast_hits == 1 and f.cache_info().hits == 1


def test_signatures_are_told_apart_by_dtype_shape_and_rank():
    f = graphc.compile(lambda x: x * 2)
    args = [np.ones(3, F32), np.ones(4, F32), np.ones((3, 1), F32), np.ones(3, np.float64),
            np.ones(3, np.int32), np.ones((), F32), np.ones(3, F32)]
    for a in args:
        got = f(a)
        assert got.dtype == (a * 2).dtype and got.shape == a.shape
        np.testing.assert_array_equal(got, a * 2)
    assert f.cache_info().misses == 6 and f.cache_info().hits == 1


def test_calls_it_cannot_serve_take_the_python_path():
    def f(x, scale=2.0):
        return x * scale
    g = graphc.compile(f)
    x = np.arange(4, dtype=F32)
    g(x)
    np.testing.assert_array_equal(g(x, scale=3.0), x * 3.0)       # keywords
    np.testing.assert_array_equal(g(x, 3.0), x * 3.0)              # a Python float
    np.testing.assert_array_equal(g(F32(5.0)), F32(5.0) * 2.0)    # a numpy scalar
    swapped = x.astype(">f4")                                      # big-endian
    np.testing.assert_array_equal(g(swapped), f(swapped))
    np.testing.assert_array_equal(g(x[::2]), f(x[::2]))           # a strided view


def test_pytree_outputs_are_rebuilt():
    g = graphc.compile(lambda x: {"a": x + 1.0, "b": (x * 2.0, x)})
    x = np.arange(3, dtype=F32)
    for _ in range(3):
        out = g(x)
        np.testing.assert_array_equal(out["a"], x + 1.0)
        np.testing.assert_array_equal(out["b"][0], x * 2.0)
        assert out["b"][1] is not x  # outputs never alias inputs
    assert g._fast_hits == 2


def test_check_mode_compares_calls_served_in_c():
    def broken(graph):  # a wrong pass: the result is the input
        return graphc.ir.Graph(graph.name, graph.inputs, graph.nodes, [graph.inputs[0]])
    g = graphc.compile(lambda x: x + 1.0, passes=[("broken", broken)], check=True)
    x = np.arange(3, dtype=F32)
    for _ in range(3):
        with pytest.raises(graphc.MismatchError):
            g(x)
    assert g._fast_hits == 2


def test_cache_clear_forgets_the_c_entries():
    g = graphc.compile(lambda x: x - 1.0)
    x = np.arange(3, dtype=F32)
    g(x)
    g(x)
    g.cache_clear()
    assert g._fast_hits == 0 and g.cache_info() == (0, 0, 0)
    g(x)
    assert g.cache_info() == (0, 1, 1)


def test_without_the_c_path_calls_work_in_python():
    code = textwrap.dedent("""
        import numpy as np, graphc
        from graphc.api import CompiledFunction
        f = graphc.compile(lambda x: x + 1.0)
        assert type(f) is CompiledFunction, type(f).__mro__
        x = np.arange(3, dtype=np.float32)
        assert (f(x) == x + 1.0).all() and (f(x) == x + 1.0).all()
        assert f.cache_info() == (1, 1, 1), f.cache_info()
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**__import__("os").environ, "GRAPHC_FASTCALL": "0"})
    assert done.returncode == 0, done.stderr
