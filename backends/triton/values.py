"""A kernel's values while it is rendered: loads of its inputs, one line per node,
pointers to its outputs, and the host lines that prepare them.

Every renderer walks its plan's nodes through a `ValueEmitter`. It knows the kernel's
iteration space and, per axis, the name of the lanes' index along it (`index`) and
the mask that guards a load varying along a given set of axes (`mask_of`), which the
renderer sets up; from those it writes each input's address as a sum of index times
stride over the axes along which the input varies (a broadcast axis has no term).
"""
from __future__ import annotations

import math
from typing import Callable

from graphc.backends.numpy.names import base_name
from graphc.backends.numpy.literals import py
from graphc.backends.triton.elementwise import ELEMENTWISE
from graphc.backends.triton.emit import KernelText, compute_dtype, rounded, type_note, upcast
from graphc.ir import Node, Value
from graphc.passes.schedule import KernelPlan


def broadcast_axes(shape: tuple[int, ...], space: tuple[int, ...]) -> tuple[int, ...]:
    """The axes of `space` along which a value of `shape` (broadcast into it, numpy's
    right-aligned rule) varies."""
    offset = len(space) - len(shape)
    return tuple(d for d in range(len(space))
                 if d >= offset and shape[d - offset] != 1 and space[d] != 1)


def fits(shape: tuple[int, ...], space: tuple[int, ...]) -> bool:
    """Whether a value of `shape` broadcasts into `space` (numpy's rule)."""
    if len(shape) > len(space):
        return False
    return all(d in (1, s) for d, s in zip(shape[::-1], space[::-1]))


def escaping(plan: KernelPlan) -> list[Value]:
    """The kernel's values that leave it (the plan's outputs), in node order."""
    return [v for n in plan.nodes for v in n.outputs if plan.escapes(v)]


