"""The persistent compile cache: a second process skips the passes and the code
generator for a graph it has compiled before (as Inductor's FX graph cache and jax's
persistent compilation cache do).

The key, after tracing, is a SHA-256 of everything that decides the result:

- the traced graph's text (ops, attributes, constants' values, names, the user's
  lines) and the full path and function of every line it names;
- the backend, the resolved options (`graphc.Options`, every field), the pass
  pipeline (each default pass by name, the fusion policy bound to it);
- graphc itself (a digest of its source files, so an edit is a new key), Python's
  and the backend's own stamp (`cache_stamp`: numpy's version, the C compiler, its
  flags and the CPU; triton's and torch's versions and the interpreter).

A pipeline holding a pass of the user's own is never cached (its code cannot be
named in a key), nor is a compile that fell back from what its options asked (C that
did not build). An entry holds the optimized graph's text, the fusion notes and the
backend's `Rendered` record (generated source, constants, buffer sizes): a hit binds
that (the native library comes from the toolchain's cache, built again if evicted)
and parses the optimized graph only when something asks for it; `Lowered.stages`
runs the passes again the first time a stage before the last is asked for.

Entries live in the "compile" folder of backends/diskcache.py and follow its rules:
owner-only, written atomically, sealed (SHA-256) and checked before use, capped by
GRAPHC_CACHE_MAX_MB with the other caches, shown and cleared by
`python -m graphc cache`. An entry that is not intact or does not load is deleted
(a CacheWarning names it) and compiled again. GRAPHC_CACHE=0 turns the cache off;
GRAPHC_LOG=cache logs each compile's hit or miss; `Lowered.cache` says which.

>>> import os, tempfile, numpy as np, graphc
>>> os.environ["GRAPHC_CACHE_DIR"] = tempfile.mkdtemp()
>>> def f(x):
...     return np.tanh(x) * 2.0
>>> graphc.compile(f).lower(np.ones(3, np.float32)).cache
'miss'
>>> low = graphc.compile(f).lower(np.ones(3, np.float32))  # as in a second process
>>> low.cache, low.stage_seconds["passes"], low.stage_seconds["codegen"]
('hit', 0.0, 0.0)
>>> del os.environ["GRAPHC_CACHE_DIR"]
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import struct
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from graphc.backends import diskcache, settings
from graphc.errors import GraphcError
from graphc.ir import Graph

CACHE = "compile"  # the folder under diskcache.root(), a row of diskcache.CACHES
_FORMAT = b"graphc compile cache entry 1\n"
_LENGTH = struct.Struct("<Q")
_ARRAY_KINDS = frozenset("biuf")  # the dtypes a constant may have (bool, ints, floats)

log = logging.getLogger("graphc")


@functools.lru_cache(maxsize=1)
def graphc_digest() -> str:
    """A digest of graphc's own source (every .py and .c file of its packages): any edit
    is a new key, which a version number alone would not give during development."""
    import graphc
    h = hashlib.sha256(graphc.__version__.encode())
    for name, path in source_files():
        h.update(name.encode() + b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()


def source_files() -> list[tuple[str, Path]]:
    """(package-relative name, path) of graphc's .py and .c files. The packages are
    folders of their own in a checkout (frontend/, passes/, backends/ beside graphc/),
    and under graphc/ in an installed wheel: each is walked, each file counted once."""
    import importlib
    found: dict[Path, str] = {}
    for package in ("graphc", "graphc.frontend", "graphc.passes", "graphc.backends"):
        root = Path(importlib.import_module(package).__file__).resolve().parent
        for suffix in ("*.py", "*.c"):
            for path in root.rglob(suffix):
                if "__pycache__" not in path.parts:
                    found.setdefault(path, f"{package}/{path.relative_to(root)}")
    return sorted(((name, path) for path, name in found.items()), key=lambda e: e[0])


def key(graph: Graph, backend, options, pipeline: list) -> tuple[str | None, str]:
    """The entry key of compiling `graph`, and why there is none (the status: "off",
    "bypass: ..."), else "" ."""
    from graphc.ir.text import print_graph
    from graphc.passes.pipeline import describe
    if not settings.get("GRAPHC_CACHE"):
        return None, "off"
    if not hasattr(backend, "bind"):
        return None, "bypass: the backend keeps no cache entries"
    passes = describe(pipeline)
    if passes is None:
        return None, "bypass: the pipeline holds a pass of your own"
    h = hashlib.sha256(_FORMAT)
    places = {(n.loc.file, n.loc.line, n.loc.func) for n in graph.nodes if n.loc is not None}
    for part in (graphc_digest(), sys.version, backend.__name__, repr(options), passes,
                 backend.cache_stamp(options), print_graph(graph),
                 repr(sorted(places))):
        h.update(_LENGTH.pack(len(part)) + part.encode("utf-8", "surrogatepass"))
    return h.hexdigest(), ""


def _path(digest: str) -> Path:
    return diskcache.folder(CACHE) / f"c{digest[:40]}.entry"


def load(digest: str, traced, backend, options, pipeline: list):
    """(stages, pass_seconds, executable) from the entry of `digest`, or None (no
    entry, or one that did not load: deleted, compiled again)."""
    try:
        path = _path(digest)
    except OSError as exc:
        diskcache.warn(f"the compile cache is off: {exc}")
        return None
    body = diskcache.read(path)
    if body is None:
        return None
    if body is False:
        diskcache.discard(path, "is not what graphc wrote (truncated or overwritten)")
        return None
    try:
        header, arrays = _read(body, digest)
        rendered = backend.Rendered.from_record(header["rendered"], arrays)
        executable = backend.bind(rendered, options)
    except GraphcError:
        raise  # the user's (no GPU for cuda_graphs=True), as a cold compile says it
    except Exception as exc:  # noqa: BLE001  (whatever a bad entry makes fail: rebuild)
        diskcache.discard(path, f"did not load ({type(exc).__name__}: {exc})")
        return None
    diskcache.touch(path)
    pass_seconds: dict[str, float] = {}
    stages = Stages(traced.graph, pipeline, header["optimized"], header["notes"],
                    pass_seconds)
    return stages, pass_seconds, executable


def store(digest: str, optimized: Graph, rendered) -> None:
    """Write the entry of `digest` (a failure to write warns once: the compile stands)."""
    from graphc.ir.text import print_graph
    meta, arrays = rendered.record()
    arrays = [np.asarray(a, order="C") for a in arrays]  # (ascontiguousarray: 0-d to 1-d)
    if any(a.dtype.kind not in _ARRAY_KINDS for a in arrays):
        return  # a constant numpy cannot store plainly (none that graphc makes today)
    # what the text does not say of a group: fusion's notes and the space it merged over
    notes = [[i, list(g.notes), None if g.space is None else list(g.space)]
             for i, g in enumerate(optimized.groups or ()) if g.notes or g.space is not None]
    header = {"key": digest, "optimized": print_graph(optimized), "notes": notes,
              "rendered": meta,
              "arrays": [[a.dtype.str, list(a.shape)] for a in arrays]}
    head = json.dumps(header).encode()
    data = b"".join([_FORMAT, _LENGTH.pack(len(head)), head, *(a.tobytes() for a in arrays)])
    try:
        path = _path(digest)
        diskcache.write(path, data)
        diskcache.evict_soon(keep=path)  # counting a big cache: not on the compile's time
    except OSError as exc:
        diskcache.warn(f"could not write the compile cache: {exc}")


def _read(body: bytes, digest: str) -> tuple[dict[str, Any], list[np.ndarray]]:
    """The header and arrays of an entry's bytes (its seal checked and cut off);
    ValueError for anything that is not what `store` writes."""
    if not body.startswith(_FORMAT):
        raise ValueError("not a compile cache entry of this format")
    at = len(_FORMAT)
    (size,) = _LENGTH.unpack_from(body, at)
    at += _LENGTH.size
    header = json.loads(body[at:at + size])
    at += size
    if not isinstance(header, dict) or header.get("key") != digest:
        raise ValueError("it is another key's entry")
    if not isinstance(header.get("optimized"), str) or not _notes_ok(header.get("notes")):
        raise ValueError("its graph or notes are not what graphc writes")
    arrays = []
    for spec in header.get("arrays", ()):
        dtype, shape = np.dtype(spec[0]), tuple(spec[1])
        if dtype.kind not in _ARRAY_KINDS or not all(type(d) is int and d >= 0 for d in shape):
            raise ValueError(f"array {spec!r} is not what graphc writes")
        n = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
        if at + n > len(body):
            raise ValueError("its arrays are cut short")
        array = np.frombuffer(body, dtype, int(np.prod(shape, dtype=np.int64)), at)
        array = array.reshape(shape).copy()
        array.flags.writeable = False  # constants: nothing writes them
        arrays.append(array)
        at += n
    if at != len(body):
        raise ValueError("it has bytes past its arrays")
    return header, arrays


def _notes_ok(notes) -> bool:
    return isinstance(notes, list) and all(
        isinstance(n, list) and len(n) == 3 and type(n[0]) is int and
        isinstance(n[1], list) and all(isinstance(s, str) for s in n[1]) and
        (n[2] is None or isinstance(n[2], list) and
         all(type(d) is int and d >= 0 for d in n[2])) for n in notes)


class Stages(Mapping):
    """A hit's `Lowered.stages`: the stage names of the pipeline, the optimized graph
    parsed from the entry when first asked for, and the stages before it computed by
    running the passes again (once) when one of them is asked for."""

    def __init__(self, traced: Graph, pipeline: list, optimized: str, notes: list,
                 pass_seconds: dict[str, float]):
        self._names = ["traced", *(name for name, _ in pipeline)]
        self._traced, self._pipeline = traced, pipeline
        self._text, self._notes = optimized, notes
        self._pass_seconds = pass_seconds
        self._graphs: dict[str, Graph] = {"traced": traced}

    def __getitem__(self, name: str) -> Graph:
        if name not in self._graphs:
            if name not in self._names:
                raise KeyError(name)
            if name == self._names[-1]:
                self._graphs[name] = self._optimized()
            else:
                self._rerun()
        return self._graphs[name]

    def _optimized(self) -> Graph:
        from graphc.ir.text import parse
        graph = parse(self._text)
        for index, lines, space in self._notes:
            if graph.groups is not None and 0 <= index < len(graph.groups):
                group = graph.groups[index]
                group.notes = tuple(lines)
                group.space = None if space is None else tuple(space)
        return graph

    def _rerun(self) -> None:
        from graphc.passes.pipeline import run
        stages = run(self._traced, self._pipeline, verify=False)
        for stage in stages[:-1]:  # the last one: the entry's, already or when asked
            self._graphs.setdefault(stage.name, stage.graph)
        self._pass_seconds.update((stage.name, stage.seconds) for stage in stages)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def report(name: str, status: str, digest: str | None, seconds: float) -> None:
    """GRAPHC_LOG=cache: one line per compile, saying hit, miss, off or bypass."""
    if "cache" not in settings.get("GRAPHC_LOG"):
        return
    from graphc.retrace import log_handler
    log_handler()
    where = f" (entry {digest[:12]})" if digest else ""
    log.warning(f"graphc: compile cache {status} for {name}{where}, {seconds * 1e3:.1f} ms")
