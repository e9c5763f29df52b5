"""`graphc.profile` (issue 15, item 3 in part): each kernel's time per call, its bytes
and share, from clocks the numpy backend's generated code reads around each group; the
profiled code computes what the unprofiled code does, bit for bit."""
from __future__ import annotations

import numpy as np
import pytest

import graphc

pytestmark = pytest.mark.usefixtures("no_compile_cache")


def softmax(x):
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def mlp(x, w1, w2):
    return np.maximum(x @ w1, 0.0) @ w2


def _mlp_args():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((256, 64), np.float32), rng.standard_normal((64, 128), np.float32),
            rng.standard_normal((128, 10), np.float32))


def test_each_kernel_has_a_row_with_its_time_bytes_and_share():
    args = _mlp_args()
    p = graphc.profile(mlp, *args, repeats=5)
    groups = [i for i, g in enumerate(graphc.compile(mlp).lower(*args).optimized.groups)
              if g.kind != "source"]
    assert sorted(r.index for r in p.rows) == groups
    assert all(r.seconds >= 0 for r in p.rows) and p.kernel_seconds > 0
    assert abs(sum(r.share for r in p.rows) - 1.0) < 1e-9
    assert p.kernel_seconds <= p.call_seconds * 1.05  # the kernels are inside the call
    text = str(p)
    assert text.count("\n") == len(p.rows) + 1 and "matmul" in text


def test_bytes_are_the_kernels_inputs_and_outputs():
    x = np.ones((512, 256), np.float32)
    (row,) = graphc.profile(softmax, x, repeats=2).rows
    assert row.bytes == 2 * x.nbytes  # reads x, writes the result
    assert row.kind == "reduction" and row.ops == "max, sub, exp, sum, div"


def test_the_profiled_code_computes_the_same_bits():
    args = _mlp_args()
    for options in ({}, {"small_group": 0}, {"small_group": 0, "native": False}):
        plain = graphc.compile(mlp, options=options)(*args)
        timed = graphc.compile(mlp, options={**options, "profile": True})
        np.testing.assert_array_equal(timed(*args), plain, strict=True)
        low = timed.lower(*args)
        assert "_prof[" in low.source and "_prof[" not in graphc.compile(
            mlp, options=options).lower(*args).source
        assert low.executable.kernel_seconds is not None


def test_a_compiled_functions_options_are_kept_and_triton_is_refused():
    f = graphc.compile(mlp, options={"native": False, "small_group": 0})
    p = graphc.profile(f, *_mlp_args(), repeats=2)
    assert p.rows
    pytest.importorskip("triton")
    with pytest.raises(graphc.ArgumentError, match="numpy backend"):
        graphc.profile(graphc.compile(mlp, backend="triton"), *_mlp_args())
    with pytest.raises(graphc.ArgumentError, match="repeats"):
        graphc.profile(mlp, *_mlp_args(), repeats=0)
    with pytest.raises(graphc.OptionError, match="profile"):
        graphc.Options(profile="yes")


def test_the_report_shows_the_kernels_times(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_DUMP", str(tmp_path))
    graphc.profile(mlp, *_mlp_args(), repeats=2)
    (page,) = tmp_path.glob("mlp.*.html")
    text = page.read_text()
    assert "<h3>graphc.profile: each kernel's time per call</h3>" in text
