"""Kernel parameter names that say what each parameter carries, as the Triton tutorials
name theirs (`x_ptr`, `out`), instead of a0..a4 and o0.

A graph input keeps its own name (`x`, `weight`); a value made by another kernel is
named for the op and the IR value that made it (`exp3` is `%3 = exp ...`); a kernel's
only output is `out`, several are `out_exp3`, `out_div5`. Names are reduced to ASCII
letters, digits and underscores (a graph text from elsewhere names its values, and
nothing read from a file reaches generated code but an identifier) and kept apart
from each renderer's own words by its `reserved` test.

>>> from graphc.ir import TensorType, Value
>>> names = ParamNames(lambda v: v, outputs=1, reserved=lambda s: s in {"lo", "hi"})
>>> names.input(Value("lo", TensorType((2,), "float32"))), names.output(Value("4", None))
('lo_', 'out')
"""
from __future__ import annotations

import re
from typing import Callable

from graphc.ir import Value

_NOT_IDENT = re.compile(r"[^A-Za-z0-9_]+")
_LONGEST = 32


def base_name(v: Value) -> str:
    """What `v` is called in a kernel's parameters (see the module docstring)."""
    text = v.name if v.node is None or not v.name.isdigit() else f"{v.node.op}{v.name}"
    ident = _NOT_IDENT.sub("_", text)[:_LONGEST].strip("_") or "value"
    return "v" + ident if ident[0].isdigit() else ident


class ParamNames:
    """Distinct parameter names for one kernel, given as values are first met.

    `origin(v)` maps a kernel's value to the graph's (flattened copies keep their
    graph value's name); `outputs` is how many values the kernel writes."""

    def __init__(self, origin: Callable[[Value], Value], outputs: int,
                 reserved: Callable[[str], bool]):
        self.origin, self.outputs, self.reserved = origin, outputs, reserved
        self.taken: set[str] = set()

    def _claim(self, name: str) -> str:
        while self.reserved(name) or name in self.taken:
            name += "_"
        self.taken.add(name)
        return name

    def input(self, v: Value) -> str:
        return self._claim(base_name(self.origin(v)))

    def output(self, v: Value) -> str:
        if self.outputs == 1:
            return self._claim("out")
        return self._claim("out_" + base_name(self.origin(v)))
