"""Dump files: what GRAPHC_DUMP=DIR writes for each compiled function, and the IR file
that reproduces an internal error.

Every compiled function and signature gets its own stem `NAME.N` in the folder: N is
claimed by creating `NAME.N.json` exclusively (O_EXCL), so two lambdas, or two
processes dumping into one folder, never write over each other. The stem's files are
the IR as traced and after each pass, the optimized IR, the fusion report, the
generated source (and its C), the HTML page of graphc/report (`NAME.N.html`), and
`NAME.N.json`, the function's entry in the folder's `index.json` (function, source
file:line, signature, compile time, kernels, files), which is replaced atomically,
under a lock, as functions compile, together with `index.html`, its page.

>>> import graphc, numpy as np, os, tempfile, json
>>> folder = tempfile.mkdtemp()
>>> os.environ["GRAPHC_DUMP"] = folder
>>> _ = graphc.compile(lambda x: x + 1.0)(np.ones(2))
>>> _ = graphc.compile(lambda x: x * 2.0)(np.ones(2))
>>> del os.environ["GRAPHC_DUMP"]
>>> [e["stem"] for e in json.load(open(os.path.join(folder, "index.json")))]
['lambda.0', 'lambda.1']
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import threading
from typing import Any, Callable, Iterator, Sequence

from graphc.errors import SourceLoc
from graphc.ir import Graph

INDEX = "index.json"
_FILE_MODE = 0o600  # dumps hold the user's constants: owner-only
_DIR_MODE = 0o700
_next: dict[tuple[str, str], int] = {}  # where the next claim starts looking
_claim_lock = threading.Lock()


def dump_dir() -> str | None:
    """The folder GRAPHC_DUMP names (created owner-only if new), or None."""
    from graphc.backends import settings
    directory = settings.get("GRAPHC_DUMP")
    if not directory:
        return None
    os.makedirs(directory, mode=_DIR_MODE, exist_ok=True)
    return directory


def claim(directory: str, name: str) -> str:
    """A stem `DIR/NAME.N` that no thread or process has used in `directory`."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "fn"
    with _claim_lock:
        n = _next.get((directory, name), 0)
        while True:
            try:
                fd = os.open(os.path.join(directory, f"{name}.{n}.json"),
                             os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
            except FileExistsError:
                n += 1
                continue
            os.close(fd)
            _next[(directory, name)] = n + 1
            return os.path.join(directory, f"{name}.{n}")


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def write_lowered(fn: Callable, lowered: Any, directory: str | None = None) -> str | None:
    """Dump one compiled signature (a `graphc.Lowered`) into `directory`, or GRAPHC_DUMP's
    where that is None, if set; returns its stem."""
    directory = directory or dump_dir()
    if directory is None:
        return None
    base = claim(directory, lowered.graph.name)
    files = {}
    names = list(lowered.stages)
    for i, name in enumerate(names):
        stem = "traced" if name == "traced" else f"{i:02d}-{name}"
        graph = lowered.stages[name]  # first: a cache hit's stages run the passes then
        took = lowered.pass_seconds.get(name)
        header = f"# {name}" + (" (as traced)" if name == "traced" else
                                "" if took is None else f" (took {took * 1e3:.2f} ms)")
        files[f"{stem}.ir"] = header + "\n" + str(graph) + "\n"
    files["optimized.ir"] = str(lowered.optimized) + "\n"
    files["fusion.txt"] = lowered.fusion_report() + "\n"
    times = ", ".join(f"{stage} {secs * 1e3:.2f} ms" for stage, secs in
                      lowered.stage_seconds.items())
    files["py"] = f"# compile time: {times}\n" + lowered.source
    native = getattr(lowered.executable, "native_source", "")
    if native:  # also inside the .py; on its own, it compiles as it is
        files["c"] = native
    for suffix, text in files.items():
        _write(f"{base}.{suffix}", text)
    entry = _entry(fn, lowered.graph, base, list(files) + ["html"],
                   compile_seconds=lowered.compile_seconds, kernels=lowered.kernels[1],
                   report=os.path.basename(base) + ".html")
    write_page(lowered, base, entry["source"] or "")
    lowered.dump_stem, lowered.dump_where = base, entry["source"] or ""
    _record(base, entry)
    return base


def write_page(lowered: Any, base: str, where: str) -> None:
    """The stem's HTML page (graphc/report)."""
    from graphc.report import write_report
    write_report(lowered, base + ".html", where)


def rewrite_page(lowered: Any) -> None:
    """A dumped signature's page again, with what was learned since (graphc.benchmark's
    timings, graphc.profile's kernel times); nothing where it was not dumped."""
    if lowered.dump_stem is not None:
        write_page(lowered, lowered.dump_stem, lowered.dump_where)


def _entry(fn: Callable | None, graph: Graph, base: str, suffixes: list[str],
           **extra: Any) -> dict:
    from graphc.internal import def_location
    loc = def_location(fn) if fn is not None else None
    stem = os.path.basename(base)
    return {"stem": stem, "function": graph.name,
            "qualname": getattr(fn, "__qualname__", graph.name),
            "source": f"{loc.file}:{loc.line}" if loc else None,
            "signature": [f"%{v.name}: {v.type}" for v in graph.inputs],
            "outputs": [str(v.type) for v in graph.outputs],
            "files": [f"{stem}.{s}" for s in ["json"] + suffixes], **extra}


def _record(base: str, entry: dict) -> None:
    """Write the stem's own entry, then add it to the folder's index.json."""
    _write(base + ".json", json.dumps(entry, indent=1) + "\n")
    directory = os.path.dirname(base)
    with _locked(os.path.join(directory, INDEX + ".lock")):
        path = os.path.join(directory, INDEX)
        try:
            with open(path) as fh:
                index = json.load(fh)
            if not isinstance(index, list):
                index = []
        except (OSError, ValueError):
            index = []
        index = [e for e in index if isinstance(e, dict) and e.get("stem") != entry["stem"]]
        index.append(entry)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".index.", suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(index, fh, indent=1)
            fh.write("\n")
        os.replace(tmp, path)  # a reader sees the old index or the new, never half
        from graphc.report import index_page
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".index.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(index_page(index))
        os.replace(tmp, os.path.join(directory, "index.html"))


@contextlib.contextmanager
def _locked(path: str) -> Iterator[None]:
    """An exclusive lock across processes (flock); threads are serialized too."""
    with _claim_lock:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, _FILE_MODE)
        try:
            try:
                import fcntl
            except ImportError:  # no flock (Windows): the claim still keeps files apart
                fcntl = None
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock


