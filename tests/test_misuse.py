"""A catalogue of ways to misuse graphc, beyond tests/test_errors.py.

Each case is a function that makes one mistake; the line where it goes wrong is marked
`# <- error here` (inside the traced function, or the call itself when the mistake is
in the arguments or in how graphc is called). Every case must raise a GraphcError
subclass whose message starts with this file's path and that line, and says what to do
(a `hint:` line). A few misuses that graphc allows on purpose are tested at the end.
"""

import logging
import math
import re

import numpy as np
import pytest

import graphc
from graphc.errors import IndexingError
from test_errors import marked_line  # the same "# <- error here" convention

X = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
C = graphc.compile
LEAKED = []
TABLE = np.arange(10.0, dtype=np.float32)


# ---- shapes ------------------------------------------------------------------------

def broadcast_after_new_axis():
    def f(x):
        return x[:, None] * np.ones((5, 3))  # <- error here
    C(f)(X)


def broadcast_two_arguments():
    def f(x, y):
        return np.maximum(x, y)  # <- error here
    C(f)(X, np.ones(3, np.float32))


def dot_inner_mismatch():
    def f(x, y):
        return np.dot(x, y)  # <- error here
    C(f)(X, X)


def vector_matmul_mismatch():
    def f(x):
        return np.ones(5) @ x  # <- error here
    C(f)(X)


def mean_negative_axis_out_of_range():
    def f(x):
        return x.mean(axis=-3)  # <- error here
    C(f)(X)


def max_axis_tuple_out_of_range():
    def f(x):
        return np.max(x, axis=(0, 5))  # <- error here
    C(f)(X)


def reshape_incompatible_size():
    def f(x):
        return np.reshape(x, (5, 5))  # <- error here
    C(f)(X)


def reshape_two_unknown_dims():
    def f(x):
        return x.reshape(-1, -1)  # <- error here
    C(f)(X)


def concatenate_mismatch():
    def f(x):
        return np.concatenate([x, np.ones((3, 5), np.float32)], axis=0)  # <- error here
    C(f)(X)


def transpose_not_a_permutation():
    def f(x):
        return x.transpose(0, 0)  # <- error here
    C(f)(X)


def squeeze_non_unit_axis():
    def f(x):
        return np.squeeze(x, axis=0)  # <- error here
    C(f)(X)


def index_out_of_bounds():
    def f(x):
        return x[5]  # <- error here
    C(f)(X)


def too_many_indices():
    def f(x):
        return x[0, 0, 0]  # <- error here
    C(f)(X)


def ragged_stack_of_traced_arrays():
    def f(x):
        return np.stack([x[0], x[1, :2]])  # <- error here
    C(f)(X)


# ---- Python control flow and conversions on traced values ----------------------------

def conditional_expression():
    def f(x):
        return x if x[0, 0] > 0 else -x  # <- error here
    C(f)(X)


def assert_on_traced_value():
    def f(x):
        assert x.sum() > 0  # <- error here
        return x
    C(f)(X)


def math_function_of_traced_value():
    def f(x):
        return math.exp(x.sum()) * x  # <- error here
    C(f)(X)


def item_of_traced_value():
    def f(x):
        return x * x.sum().item()  # <- error here
    C(f)(X)


def range_of_traced_value():
    def f(x):
        return [x for _ in range(x.sum())]  # <- error here
    C(f)(X)


def np_array_of_traced_arrays():
    def f(x):
        return np.array([x[0], x[1, :2]])  # <- error here (ragged, and traced)
    C(f)(X)


def closed_over_table_indexed_by_traced_index():
    def f(idx):
        return TABLE[idx]  # <- error here
    C(f)(np.array([1, 2]))


# ---- mutation and unsupported numpy --------------------------------------------------

def setitem_integer():
    def f(x):
        x[0] = 1  # <- error here
        return x
    C(f)(X)


def augmented_setitem():
    def f(x):
        x[:, 1] += 2.0  # <- error here
        return x
    C(f)(X)


def unsupported_sort():
    def f(x):
        return np.sort(x)  # <- error here
    C(f)(X)


