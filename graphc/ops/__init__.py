"""Primitives: one declarative record (`OpDef`) per op, all held in `OPS`.

A record says everything the core knows about an op: its name, the attributes it
takes, its shape/dtype rule, its numpy reference implementation (which is also the
reference interpreter and the constant folder), its kind for fusion, the dtypes it
accepts, how it rounds and where its sample inputs lie. Passes, backends, the fuzzer
and the tests read those facts from here instead of restating them per op. Rules
that belong to a pass or a backend (gradients, lowerings) live in one table in that
pass or backend, keyed by the op name; tests check that every table covers `OPS`.

Adding a primitive is four entries: its record here (`register`), its VJP in
`graphc.passes.autodiff.VJP` (or `differentiable=False`), and one lowering per
backend (`graphc.backends.numpy.lowering.LOWERINGS`). Every table is read at use,
so a record registered late (a test's toy primitive) is seen everywhere.

The records are spread over small modules by family: `elementwise`, `reduction`,
`shape`, `linalg` (matmul, convolution, pooling), `random` (the counter-based
random primitive).
"""
from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from graphc import dtypes as _dtypes
from graphc.ir.types import Attrs, TensorType
from graphc.ops import schema as _schema
from graphc.ops.schema import Attr


class Kind(str, enum.Enum):
    """How fusion treats an op."""

    ELEMENTWISE = "elementwise"  # out[i] depends on in[i] only (with broadcasting)
    REDUCTION = "reduction"      # sum/max/min/argmax over some axes
    SHAPE = "shape"              # moves data without arithmetic
    MATMUL = "matmul"            # goes to BLAS / tl.dot; can take an epilogue
    SOURCE = "source"            # makes data from attributes alone (const, iota)
    OPAQUE = "opaque"            # everything else: a kernel of its own


class Rounding(str, enum.Enum):
    """How far an op's float result may sit from the exact value of its inputs.

    The precision pass turns it into ulps, and the fuzzer feeds values it marks
    inexact only to ops that do not amplify rounding."""

    EXACT = "exact"                    # moves or picks values: reshape, max, abs, where
    HALF_ULP = "half_ulp"              # one correctly rounded step: add, div, sqrt
    TRANSCENDENTAL = "transcendental"  # libm and SIMD approximations, a few ulp apart
    ACCUMULATES = "accumulates"        # sums many terms: sum, matmul, conv2d
    STEP = "step"                      # exact, but jumps where an input crosses a boundary


@dataclass(frozen=True)
class Domain:
    """Where an op's sample inputs lie (op tests, gradient checks, the fuzzer).

    `kind` is "interval" (uniform in [lo, hi]), "positive" (uniform in [lo, hi] with
    lo > 0: the op is singular at or below 0, as log is) or "nonzero" (|x| uniform in
    [lo, hi], either sign: singular at 0, as 1/x is). Near a singularity rounding
    errors blow up, so the fuzzer feeds such inputs only exact values.

    >>> import numpy as np
    >>> x = Domain.nonzero(0.25, 4.0).sample(np.random.default_rng(0), (100,))
    >>> bool(np.all((0.25 <= abs(x)) & (abs(x) <= 4.0)))
    True
    """

    kind: str = "interval"
    lo: float = -3.0
    hi: float = 3.0

    @classmethod
    def interval(cls, lo: float, hi: float) -> "Domain":
        return cls("interval", lo, hi)

    @classmethod
    def positive(cls, lo: float, hi: float) -> "Domain":
        assert lo > 0, "a positive domain keeps away from 0"
        return cls("positive", lo, hi)

    @classmethod
    def nonzero(cls, lo: float, hi: float) -> "Domain":
        return cls("nonzero", lo, hi)

    @property
    def singular(self) -> bool:
        """Whether the op blows up at the domain's edge (log at 0, 1/x at 0)."""
        return self.kind != "interval"

    def sample(self, rng: np.random.Generator, size: tuple[int, ...]) -> np.ndarray:
        """float64 samples, an array of shape `size`, from this domain."""
        if self.kind == "nonzero":
            sign = np.where(rng.random(size) < 0.5, -1.0, 1.0)
            return sign * rng.uniform(self.lo, self.hi, size=size)
        return rng.uniform(self.lo, self.hi, size=size)


ANYWHERE = Domain()  # the default: uniform in [-3, 3]
ALL_DTYPES = frozenset(_dtypes.DTYPES)

InferFn = Callable[[tuple[TensorType, ...], Attrs], tuple[TensorType, ...]]


