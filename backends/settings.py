"""graphc's environment settings: one table, one reader, one warning for a bad value.

Every `GRAPHC_*` variable is declared once in `SETTINGS` (its kind, accepted values,
default and what it does) and read with `get(name)`. A value outside what the setting
accepts warns once per variable and value (`SettingWarning`, naming the accepted
values) and the default is used instead: a typo such as `GRAPHC_CHECK=ture` must not
silently mean "off", nor `GRAPHC_NUM_THREADS=abc` end in a bare ValueError.

The table lives in `backends/` (not in the face) because backends read settings too
and may import only the core and passes; `graphc` re-exports `SettingWarning`.

>>> import os
>>> os.environ["GRAPHC_FASTCALL"] = "Off"
>>> get("GRAPHC_FASTCALL")
False
>>> del os.environ["GRAPHC_FASTCALL"]
>>> get("GRAPHC_FASTCALL")
True
"""
from __future__ import annotations

import contextlib
import os
import sys
import warnings
from dataclasses import dataclass
from typing import Any

from graphc.errors import is_compiler_file

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class SettingWarning(RuntimeWarning):
    """A GRAPHC_* environment variable has a value graphc does not accept; the
    setting's default is used instead (the message names the accepted values)."""


@dataclass(frozen=True)
class Setting:
    """One environment variable: `kind` is "bool", "int" (within [low, high]),
    "choice" (one of `choices`), "choices" (a comma-separated subset of `choices`)
    or "path" (any non-empty text)."""

    name: str
    kind: str
    default: Any
    doc: str
    low: int | None = None
    high: int | None = None
    choices: tuple[str, ...] = ()

    def parse(self, raw: str) -> Any:
        """The value `raw` stands for, or raise ValueError naming what is accepted."""
        text = raw.strip()
        if self.kind == "path":
            return text
        if self.kind == "bool":
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
        elif self.kind == "int":
            try:
                value = int(text)
            except ValueError:
                value = None
            if value is not None and (self.low is None or value >= self.low) and \
                    (self.high is None or value <= self.high):
                return value
        elif self.kind == "choice":
            if text.lower() in self.choices:
                return text.lower()
        elif self.kind == "choices":
            picked = frozenset(p.strip().lower() for p in text.split(",") if p.strip())
            if picked <= frozenset(self.choices):
                return picked
        raise ValueError(self.accepted())

    def accepted(self) -> str:
        if self.kind == "bool":
            return "1/0, true/false, yes/no, on/off (any case)"
        if self.kind == "int":
            high = "" if self.high is None else f" and at most {self.high}"
            return f"an integer at least {self.low}{high}"
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "choices":
            return "a comma-separated list of " + ", ".join(self.choices)
        return "a path"


_MIB = 1 << 20

