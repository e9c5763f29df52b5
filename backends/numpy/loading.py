"""From generated code to a running function: what code generation hands over
(`Rendered`: plain data) and how it is loaded (`bind`: build or find the native
library, make the pools, exec the source).

The split is where the persistent compile cache (graphc/compile_cache.py) cuts: it
stores a `Rendered` as a record (JSON-able fields plus the constants' arrays) and, on a
hit, binds it again without running the passes or the code generator.
"""
from __future__ import annotations

import ctypes
import functools
import itertools
import linecache
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from graphc import ops
from graphc.backends import toolchain
from graphc.backends.records import ints, loc_from, loc_record, need, strings
from graphc.backends.numpy import blas, lowering, runtime, windows
from graphc.errors import IndexingError, SourceLoc

_counter = itertools.count()


@dataclass
class Executable:
    """A compiled graph: `fn(*flat_inputs) -> tuple of outputs`, and its source."""

    name: str
    source: str
    fn: Callable[..., tuple]
    filename: str
    native_source: str = ""  # the C of its native kernels, if any (also in `source`)
    rendered: Rendered | None = None  # what it was bound from (the compile cache keeps it)

    @property
    def kernel_seconds(self) -> list[float] | None:
        """Seconds spent in each group over every call so far, with Options(profile=
        True) (graphc.profile); else None. Indexed by group, as the fusion report."""
        prof = self.fn.__globals__.get("_prof")
        return None if prof is None else list(prof)

    def release(self) -> int:
        """Let its buffer pools drop what they keep between calls (it still runs: a
        later call allocates afresh); the signature cache calls it on eviction."""
        return runtime.release(self.fn.__globals__.values())

    def pool_bytes(self) -> int:
        """Bytes its buffer pools hold now (see runtime.pool_bytes)."""
        return runtime.pool_bytes(self.fn.__globals__.values())


@dataclass
class Rendered:
    """One graph's generated code and what binding it needs, as plain data.

    `source` is the Python module (its function is `fn_name`), `c_source` the C of the
    native kernels named `natives`; `slot_bytes` sizes the planned buffers, `scratch`
    each block kernel's per-thread scratch ((shape, dtype) pairs), `consts` the hoisted
    constants (`_consts[i]` in the source), `locs` the source lines of ops that the
    user's data can make fail. `threads` and `march` are the options' (threads None:
    the runtime's count when a call runs)."""

    name: str
    fn_name: str
    source: str
    c_source: str = ""
    natives: list[str] = field(default_factory=list)
    slot_bytes: list[int] = field(default_factory=list)
    scratch: list[list[tuple[tuple[int, ...], str]]] = field(default_factory=list)
    consts: list[np.ndarray] = field(default_factory=list)
    locs: list[SourceLoc | None] = field(default_factory=list)
    use_native: bool = False
    threads: int | None = None
    march: str = "native"
    profiled: int = 0  # with Options(profile=True): the groups timed (`_prof`'s length)

    def record(self) -> tuple[dict[str, Any], list[np.ndarray]]:
        """The fields as JSON-able data, and the constants' arrays beside them."""
        return ({"name": self.name, "fn_name": self.fn_name, "source": self.source,
                 "c_source": self.c_source, "natives": self.natives,
                 "slot_bytes": self.slot_bytes,
                 "scratch": [[[list(shape), dtype] for shape, dtype in k] for k in self.scratch],
                 "locs": [loc_record(loc) for loc in self.locs],
                 "use_native": self.use_native, "threads": self.threads,
                 "march": self.march, "profiled": self.profiled}, list(self.consts))

    @classmethod
    def from_record(cls, meta: dict[str, Any], arrays: list[np.ndarray]) -> Rendered:
        """The inverse of `record`; raises RecordError where a field is not of its
        kind (the record was read from disk: see graphc/compile_cache.py)."""
        for name in ("name", "fn_name", "source", "c_source", "march"):
            need(isinstance(meta.get(name), str), name)
        need(strings(meta.get("natives")), "natives")
        need(ints(meta.get("slot_bytes")), "slot_bytes")
        need(isinstance(meta.get("use_native"), bool), "use_native")
        need(meta.get("threads") is None or type(meta.get("threads")) is int, "threads")
        need(type(meta.get("profiled")) is int and meta["profiled"] >= 0, "profiled")
        scratch = meta.get("scratch")
        need(isinstance(scratch, list) and all(
            isinstance(k, list) and all(isinstance(s, list) and len(s) == 2 and
                                        ints(s[0]) and isinstance(s[1], str) for s in k)
            for k in scratch), "scratch")
        need(isinstance(meta.get("locs"), list), "locs")
        return cls(meta["name"], meta["fn_name"], meta["source"], meta["c_source"],
                   list(meta["natives"]), list(meta["slot_bytes"]),
                   [[(tuple(shape), dtype) for shape, dtype in k] for k in scratch],
                   list(arrays), [loc_from(loc) for loc in meta["locs"]],
                   meta["use_native"], meta["threads"], meta["march"], meta["profiled"])


