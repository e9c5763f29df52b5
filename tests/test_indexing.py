"""Indexing forms that trace as numpy runs them: new axes next to index arrays, constant
boolean masks, and np.take's modes, each against eager numpy on the same data."""
import numpy as np
import pytest

import graphc

A = np.arange(24.0, dtype=np.float32).reshape(2, 3, 4)
T = np.array([[0, 1], [-1, 0]])

EXPRESSIONS = [
    "x[None, t]", "x[:, None, t]", "x[t, None]", "x[t, None, t]", "x[..., None, t]",
    "x[None, ..., t, None]", "x[0, :, t]", "x[t, 0]", "x[:, t, t]", "x[t, :, t]",
    "x[np.array([True, False])]", "x[:, [True, False, True]]",
    "x[..., np.array([True, False, True, True])]", "x[np.array([[True, False, True]] * 2)]",
    "x[np.zeros((2, 3), bool)]", "x[None, np.array([False, True]), 1:]",
]


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_index_form_matches_numpy(expr):
    fn = eval(f"lambda x, t: {expr}")
    want = fn(A, T)
    got = graphc.compile(fn)(A, T)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("mode", ["clip", "wrap", "raise"])
@pytest.mark.parametrize("axis", [0, 1, -1, None])
@pytest.mark.parametrize("idx", [[0, 5, -7, 2], [[1, -1], [9, 3]], [1, 2]])
def test_take_modes_match_numpy(mode, axis, idx):
    x = A[0]
    idx = np.array(idx, np.int32 if len(idx) == 2 else np.int64)

    def traced(x, i):
        return np.take(x, i, axis=axis, mode=mode)

    def constant(x):
        return np.take(x, idx, axis=axis, mode=mode)

    try:
        want = traced(x, idx)
    except IndexError as eager:  # mode="raise" with an index out of range
        for fn, args in ((traced, (x, idx)), (constant, (x,))):
            with pytest.raises(graphc.IndexingError, match=str(eager)):
                graphc.compile(fn)(*args)
        return
    np.testing.assert_array_equal(graphc.compile(traced)(x, idx), want)
    np.testing.assert_array_equal(graphc.compile(constant)(x), want)


def test_take_clip_and_wrap_have_gradients():
    # clipped and wrapped indices are still a gather: its VJP scatters into the rows read
    x = np.random.default_rng(0).standard_normal((4, 3))
    idx = np.array([-2, 1, 7, 4])
    for mode in ("clip", "wrap"):
        g = graphc.grad(lambda x: np.sum(np.take(x, idx, axis=0, mode=mode) ** 2))(x)
        want = np.zeros_like(x)
        np.add.at(want, np.take(np.arange(4), idx, mode=mode), 2 * np.take(x, idx, axis=0,
                                                                           mode=mode))
        np.testing.assert_allclose(g, want, rtol=1e-12)
