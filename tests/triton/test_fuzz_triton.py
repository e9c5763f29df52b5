"""Differential fuzzing of the Triton backend: random IR graphs (tests/fuzz/generate.py)
through the pass pipeline with the Triton backend's fusion policy and its kernels
(under the interpreter where there is no GPU), against the reference interpreter, at
the tolerances graphc.check derives for each output. Derandomized: CI runs the same
examples every time."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("TRITON_INTERPRET", "1")
pytest.importorskip("torch")
pytest.importorskip("triton")

from hypothesis import HealthCheck, given, reject, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import graphc  # noqa: E402
from graphc.fuzz import check_graph  # noqa: E402
from graphc.fuzz.symbolic import check_symbolic, pick_size, symbolic_specs, symbolize  # noqa: E402
from tests.fuzz.generate import graphs  # noqa: E402


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(case=graphs(max_nodes=8))
def test_random_graphs_match_interpreter_on_triton(case):
    check_graph(case.graph, case.inputs(), modes=("triton",))


@settings(max_examples=80, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(case=graphs(max_nodes=8), pick=st.integers(0, 7))
def test_random_graphs_with_a_symbolic_size_match_on_triton(case, pick):
    """One input size symbolic (graphc/fuzz/symbolic.py), one Triton compile, several
    sizes; a graph whose symbolic form this backend does not take (a slice of step 2
    over a symbolic axis) is skipped, never run wrong."""
    size = pick_size(case.graph, pick)
    symbolic = symbolize(case.graph, size) if size is not None else None
    if symbolic is None:
        reject()
    try:
        check_symbolic(symbolic, symbolic_specs(case.specs, symbolic), size, case.seed,
                       ("triton",))
    except graphc.UnsupportedError:
        reject()
