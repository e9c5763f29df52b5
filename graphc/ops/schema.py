"""Attribute schemas: what each attribute of a primitive may hold.

A graph text is data from someone else, and its attributes reach the reference
implementations, the passes and the code generators. Every attribute of every
primitive therefore has one declarative `Attr` in its op's record: its kind (a key
of `KINDS`), the range of its ints, and the length of its tuples, which may be tied
to the rank of the op's first input (`RANK`) or to the length of another attribute
(`of="shape"`: iota's axis ranges over its own shape). `problem` says what is wrong
with a value, or None; `Graph.verify`, the parser and `infer_types` all ask it, so
that no rule, pass or backend ever sees a string where an int belongs.

>>> AXES.expects(3)
'sorted distinct ints in 0..2 (the rank is 3)'
>>> BOOL.problem("True, dtype=None", 0)
'expected a bool'
>>> SHAPE.problem((2, -1), None)
'expected non-negative ints whose product fits in int64'
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from graphc import dtypes
from graphc.errors import DtypeError, GraphcError, ShapeError
from graphc.ir.symbols import Sym
from graphc.ir.types import ArrayLiteral

INT64_MIN, INT64_MAX = -2**63, 2**63 - 1
RANK = "rank"  # a tuple's length: the rank (of the first input, or of `of`)
_SHOWN = 60    # characters of a rejected value an error message quotes


@dataclass(frozen=True)
class Attr:
    """The schema of one attribute (see the module docstring).

    `lo`/`hi` bound ints (inclusive; ints are int64 unless narrower); `length` is a
    tuple's length (an int, RANK, or None: any); `of` says whose rank RANK and axis
    ranges mean: "input" (the first input's) or the name of a tuple attribute;
    `nonzero` refuses 0 (slice steps); `choices` are the dtypes a dtype may be.
    """

    kind: str
    lo: int = INT64_MIN
    hi: int = INT64_MAX
    length: int | str | None = None
    of: str = "input"
    nonzero: bool = False
    choices: frozenset[str] = frozenset(dtypes.DTYPES)

    def problem(self, value: Any, rank: int | None) -> str | None:
        """What is wrong with `value` ("expected ..." and, where it helps, why), or
        None when it fits; `rank` is what RANK means here (None: unknown)."""
        check = KINDS[self.kind][0]
        detail = check(self, value, rank)
        if detail is None:
            return None
        expected = f"expected {self.expects(rank)}"
        return f"{detail}; {expected}" if detail else expected

    def expects(self, rank: int | None) -> str:
        """The values this attribute takes, in words."""
        return KINDS[self.kind][1](self, rank)

    def rank_in(self, in_ranks: tuple[int, ...], attrs) -> int | None:
        """The rank RANK and axes refer to, given the inputs' ranks and the attrs."""
        if self.of == "input":
            return in_ranks[0] if in_ranks else None
        other = attrs.get(self.of)
        return len(other) if type(other) is tuple else None


def show(value: Any) -> str:
    """A rejected value as an error message quotes it: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN - 3] + "..."


# ---- the kinds: (check, expects) per kind --------------------------------------------
# check(attr, value, rank) -> None when the value fits, "" or a reason when it does not

def _is_int(v: Any) -> bool:
    return type(v) is int


def _int_ok(attr: Attr, v: Any) -> bool:
    if type(v) is Sym:  # a symbolic size fits unless its bounds say it cannot
        lo, hi = v.bounds()
        return not attr.nonzero and (hi is None or hi >= attr.lo) and \
            (lo is None or lo <= attr.hi)
    return _is_int(v) and attr.lo <= v <= attr.hi and not (attr.nonzero and v == 0)


def _range_words(attr: Attr) -> str:
    if attr.lo == INT64_MIN and attr.hi == INT64_MAX:
        words = "int64"
    elif attr.hi == INT64_MAX:
        words = f">= {attr.lo}" if attr.lo != 0 else "non-negative"
    else:
        words = f"in {attr.lo}..{attr.hi}"
    return words + (", nonzero" if attr.nonzero else "")


def _length_ok(attr: Attr, v: Any, rank: int | None) -> bool:
    if type(v) is not tuple:
        return False
    want = rank if attr.length == RANK else attr.length
    return want is None or len(v) == want


def _length_words(attr: Attr, rank: int | None) -> str:
    if attr.length == RANK:
        return f"{rank} (the rank)" if rank is not None else "the rank"
    return str(attr.length)


def _bool(attr, v, rank):
    return None if type(v) is bool else ""


def _int(attr, v, rank):
    return None if _int_ok(attr, v) else ""


def _scalar(attr, v, rank):
    if type(v) in (bool, float) or (_is_int(v) and INT64_MIN <= v <= INT64_MAX):
        return None
    return ""


def _dtype(attr, v, rank):
    return None if type(v) is str and v in attr.choices else ""


def _ints(attr, v, rank):
    ok = _length_ok(attr, v, rank) and all(_int_ok(attr, x) for x in v)
    return None if ok else ""


def _pairs(attr, v, rank):
    ok = _length_ok(attr, v, rank) and all(
        type(p) is tuple and len(p) == 2 and all(_int_ok(attr, x) for x in p) for p in v)
    return None if ok else ""


def _shape(attr, v, rank):
    if not (_length_ok(attr, v, rank) and all(_int_ok(Attr("int", lo=0), d) for d in v)):
        return ""
    size = math.prod(v)
    return None if type(size) is Sym or size <= INT64_MAX else f"{size} elements do not fit"


def _axis_detail(a: Any, rank: int | None) -> str | None:
    if not _is_int(a):
        return ""
    if rank is not None and not 0 <= a < rank:
        return f"axis {a} is out of range for an array of rank {rank}"
    return None


def _axis(attr, v, rank):
    return _axis_detail(v, rank)


def _axes(attr, v, rank):
    if type(v) is not tuple:
        return ""
    for a in v:
        detail = _axis_detail(a, rank)
        if detail is not None:
            return detail
    return None if list(v) == sorted(set(v)) else "the axes repeat or are out of order"


def _perm(attr, v, rank):
    if type(v) is not tuple or not all(_is_int(p) for p in v):
        return ""
    return None if rank is None or sorted(v) == list(range(rank)) else ""


def _literal(attr, v, rank):
    if type(v) is not ArrayLiteral:
        return ""
    return None if v.array.dtype.name in dtypes.DTYPES else f"dtype {v.array.dtype} is unknown"


def _ranged(words: str) -> Callable[[Attr, int | None], str]:
    def expects(attr: Attr, rank: int | None) -> str:
        span = f"0..{rank - 1} (the rank is {rank})" if rank is not None else "range"
        return words.format(span=span, length=_length_words(attr, rank),
                            range=_range_words(attr))
    return expects


# kind -> (check, expects, the error a bad value raises: a shape or axis attribute
# that does not fit is a ShapeError, as the rules' own checks raise)
KINDS: dict[str, tuple[Callable, Callable[[Attr, int | None], str], type]] = {
    "bool": (_bool, lambda a, r: "a bool", GraphcError),
    "int": (_int, lambda a, r: f"an int {_range_words(a)}", GraphcError),
    "scalar": (_scalar, lambda a, r: "a number (bool, int64 or float)", GraphcError),
    "dtype": (_dtype, lambda a, r: "one of " + ", ".join(sorted(a.choices)), DtypeError),
    "ints": (_ints, _ranged("{length} ints, each {range}"), ShapeError),
    "pairs": (_pairs, _ranged("{length} (low, high) pairs of ints, each {range}"),
              ShapeError),
    "shape": (_shape, lambda a, r: ("" if a.length is None else f"{_length_words(a, r)} ")
              + "non-negative ints whose product fits in int64", ShapeError),
    "axis": (_axis, _ranged("an int in {span}"), ShapeError),
    "axes": (_axes, _ranged("sorted distinct ints in {span}"), ShapeError),
    "perm": (_perm, _ranged("a permutation of the axes {span}"), ShapeError),
    "literal": (_literal, lambda a, r: "an array literal of a known dtype", DtypeError),
}

# the schemas the records share
BOOL = Attr("bool")
AXIS = Attr("axis")
AXES = Attr("axes")
PERM = Attr("perm")
SHAPE = Attr("shape")
DTYPE = Attr("dtype")
SCALAR = Attr("scalar")
LITERAL = Attr("literal")
POSITIVE_PAIR = Attr("ints", lo=1, length=2)
NON_NEGATIVE_PAIR = Attr("ints", lo=0, length=2)


def problems(schema, in_ranks: tuple[int, ...], attrs) -> tuple[str, str, type] | None:
    """The first attribute of `attrs` that breaks `schema` (name -> Attr pairs), as
    (name, what is wrong, the error class to raise), or None; names the schema lacks
    are not checked here (`check_attrs` refuses them)."""
    for name, attr in schema:
        if name not in attrs:
            continue
        wrong = attr.problem(attrs[name], attr.rank_in(in_ranks, attrs))
        if wrong is not None:
            return name, f"attribute {name}={show(attrs[name])}: {wrong}", KINDS[attr.kind][2]
    return None


