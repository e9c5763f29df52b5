"""Every user mistake gets a GraphcError subclass naming this file's line and a hint.

Each case marks the offending line with `# <- error here`; the test finds that line
number and checks that the message starts with `test_errors.py:<line>`.
"""
import inspect
import re

import numpy as np
import pytest

import graphc

X = np.ones((3, 4), np.float32)
LEAKED = []


def shape_mismatch(x):
    return x + np.ones((2, 4))  # <- error here


def matmul_mismatch(x):
    return x @ x  # <- error here


def axis_out_of_range(x):
    return np.sum(x, axis=2)  # <- error here


def bad_reshape(x):
    return x.reshape(5, -1)  # <- error here


def python_if(x):
    if np.max(x) > 0:  # <- error here
        return x
    return -x


def python_while(x):
    while x.sum() < 10:  # <- error here
        x = x * 2
    return x


def python_bool(x):
    return bool(x[0, 0])  # <- error here


def python_int(x):
    return np.zeros(int(x[0, 0]))  # <- error here


def python_float(x):
    return float(np.mean(x)) * x  # <- error here


def unsupported_function(x):
    return np.cumprod(x, axis=0)  # <- error here


def unsupported_ufunc_method(x):
    return np.add.reduce(x)  # <- error here


def in_place_assignment(x):
    x[0] = 1.0  # <- error here
    return x


def boolean_mask(x):
    return x[x > 0]  # <- error here


def out_argument(x):
    return np.exp(x, out=np.empty_like(x))  # <- error here


def leak(x):
    LEAKED.append(x)
    return x * 2.0


def use_leaked(x):
    return x + LEAKED[0]  # <- error here


CASES = [
    (shape_mismatch, graphc.ShapeError, r"shapes \[3, 4\] and \[2, 4\] do not broadcast"),
    (matmul_mismatch, graphc.ShapeError, r"inner dimensions differ: \[3, 4\] @ \[3, 4\]"),
    (axis_out_of_range, graphc.ShapeError, "axis 2 is out of bounds"),
    (bad_reshape, graphc.ShapeError, r"cannot reshape an array of shape \[3, 4\]"),
    (python_if, graphc.TracerBoolError, "Python control flow"),
    (python_while, graphc.TracerBoolError, "Python control flow"),
    (python_bool, graphc.TracerBoolError, "Python control flow"),
    (python_int, graphc.TracerBoolError, r"int\(\)"),
    (python_float, graphc.TracerBoolError, r"float\(\)"),
    (unsupported_function, graphc.UnsupportedError, "np.cumprod is not supported"),
    (unsupported_ufunc_method, graphc.UnsupportedError, "np.add.reduce is not supported"),
    (in_place_assignment, graphc.UnsupportedError, "in-place assignment"),
    (boolean_mask, graphc.UnsupportedError, "boolean-mask indexing"),
    (out_argument, graphc.UnsupportedError, "out="),
    (use_leaked, graphc.TracerLeakError, "after that trace ended"),
]


def marked_line(fn) -> int:
    """The line number of the one line of `fn` marked `# <- error here`."""
    lines, start = inspect.getsourcelines(fn)
    offsets = [i for i, line in enumerate(lines) if "# <- error here" in line]
    assert len(offsets) == 1, fn.__name__
    return start + offsets[0]


@pytest.mark.parametrize("fn, error, message", CASES, ids=[c[0].__name__ for c in CASES])
def test_error_names_the_user_line(fn, error, message):
    if fn is use_leaked:
        graphc.compile(leak)(X)
    with pytest.raises(error) as info:
        graphc.compile(fn)(X)
    text = str(info.value)
    assert re.search(message, text), text
    assert text.startswith(f"{__file__}:{marked_line(fn)}: "), text
    assert "\n  hint: " in text  # says what to do
    assert isinstance(info.value, graphc.GraphcError)


def test_error_quotes_the_source_line():
    with pytest.raises(graphc.ShapeError) as info:
        graphc.compile(shape_mismatch)(X)
    assert "\n    return x + np.ones((2, 4))  # <- error here" in str(info.value)


@pytest.mark.parametrize("arg, message", [
    (object(), "argument x is a object"),
    ((i for i in range(3)), "argument x is a generator"),
    (np.array(["a", "b"]), "array of dtype <U1"),
    (np.array([{}, 1], dtype=object), "array of dtype object"),
    ([{1, 2}], r"argument x\[0\] is a set"),  # the path inside the pytree is named
])
def test_unsupported_argument_types(arg, message):
    def f(x):
        return x

    with pytest.raises(graphc.ArgumentError, match=message):
        graphc.compile(f)(arg)


def test_errors_do_not_show_compiler_frames():
    with pytest.raises(graphc.ShapeError) as info:
        graphc.compile(shape_mismatch)(X)
    files = {entry.path.name for entry in info.traceback if hasattr(entry.path, "name")}
    # the traceback is the user's call and the compiled function's entry, nothing deeper
    assert files <= {"test_errors.py", "api.py"}, files


