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
    return np.cumsum(x, axis=0)  # <- error here


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
    (unsupported_function, graphc.UnsupportedError, "np.cumsum is not supported"),
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