def unsupported_linalg():
    def f(x):
        return np.linalg.inv(x)  # <- error here
    C(f)(np.eye(3, dtype=np.float32))


def unsupported_array_method():
    def f(x):
        return x.cumprod()  # <- error here
    C(f)(X)


def where_with_one_argument():
    def f(x):
        return np.where(x > 0)  # <- error here
    C(f)(X)


def boolean_mask_argument():
    def f(x, mask):
        return x[mask]  # <- error here
    C(f)(X, X > 0)


def boolean_mask_on_second_axis():
    def f(x):
        return x[:, x[0] > 0]  # <- error here
    C(f)(X)


def out_argument_of_ufunc():
    def f(x):
        return np.add(x, 1.0, out=x)  # <- error here
    C(f)(X)


def out_argument_of_matmul():
    def f(x):
        return np.matmul(x, x.T, out=np.empty((3, 3), np.float32))  # <- error here
    C(f)(X)


def einsum_ellipsis():
    def f(x):
        return np.einsum("...ij->...ji", x)  # <- error here
    C(f)(X)


def floor_division_of_bools():
    def f(m):
        return m // m  # <- error here
    C(f)(np.array([True, False]))


def round_with_traced_or_float_decimals():
    def f(x):
        return np.round(x, 1.5)  # <- error here
    C(f)(X)


# ---- dtypes --------------------------------------------------------------------------

def astype_bfloat16_on_numpy_backend():
    def f(x):
        return x.astype("bfloat16")  # <- error here
    C(f)(X)


def astype_complex():
    def f(x):
        return x.astype(np.complex64)  # <- error here
    C(f)(X)


def uint8_argument():
    C(lambda x: x * 2)(np.ones(3, np.uint8))  # <- error here


# ---- arguments -----------------------------------------------------------------------

def object_array_argument():
    C(lambda x: x)(np.array([1, "a"], dtype=object))  # <- error here


def string_array_argument():
    C(lambda x: x)(np.array(["a", "b"]))  # <- error here


def complex_array_argument():
    C(lambda x: x)(np.ones(3, np.complex64))  # <- error here


def generator_argument():
    C(lambda xs: xs)(x for x in [X, X])  # <- error here


def torch_tensor_with_numpy_argument():
    torch = pytest.importorskip("torch")
    C(lambda x, y: x * 2)(torch.ones(3), X)  # <- error here


def unhashable_static_argument():
    C(lambda x, buf: x)(X, bytearray(b"ab"))  # <- error here


# ---- tracers that escape -------------------------------------------------------------

def _leak(x):
    LEAKED.append(x)
    return x * 2.0


def leaked_tracer_used_eagerly():
    LEAKED.clear()
    C(_leak)(X)
    return np.exp(LEAKED[0])  # <- error here


def leaked_tracer_in_operator_outside_trace():
    LEAKED.clear()
    C(_leak)(X)
    return LEAKED[0] * X  # <- error here


def tracer_closed_over_by_inner_compiled_function():
    def outer(x):
        inner = C(lambda y: y + x)  # <- error here (the lambda closes over x)
        return inner(x)
    C(outer)(X)


# ---- gradients -----------------------------------------------------------------------

def grad_of_integer_argument():
    graphc.grad(lambda n: np.sum(n * 2.0))(np.arange(3))  # <- error here


def grad_of_non_scalar_output():
    graphc.grad(lambda x: np.tanh(x))(X)  # <- error here


def grad_argnums_out_of_range():
    graphc.grad(lambda x, y: np.sum(x * y), argnums=2)(X, X)  # <- error here


def grad_has_aux_without_pair():
    graphc.grad(lambda x: np.sum(x), has_aux=True)(X)  # <- error here


def grad_has_aux_with_triple():
    graphc.grad(lambda x: (np.sum(x), x, x), has_aux=True)(X)  # <- error here


# ---- how graphc is called ------------------------------------------------------------

def unknown_backend():
    C(lambda x: x, backend="jax")  # <- error here


def unknown_pass_name():
    C(lambda x: x, passes=["simplify", "fuse"])  # <- error here