def namespace(r: Rendered) -> dict[str, Any]:
    """The objects the source refers to: constants, pools, native kernels (finding or
    building the library runs the C compiler at most once per C source)."""
    bound = {} if r.threads is None else {"threads": r.threads}
    ns = {"np": np, "_consts": r.consts,
          "_run": functools.partial(runtime.run_blocks, **bound) if bound
          else runtime.run_blocks,
          "_view": runtime.view, "_donatable": runtime.donatable,
          "_arena": runtime.arena_pool(r.slot_bytes), "_arenas": runtime.SizedArenas(),
          "_out": runtime.Recycler(), "_locs": r.locs, "_IndexingError": IndexingError}
    if r.profiled:
        ns["_clock"], ns["_prof"] = time.perf_counter, [0.0] * r.profiled
    for i, spec in enumerate(r.scratch):
        fixed = all(type(d) is int for shape, _ in spec for d in shape)
        ns[f"_s{i}"] = runtime.scratch_pool(spec) if fixed else runtime.SizedScratch()
    if r.use_native:  # OpenBLAS's jobs on graphc's pool (blas.py), once per process
        blas.install(runtime.get_num_threads())
    if r.natives:
        ns["_runc"] = functools.partial(runtime.run_native, **bound) if bound \
            else runtime.run_native
        lib = toolchain.build(r.c_source, r.march)
        for name in r.natives:  # the address: runtime.run_native calls it
            ns[name] = ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
    for name in lowering.reference_ops():  # the entries whose Python form calls it
        ns[f"_ref_{name}"] = ops.OPS[name].impl
    for name in ("max_pool2d", "max_pool2d_grad", "max_pool2d_gather", "conv2d",
                 "conv2d_grad_input", "conv2d_grad_weight"):  # C loops
        ns[f"_win_{name}"] = functools.partial(
            getattr(windows, name), native=r.use_native, march=r.march, **bound)
    return ns


def cache_stamp(options) -> str:
    """What decides the code besides graph, options and graphc itself: the C compiler,
    its flags and the CPU (the toolchain's fingerprint), and numpy's version."""
    return "\n".join([np.__version__, toolchain.compiler() or "no compiler",
                      toolchain.fingerprint(options.march)])


def bind(r: Rendered, options=None) -> Executable:
    """`r` loaded: its namespace made, its source compiled under a filename of its own
    (registered with linecache, so that a traceback shows the generated line)."""
    ns = namespace(r)
    filename = f"<graphc-numpy:{r.name}:{next(_counter)}>"
    linecache.cache[filename] = (len(r.source), None, r.source.splitlines(True), filename)
    exec(compile(r.source, filename, "exec"), ns)
    return Executable(r.name, r.source, ns[r.fn_name], filename, r.c_source, r)
