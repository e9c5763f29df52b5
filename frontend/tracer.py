"""The trace context and the `Tracer` value that stands in for an array while tracing.

A `TraceContext` owns the graph being built. `emit(op, *inputs, **attrs)` records a
node with the user's source line through the core's `NodeBuilder` (which applies the
op's shape/dtype rule), and returns the new Tracer(s). Everything numpy-shaped
(operators, ufuncs, numpy functions, methods, indexing) is defined in
`frontend.numpy_api` on top of `emit`; this module holds only the mechanics.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

import numpy as np

from graphc import dtypes
from graphc.errors import (ArgumentError, TracerBoolError, TracerLeakError,
                           UnsupportedError, user_location)
from graphc.ir import Attrs, Graph, NodeBuilder, TensorType, Value

_state = threading.local()


def current() -> "TraceContext | None":
    stack = getattr(_state, "stack", None)
    return stack[-1] if stack else None


class TraceContext:
    """Builds one graph. Use as a context manager around the traced call."""

    def __init__(self, name: str):
        self.builder = NodeBuilder(name)
        # the graph being built: its inputs and nodes are the builder's lists, its
        # outputs are filled in by the caller once the traced function returns
        self.graph = Graph(name, self.builder.inputs, self.builder.nodes)
        self.active = True
        self._consts: dict[tuple, Tracer] = {}
        # called with each constant before it enters the graph (frontend.impure refuses
        # one that a random generator or the clock produced while tracing)
        self.watch: Callable[[Any], None] | None = None

    def __enter__(self) -> "TraceContext":
        if not hasattr(_state, "stack"):
            _state.stack = []
        _state.stack.append(self)
        return self

    def __exit__(self, *exc) -> None:
        _state.stack.pop()
        self.active = False

    def new_input(self, name: str, ttype: TensorType) -> "Tracer":
        return Tracer(self.builder.input(name, ttype), self)

    def emit(self, op: str, *inputs: "Tracer", **attrs: Any) -> "Tracer":
        """Record `op` applied to `inputs`; returns the output Tracer."""
        return self._record(op, inputs, Attrs(attrs), user_location(2))

    def _record(self, op: str, inputs, attrs: Attrs, loc):
        if not self.active:  # a leaked Tracer used outside any trace (eagerly)
            t = inputs[0] if inputs else None
            what = f" ({t.value.type})" if t is not None else ""
            raise TracerLeakError(
                f"a traced value{what} from the finished trace of {self.graph.name} was "
                "used after that trace ended", loc=loc or None)
        for t in inputs:
            self.check_owned(t)
        outs = self.builder.add(op, tuple([t.value for t in inputs]), attrs, loc).outputs
        if len(outs) == 1:
            return Tracer(outs[0], self)
        return tuple(Tracer(v, self) for v in outs)

    def inline(self, graph: Graph, inputs: list) -> list["Tracer"]:
        """Replay `graph`'s nodes here on `inputs` (Tracers or numpy arrays), keeping
        each node's source location; the Tracers of its outputs. This is how a
        transformed function (a gradient) becomes part of an enclosing trace."""
        env = {id(v): x if isinstance(x, Tracer) else self.const(x)
               for v, x in zip(graph.inputs, inputs)}
        for node in graph.nodes:
            out = self._record(node.op, [env[id(v)] for v in node.inputs], node.attrs,
                               node.loc)
            outs = out if isinstance(out, tuple) else (out,)
            for v, t in zip(node.outputs, outs):
                env[id(v)] = t
        return [env[id(v)] for v in graph.outputs]

    def const(self, value: Any, dtype: str | None = None) -> "Tracer":
        """A literal (Python scalar or numpy array) as a const node, deduplicated."""
        if self.watch is not None:
            self.watch(value)
        arr = np.asarray(value)
        if arr.dtype.kind in "OUSVc":
            raise UnsupportedError(f"arrays of dtype {arr.dtype} cannot be traced",
                                   hint="graphc supports bool, int and float arrays")
        if dtype is None:
            dtype = dtypes.canonical(arr.dtype)
        arr = arr.astype(dtypes.to_numpy(dtype), copy=False)
        key = (dtype, arr.shape, arr.tobytes())
        hit = self._consts.get(key)
        if hit is None:
            hit = self._consts[key] = self.emit("const", value=arr)
        return hit

    def check_owned(self, t: "Tracer") -> None:
        if t.ctx is self:
            return
        if not t.ctx.active:
            raise TracerLeakError(
                f"a traced value ({t.value.type}) from the finished trace of "
                f"{t.ctx.graph.name} was used after that trace ended")
        raise UnsupportedError(
            f"a traced value of {t.ctx.graph.name} was used inside another trace",
            hint="pass it to the inner function as an argument instead of closing over it")


class Tracer:
    """Stands in for a numpy array while a function is traced.

    It has the array's `shape`, `ndim`, `dtype` and `size`, but no data: operations
    on it record graph nodes. The numpy protocols and operators live in
    `frontend.numpy_api`, attached below.
    """

    __slots__ = ("value", "ctx")
    __array_priority__ = 1000  # so ndarray (op) Tracer defers to the Tracer
    __hash__ = None  # type: ignore[assignment]  # == builds a node, as ndarray does

    def __init__(self, value: Value, ctx: TraceContext):
        self.value = value
        self.ctx = ctx

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.type.shape

    @property
    def ndim(self) -> int:
        return len(self.value.type.shape)

    @property
    def size(self) -> int:
        return self.value.type.size

    @property
    def dtype(self):
        dt = self.value.type.dtype
        return dt if dt == "bfloat16" else np.dtype(dt)

    def __len__(self) -> int:
        if not self.shape:
            raise ArgumentError("len() of a 0-d array",  # TypeError, as numpy's
                                hint="a 0-d array has no length: use x.shape or x.size")
        return self.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return f"Tracer({self.value.type})"

    def _concrete(self, what: str):
        raise TracerBoolError(
            f"{what} needs a concrete value, but this array ({self.value.type}) is "
            "traced: its value is only known when the compiled function runs")

    def __bool__(self):
        self._concrete("Python control flow (`if`, `while`, `and`/`or`, bool())")

    def __int__(self):
        self._concrete("int()")

    def __float__(self):
        self._concrete("float()")

    def __complex__(self):
        self._concrete("complex()")

    def __index__(self):
        self._concrete("using a traced value as a Python index (range, list index)")

    def __array__(self, dtype=None, copy=None):
        raise TracerBoolError(
            f"numpy needs the concrete data of a traced array ({self.value.type}) here "
            "(np.asarray/np.array, or a numpy array indexed by a traced index)",
            hint="make every array the function computes with an argument of the "
                 "compiled function (a closed-over numpy `table[idx]` cannot be traced: "
                 "pass `table` in as an argument), use np.stack([...]) "
                 "instead of np.array([...]) to combine traced arrays, and use the "
                 "returned value instead of np.asarray")

    def __getattr__(self, name: str):
        # only for names that are not attributes: an ndarray method graphc lacks
        if not name.startswith("_") and hasattr(np.ndarray, name):
            from graphc.frontend.numpy_api import FUNCTIONS, UFUNCS
            fn = getattr(np, name, None)
            from graphc.frontend.suggestions import hint_for
            known = fn in FUNCTIONS or fn in UFUNCS
            hint = (f"call the function instead: np.{name}(x, ...)" if known else
                    f"graphc does not support np.{name} either: {hint_for(f'np.{name}')}")
            raise UnsupportedError(f"the array method .{name}() is not supported on "
                                   "traced arrays", hint=hint)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def tolist(self):
        self._concrete(".tolist()")

    def item(self):
        self._concrete(".item()")

    def __setitem__(self, key, value):
        raise UnsupportedError(
            "in-place assignment into a traced array (x[...] = v) is not supported",
            hint="build a new array instead: np.where(mask, v, x), np.concatenate, or "
                 "np.pad; compiled functions never mutate their inputs")
