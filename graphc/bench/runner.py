"""Runs the suite: every workload through every implementation, checked, then timed.

>>> from graphc.bench.runner import run_suite
>>> rows = run_suite(["tiny"], quick=True, repeats=2, peers=(), bandwidth=1e10)
>>> row = rows[0]
>>> row.check, sorted(row.impls), row.impls["graphc"].status
('pass', ['graphc', 'numpy'], 'ok')
"""
from __future__ import annotations

import importlib
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

import numpy as np

from graphc.api import compile as graphc_compile
from graphc.bench.measure import interleaved_medians, mismatch, nbytes
from graphc.bench.workloads import WORKLOADS, Workload, describe_args

PEER_IMPLS = {"torch": ("torch", "torch best", "torch.compile"), "jax": ("jax.jit",)}
# graphc's implementations: as compiled, and with the workload's donated arguments
# (each has its own copies of them, which every timed call updates in place)
OUR_IMPLS = ("graphc", "graphc donated")


@dataclass
class ImplResult:
    """One implementation of one workload: "ok" (timed), "n/a" or "FAIL", with why."""

    status: str
    seconds: float | None = None
    compile_seconds: float | None = None
    reason: str = ""


@dataclass
class Row:
    """One workload's results; `impls` maps "numpy", "graphc", "torch", ... to each."""

    name: str
    what: str
    size: str
    memory_bound: bool
    bytes_moved: int
    floor_seconds: float | None
    kernels: tuple[int, int] | None
    impls: dict[str, ImplResult] = field(default_factory=dict)

    @property
    def check(self) -> str:
        return "FAIL" if any(r.status == "FAIL" for r in self.impls.values()) else "pass"

    def seconds(self, impl: str) -> float | None:
        r = self.impls.get(impl)
        return r.seconds if r is not None and r.status == "ok" else None

    @property
    def best_peer(self) -> str | None:
        return self._fastest([n for n in self.impls
                              if n != "numpy" and n not in OUR_IMPLS])

    @property
    def best_graphc(self) -> str | None:
        """graphc's fastest implementation (donated where the workload donates)."""
        return self._fastest([n for n in self.impls if n in OUR_IMPLS])

    def _fastest(self, names: list[str]) -> str | None:
        timed = [(self.seconds(name), name) for name in names if self.seconds(name)]
        return min(timed)[1] if timed else None

    def speedup(self, over: str | None) -> float | None:
        """graphc's (best) speedup over the implementation `over` (None if either is
        missing)."""
        best = self.best_graphc
        ours, theirs = self.seconds(best) if best else None, self.seconds(over) if over else None
        return theirs / ours if ours and theirs else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["kernels"] = (dict(zip(("before", "after"), self.kernels)) if self.kernels
                        else None)
        d.update(check=self.check, best_peer=self.best_peer,
                 speedup_vs_numpy=self.speedup("numpy"),
                 speedup_vs_best_peer=self.speedup(self.best_peer))
        return d


