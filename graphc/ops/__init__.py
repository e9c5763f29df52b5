"""Primitives: one declarative record (`OpDef`) per op, all held in `OPS`.

A record says everything the core knows about an op: its name, the attributes it
takes, its shape/dtype rule, its numpy reference implementation (which is also the
reference interpreter and the constant folder) and its kind for fusion. Rules that
belong to a pass or a backend (gradients, lowerings) live in one table in that pass
or backend, keyed by the op name; tests check that every table covers `OPS`.

The records are spread over small modules by family: `elementwise`, `reduction`,
`shape`, `linalg` (matmul, convolution, pooling).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from graphc.ir.types import Attrs, TensorType


class Kind(str, enum.Enum):
    """How fusion treats an op."""

    ELEMENTWISE = "elementwise"  # out[i] depends on in[i] only (with broadcasting)
    REDUCTION = "reduction"      # sum/max/min/argmax over some axes
    SHAPE = "shape"              # moves data without arithmetic
    MATMUL = "matmul"            # goes to BLAS / tl.dot; can take an epilogue
    SOURCE = "source"            # makes data from attributes alone (const, iota)
    OPAQUE = "opaque"            # everything else: a kernel of its own


InferFn = Callable[[tuple[TensorType, ...], Attrs], tuple[TensorType, ...]]


@dataclass(frozen=True)
class OpDef:
    """The record of one primitive.

    `infer(in_types, attrs)` returns the output types or raises ShapeError/DtypeError;
    `impl(*arrays, **attrs)` computes the outputs with numpy (one array, or a tuple
    when the op has several outputs). `num_inputs` is None for variadic ops.
    `optional` holds attributes a node may leave out, with their default (the text IR
    then shows none: matmul's transpose flags appear only where a pass set them).
    """

    name: str
    attrs: tuple[str, ...]
    infer: InferFn
    impl: Callable[..., Any]
    kind: Kind
    num_inputs: int | None
    differentiable: bool = True
    doc: str = ""
    optional: tuple[tuple[str, Any], ...] = ()

    def __call__(self, *arrays: np.ndarray, **attrs: Any):
        return self.impl(*arrays, **attrs)


OPS: dict[str, OpDef] = {}


def register(op: OpDef) -> OpDef:
    if op.name in OPS:
        raise ValueError(f"primitive {op.name} registered twice")
    OPS[op.name] = op
    return op


def get(name: str) -> OpDef:
    return OPS[name]


def infer_types(name: str, in_types: tuple[TensorType, ...],
                attrs: Attrs) -> tuple[TensorType, ...]:
    """Apply `name`'s shape/dtype rule, checking the number of inputs and attrs."""
    from graphc.errors import GraphcError

    op = OPS[name]
    if op.num_inputs is not None and len(in_types) != op.num_inputs:
        raise GraphcError(f"{name} takes {op.num_inputs} inputs, got {len(in_types)}")
    missing = set(op.attrs) - set(attrs)
    extra = set(attrs) - set(op.attrs) - {name for name, _ in op.optional}
    if missing or extra:
        raise GraphcError(f"{name}: attributes {sorted(attrs)} do not match {list(op.attrs)}")
    return tuple(op.infer(tuple(in_types), attrs))


# The families register themselves on import; order is irrelevant.
from graphc.ops import elementwise, reduction, shape, linalg  # noqa: E402,F401

ELEMENTWISE_OPS = frozenset(n for n, o in OPS.items() if o.kind is Kind.ELEMENTWISE)