@dataclass(frozen=True)
class OpDef:
    """The record of one primitive.

    `infer(in_types, attrs)` returns the output types or raises ShapeError/DtypeError;
    `impl(*arrays, **attrs)` computes the outputs with numpy (one array, or a tuple
    when the op has several outputs). `num_inputs` is None for variadic ops.
    `optional` holds attributes a node may leave out, with their default (the text IR
    then shows none: matmul's transpose flags appear only where a pass set them).

    `dtypes` are the dtypes of the (data) inputs it accepts, which `infer` checks;
    `rounding` how it rounds (the default is the cautious one: a few ulp, not
    bit-exact across backends); `domain` where its sample inputs lie, one `Domain`
    for every input or a tuple with one per input (see `domain_of`).

    Every attribute has a schema (`graphc.ops.schema.Attr`): `attrs` is given as a
    dict from name to Attr, and an optional attribute as (name, default, Attr); the
    record keeps the names in `attrs`, the (name, default) pairs in `optional` and
    every (name, Attr) in `schema`, which `check_attrs` applies.

    >>> OPS["sum"].attrs, dict(OPS["sum"].schema)["keepdims"].kind
    (('axes', 'keepdims'), 'bool')
    """

    name: str
    attrs: tuple[str, ...] | Mapping[str, Attr]
    infer: InferFn
    impl: Callable[..., Any]
    kind: Kind
    num_inputs: int | None
    differentiable: bool = True
    doc: str = ""
    optional: tuple[tuple[str, Any], ...] = ()
    dtypes: frozenset[str] = ALL_DTYPES
    rounding: Rounding = Rounding.TRANSCENDENTAL
    domain: Domain | tuple[Domain, ...] = ANYWHERE
    schema: tuple[tuple[str, Attr], ...] = ()

    def __post_init__(self):
        # the declarative forms (a dict of Attrs, optional triples) into plain fields
        schema = dict(self.schema)
        if isinstance(self.attrs, Mapping):
            schema.update(self.attrs)
            object.__setattr__(self, "attrs", tuple(self.attrs))
        pairs = []
        for entry in self.optional:
            pairs.append(tuple(entry[:2]))
            if len(entry) == 3:
                schema[entry[0]] = entry[2]
        object.__setattr__(self, "optional", tuple(pairs))
        object.__setattr__(self, "schema", tuple(schema.items()))

    def domain_of(self, i: int) -> Domain:
        """The sample domain of input `i`."""
        return self.domain[i] if isinstance(self.domain, tuple) else self.domain

    def __call__(self, *arrays: np.ndarray, **attrs: Any):
        return self.impl(*arrays, **attrs)


OPS: dict[str, OpDef] = {}


def register(op: OpDef) -> OpDef:
    if op.name in OPS:
        raise ValueError(f"primitive {op.name} registered twice")
    unchecked = set(op.attrs) | {name for name, _ in op.optional}
    unchecked -= {name for name, _ in op.schema}
    if unchecked:
        raise ValueError(f"primitive {op.name}: attributes {sorted(unchecked)} have no "
                         "schema (give attrs as a dict of graphc.ops.schema.Attr)")
    OPS[op.name] = op
    return op


def unregister(name: str) -> None:
    """Remove a record `register` added (a test's toy primitive, when it is done)."""
    del OPS[name]


def get(name: str) -> OpDef:
    return OPS[name]


def infer_types(name: str, in_types: tuple[TensorType, ...],
                attrs: Attrs) -> tuple[TensorType, ...]:
    """Apply `name`'s shape/dtype rule, checking the number of inputs and attrs."""
    from graphc.errors import GraphcError

    op = OPS[name]
    if op.num_inputs is not None and len(in_types) != op.num_inputs:
        raise GraphcError(f"{name} takes {op.num_inputs} inputs, got {len(in_types)}")
    try:
        check_attrs(name, in_types, attrs)
    except GraphcError as schema_error:
        # where the rule refuses the value too, its words (and its error class) say
        # more: "(0, 0) is not a permutation"; where it crashes on it, the schema's do
        try:
            op.infer(tuple(in_types), attrs)
        except GraphcError as rule_error:
            raise rule_error from None
        except Exception:  # noqa: BLE001 - a string where an int belongs, and so on
            pass
        raise schema_error from None
    return tuple(op.infer(tuple(in_types), attrs))


def check_attrs(name: str, in_types: tuple[TensorType, ...], attrs: Attrs) -> None:
    """Raise a GraphcError unless `attrs` are exactly `name`'s attributes (the optional
    ones may be left out) and each fits its schema; the message names the attribute
    and what it expected.

    >>> from graphc.errors import GraphcError
    >>> try:
    ...     check_attrs("sum", (TensorType((2, 3), "float32"),),
    ...                 Attrs({"axes": (1,), "keepdims": "True"}))
    ... except GraphcError as e:
    ...     print(e.message)
    sum: attribute keepdims='True': expected a bool
    """
    from graphc.errors import GraphcError

    op = OPS[name]
    missing = set(op.attrs) - set(attrs)
    extra = set(attrs) - set(op.attrs) - {name for name, _ in op.optional}
    if missing or extra:
        raise GraphcError(f"{name}: attributes {sorted(attrs)} do not match {list(op.attrs)}")
    wrong = _schema.problems(op.schema, tuple(t.ndim for t in in_types), attrs)
    if wrong is not None:
        raise wrong[2](f"{name}: {wrong[1]}",
                       hint=f"graphc.ops.OPS[{name!r}].schema says what each "
                            "attribute takes")


# The families register themselves on import; order is irrelevant.
from graphc.ops import elementwise, reduction, shape, linalg, random  # noqa: E402,F401

ELEMENTWISE_OPS = frozenset(n for n, o in OPS.items() if o.kind is Kind.ELEMENTWISE)