CASES = [
    (broadcast_after_new_axis, graphc.ShapeError, r"\[3, 1, 4\] and \[5, 3\] do not broadcast"),
    (broadcast_two_arguments, graphc.ShapeError, r"\[3, 4\] and \[3\] do not broadcast"),
    (dot_inner_mismatch, graphc.ShapeError, "contracted axes"),
    (vector_matmul_mismatch, graphc.ShapeError, r"inner dimensions differ: \[5\] @ \[3, 4\]"),
    (mean_negative_axis_out_of_range, graphc.ShapeError, "axis -3 is out of bounds"),
    (max_axis_tuple_out_of_range, graphc.ShapeError, "axis 5 is out of bounds"),
    (reshape_incompatible_size, graphc.ShapeError, r"into shape \[5, 5\]"),
    (reshape_two_unknown_dims, graphc.ShapeError, "one unknown dimension"),
    (concatenate_mismatch, graphc.ShapeError, "differ outside axis 0"),
    (transpose_not_a_permutation, graphc.ShapeError, "not a permutation"),
    (squeeze_non_unit_axis, graphc.ShapeError, "cannot squeeze axis 0"),
    (index_out_of_bounds, IndexingError, "index 5 is out of bounds for axis 0"),
    (too_many_indices, IndexingError, "too many indices"),
    (ragged_stack_of_traced_arrays, graphc.ShapeError, "np.stack needs arrays of one shape"),
    (conditional_expression, graphc.TracerBoolError, "Python control flow"),
    (assert_on_traced_value, graphc.TracerBoolError, "Python control flow"),
    (math_function_of_traced_value, graphc.TracerBoolError, r"float\(\)"),
    (item_of_traced_value, graphc.TracerBoolError, r"\.item\(\)"),
    (range_of_traced_value, graphc.TracerBoolError, "Python index"),
    (np_array_of_traced_arrays, graphc.ShapeError, "np.array of traced pieces of shapes"),
    (closed_over_table_indexed_by_traced_index, graphc.TracerBoolError,
     "indexed by a traced index"),
    (setitem_integer, graphc.UnsupportedError, "in-place assignment"),
    (augmented_setitem, graphc.UnsupportedError, "in-place assignment"),
    (unsupported_sort, graphc.UnsupportedError, "np.sort is not supported"),
    (unsupported_linalg, graphc.UnsupportedError, "np.linalg.inv is not supported"),
    (unsupported_array_method, graphc.UnsupportedError, r"\.cumprod\(\) is not supported"),
    (where_with_one_argument, graphc.UnsupportedError, "one argument"),
    (boolean_mask_argument, graphc.UnsupportedError, "boolean-mask indexing"),
    (boolean_mask_on_second_axis, graphc.UnsupportedError, "boolean-mask indexing"),
    (out_argument_of_ufunc, graphc.UnsupportedError, "out="),
    (out_argument_of_matmul, graphc.UnsupportedError, "out="),
    (einsum_ellipsis, graphc.UnsupportedError, r"einsum with '\.\.\.'"),
    (floor_division_of_bools, graphc.UnsupportedError, "floor_divide of two bool arrays"),
    (round_with_traced_or_float_decimals, graphc.UnsupportedError, "decimals must be"),
    (astype_bfloat16_on_numpy_backend, graphc.DtypeError, "bfloat16"),
    (astype_complex, graphc.DtypeError, "complex64 is not supported"),
    (uint8_argument, graphc.DtypeError, "uint8 is not supported"),
    (object_array_argument, graphc.ArgumentError, "array of dtype object"),
    (string_array_argument, graphc.ArgumentError, "array of dtype <U1"),
    (complex_array_argument, graphc.ArgumentError, "array of dtype complex64"),
    (generator_argument, graphc.ArgumentError, "is a generator"),
    (torch_tensor_with_numpy_argument, graphc.ArgumentError,
     "argument y is a numpy array in a call with torch tensors"),
    (unhashable_static_argument, graphc.ArgumentError, "argument buf is a bytearray"),
    (leaked_tracer_used_eagerly, graphc.TracerLeakError, "after that trace ended"),
    (leaked_tracer_in_operator_outside_trace, graphc.TracerLeakError, "after that trace ended"),
    (tracer_closed_over_by_inner_compiled_function, graphc.UnsupportedError,
     "used inside another trace"),
    (grad_of_integer_argument, graphc.GraphcError, "cannot differentiate .* int64"),
    (grad_of_non_scalar_output, graphc.GraphcError, "one float scalar"),
    (grad_argnums_out_of_range, graphc.ArgumentError, "argnums 2 is out of range"),
    (grad_has_aux_without_pair, graphc.GraphcError, r"has_aux=True .* \(loss, aux\)"),
    (grad_has_aux_with_triple, graphc.GraphcError, r"has_aux=True .* \(loss, aux\)"),
    (unknown_backend, graphc.GraphcError, "unknown backend 'jax'"),
    (unknown_pass_name, graphc.GraphcError, "unknown pass 'fuse'"),
]


