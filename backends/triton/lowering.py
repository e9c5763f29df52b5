"""The Triton backend's lowering table: one entry per primitive, saying how the
backend runs it.

- "kernel": an elementwise op, a Triton expression inside a generated kernel
  (`elementwise.ELEMENTWISE`, with graphc's own device functions in `library`);
- "reduction": sum, max, min and argmax, the reduction renderer's combine steps
  (reduction.py);
- "matmul": the tiled `tl.dot` kernel (matmul.py);
- "extern": a torch call on the device, where Triton is the wrong tool (extern.HOST:
  convolutions, pooling, gathers, views), with the reason;
- "source": constants, iota and static sizes, made once when the program is built.

A new primitive is one entry in the table its kind reads; a test checks that
LOWERINGS covers every primitive.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphc.ops import OPS, Kind


@dataclass(frozen=True)
class Lowering:
    kind: str
    form: Any = None  # the elementwise form or the Extern record
    why: str = ""


def _table() -> dict[str, Lowering]:
    from graphc.backends.triton.elementwise import ELEMENTWISE
    from graphc.backends.triton.extern import HOST
    table: dict[str, Lowering] = {}
    for name, op in OPS.items():
        if name in ELEMENTWISE:
            table[name] = Lowering("kernel", ELEMENTWISE[name])
        elif op.kind is Kind.REDUCTION and name in ("sum", "max", "min", "argmax"):
            table[name] = Lowering("reduction")
        elif op.kind is Kind.MATMUL:
            table[name] = Lowering("matmul")
        elif op.kind is Kind.SOURCE and name in ("const", "iota"):
            table[name] = Lowering("source")
        elif name == "size":  # the backend compiles static sizes only: a constant
            table[name] = Lowering("source", why="a count of static sizes")
        elif name in HOST:
            table[name] = Lowering("extern", HOST[name], HOST[name].why)
    return table


class _Lazy(dict):
    """Filled on first use: every table is read at use, so a primitive registered late
    (a test's toy primitive) is seen."""

    def _fill(self):
        fresh = _table()
        if fresh.keys() != dict.keys(self):
            dict.clear(self)
            dict.update(self, fresh)

    def __iter__(self):
        self._fill()
        return super().__iter__()

    def __getitem__(self, key):
        self._fill()
        return super().__getitem__(key)

    def __len__(self):
        self._fill()
        return super().__len__()

    def keys(self):
        self._fill()
        return super().keys()

    def items(self):
        self._fill()
        return super().items()


LOWERINGS: dict[str, Lowering] = _Lazy()