# The defaults live here, so that the README's table can be checked against this one;
# the modules that use them say why they are what they are (SMALL_GROUP in codegen,
# BLOCK_ELEMENTS in kernels, the pool budget in runtime).
SETTINGS: dict[str, Setting] = {s.name: s for s in (
    Setting("GRAPHC_CHECK", "bool", False,
            "check mode for every compiled function (as `compile(check=True)`)"),
    Setting("GRAPHC_PROGRESS", "bool", True,
            "a one-line status of a compile past 2 s, on a terminal"),
    Setting("GRAPHC_VERIFY", "bool", False,
            "verify the graph after every pass, not only the final one"),
    Setting("GRAPHC_LOG", "choices", frozenset(), "what to log to stderr",
            choices=("recompiles", "cache")),
    Setting("GRAPHC_CACHE", "bool", True,
            "the persistent compile cache (a second process skips passes and codegen)"),
    Setting("GRAPHC_DUMP", "path", "", "folder to write IR, source and reports into"),
    Setting("GRAPHC_FASTCALL", "bool", True, "the C call fast path of compiled functions"),
    Setting("GRAPHC_NATIVE", "bool", True, "native (C) kernels, where a C compiler is found"),
    Setting("GRAPHC_SMALL_GROUP", "int", 1 << 15,
            "groups of at most this many elements run as plain numpy calls", low=0),
    Setting("GRAPHC_BLOCK_ELEMENTS", "int", 131072,
            "elements of the widest value in one block of a fused kernel", low=1),
    Setting("GRAPHC_NUM_THREADS", "int", 0,
            "threads running one fused kernel (0: the core count)", low=0, high=4096),
    Setting("GRAPHC_BLAS_POOL", "bool", True,
            "OpenBLAS's parallel jobs run on graphc's thread pool, whose threads sleep "
            "200 us after a job, not on OpenBLAS's, which spin 0.1 s (backends/numpy/blas.py)"),
    Setting("GRAPHC_CACHE_DIR", "path", "",
            "where graphc's disk caches live, used as given (default ~/.cache/graphc)"),
    Setting("GRAPHC_CACHE_MAX_MB", "int", 1024, "megabytes all disk caches may hold; "
            "past it the least recently used entries are deleted (0: no limit)", low=0),
    Setting("GRAPHC_MARCH", "choice", "native", "the -march target of native kernels",
            choices=("native", "x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4")),
    Setting("GRAPHC_POOL_BYTES", "int", 256 * _MIB,
            "bytes the buffer pools of all compiled functions keep between calls", low=0),
    Setting("GRAPHC_CACHE_ENTRIES", "int", 64,
            "signatures one compiled function keeps compiled (0: no limit)", low=0),
)}

_parsed: dict[str, tuple[str | None, Any]] = {}  # name -> (raw text, its value)
_warned: set[tuple[str, str]] = set()


def get(name: str) -> Any:
    """The value of setting `name` now: its environment variable parsed, or the
    default where it is unset, empty or not accepted (which warns once per value).
    Cheap enough to call per compile (a dict lookup past `os.environ.get`)."""
    raw = os.environ.get(name)
    seen = _parsed.get(name)
    if seen is not None and seen[0] == raw:
        return seen[1]
    setting = SETTINGS[name]
    value = setting.default
    if raw is not None and raw.strip():
        try:
            value = setting.parse(raw)
        except ValueError as exc:
            _warn(setting, raw, str(exc))
    _parsed[name] = (raw, value)
    return value


@contextlib.contextmanager
def overridden(name: str, raw: str):
    """Setting `name` reads `raw` inside the block (its environment variable set, for
    this process and the processes it starts), and what it was after."""
    SETTINGS[name].parse(raw)  # a value the setting takes, or ValueError
    old = os.environ.get(name)
    os.environ[name] = raw
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def _warn(setting: Setting, raw: str, accepted: str) -> None:
    if (setting.name, raw) in _warned:
        return
    _warned.add((setting.name, raw))
    warnings.warn(f"graphc: {setting.name}={raw!r} is not accepted ({setting.doc}); "
                  f"using the default {_shown(setting.default)!r}. Accepted values: "
                  f"{accepted}", SettingWarning, stacklevel=_user_level())


def _shown(value: Any) -> Any:
    return ",".join(sorted(value)) if isinstance(value, frozenset) else value


def _user_level() -> int:
    """The stacklevel of the first frame outside graphc, so that the warning names the
    user's call that first read the setting."""
    frame, level = sys._getframe(2), 2  # 2: get, which called _warn
    while frame is not None:
        name = frame.f_code.co_filename
        bootstrap = "importlib" in name and "_bootstrap" in name  # warnings skips these
        if not (bootstrap or is_compiler_file(name)):
            break
        frame, level = frame.f_back, level + (not bootstrap)
    return level


def markdown_rows() -> str:
    """The README's table rows, one per setting: name, accepted values, default, doc."""
    rows = []
    for s in SETTINGS.values():
        default = _shown(s.default)
        rows.append(f"| `{s.name}` | {s.accepted()} | `{default!s}` | {s.doc} |")
    return "\n".join(rows)
