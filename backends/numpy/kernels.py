"""Fused kernels for the numpy backend: a group's nodes as one Python function that
computes a block of rows with numpy calls writing into preallocated buffers.

    def _k2(lo, hi, s, a0, o0):          # rows lo:hi of every value in the group
        n = hi - lo
        t0 = s[0][:n]                    # per-thread scratch, reused block after block
        a0_b = a0[lo:hi]
        np.max(a0_b, axis=(1,), keepdims=True, out=t1)   # %0 = max %x
        np.subtract(a0_b, t1, out=t0)                    # %1 = sub %x, %0
        ...

Every value in a row-blocked group keeps axis 0 (the fusion pass sees to it), so the
rows lo:hi of the outputs depend only on rows lo:hi of the inputs. A block is small
enough for its intermediates to stay in cache; blocks run on the runtime's threads.
"""
from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from typing import Callable

from graphc.backends import settings
from graphc.ir.symbols import Sym, typical
from graphc.ir import Node, Value
from graphc.ops import OPS, Kind
from graphc.backends.numpy.names import ParamNames
from graphc.passes.schedule import KernelPlan

# Elements of the widest value per block: 512 KiB of float32, big enough that the
# per-block Python and GIL hand-off cost stays small (measured: 32K-element blocks
# ran softmax 1.5x slower on 2 threads), small enough for a few of them to sit in L2.
# GRAPHC_BLOCK_ELEMENTS overrides it (the test suite runs once with tiny blocks).
BLOCK_ELEMENTS = settings.SETTINGS["GRAPHC_BLOCK_ELEMENTS"].default  # 131072


@dataclass
class Kernel:
    name: str
    source: str
    inputs: list[Value]       # external values, in parameter order
    outputs: list[Value]      # values the kernel writes whole (full-size buffers)
    scratch: list[tuple[tuple[int, ...], str]] = field(default_factory=list)
    rows: int = 1
    block: int = 1
    params: tuple[str, ...] = ()  # its array parameters' names: inputs, then outputs
    widest: int | Sym = 1  # elements of its widest row (symbolic: block sized per call)