class Progress:
    """A progress line on stderr: rewritten in place on a terminal, else one a workload."""

    def __init__(self, total: int, stream=None):
        self.total, self.stream = total, stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.shown = -1  # the last workload given a line of its own (not on a terminal)

    def update(self, index: int, name: str, step: str) -> None:
        if self.tty:
            self.stream.write(f"\r\033[Kbench [{index}/{self.total}] {name}: {step}")
        elif index != self.shown:
            self.shown = index
            self.stream.write(f"bench [{index}/{self.total}] {name}\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _reason(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {first[0][:160]}" if first else type(exc).__name__


@dataclass
class _Candidate:
    """An implementation ready to check and time: a thunk calling it on the arguments."""

    thunk: Callable[[], Any]
    compile_seconds: float | None = None  # measured apart (graphc's fresh lowering)
    compiles_on_first_call: bool = False  # torch.compile, jax.jit: the first call is timed


def _peer_candidates(peer: str, w: Workload, args: tuple) -> dict[str, Any]:
    """Implementation name -> _Candidate, or ImplResult("n/a") when it cannot run here."""
    try:
        module = importlib.import_module(f"graphc.bench.peers_{peer}")
        module.setup()
    except Exception as exc:
        why = "is not installed" if isinstance(exc, ImportError) else "failed to load"
        return {impl: ImplResult("n/a", reason=f"{peer} {why} ({_reason(exc)})")
                for impl in PEER_IMPLS[peer]}
    if peer == "torch":
        fn, targs = module.TORCH[w.fn.__name__], module.to_torch(args)
        out: dict[str, Any] = {"torch": _Candidate(lambda: fn(*targs))}
        best = module.BEST.get(w.fn.__name__)
        if best is not None:  # torch's own fastest form of the workload (fused Adam)
            out["torch best"] = _Candidate(best(*targs))
        try:
            compiled = module.torch.compile(fn)
            out["torch.compile"] = _Candidate(lambda: compiled(*targs),
                                              compiles_on_first_call=True)
        except Exception as exc:  # e.g. dynamo does not support this Python
            out["torch.compile"] = ImplResult("n/a", reason=_reason(exc))
        return out
    fn, jargs = module.JAX[w.fn.__name__], module.to_jax(args)
    jitted = module.jit(fn, args)
    return {"jax.jit": _Candidate(lambda: jitted(*jargs), compiles_on_first_call=True)}


def _graphc_candidate(w: Workload, args: tuple, row: Row) -> dict[str, Any]:
    """graphc's candidate, its compile time that of a fresh lowering; kernels into `row`."""
    compiled = graphc_compile(w.graphc_fn or w.fn, check=False)
    try:
        lowered = compiled.lower(*args)
        seconds = lowered.compile_seconds  # trace + passes + codegen, not first imports
        row.kernels = tuple(lowered.kernels)
    except Exception as exc:  # a graphc failure is a FAIL, never a crash of the suite
        return {"graphc": ImplResult("FAIL", reason=_reason(exc))}
    out = {"graphc": _Candidate(lambda: compiled(*args), compile_seconds=seconds)}
    if w.donate:
        donated = graphc_compile(w.graphc_fn or w.fn, check=False, donate_argnums=w.donate)
        own = tuple(np.array(a, copy=True) if i in w.donate else a
                    for i, a in enumerate(args))
        out["graphc donated"] = _Candidate(lambda: donated(*own), compile_seconds=seconds)
    return out


def _check(impl: str, cand: _Candidate, want: Any) -> ImplResult:
    """Call the candidate once and compare with eager numpy's result."""
    try:
        start = time.perf_counter()
        got = cand.thunk()
        first = time.perf_counter() - start
    except Exception as exc:
        return ImplResult("FAIL" if impl == "graphc" else "n/a", reason=_reason(exc))
    seconds = first if cand.compiles_on_first_call else cand.compile_seconds
    why = mismatch(got, want)
    if why:
        return ImplResult("FAIL", compile_seconds=seconds,
                          reason=f"differs from eager numpy: {why}")
    return ImplResult("ok", compile_seconds=seconds)


def run_workload(w: Workload, quick: bool, repeats: int, peers: Iterable[str],
                 bandwidth: float, progress: Callable[[str], None] = lambda step: None
                 ) -> Row:
    """Check every implementation of `w` against eager numpy, then time them together."""
    args = w.args(quick)
    progress("checking")
    want = w.fn(*args)
    moved = nbytes(args) + nbytes(want)
    row = Row(w.name, w.what, describe_args(args), w.memory_bound, moved,
              moved / bandwidth if w.memory_bound else None, None)
    row.impls["numpy"] = ImplResult("ok")
    thunks: dict[str, Callable[[], Any]] = {"numpy": lambda: w.fn(*args)}

    progress("compiling graphc")
    candidates = _graphc_candidate(w, args, row)
    for peer in peers:
        candidates.update(_peer_candidates(peer, w, args))
    for impl, cand in candidates.items():
        if isinstance(cand, ImplResult):
            row.impls[impl] = cand
            continue
        progress(f"compiling {impl}" if cand.compiles_on_first_call else f"checking {impl}")
        row.impls[impl] = _check(impl, cand, want)
        if row.impls[impl].status == "ok":
            thunks[impl] = cand.thunk

    if w.matmuls is not None:
        thunks[_MATMULS] = lambda: w.matmuls(*args)
    progress("timing " + ", ".join(thunks))
    for impl, seconds in zip(thunks, interleaved_medians(list(thunks.values()), repeats)):
        if impl == _MATMULS:
            row.floor_seconds = seconds
        else:
            row.impls[impl].seconds = seconds
    return row


_MATMULS = "matmuls alone"


def _add_one(x):
    return x + 1.0


def warm_up(peers: Iterable[str]) -> None:
    """Pay the one-time costs (imports, compiler start-up) before the first workload, so
    that its compile time is its own."""
    graphc_compile(_add_one, check=False)(np.ones(4, np.float32))
    for peer in peers:
        try:
            module = importlib.import_module(f"graphc.bench.peers_{peer}")
            module.setup()
            module.warm_up(_add_one)
        except Exception:  # the workloads will say what is wrong
            pass


def run_suite(names: Iterable[str] | None = None, quick: bool = False, repeats: int = 10,
              peers: Iterable[str] = ("torch", "jax"), bandwidth: float | None = None,
              stream=None) -> list[Row]:
    """Run the named workloads (all by default); progress goes to `stream` (stderr)."""
    from graphc.bench.measure import copy_bandwidth
    names, peers = list(names or WORKLOADS), list(peers)
    progress = Progress(len(names), stream)
    if bandwidth is None:
        progress.update(0, "copy bandwidth", "measuring")
        bandwidth = copy_bandwidth(32 if quick else 256)
    progress.update(0, "compilers", "warming up")
    warm_up(peers)
    rows = []
    for i, name in enumerate(names, 1):
        rows.append(run_workload(WORKLOADS[name], quick, repeats, peers, bandwidth,
                                 lambda step, i=i, name=name: progress.update(i, name, step)))
    progress.done()
    return rows
