"""Every primitive, one node at a time, on the Triton backend (under the interpreter
where there is no GPU), against the independent references of tests/op_samples.py:
the same cases and checks as tests/test_ops.py runs for the numpy backend.

Elementwise ops, reductions and matmul run as generated Triton kernels, the other ops
as torch calls on the device (backends/triton/extern.py); every case checks the IR's
shape and dtype, the values (exact for ints, bools and moves; a few ulps of the dtype
for floats), and that the inputs are left as they were and not aliased.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TRITON_INTERPRET", "1")
pytest.importorskip("torch")
pytest.importorskip("triton")

from graphc.backends.triton import LOWERINGS, compile_graph  # noqa: E402
from graphc.ops import OPS  # noqa: E402
from op_samples import SAMPLES  # noqa: E402
from test_ops import CASES, assert_matches, one_node_graph  # noqa: E402


@pytest.mark.parametrize("op, index", CASES)
def test_op_matches_reference_on_triton(op, index):
    inputs, attrs, reference = SAMPLES[op][index]
    graph = one_node_graph(op, inputs, attrs)
    before = [np.array(a) for a in inputs]
    with np.errstate(all="ignore"):  # the reference and the op may both see inf/nan
        outputs = compile_graph(graph).fn(*inputs)
        want = np.asarray(reference(*inputs, **attrs))
    assert isinstance(outputs, tuple) and len(outputs) == 1, outputs
    got = outputs[0]
    assert_matches(got, want, graph.outputs[0].type)
    for a, b in zip(inputs, before):
        np.testing.assert_array_equal(a, b, strict=True)
        assert not np.shares_memory(got, a)


def test_every_primitive_has_a_triton_lowering():
    assert sorted(LOWERINGS) == sorted(OPS)
    for name, entry in LOWERINGS.items():
        assert entry.kind in ("kernel", "reduction", "matmul", "extern", "source"), name
