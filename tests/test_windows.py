"""Max pooling in C (backends/numpy/windows.c) against the ops' reference
implementations: the same maxima, picked by the same rule, bit for bit."""
from __future__ import annotations

import numpy as np
import pytest

from graphc.backends import toolchain
from graphc.backends.numpy import windows
from graphc.ops import OPS

pytestmark = pytest.mark.skipif(toolchain.compiler() is None, reason="no C compiler")


# the suite also runs with GRAPHC_NATIVE=0, the default of `native`: these ask for C
C = dict(native=True)

# (input shape, kernel, stride, padding): overlapping windows, padding, odd sizes
GEOMETRIES = [((2, 3, 8, 8), (2, 2), (2, 2), (0, 0)),
              ((2, 3, 7, 9), (2, 2), (2, 2), (0, 0)),  # the tiling's path, odd sizes
              ((1, 2, 6, 6), (2, 2), (2, 2), (1, 1)),
              ((2, 2, 7, 9), (3, 3), (2, 2), (1, 1)),
              ((1, 4, 6, 5), (3, 2), (1, 1), (1, 0)),
              ((3, 1, 9, 9), (2, 3), (3, 1), (0, 1))]


def _inputs(rng, shape, dtype):
    x = rng.integers(-2, 3, shape).astype(dtype)   # small integers: many ties
    x.flat[::7] = np.nan
    x.flat[3::11] = -np.inf
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, kernel, stride, padding", GEOMETRIES)
def test_window_ops_match_the_references(rng, dtype, shape, kernel, stride, padding):
    attrs = dict(kernel=kernel, stride=stride, padding=padding)
    x = _inputs(rng, shape, dtype)
    assert windows._c_function("max_pool2d", x, **C) is not None  # C, not the reference
    y = windows.max_pool2d(x, **attrs, **C)
    np.testing.assert_array_equal(y, OPS["max_pool2d"].impl(x, **attrs), strict=True)
    g = rng.standard_normal(y.shape).astype(dtype)
    # where windows overlap, an element can be the max of several: its gradient is a
    # sum, added in window order here and in kernel-offset order in the reference
    overlap = any(s < k for s, k in zip(stride, kernel))
    rtol = (1e-6 if dtype == np.float32 else 1e-14) if overlap else 0
    np.testing.assert_allclose(windows.max_pool2d_grad(x, g, **attrs, **C),
                               OPS["max_pool2d_grad"].impl(x, g, **attrs), rtol=rtol,
                               strict=True)
    h = rng.standard_normal(shape).astype(dtype)
    np.testing.assert_array_equal(windows.max_pool2d_gather(x, h, **attrs, **C),
                                  OPS["max_pool2d_gather"].impl(x, h, **attrs), strict=True)


@pytest.mark.parametrize("threads", [None, 3])
def test_non_contiguous_input_and_many_planes_across_threads(rng, threads):
    x = rng.standard_normal((16, 40, 20, 24)).astype(np.float32).transpose(0, 1, 3, 2)
    attrs = dict(kernel=(2, 2), stride=(2, 2), padding=(0, 0))
    np.testing.assert_array_equal(windows.max_pool2d(x, **attrs, **C, threads=threads),
                                  OPS["max_pool2d"].impl(x, **attrs))


def test_other_dtypes_and_native_off_use_the_reference(rng, monkeypatch):
    attrs = dict(kernel=(2, 2), stride=(2, 2), padding=(0, 0))
    x = rng.integers(-5, 5, (1, 2, 4, 4)).astype(np.int32)
    assert windows._c_function("max_pool2d", x, **C) is None
    np.testing.assert_array_equal(windows.max_pool2d(x, **attrs, **C),
                                  OPS["max_pool2d"].impl(x, **attrs), strict=True)
    assert windows._c_function("max_pool2d", x.astype(np.float32), native=False) is None
    monkeypatch.setenv("GRAPHC_NATIVE", "0")  # the default where no option says
    assert windows._c_function("max_pool2d", x.astype(np.float32)) is None


# (input shape, weight shape, stride, padding, dilation, groups): strides, padding wider
# than the kernel's reach, dilation, groups, a 1x1 kernel, a kernel as wide as the input
CONVOLUTIONS = [((2, 3, 8, 8), (4, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1),
                ((2, 4, 9, 7), (6, 2, 3, 2), (2, 1), (1, 2), (1, 2), 2),
                ((1, 2, 5, 5), (2, 2, 5, 5), (1, 1), (0, 0), (1, 1), 1),
                ((3, 2, 6, 6), (4, 2, 2, 3), (3, 2), (4, 0), (2, 1), 1),
                ((2, 6, 4, 5), (3, 6, 1, 1), (1, 2), (0, 1), (1, 1), 1)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation, groups", CONVOLUTIONS)
def test_convolutions_with_c_columns_match_the_references_bit_for_bit(
        rng, dtype, x_shape, w_shape, stride, padding, dilation, groups):
    """The same columns and the same GEMMs: the same numbers, to the last bit (col2im
    adds the kernel offsets in the reference's order)."""
    attrs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    assert windows._c_function("im2col", x, **C) is not None  # C, not the reference
    y = OPS["conv2d"].impl(x, w, **attrs)
    np.testing.assert_array_equal(windows.conv2d(x, w, **attrs, **C), y, strict=True)
    g = rng.standard_normal(y.shape).astype(dtype)
    np.testing.assert_array_equal(
        windows.conv2d_grad_input(g, w, **attrs, input_shape=x_shape, **C),
        OPS["conv2d_grad_input"].impl(g, w, **attrs, input_shape=x_shape), strict=True)
    np.testing.assert_array_equal(
        windows.conv2d_grad_weight(x, g, **attrs, weight_shape=w_shape, **C),
        OPS["conv2d_grad_weight"].impl(x, g, **attrs, weight_shape=w_shape), strict=True)


@pytest.mark.parametrize("threads", [1, 3])
def test_convolution_of_a_transposed_input_split_across_threads(rng, threads):
    x = rng.standard_normal((8, 16, 18, 18)).astype(np.float32).transpose(0, 1, 3, 2)
    w = rng.standard_normal((8, 16, 3, 3)).astype(np.float32)
    attrs = dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)
    np.testing.assert_array_equal(windows.conv2d(x, w, **attrs, **C, threads=threads),
                                  OPS["conv2d"].impl(x, w, **attrs))
    g = rng.standard_normal((8, 8, 18, 18)).astype(np.float32)
    np.testing.assert_array_equal(
        windows.conv2d_grad_input(g, w, **attrs, input_shape=x.shape, **C, threads=threads),
        OPS["conv2d_grad_input"].impl(g, w, **attrs, input_shape=x.shape))


def test_convolutions_of_float16_use_the_reference(rng):
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float16)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float16)
    attrs = dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)
    assert windows._c_function("im2col", x, **C) is None
    np.testing.assert_array_equal(windows.conv2d(x, w, **attrs, **C),
                                  OPS["conv2d"].impl(x, w, **attrs), strict=True)
