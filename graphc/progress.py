"""A one-line status for long compiles: which stage a compile is in, on a terminal.

A compile that runs past `AFTER` seconds shows, on stderr, `graphc: compiling f:
passes (3.1 s)`, rewritten in place as it goes on and erased when it ends (as tqdm
does). Nothing is printed when stderr is not a terminal, or with GRAPHC_PROGRESS=0;
short compiles print nothing at all. A background thread writes the line, so the
compiler itself only records which stage it is in.

>>> import io
>>> out = io.StringIO()
>>> with compiling("f", stream=out, after=0.0, every=0.01) as p:
...     p.stage("passes")
...     time.sleep(0.05)
>>> "graphc: compiling f: passes" in out.getvalue()
True
"""
from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import Iterator, TextIO

AFTER = 2.0   # seconds of compiling before the line appears
EVERY = 0.5   # seconds between updates

_local = threading.local()


class _Line:
    def __init__(self, name: str, stream: TextIO, after: float, every: float):
        self.name, self.stream, self.after, self.every = name, stream, after, every
        self.current = "starting"
        self.start = time.perf_counter()
        self.shown = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def stage(self, name: str) -> None:
        self.current = name

    def _run(self) -> None:
        if self.done.wait(self.after):
            return
        while not self.done.is_set():
            text = (f"graphc: compiling {self.name}: {self.current} "
                    f"({time.perf_counter() - self.start:.1f} s)")
            self.stream.write("\r" + text.ljust(self.shown))
            self.stream.flush()
            self.shown = max(self.shown, len(text))
            self.done.wait(self.every)

    def close(self) -> None:
        self.done.set()
        self.thread.join()
        if self.shown:
            self.stream.write("\r" + " " * self.shown + "\r")
            self.stream.flush()


class _Quiet:
    def stage(self, name: str) -> None:
        pass


def _wanted(stream: TextIO) -> bool:
    from graphc.backends import settings
    if not settings.get("GRAPHC_PROGRESS"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


@contextlib.contextmanager
def compiling(name: str, stream: TextIO | None = None, after: float | None = None,
              every: float | None = None) -> Iterator[object]:
    """The status line of one compile of `name` (nested compiles share the outer
    one's). `stream`: where to write it (default stderr, and only on a terminal)."""
    after = AFTER if after is None else after
    every = EVERY if every is None else every
    outer = getattr(_local, "line", None)
    if outer is not None:
        yield outer
        return
    if stream is None:
        stream = sys.stderr
        line = _Line(name, stream, after, every) if _wanted(stream) else _Quiet()
    else:
        line = _Line(name, stream, after, every)
    _local.line = line
    if isinstance(line, _Line):
        line.thread.start()
    try:
        yield line
    finally:
        _local.line = None
        if isinstance(line, _Line):
            line.close()


def stage(name: str) -> None:
    """Record that the running compile (if any) entered stage `name`."""
    line = getattr(_local, "line", None)
    if line is not None:
        line.stage(name)
