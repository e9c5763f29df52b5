"""Checks on records read back from disk: a persistent compile cache entry's fields
(graphc/compile_cache.py) are JSON that a crash or another writer may have left in any
shape, so each backend's `from_record` asks these before it builds anything.

>>> strings(["a", "b"]), ints([1, True]), loc_from([__file__, 3, "f"]).line
(True, False, 3)
"""
from __future__ import annotations

from typing import Any

from graphc.errors import SourceLoc


class RecordError(ValueError):
    """A record's field is not what graphc writes."""


def need(ok: bool, what: str) -> None:
    if not ok:
        raise RecordError(f"field {what} is not what graphc writes")


def strings(x: Any) -> bool:
    return isinstance(x, list) and all(isinstance(s, str) for s in x)


def ints(x: Any) -> bool:
    return isinstance(x, list) and all(type(i) is int for i in x)


def loc_record(loc: SourceLoc | None) -> list | None:
    return None if loc is None else [loc.file, loc.line, loc.func]


def loc_from(record: Any) -> SourceLoc | None:
    """The SourceLoc of `loc_record`'s output; RecordError for anything else."""
    if record is None:
        return None
    need(isinstance(record, list) and len(record) == 3 and isinstance(record[0], str)
         and type(record[1]) is int and isinstance(record[2], str), "locs")
    return SourceLoc(*record)