def write_repro(graph: Graph, stage: str, function: str, error: str,
                passes: Sequence[str], loc: SourceLoc | None) -> str:
    """Write the IR that entered a failing stage, with a header that `python -m graphc
    replay` reads (the passes still to run), into GRAPHC_DUMP or a new owner-only
    temporary folder; returns the file's path."""
    directory = dump_dir()
    if directory is None:
        directory = tempfile.mkdtemp(prefix="graphc-")  # 0o700
        base = os.path.join(directory, re.sub(r"[^A-Za-z0-9_.-]", "_", function) or "fn")
    else:
        base = claim(directory, function)
    where = f" ({loc.file}:{loc.line})" if loc else ""
    header = [f"# graphc replay file: the IR as it entered {stage} while compiling "
              f"{function}{where}",
              f"# error: {error.splitlines()[0] if error else ''}",
              f"# stage: {stage}",
              f"# passes: {', '.join(passes)}"]
    path = f"{base}.repro.ir"
    _write(path, "\n".join(header) + "\n" + str(graph) + "\n")
    if directory == os.path.dirname(base) and os.path.exists(base + ".json"):
        _record(base, _entry(None, graph, base, ["repro.ir"], failed=stage,
                             source=f"{loc.file}:{loc.line}" if loc else None))
    return path


def read_header(text: str) -> dict[str, str]:
    """The `# key: value` lines that head a replay file."""
    fields = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        key, sep, value = line[1:].partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields
