"""The only way a graph's data reaches the numpy backend's generated Python and C.

A graph may come from a file someone else wrote. Its attributes are checked against
their ops' schemas when it verifies, but the code generator does not lean on that:
it renders every attribute through `py`, which accepts bools, ints, floats, tuples
of them and the names of graphc's dtypes, and raises VerifyError for anything else
(a string that would be pasted into the source as code). Comments carrying the IR
and the user's file names go through `py_comment` and `c_comment`, which keep them
on one line and inside the comment (and the C inside its Python string).

>>> py((1, 2)), py((3,)), py(True), py(float("-inf")), py("float32")
('(1, 2)', '(3,)', 'True', "float('-inf')", "'float32'")
>>> py("True, dtype=None) + np.add(0, 0")
Traceback (most recent call last):
  ...
graphc.errors.VerifyError: the numpy backend renders only validated attribute values \
(bools, ints, floats, tuples of them, dtype names), not 'True, dtype=None) + np.add(0, 0'
  hint: run graph.verify(): every attribute is checked against its op's schema
"""
from __future__ import annotations

import contextlib
import contextvars
import math
from typing import Any, Iterator, Sequence

from graphc import dtypes
from graphc.errors import VerifyError
from graphc.ir.symbols import Sym

# symbol -> its position among the call's sizes (set per render): Python reads size j
# as the variable `_dim{j}`, a native kernel as `sizes[j]` (the call's `_sizes` array)
_SIZE_NAMES: contextvars.ContextVar[dict[str, int]] = contextvars.ContextVar(
    "graphc_size_names", default={})


@contextlib.contextmanager
def size_names(order: Sequence[str]) -> Iterator[None]:
    """Render symbolic sizes as the call's size variables (the j-th of `order` as
    `_dim{j}` in Python, `sizes[j]` in C) inside the block."""
    token = _SIZE_NAMES.set({name: j for j, name in enumerate(order)})
    try:
        yield
    finally:
        _SIZE_NAMES.reset(token)


def _size(d: Sym, var: str) -> str:
    """A symbolic size as arithmetic on the call's size variables (`var` formats the
    j-th): the symbol's own name never reaches the source."""
    names = _SIZE_NAMES.get()
    terms = []
    for m, c in d.terms:
        if any(n not in names for n in m):
            raise VerifyError(f"the size {d} names a symbol no input gives", loc=False)
        factors = ([str(abs(c))] if abs(c) != 1 or not m else []) + \
            [var.format(names[n]) for n in m]
        terms.append(("-" if c < 0 else "+") + "*".join(factors))
    text = "".join(terms)
    return "(" + (text[1:] if text.startswith("+") else text) + ")"


def c_size(d: int | Sym) -> str:
    """A size in a native kernel's C: an int literal, or a symbolic size read from the
    kernel's `sizes` argument (int64 arithmetic).

    >>> c_size(4)
    '4'
    >>> with size_names(["B", "S"]):
    ...     c_size(Sym.var("S") * 2 + 1)
    '(1+2*sizes[1])'
    """
    if type(d) is int:
        return str(d)
    if type(d) is Sym:
        return _size(d, "sizes[{}]")
    raise VerifyError(f"the numpy backend renders only sizes here, not {_shown(d)}",
                      loc=False)


def py(value: Any) -> str:
    """Python source for a validated attribute value (see the module docstring)."""
    kind = type(value)
    if kind is bool or kind is int:  # exact types: a subclass could override __repr__
        return repr(value)
    if kind is Sym:
        return _size(value, "_dim{}")
    if kind is float:
        return repr(value) if math.isfinite(value) else f"float('{value}')"
    if kind is tuple:
        inner = ", ".join(py(x) for x in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if kind is str and value in dtypes.DTYPES:
        return repr(value)
    raise VerifyError("the numpy backend renders only validated attribute values (bools, "
                      "ints, floats, tuples of them, dtype names), not "
                      f"{_shown(value)}",
                      hint="run graph.verify(): every attribute is checked against its "
                           "op's schema", loc=False)


def c_double(x: float) -> str:
    """A C double literal for a Python float (math.h's names for inf and nan)."""
    if type(x) is not float:
        raise VerifyError(f"the numpy backend renders only floats here, not {_shown(x)}",
                          loc=False)
    if math.isnan(x):
        return "NAN"
    if math.isinf(x):
        return "INFINITY" if x > 0 else "(-INFINITY)"
    return repr(x)


def py_comment(text: str) -> str:
    """`text` kept on one line of a Python comment: line breaks and other unprintable
    characters become spaces."""
    return "".join(ch if ch.isprintable() else " " for ch in text)


def c_comment(text: str) -> str:
    """`text` safe in a C comment inside the Python string that holds the C: on one
    line, no quote or backslash (a backslash would splice the next line into a //
    comment), no `*/` and no trigraph."""
    text = py_comment(text).replace('"', "'").replace("\\", "/")
    return text.replace("*/", "* /").replace("??", "? ?")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
