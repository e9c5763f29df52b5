"""Why a compiled function was traced again, said where the user will see it.

With GRAPHC_LOG=recompiles every retrace logs which argument changed; after
RETRACE_WARNING_AT retraces of one function a RecompileWarning says the same once.

>>> from graphc.retrace import explain_retrace
>>> old = ((("leaf",),), (("array", (4,), "float32"),))
>>> class Seen: paths, keys = ["x"], old
>>> text = explain_retrace("f", [Seen], ["x"], (old[0], (("array", (8,), "float32"),)))
>>> print(text[:text.index("  hint")].rstrip())  # then how to avoid it
graphc: recompiling f because:
  x: shape changed from float32[4] to float32[8]
"""
from __future__ import annotations

import logging
import sys
import warnings
from typing import Protocol, Sequence

from graphc.backends import settings

RETRACE_WARNING_AT = 8

log = logging.getLogger("graphc")


class RecompileWarning(UserWarning):
    """A compiled function was traced again many times: see the message for why."""


class Seen(Protocol):
    """What a retrace is compared with: a cached signature's leaf paths and its key."""

    paths: list[str]
    keys: tuple


def report_retrace(name: str, seen: Sequence[Seen], paths: list[str], key: tuple,
                   retraces: int, warned: bool, stacklevel: int,
                   text: str | None = None) -> bool:
    """Log and/or warn that `key` missed the cache after `retraces` retraces, as
    GRAPHC_LOG and RETRACE_WARNING_AT ask; whether the warning has been given now.
    `stacklevel` counts from the caller (warnings.warn's meaning)."""
    want_log = "recompiles" in settings.get("GRAPHC_LOG")
    want_warn = retraces >= RETRACE_WARNING_AT and not warned
    if not (want_log or want_warn):
        return warned
    text = text or explain_retrace(name, seen, paths, key)  # (given: made already)
    if want_log:
        log_handler()
        log.warning(text)
    if want_warn:
        warnings.warn(f"{name} has been traced {retraces + 1} times; each trace compiles "
                      f"it again.\n{text}", RecompileWarning, stacklevel=stacklevel + 1)
    return warned or want_warn


def explain_retrace(name: str, entries: Sequence[Seen], paths: list[str], key: tuple,
                    dynamic: Sequence[str] = ()) -> str:
    """Why `key` missed the cache: the argument that changed, old and new, what to do;
    `dynamic`: the dimensions this trace made symbolic (graphc/dynamic.py), or why it
    could not, which replace the advice to pad."""
    treedef, leaf_keys = key
    same_tree = [e for e in entries if e.keys[0] == treedef]
    if not same_tree:
        old = entries[-1]
        return (f"graphc: recompiling {name}: the structure of the arguments changed "
                f"(leaves {old.paths} -> {paths})\n  hint: call it with the same nesting "
                "of tuples/lists/dicts each time")
    best = min(same_tree, key=lambda e: sum(a != b for a, b in zip(e.keys[1], leaf_keys)))
    lines = [f"graphc: recompiling {name} because:"]
    hints = set()
    for path, old, new in zip(paths, best.keys[1], leaf_keys):
        if old == new:
            continue
        if old[0] == new[0] == "array":
            what = "shape" if old[1] != new[1] else "dtype"
            if old[1] != new[1] and old[2] != new[2]:
                what = "shape and dtype"
            lines.append(f"  {path}: {what} changed from {_spec(old)} to {_spec(new)}")
            hints.add(_PAD)
        elif old[0] == new[0] == "mode":  # ("mode", hint, value): a torch module's train()
            lines.append(f"  {path}: changed from {old[2]!r} to {new[2]!r}")
            hints.add(new[1])
        elif old[0] == new[0] == "static":
            lines.append(f"  {path}: static value changed from {old[2]!r} to {new[2]!r}")
            hints.add("Python numbers are static (each new value compiles again); pass "
                      "a changing number as a numpy array, e.g. np.float32(lr), to make "
                      "it a traced input")
        else:
            lines.append(f"  {path}: changed from {_spec(old)} to {_spec(new)}")
            hints.add("pass the same kind of value (array or Python number) each time")
    symbolic = [d for d in dynamic if "dynamic now" in d]
    if symbolic:  # the new sizes are served from now on: padding is not the advice
        hints.discard(_PAD)
        lines += [f"  {d}" for d in symbolic]
        lines.append("  this trace serves every size of those dimensions")
    lines += [f"  {d}" for d in dynamic if "dynamic now" not in d]
    for h in sorted(hints):
        lines.append(f"  hint: {h}")
    return "\n".join(lines)


_PAD = "pad or bucket inputs to a few fixed shapes, and keep one dtype (cast with " \
    ".astype before the call)"


def _spec(k: tuple) -> str:
    if k[0] == "array":
        return f"{k[2]}{list(k[1])}"
    return f"{k[1]} {k[2]!r}"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (it may be replaced after setup)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def log_handler() -> None:
    # GRAPHC_LOG asks for stderr: other handlers on the logger (the user's, a test
    # runner's) do not replace ours
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.propagate = False
