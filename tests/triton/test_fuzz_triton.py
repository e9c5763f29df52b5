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

from hypothesis import HealthCheck, given, settings  # noqa: E402

from graphc.fuzz import check_graph  # noqa: E402
from tests.fuzz.generate import graphs  # noqa: E402


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(case=graphs(max_nodes=8))
def test_random_graphs_match_interpreter_on_triton(case):
    check_graph(case.graph, case.inputs(), modes=("triton",))
