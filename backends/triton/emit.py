"""What every Triton kernel renderer shares: the kernel's text as it is built, the
names of its parameters, dtypes in Triton's spelling, loads that upcast and nodes that
round back.

A kernel holds each IR value in its compute dtype: float16, bfloat16 and float32
values as `tl.float32` (a float16 result is rounded to float16 after every node, so
the numbers are the IR's, op by op, as numpy computes them), float64 as itself, ints
as themselves and bools as `tl.int1`. A kernel's text is built by `KernelText`: its
signature in commented groups (pointers, sizes, strides, meta-parameters), then body
lines, each commented with the IR node it computes and the user's `file:line`.

>>> from graphc.ir import TensorType
>>> compute_dtype("float16"), tl_dtype("bool")
('tl.float32', 'tl.int1')
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graphc.backends.numpy.literals import py_comment
from graphc.backends.numpy.names import base_name
from graphc.errors import DtypeError
from graphc.ir import Node, TensorType, Value
from graphc.ir.text import format_node

TL_DTYPES = {"float16": "tl.float16", "bfloat16": "tl.bfloat16", "float32": "tl.float32",
             "float64": "tl.float64", "int32": "tl.int32", "int64": "tl.int64",
             "bool": "tl.int1"}
_GROUPS = ("pointers", "sizes", "strides", "meta-parameters")
HALF = frozenset({"float16", "bfloat16"})
# names of a kernel's own that no value may take
RESERVED = frozenset({"tl", "triton", "lib", "pid", "offs", "mask", "numel", "rows",
                      "cols", "rest", "rmask", "xmask", "cmask", "xidx", "ridx", "acc", "c0", "BLOCK", "XBLOCK", "RBLOCK"})


def tl_dtype(dtype: str) -> str:
    if dtype not in TL_DTYPES:
        raise DtypeError(f"the triton backend has no {dtype}", loc=False)
    return TL_DTYPES[dtype]


def compute_dtype(dtype: str) -> str:
    """The dtype a kernel holds a value of `dtype` in (see the module docstring)."""
    return "tl.float32" if dtype in HALF else tl_dtype(dtype)


def upcast(expr: str, dtype: str) -> str:
    """A loaded value of `dtype` in its compute dtype."""
    return f"{expr}.to(tl.float32)" if dtype in HALF else expr


def rounded(expr: str, dtype: str) -> str:
    """A computed value rounded to its IR dtype (and held in the compute dtype)."""
    if dtype == "bfloat16":  # rounded by graphc: the interpreter's conversion truncates
        return f"lib.round_bfloat16({expr})"
    if dtype in HALF:
        return f"{expr}.to({tl_dtype(dtype)}).to(tl.float32)"
    return expr


def describe(node: Node) -> str:
    """`%3 = exp %2  (model.py:12)`, safe on one comment line."""
    text = format_node(node).split("  #")[0].strip()
    return py_comment(text + (f"  ({node.loc})" if node.loc else ""))


@dataclass
class Param:
    """One kernel parameter and the host expression that passes it."""

    name: str
    group: str     # "pointers", "sizes", "strides" or "meta-parameters"
    host: str = ""  # the launch's argument ("" for meta-parameters: the config's)
    comment: str = ""


@dataclass
class KernelText:
    """A kernel's text while it is rendered: parameters, body lines, its name."""

    name: str
    doc: str
    params: list[Param] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    taken: set[str] = field(default_factory=set)

    def ident(self, base: str) -> str:
        """A fresh identifier from `base` (an IR value's name, already sanitized)."""
        name = base
        while name in RESERVED or name in self.taken or name.isupper():
            name += "_"
        self.taken.add(name)
        return name

    def value_name(self, v: Value) -> str:
        return self.ident(base_name(v).lower())

    def param(self, base: str, group: str, host: str = "", comment: str = "") -> str:
        name = base if group == "meta-parameters" else self.ident(base)
        self.params.append(Param(name, group, host, comment))
        return name

    def line(self, code: str, node: Node | None = None, indent: int = 1,
             note: str = "") -> None:
        pad = "    " * indent
        comment = describe(node) if node is not None else py_comment(note)
        self.lines.append(f"{pad}{code:<56}  # {comment}" if comment else pad + code)

    def blank(self) -> None:
        self.lines.append("")

    def ordered(self) -> list[Param]:
        """The parameters in signature order: grouped, each group in order of use."""
        return [p for group in _GROUPS for p in self.params if p.group == group]

    def text(self) -> str:
        out = ["@triton.jit", f"def {self.name}("]
        for group in _GROUPS:
            params = [p for p in self.params if p.group == group]
            if not params:
                continue
            out.append(f"    # {group}")
            for p in params:
                suffix = ": tl.constexpr" if group == "meta-parameters" else ""
                out.append(f"    {p.name}{suffix},")
        out.append("):")
        out.append(f'    """{py_comment(self.doc)}"""')
        out += self.lines
        return "\n".join(out) + "\n"

    def host_args(self) -> list[str]:
        return [p.host for p in self.ordered() if p.group != "meta-parameters"]

    def meta(self) -> list[str]:
        return [p.name for p in self.params if p.group == "meta-parameters"]


@dataclass
class Launch:
    """A rendered kernel and how the host program launches it.

    `grid` is a Python expression over `cfg` (the chosen Config's meta-parameters, as
    `cfg["BLOCK"]`) and the launch's sizes; `kind` and `problem` pick the autotuner's
    config space; `outputs` are (kernel value, host name, shape, dtype) for the fresh
    tensors the launch allocates; `written` names inputs the kernel writes in place."""

    kernel: KernelText
    kind: str
    problem: dict[str, Any]
    grid: str
    prelude: list[str] = field(default_factory=list)  # host lines before the launch
    outputs: list[tuple[Value, str]] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    note: str = ""  # for the fusion report
    then: "Launch | None" = None  # a kernel launched next in the same wrapper


def kernel_name(index: int, nodes) -> str:
    """`k3_max_sub_exp_sum_div`: the group's position and its first ops."""
    ops: list[str] = []
    for n in nodes:
        if n.op not in ops:
            ops.append(n.op)
    text = "_".join(ops[:5]) + ("_etc" if len(ops) > 5 else "")
    return f"k{index}_{text}" if text else f"k{index}"


def type_note(t: TensorType) -> str:
    return f"{t.dtype}{list(t.shape)}"
