"""Differential fuzzing of the pass pipeline and the numpy backend.

Random IR graphs (tests/fuzz/generate.py) run through every default pass and the
numpy backend, normally, with every fused group forced through tiny block kernels, and
(where a C compiler exists) with every fused group forced through native kernels, and
must agree with the reference interpreter; their text IR must round-trip. Random
numpy programs go through `graphc.compile` and must agree with eager numpy.
Derandomized: CI runs the same examples every time.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

import graphc
from graphc import dtypes
from graphc.check import TOLERANCES
from graphc.fuzz import check_graph, native_available
from graphc.fuzz.symbolic import check_symbolic, pick_size, symbolic_specs, symbolize

from tests.fuzz.generate import graphs, numpy_programs



def fuzz(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


@fuzz(800)
@given(case=graphs(max_nodes=6))
def test_random_graphs_match_interpreter(case):
    check_graph(case.graph, case.inputs())


@fuzz(400)
@given(case=graphs(max_nodes=16))
def test_random_deep_graphs_match_interpreter(case):
    check_graph(case.graph, case.inputs())


# each example builds a C library (~0.1 s): fewer of them
@pytest.mark.skipif(not native_available(), reason="no C compiler for native kernels")
@fuzz(300)
@given(case=graphs(max_nodes=10))
def test_random_graphs_match_interpreter_in_native_kernels(case):
    check_graph(case.graph, case.inputs(), modes=("native",))


@fuzz(300)
@given(case=graphs(max_nodes=8), pick=st.integers(0, 7))
def test_random_graphs_with_a_symbolic_size_match_at_every_size(case, pick):
    """One input size made symbolic (B), compiled once per mode, called at several
    sizes: each against the interpreter (graphc/fuzz/symbolic.py)."""
    size = pick_size(case.graph, pick)
    symbolic = symbolize(case.graph, size) if size is not None else None
    if symbolic is None:
        reject()  # no size to make symbolic, or an attribute fixes it
    modes = ("plain", "blocks") + (("native",) if native_available() else ())
    assert check_symbolic(symbolic, symbolic_specs(case.specs, symbolic), size, case.seed,
                          modes) >= 1


def _close(got, want, what):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != numpy's {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape} != numpy's {want.shape}"
    dt = dtypes.canonical(want.dtype)
    if dt in TOLERANCES:
        rtol, atol = TOLERANCES[dt]
        np.testing.assert_allclose(got, want, rtol=rtol * 10, atol=atol * 10,
                                   equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)


@fuzz(300)
@given(program=numpy_programs())
def test_random_numpy_programs_match_eager(program):
    fn = program.function()
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = fn(*program.args)
        try:
            got = graphc.compile(fn)(*program.args)
        except graphc.UnsupportedError:
            reject()  # a documented limitation (matmul of bools, ...), not a wrong result
    if not isinstance(want, tuple):
        want, got = (want,), (got,)
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        _close(g, w, f"output {i} of\n{program.source}")


def _resized(args: list, lead: int, n: int, rng) -> list:
    """The arguments with their leading axis of size `lead` (a shared batch axis)
    grown or shrunk to n, filled afresh."""
    from tests.fuzz.generate import _array
    return [_array(rng, (n,) + a.shape[1:], a.dtype.name)
            if np.ndim(a) >= 1 and a.shape[0] == lead else a for a in args]


@fuzz(200)
@given(program=numpy_programs())
def test_random_numpy_programs_at_several_batch_sizes_match_eager(program):
    """The program called with its shared leading axis at several sizes: each call
    matches eager numpy; once a size-only retrace made that axis symbolic (or said why
    it could not), no size compiles again."""
    lead = next((a.shape[0] for a in program.args if np.ndim(a) >= 1 and a.shape[0] >= 2),
                None)
    if lead is None:
        reject()
    fn, rng = program.function(), np.random.default_rng(lead)
    compiled = graphc.compile(fn)
    for n in (lead, lead + 1, lead + 3, 2, lead + 1):
        args = _resized(program.args, lead, n, rng)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            try:
                want = fn(*args)
            except Exception:  # noqa: BLE001 - a line that needs its traced size
                reject()
            try:
                got = compiled(*args)
            except graphc.UnsupportedError:
                reject()
        want, got = (want, got) if isinstance(want, tuple) else ((want,), (got,))
        for i, (g, w) in enumerate(zip(got, want)):
            _close(g, w, f"output {i} at leading size {n} of\n{program.source}")
    if compiled._symbolic:  # one trace for the first size, one for every other
        assert compiled.cache_info().misses == 2, program.source
    else:  # specialized per size: the explanation says why
        assert any("stay specialized" in line for e in compiled._cache.values()
                   for line in e.lowered.retraces), program.source
