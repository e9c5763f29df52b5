"""Suite-wide checks on every graph the tests make.

* Every compiled call also runs the reference interpreter on the traced graph and
  compares (GRAPHC_CHECK=1, graphc's own check mode).
* Every traced graph round-trips through the text IR: `parse(str(g))` prints the
  same text and verifies.
"""
import os

import numpy as np
import pytest

import graphc
import graphc.api
from graphc.ir import parse

os.environ["GRAPHC_CHECK"] = "1"
os.environ.setdefault("GRAPHC_VERIFY", "1")  # every pass's graph verified
# Triton's interpreter (kernels on CPU tensors) where there is no NVIDIA GPU; it must be
# set before triton is imported, or its jit runs kernels for a GPU
if "TRITON_INTERPRET" not in os.environ and not os.path.exists("/dev/nvidia0"):
    os.environ["TRITON_INTERPRET"] = "1"

# GRAPHC_TEST_BACKEND=triton: `graphc.compile` defaults to that backend, so that the
# numpy-program tests run on it unchanged (make test does so for those files)
_TEST_BACKEND = os.environ.get("GRAPHC_TEST_BACKEND")
if _TEST_BACKEND:
    import functools
    _compile = graphc.api.compile

    @functools.wraps(_compile)
    def _compile_on_test_backend(fn=None, *, backend=_TEST_BACKEND, **kwargs):
        return _compile(fn, backend=backend, **kwargs)
    graphc.compile = graphc.api.compile = _compile_on_test_backend

ROUND_TRIPS = {"count": 0}
_original_trace_function = graphc.api.trace_function


def _round_trip(graph) -> None:
    text = str(graph)
    again = parse(text)
    assert str(again) == text, f"text IR round trip changed the graph:\n{text}\n---\n{again}"
    again.verify()
    ROUND_TRIPS["count"] += 1


# The wrapper is compiled under a "<graphc..." file name so that graphc's error locator
# treats it as compiler code: errors raised through it still name the test's own line.
_namespace = {"_original": _original_trace_function, "_round_trip": _round_trip}
exec(compile(
    "def _checked_trace_function(*args, **kwargs):\n"
    "    traced = _original(*args, **kwargs)\n"
    "    _round_trip(traced.graph)\n"
    "    return traced\n", "<graphc-test-hook>", "exec"), _namespace)
graphc.api.trace_function = _namespace["_checked_trace_function"]


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def no_compile_cache(monkeypatch):
    """The persistent compile cache off (GRAPHC_CACHE=0): for tests that watch or break
    the passes or the backend's code generator, which a cache hit skips."""
    monkeypatch.setenv("GRAPHC_CACHE", "0")
