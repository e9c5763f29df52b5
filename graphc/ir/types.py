"""The IR's data: tensor types, SSA values, nodes and graphs."""
from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from graphc import dtypes
from graphc.errors import SourceLoc
from graphc.ir.symbols import Sym


@dataclass(frozen=True)
class TensorType:
    """The static type of a value: a shape and a dtype name. A dimension is an int or
    a symbolic size (`graphc.ir.symbols.Sym`: `f32[B,1024]`)."""

    shape: tuple[int | Sym, ...]
    dtype: str

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(d if type(d) is Sym else int(d)
                                                for d in self.shape))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int | Sym:
        return math.prod(self.shape)

    @property
    def static(self) -> bool:
        """Whether every dimension is an int."""
        return all(type(d) is int for d in self.shape)

    @property
    def nbytes(self) -> int | Sym:
        itemsize = 2 if self.dtype == "bfloat16" else np.dtype(self.dtype).itemsize
        return self.size * itemsize

    def __str__(self) -> str:
        return f"{dtypes.short(self.dtype)}[{','.join(map(str, self.shape))}]"


class ArrayLiteral:
    """An immutable, hashable numpy array held in a node's attributes (const)."""

    __slots__ = ("array", "_key")
    INLINE_LIMIT = 16  # larger arrays print as base64 bytes

    def __init__(self, array: np.ndarray):
        arr = np.array(array, copy=True)
        arr.flags.writeable = False
        self.array = arr
        self._key = (arr.dtype.str, arr.shape, arr.tobytes())

    def __eq__(self, other) -> bool:
        return isinstance(other, ArrayLiteral) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return f"ArrayLiteral({self.array!r})"

    def to_text(self) -> str:
        arr = self.array
        if arr.size > self.INLINE_LIMIT:
            return 'b64"' + base64.b64encode(arr.tobytes()).decode() + '"'
        return _nested_text(arr)

    @classmethod
    def from_parsed(cls, raw: Any, ttype: TensorType) -> "ArrayLiteral":
        """Rebuild from what the parser read (a nested list, scalar or bytes)."""
        np_dtype = dtypes.to_numpy(ttype.dtype)
        if isinstance(raw, bytes):
            arr = np.frombuffer(raw, dtype=np_dtype).reshape(ttype.shape)
        else:
            arr = np.array(raw, dtype=np_dtype).reshape(ttype.shape)
        return cls(arr)


def format_scalar(x) -> str:
    """Shortest text that reads back to exactly the same scalar of its dtype."""
    if isinstance(x, (bool, np.bool_)):
        return "true" if x else "false"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    x = np.float64(x) if isinstance(x, float) else x
    if np.isnan(x):
        return "nan"
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    text = np.format_float_positional(x, unique=True, trim="0")
    if len(text) > 16:
        text = np.format_float_scientific(x, unique=True, trim="0")
    return text


def _nested_text(arr: np.ndarray) -> str:
    if arr.ndim == 0:
        return format_scalar(arr[()])
    return "[" + ", ".join(_nested_text(sub) for sub in arr) + "]"


class Attrs(Mapping):
    """A node's static attributes: an immutable, hashable mapping."""

    __slots__ = ("_items", "_dict")

    def __init__(self, items: Mapping[str, Any] | None = None):
        d = dict(items or {})
        self._dict = {k: _freeze(v) for k, v in sorted(d.items())}
        self._items = tuple(self._dict.items())

    def __getitem__(self, key: str) -> Any:
        return self._dict[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other) -> bool:
        return isinstance(other, Attrs) and self._items == other._items

    def __repr__(self) -> str:
        return f"Attrs({self._dict!r})"


def _freeze(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, np.ndarray):
        return ArrayLiteral(v)
    if isinstance(v, np.generic):
        return v.item()
    return v


class Value:
    """One SSA value: a name, a type, and the node that produces it (None: input)."""

    __slots__ = ("name", "type", "node")

    def __init__(self, name: str, type: TensorType, node: "Node | None" = None):
        self.name = name
        self.type = type
        self.node = node

    @property
    def shape(self) -> tuple[int, ...]:
        return self.type.shape

    @property
    def dtype(self) -> str:
        return self.type.dtype

    def __repr__(self) -> str:
        return f"%{self.name}: {self.type}"


@dataclass(eq=False)
class Node:
    """An op applied to input values, with frozen attributes and the user's location."""

    op: str
    inputs: tuple[Value, ...]
    attrs: Attrs
    outputs: tuple[Value, ...] = ()
    loc: SourceLoc | None = None

    @property
    def output(self) -> Value:
        (out,) = self.outputs
        return out

    def __repr__(self) -> str:
        outs = ", ".join(map(repr, self.outputs))
        ins = ", ".join(f"%{v.name}" for v in self.inputs)
        return f"<Node {outs} = {self.op} {ins}>"


@dataclass(eq=False)
class Group:
    """A fusion group: consecutive nodes that a backend runs as one kernel.

    `kind` says how (passes/fusion.py makes exactly these): "elementwise" (a chain
    over one iteration space), "reduction" (reductions with their elementwise prologue
    and epilogue, run block by block over rows), "matmul" (a matmul with its
    elementwise epilogue), "scalar" (a chain of 0-d ops), "reduce_all" (a
    reduction across axis 0 with the elementwise ops on its result, run unblocked),
    "single" (one op on its own: shape ops, gather, convolution, pooling) or
    "source" (the constants, which cost nothing at run time).
    """

    kind: str
    nodes: tuple[Node, ...]
    notes: tuple[str, ...] = ()  # why neighbouring groups were not merged (one line each)
    # the iteration space fusion merged the group over (elementwise, matmul: the shape
    # of its values; reduction: its full input), None for the other kinds or where
    # the group was read back from text (the kernel plan derives it from the nodes)
    space: tuple[int, ...] | None = None


@dataclass(eq=False)
class Graph:
    """Inputs, nodes in topological order, outputs. `str(g)` prints the text IR.

    >>> import graphc, numpy as np
    >>> g = graphc.trace(lambda x: np.exp(x) * 2.0, np.ones(3, np.float32))
    >>> g.verify()
    >>> len(g.nodes)
    3
    """

    name: str
    inputs: list[Value] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    outputs: list[Value] = field(default_factory=list)
    groups: list[Group] | None = None  # set by the fusion pass; their nodes, in order,
    #                                    are exactly `nodes`
    # what a symbolic trace assumed of its sizes (graphc.ir.symbols.Guard: `D >= 4`):
    # the graph is valid, and runs, only for sizes where every one holds
    guards: tuple = ()

    def verify(self) -> None:
        """Raise VerifyError unless the graph is well formed and well typed."""
        from graphc.ir.verify import verify
        verify(self)

    def __str__(self) -> str:
        from graphc.ir.text import print_graph
        return print_graph(self)

    def users(self) -> dict[Value, list[Node]]:
        """For each value, the nodes that read it (in order)."""
        out: dict[Value, list[Node]] = {}
        for node in self.nodes:
            for v in node.inputs:
                out.setdefault(v, []).append(node)
        return out