@pytest.mark.parametrize("case, error, message", CASES, ids=[c[0].__name__ for c in CASES])
def test_misuse_names_the_user_line_and_says_what_to_do(case, error, message):
    with pytest.raises(error) as info:
        case()
    text = str(info.value)
    assert isinstance(info.value, graphc.GraphcError), text
    assert text.startswith(f"{__file__}:{marked_line(case)}: "), text
    assert re.search(message, text), text
    assert "\n  hint: " in text, text  # says what to do
    assert text.split("\n  hint: ")[-1].strip(), text  # ... and the hint is not empty


def test_misuse_cases_are_distinct():
    assert len(CASES) >= 25
    assert len({c[0].__name__ for c in CASES}) == len(CASES)


# ---- specific hints ------------------------------------------------------------------

def _message(case) -> str:
    with pytest.raises(graphc.GraphcError) as info:
        case()
    return str(info.value)


def test_hints_point_at_the_fix():
    assert "np.stack" in _message(np_array_of_traced_arrays)
    assert "pass `table` in" in _message(closed_over_table_indexed_by_traced_index)
    assert "cast to an integer or float dtype" in _message(floor_division_of_bools)
    assert "0..1" in _message(grad_argnums_out_of_range)
    assert "return loss, (a, b)" in _message(grad_has_aux_without_pair)
    assert "available backends: numpy" in _message(unknown_backend)
    assert "fusion" in _message(unknown_pass_name)
    assert "np.where(cond, a, b)" in _message(where_with_one_argument)


def test_index_errors_are_still_index_errors():
    with pytest.raises(IndexError):  # numpy's exception type, so `except IndexError` works
        index_out_of_bounds()


# ---- misuse that graphc allows on purpose --------------------------------------------

def test_pytree_structure_change_retraces_and_says_why(monkeypatch, capsys):
    monkeypatch.setenv("GRAPHC_LOG", "recompiles")

    @graphc.compile
    def f(params):
        return sum(np.sum(v) for v in params.values())

    a = f({"w": X})
    b = f({"w": X, "b": X[0]})  # a different structure: a new trace, not an error
    assert np.allclose(a, X.sum()) and np.allclose(b, X.sum() + X[0].sum())
    assert f.cache_info().misses == 2
    err = capsys.readouterr().err
    assert "structure of the arguments changed" in err
    assert "params['b']" in err and "hint:" in err
    logging.getLogger("graphc").handlers.clear()


def test_nan_producing_input_gives_the_same_nan_as_eager():
    def f(x):
        return np.log(x) + np.sqrt(x) * 2.0

    x = np.array([-1.0, 0.0, np.nan, 2.0, np.inf], np.float32)
    with np.errstate(all="ignore"):
        want = f(x)
        got = C(f)(x)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True)


def test_list_of_strings_is_a_static_argument():
    # strings are static values (like Python numbers): a list of them is a pytree of
    # static leaves, part of the cache key, not an error
    acts = {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0.0)}

    @graphc.compile
    def f(x, names):
        for name in names:
            x = acts[name](x)
        return x

    np.testing.assert_allclose(f(X, ["relu", "tanh"]), np.tanh(np.maximum(X, 0.0)),
                               rtol=1e-6)
    np.testing.assert_allclose(f(X, ["tanh"]), np.tanh(X), rtol=1e-6)
    assert f.cache_info().misses == 2