class ValueEmitter:
    """See the module docstring. `host_name(graph value)` names a value on the host."""

    def __init__(self, k: KernelText, plan: KernelPlan, host_name: Callable[[Value], str],
                 space: tuple[int, ...] | None = None):
        self.k, self.plan, self.host_name = k, plan, host_name
        self.space = tuple(space if space is not None else plan.space or ())
        self.name: dict[int, str] = {}       # id(kernel value) -> its name in the kernel
        self.index: dict[int, str] = {}      # axis -> the lanes' index along it
        self.mask = "mask"
        # the mask of a load of value v varying along `axes` of its frame
        self.mask_of: Callable[[Value, tuple[int, ...]], str] = lambda v, axes: self.mask
        self.prelude: list[str] = []         # host lines before the launch
        self.out_host: dict[int, str] = {}   # id(kernel value) -> host name of its tensor
        self.pointers: dict[int, str] = {}   # id(graph value) -> its pointer parameter
        self.views: dict[int, str] = {}      # id(kernel value) -> host name of its view
        self.indent = 1

    # --- inputs -------------------------------------------------------------------

    def pointer(self, v: Value) -> str:
        """The pointer parameter of kernel input `v` (one per graph value)."""
        g = self.plan.origin(v)
        if id(g) not in self.pointers:
            self.pointers[id(g)] = self.k.param(
                base_name(g).lower() + "_ptr", "pointers", host=self.view(v),
                comment=f"%{g.name} {type_note(g.type)}")
        return self.pointers[id(g)]

    def view(self, v: Value) -> str:
        """The host tensor passed for kernel value `v`: the graph value's tensor, reshaped
        where the plan flattened its leading axes."""
        if id(v) in self.views:
            return self.views[id(v)]
        g = self.plan.origin(v)
        host = self.host_name(g)
        if tuple(v.type.shape) != tuple(g.type.shape):
            view = f"{host}_as{len(self.views)}"
            self.prelude.append(f"{view} = {host}.reshape({_shape(v.type.shape)})")
            host = view
        self.views[id(v)] = host
        return host

    def frame(self, v: Value) -> tuple[tuple[int, ...], dict[int, str]]:
        """The space `v` broadcasts into and the lanes' index along each of its axes
        (a renderer with values of more than one frame overrides it)."""
        return self.space, self.index

    def address(self, v: Value, space: tuple[int, ...] | None = None,
                contiguous: bool = False) -> str:
        """`v`'s element offset for the lanes' indices: strides as parameters (inputs)
        or, for a fresh contiguous output, as numbers."""
        frame_space, index = self.frame(v)
        space = frame_space if space is None else space
        shape = tuple(v.type.shape)
        offset = len(space) - len(shape)
        terms = []
        strides = _contiguous(shape)
        for d in broadcast_axes(shape, space):
            if contiguous and type(strides[d - offset]) is int:
                s = strides[d - offset]
                terms.append(index[d] if s == 1 else f"{index[d]} * {s}")
            else:
                stride = self.k.param(f"{base_name(self.plan.origin(v)).lower()}_stride{d}",
                                      "strides", host=f"{self.view(v)}.stride({d - offset})")
                terms.append(f"{index[d]} * {stride}")
        return " + ".join(terms) if terms else "0"

    def load(self, v: Value) -> str:
        """A line loading kernel input `v` where its lanes need it; its name."""
        if id(v) in self.name:
            return self.name[id(v)]
        g = self.plan.origin(v)
        name = self.k.value_name(g)
        if g.node is not None and g.node.op == "const" and g.type.size == 1:
            # a constant of one element: a typed scalar in the kernel's text
            self.k.line(f"{name} = tl.full([], {_scalar(g)}, {compute_dtype(g.type.dtype)})",
                        g.node, indent=self.indent)
            self.name[id(v)] = name
            return name
        ptr = self.pointer(v)
        note = f"load %{g.name} {type_note(g.type)}"
        if v.type.size == 1 or not broadcast_axes(tuple(v.type.shape), self.frame(v)[0]):
            # one element for every lane (the space's axes it spans are all of size 1)
            self.k.line(f"{name} = {upcast(f'tl.load({ptr})', v.type.dtype)}",
                        note=note + " (one element)", indent=self.indent)
        else:
            axes = broadcast_axes(tuple(v.type.shape), self.frame(v)[0])
            address = self.address(v)
            self.k.line(f"{name} = " + upcast(
                f"tl.load({ptr} + {address}, mask={self.mask_of(v, axes)}, other=0)",
                v.type.dtype), note=note, indent=self.indent)
        self.name[id(v)] = name
        return name

    def arg(self, v: Value) -> str:
        """The name of `v` in the kernel: computed already, or loaded now."""
        return self.name[id(v)] if id(v) in self.name else self.load(v)

    # --- nodes --------------------------------------------------------------------

    def compute(self, node: Node) -> str:
        """One line computing an elementwise node; the name of its result."""
        out = node.outputs[0]
        args = [self.arg(v) for v in node.inputs]
        expr = ELEMENTWISE[node.op](args, node.attrs, [v.type for v in node.inputs], out.type)
        name = self.k.value_name(self.plan.origin(out))
        self.k.line(f"{name} = {rounded(expr, out.type.dtype)}", self.plan.source_node(node),
                    indent=self.indent)
        self.name[id(out)] = name
        return name

    def bind(self, v: Value, name: str) -> None:
        self.name[id(v)] = name

    # --- outputs ------------------------------------------------------------------

    def output_pointer(self, v: Value) -> str:
        """The pointer parameter of an escaping kernel value, and the host line that
        makes its fresh tensor."""
        g = self.plan.origin(v)
        host = self.host_name(g)
        many = len(self.plan.outputs) > 1
        base = f"out_{base_name(g).lower()}_ptr" if many else "out_ptr"
        ptr = self.k.param(base, "pointers", host=host, comment=f"out %{g.name} "
                           f"{type_note(g.type)}")
        self.prelude.append(f"{host} = _rt.empty({_shape(g.type.shape)}, "
                            f"{g.type.dtype!r})")
        self.out_host[id(v)] = host
        return ptr


def _scalar(g: Value) -> str:
    """The Python literal of a one-element constant (a bool, an int or a float, from
    the validated array: never text from the graph)."""
    x = g.node.attrs["value"].array.reshape(()).item()
    if type(x) is bool or type(x) is int:
        return repr(x)
    x = float(x)
    return repr(x) if math.isfinite(x) else f"float('{x}')"


def _shape(shape) -> str:
    """A shape as host source: ints, or the call's size variables (`(_dim0, 8)`)."""
    return py(tuple(shape))


def _contiguous(shape: tuple[int, ...]) -> list[int]:
    strides, acc = [], 1
    for d in reversed(shape):
        strides.append(acc)
        acc *= d
    return strides[::-1]