def row_kernel(name: str, plan: KernelPlan,
               lower_into: Callable[[Node, list[str], str], str],
               describe: Callable[[Node], str],
               lower_expr: Callable[[Node, list[str]], str],
               block_elements: int = BLOCK_ELEMENTS,
               constant: Callable[[Value], str | None] = lambda v: None) -> Kernel:
    """Generate the block function of `plan` (a fused group, or a matmul epilogue).

    Values that escape the plan are written into full-size output buffers.
    `lower_into(node, args, out)` gives the statement that computes `node` into `out`;
    `lower_expr(node, args)` an expression for it (0-d values, computed afresh in each
    block: a few scalars). `constant(v)` names a module-level constant the kernel
    reads directly instead of through a parameter (None: v is a parameter).
    """
    nodes = list(plan.nodes)
    rows = plan.rows
    widths = [_row_elements(v) for n in nodes for v in (*n.inputs, *n.outputs)]
    # (a symbolic row: the widest by its typical size; the call then works its block
    # out from its own sizes, `Kernel.widest`, and sizes its scratch to that)
    widest = max(widths + [1], key=typical)
    target = block_elements  # the compiled function's options (backends/options.py)
    # (symbolic rows: the runtime ends the last block at the rows a call has)
    block = max(1, target // typical(widest))
    if type(rows) is int:
        block = max(1, min(rows, block))
    last_use = {id(v): i for i, n in enumerate(nodes) for v in n.inputs}

    kernel = Kernel(name, "", [], [], [], rows, block, widest=widest)
    # scratch rows: `block`, or per call where the rows' sizes are symbolic (the
    # symbol BLOCK stands for the call's block in the scratch specs)
    first = block if blockable(plan) else BLOCK
    top: list[str] = ["n = hi - lo"]
    body: list[str] = []
    local: dict[int, str] = {}         # internal value -> its block-local name
    param: dict[int, str] = {}         # external value -> its parameter name
    sliced: dict[int, str] = {}
    free: dict[tuple, list[int]] = {}  # scratch slots free for reuse, by (tail, dtype)
    slot_of: dict[int, int] = {}

    names = ParamNames(plan.origin, sum(plan.escapes(v) for n in nodes for v in n.outputs),
                       _reserved)
    out_param: list[str] = []

    def external(v: Value, cut: bool) -> str:
        name = constant(v)
        if name is not None:
            return f"{name}[lo:hi]" if cut else name
        if id(v) not in param:
            param[id(v)] = names.input(v)
            kernel.inputs.append(v)
        name = param[id(v)]
        if not cut:
            return name
        if id(v) not in sliced:
            sliced[id(v)] = f"{name}_b"
            top.append(f"{name}_b = {name}[lo:hi]")
        return sliced[id(v)]

    def operand(v: Value, node: Node) -> str:
        if id(v) in local:
            return local[id(v)]
        out_nd = node.outputs[0].type.ndim
        cut = v.type.ndim >= 1 and v.type.shape[0] == rows and (
            OPS[node.op].kind is Kind.REDUCTION or v.type.ndim == out_nd)
        return external(v, cut)

    def release(node: Node, i: int) -> None:
        for v in node.inputs:
            if id(v) in slot_of and last_use.get(id(v)) == i:
                slot = slot_of.pop(id(v))
                free.setdefault(_key(v), []).append(slot)

    def allocate(v: Value) -> str:
        if plan.escapes(v):
            kernel.outputs.append(v)
            out_param.append(names.output(v))
            top.append(f"{out_param[-1]}_b = {out_param[-1]}[lo:hi]")
            return f"{out_param[-1]}_b"
        slots = free.get(_key(v))
        if slots:
            slot = slots.pop()
        else:
            slot = len(kernel.scratch)
            kernel.scratch.append(((first,) + v.type.shape[1:], v.type.dtype))
            top.append(f"t{slot} = s[{slot}][:n]")
        slot_of[id(v)] = slot
        return f"t{slot}"

    for i, node in enumerate(nodes):
        args = [operand(v, node) for v in node.inputs]
        if node.outputs[0].type.ndim == 0:  # a scalar the kernel recomputes per block
            local[id(node.outputs[0])] = f"c{i}"
            body.append(f"{f'c{i} = ' + lower_expr(node, args):<56}  # {describe(node)}")
            continue
        in_place = OPS[node.op].kind is Kind.ELEMENTWISE
        if in_place:  # an elementwise op may write over an input that dies here
            release(node, i)
        out = allocate(node.outputs[0])
        if not in_place:
            release(node, i)
        local[id(node.outputs[0])] = out
        body.append(f"{lower_into(node, args, out):<56}  # {describe(node)}")

    kernel.params = tuple([param[id(v)] for v in kernel.inputs] + out_param)
    params = ", ".join(kernel.params)
    kernel.source = "\n".join([f"def {name}(lo, hi, s, {params}):"] +
                              ["    " + line for line in top + body]) + "\n"
    return kernel


BLOCK = Sym.var("block")


def blockable(plan: KernelPlan) -> bool:
    """Whether row_kernel can run `plan`: its scratch is (block, *the rest), so every
    size past the first axis must be fixed."""
    return all(type(d) is int for n in plan.nodes for v in (*n.inputs, *n.outputs)
               for d in v.type.shape[1:])


def _reserved(name: str) -> bool:
    """Names a parameter may not take: Python's words, the block function's own
    locals (lo, hi, s, n, t0.., c0..), module names (np, _c0), and block slices."""
    return keyword.iskeyword(name) or name in ("lo", "hi", "s", "n", "np") or \
        re.fullmatch(r"[tc]\d+", name) is not None or name.startswith("_") or \
        name.endswith("_b")


def _key(v: Value) -> tuple:
    return (v.type.shape[1:], v.type.dtype)


def _row_elements(v: Value) -> int:
    size = 1
    for d in v.type.shape[1:]:
        size *= d
    return size