def test_list_of_strings_used_as_numbers_fails_as_in_eager_numpy():
    # no traced value is involved, so graphc does not step in: numpy's own error, from
    # the user's line, exactly as without graphc
    def f(x, names):
        return x * np.tanh(names)

    with pytest.raises(TypeError) as eager:
        f(X, ["a", "b"])
    with pytest.raises(TypeError) as compiled:
        C(f)(X, ["a", "b"])
    assert type(compiled.value) is type(eager.value)
    assert not isinstance(compiled.value, graphc.GraphcError)


def test_ragged_python_list_fails_as_in_eager_numpy():
    # np.array on a ragged Python list runs eagerly while tracing (nothing traced is
    # involved): numpy's ValueError, as without graphc. A ragged list of traced arrays
    # is a GraphcError instead (np_array_of_traced_arrays, ragged_stack_of_traced_arrays)
    def f(x, rows):
        return x + np.array(rows)

    with pytest.raises(ValueError, match="inhomogeneous") as eager:
        f(X, [[1, 2], [3]])
    with pytest.raises(ValueError, match="inhomogeneous") as compiled:
        C(f)(X, [[1, 2], [3]])
    assert type(compiled.value) is type(eager.value)


def test_ragged_list_argument_of_arrays_is_a_pytree():
    # arrays of different shapes in a list are simply several inputs
    @graphc.compile
    def f(xs):
        return sum(np.sum(v) for v in xs)

    np.testing.assert_allclose(f([X, X[0, :2]]), X.sum() + X[0, :2].sum(), rtol=1e-6)


# ---- indices numpy refuses: numpy's words, at the user's line (issue 10, item 6) -------

def slice_step_zero(x):
    return x[::0]  # <- error here


def float_index(x):
    return x[1.0]  # <- error here


def string_index(x):
    return x["a"]  # <- error here


def int_too_large_for_an_index(x):
    return x[2 ** 70]  # <- error here


def two_ellipses(x):
    return x[..., 0, ...]  # <- error here


def float_array_index(x):
    return x[np.array([0.0, 1.0])]  # <- error here


def traced_float_array_index(x):
    return x[x[0]]  # <- error here


def float_slice_bound(x):
    return x[1:2.5]  # <- error here


def ragged_index_list(x):
    return x[[[0, 1], [0]]]  # <- error here


def boolean_mask_of_wrong_shape(x):
    return x[np.array([True, False])]  # <- error here


def index_arrays_that_do_not_broadcast(x):
    return x[[0, 1], [0, 1, 2]]  # <- error here


def too_many_indices_with_an_array(x):
    return x[[0], 0, 0]  # <- error here


def constant_index_out_of_range_on_axis_1(x):
    return x[:, [0, -7]]  # <- error here


def take_with_unknown_mode(x):
    return np.take(x, [0, 1], axis=1, mode="nearest")  # <- error here


NUMPY_CASES = [slice_step_zero, float_index, string_index, int_too_large_for_an_index,
               two_ellipses, float_array_index, traced_float_array_index, float_slice_bound,
               ragged_index_list, boolean_mask_of_wrong_shape,
               index_arrays_that_do_not_broadcast, too_many_indices_with_an_array,
               constant_index_out_of_range_on_axis_1, take_with_unknown_mode]


@pytest.mark.parametrize("fn", NUMPY_CASES, ids=[f.__name__ for f in NUMPY_CASES])
def test_refused_index_says_what_numpy_says(fn):
    with pytest.raises((IndexError, ValueError, TypeError)) as eager:
        fn(X)
    with pytest.raises(graphc.GraphcError) as info:
        C(fn)(X)
    text = str(info.value)
    assert str(eager.value).strip() in text, text  # numpy's own words (and numbers)
    assert text.startswith(f"{__file__}:{marked_line(fn)}: "), text
    assert text.split("\n  hint: ")[-1].strip(), text
    if isinstance(eager.value, IndexError):  # so that `except IndexError` still works
        assert isinstance(info.value, IndexingError)