# ---- errors with numpy's own words, at the user's line (issue 10, item 6) -------------

E = np.arange(40.0, dtype=np.float32).reshape(10, 4)
_OUT_OF_BOUNDS = r"index (-?\d+) is out of bounds for axis (\d+) with size (\d+)"


def gather_rows(table, t):
    return table[t] * 2.0  # <- error here


def gather_columns(table, t):
    return np.tanh(table[:, t])  # <- error here


def gather_pairs(table, i, j):
    return table[i, j] + 1.0  # <- error here


def take_rows(table, t):
    return np.take(table, t, axis=0)  # <- error here


RUN_CASES = [  # (function, its index arguments)
    (gather_rows, ([1, 12, 3],)), (gather_rows, ([1, -11, 3],)), (gather_rows, ([10],)),
    (gather_columns, ([0, 4],)), (gather_columns, ([-5, 1],)),
    (gather_pairs, ([1, 2], [0, 9])), (gather_pairs, ([10, 2], [0, 1])),
    (gather_pairs, ([-2], [-5])), (take_rows, ([[0, 1], [2, 30]],)),
]


def _numbers(text: str) -> tuple:
    found = re.search(_OUT_OF_BOUNDS, text)
    assert found, text
    return found.groups()


def _assert_like_numpy(fn, err: BaseException, eager: BaseException) -> None:
    text = str(err)
    assert isinstance(err, graphc.IndexingError) and isinstance(err, IndexError), text
    assert _numbers(text) == _numbers(str(eager))  # the index as given, its axis, the size
    assert text.startswith(f"{__file__}:{marked_line(fn)}: "), text
    assert "\n  hint: " in text


@pytest.mark.parametrize("fn, indices", RUN_CASES,
                         ids=[f"{c[0].__name__}-{c[1]}" for c in RUN_CASES])
def test_traced_index_out_of_range_says_what_numpy_says(fn, indices):
    indices = [np.array(t) for t in indices]
    with pytest.raises(IndexError) as eager:
        fn(E, *indices)
    f = graphc.compile(fn)
    with pytest.raises(graphc.IndexingError) as first:
        f(E, *indices)
    _assert_like_numpy(fn, first.value, eager.value)
    f(E, *[np.zeros_like(t) for t in indices])  # a good call: the signature's fast path
    with pytest.raises(graphc.IndexingError) as again:
        f(E, *indices)
    _assert_like_numpy(fn, again.value, eager.value)
    graph = graphc.trace(fn, E, *indices)
    with pytest.raises(graphc.IndexingError) as interpreted:
        graphc.interpret(graph, E, *indices)
    _assert_like_numpy(fn, interpreted.value, eager.value)


def test_traced_index_in_range_matches_numpy():
    i, j = np.array([[-10, 9], [3, -1]]), np.array([[0, -4], [3, 2]])
    np.testing.assert_array_equal(graphc.compile(gather_rows)(E, i), gather_rows(E, i))
    np.testing.assert_array_equal(graphc.compile(gather_columns)(E, j), gather_columns(E, j))
    np.testing.assert_array_equal(graphc.compile(gather_pairs)(E, i, j), gather_pairs(E, i, j))


def negative_int_power(x):
    return x ** -1  # <- error here


def negative_int_power_array(x):
    return np.power(x, np.array([2, -1, 0]))  # <- error here


@pytest.mark.parametrize("fn", [negative_int_power, negative_int_power_array])
def test_integer_to_negative_power_is_refused_at_trace_time(fn):
    x = np.arange(1, 4)
    with pytest.raises(ValueError) as eager:
        fn(x)
    with pytest.raises(graphc.DtypeError) as info:
        graphc.compile(fn)(x)
    text = str(info.value)
    assert str(eager.value) in text, text  # numpy's words
    assert text.startswith(f"{__file__}:{marked_line(fn)}: "), text
    assert "float" in text.split("\n  hint: ")[1]


def test_traced_negative_integer_exponent_raises_numpys_error_at_run_time():
    # the exponent's sign is only known when the function runs: numpy's own ValueError
    # comes from the compiled call, as from the eager one (not an internal error)
    def f(x, n):
        return x ** n

    x, n = np.arange(1, 4), np.array([1, -2, 0])
    with pytest.raises(ValueError) as eager:
        f(x, n)
    g = graphc.compile(f)
    np.testing.assert_array_equal(g(x, abs(n)), f(x, abs(n)))
    for _ in range(2):  # the first call on a signature and the fast path alike
        with pytest.raises(ValueError) as compiled:
            g(x, n)
        assert type(compiled.value) is type(eager.value)
        assert str(compiled.value) == str(eager.value)
