"""Generated code reads like the Triton tutorials (issue 11, item 9): kernel parameters
named for what they carry, one-element constants inlined as literals, sizes named, each
kernel call commented with what its arguments are, and every C line tied to the user's
file:line as the Python lines are. The literals are checked bit for bit against numpy
on values where a decimal literal could go wrong (subnormals, -0.0, the extremes)."""
from __future__ import annotations

import re

import numpy as np
import pytest

import graphc
from graphc.backends import toolchain
from graphc.backends.numpy.names import ParamNames, base_name
from graphc.ir import TensorType, Value

F32 = np.float32
needs_cc = pytest.mark.skipif(toolchain.compiler() is None, reason="no C compiler")


@pytest.fixture
def kernels(monkeypatch):
    monkeypatch.setenv("GRAPHC_SMALL_GROUP", "0")


def scaled_tanh(x, bias):
    return np.tanh(x + bias) * 0.5                       # the line C comments name


def _line_of(fn) -> int:
    return fn.__code__.co_firstlineno + 1


@needs_cc
def test_native_kernel_names_inlines_and_locates(kernels, monkeypatch):
    monkeypatch.setenv("GRAPHC_NATIVE", "1")
    x, bias = np.ones((64, 300), F32), np.ones((300,), F32)
    source = graphc.compile(scaled_tanh).lower(x, bias).source
    c = source[source.index('r"""'):source.rindex('"""')]
    assert "const float *restrict x_ptr = args[0];" in c
    assert "const float *restrict bias_ptr = args[1];" in c
    assert "float *restrict out_ptr = args[2];" in c
    assert re.search(r"\* 0\.5f\)", c), c               # the constant, not a pointer
    assert "args[3]" not in c
    where = f"test_readable_code.py:{_line_of(scaled_tanh)}"
    computing = [ln for ln in c.splitlines() if " = (" in ln or "tanhf(" in ln]
    assert computing and all(where in ln for ln in computing if "//" in ln), c
    # the call says which argument is which parameter
    call = next(ln for ln in source.splitlines() if ln.strip().startswith("# _n0"))
    assert "x_ptr=x" in call and "bias_ptr=bias" in call and "rows=" in call


def test_numpy_block_kernel_names_its_parameters(kernels, monkeypatch):
    monkeypatch.setenv("GRAPHC_NATIVE", "0")
    x, bias = np.ones((64, 300), F32), np.ones((300,), F32)
    source = graphc.compile(scaled_tanh).lower(x, bias).source
    assert re.search(r"def _k0\(lo, hi, s, x, bias, out\):", source), source
    # the constant is the module's own name, read directly
    assert re.search(r"np\.multiply\(\w+, _c\d+, out=out_b\)", source), source
    call = next(ln for ln in source.splitlines() if ln.strip().startswith("# _k0"))
    assert "rows=64" in call and "block=" in call and "x=x" in call


def test_rows_and_nd_kernels_name_their_sizes(kernels, monkeypatch):
    if toolchain.compiler() is None:
        pytest.skip("no C compiler")
    monkeypatch.setenv("GRAPHC_NATIVE", "1")
    softmax = graphc.compile(lambda x: np.exp(x) / np.sum(np.exp(x), axis=-1, keepdims=True))
    c = softmax.lower(np.ones((16, 40), F32)).source
    assert "const int64_t n_cols = 40;" in c and "c < n_cols" in c
    conv_bias = graphc.compile(lambda x, b: np.tanh(x + b))
    c = conv_bias.lower(np.ones((2, 4, 5, 5), F32), np.ones((1, 4, 1, 1), F32)).source
    assert "const int64_t size1 = 4, size2 = 25;" in c and "i2 < size2" in c


def test_parameter_names_are_identifiers_apart_from_the_kernels_words():
    made = Value("3", TensorType((2,), "float32"))
    made.node = type("N", (), {"op": "exp"})()
    assert base_name(made) == "exp3"
    assert base_name(Value("we ird-näme", TensorType((2,), "float32"))) == "we_ird_n_me"
    assert base_name(Value("9lives", TensorType((2,), "float32"))) == "v9lives"
    names = ParamNames(lambda v: v, outputs=2, reserved=lambda s: s in {"n", "lo"})
    a, b = Value("n", TensorType((2,), "float32")), Value("n", TensorType((2,), "float32"))
    assert [names.input(a), names.input(b)] == ["n_", "n__"]
    assert names.output(made) == "out_exp3"


def test_user_names_that_collide_with_kernel_locals_still_run(kernels, monkeypatch):
    monkeypatch.setenv("GRAPHC_NATIVE", "0")

    def f(lo, hi, n, s):
        return np.tanh(lo * hi + n - s)

    args = [np.full((64, 600), v, F32) for v in (0.5, 2.0, 0.25, 1.0)]
    got = graphc.compile(f)(*args)
    np.testing.assert_array_equal(got, np.tanh(F32(0.5) * F32(2.0) + F32(0.25) - F32(1.0))
                                  * np.ones((64, 600), F32))


FLOAT_CONSTANTS = [0.1, 1.0 / 3.0, 1e-40, 1e-45, -0.0, 3.4028235e38, -1.5e-7, 7.0,
                   float("inf"), float("-inf"), float("nan")]


@needs_cc
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("value", FLOAT_CONSTANTS, ids=repr)
def test_inlined_float_literals_are_the_constants_bits(kernels, monkeypatch, dtype, value):
    monkeypatch.setenv("GRAPHC_NATIVE", "1")
    c = dtype(value)
    x = np.linspace(-3, 3, 64 * 80).astype(dtype).reshape(64, 80)
    f = graphc.compile(lambda x: x * c + c)  # IEEE * and +: exact against numpy's
    assert "_runc(" in f.lower(x).source
    with np.errstate(over="ignore", invalid="ignore"):  # inf * 0, max * 3: as numpy
        np.testing.assert_array_equal(f(x), x * c + c)


@needs_cc
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_inlined_integer_literals_wrap_as_numpy(kernels, monkeypatch, dtype):
    monkeypatch.setenv("GRAPHC_NATIVE", "1")
    low = dtype(np.iinfo(dtype).min)
    x = np.arange(-64 * 40, 64 * 40, 2, dtype=dtype).reshape(64, 40)
    f = graphc.compile(lambda x: (x + low) * dtype(3))
    assert "_runc(" in f.lower(x).source
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(f(x), (x + low) * dtype(3))
