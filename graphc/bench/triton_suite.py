"""The kernel suite on the Triton backend: `python -m graphc bench --backend triton`.

Each workload of graphc/bench/workloads.py (its numpy function, its arguments) runs on
one device as graphc's Triton backend, torch eager and `torch.compile` (the functions of
peers_torch.py), every result checked against eager numpy first. The arguments are put
on the device once, and graphc's lowered program (`Lowered(*flat_inputs)`) is called on
them, so that a call moves no data between host and device. (A numpy function is traced
on numpy arrays, and a `graphc.compile`d one given CUDA tensors would take the torch
frontend; so graphc's time here leaves out the signature-cache lookup of a call, a few
microseconds.)

Timing: as the numpy suite, implementations interleaved round-robin, the median of
`repeats` samples, a sample repeating a fast call for about 2 ms; here the device is
synchronised before and after each sample, so a sample is the wall time of its calls
with all their work done. Reported per workload: milliseconds, graphc's speedup over
each peer, achieved bandwidth (bytes in + bytes out over graphc's time, GB/s, and as a
share of the device's copy bandwidth) for the memory-bound workloads, TFLOP/s (from the
matmuls in the optimized graph) for the workloads with matmuls, and the first call
(graphc: trace, passes, codegen, Triton's compile, tuning and one run; torch.compile:
its compile and one run). On a GPU the memory-bound workloads run at `LARGE` sizes, so
that a kernel lasts long enough to measure bandwidth.

A workload graphc refuses with a user-facing GraphcError (an op the backend lacks) is
listed as skipped with the reason; an internal error or a wrong result is a FAIL.

Without a GPU the suite cannot run, and says so, except under `TRITON_INTERPRET=1`,
where it runs a smoke version on the CPU (--quick sizes, one repeat) so that the tests
check it end to end; those times say nothing about a GPU.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from graphc.bench.measure import MIN_SAMPLE_SECONDS, copy_bandwidth, mismatch, nbytes
from graphc.bench.report import _columns
from graphc.bench.runner import ImplResult, Progress, _reason
from graphc.bench.workloads import WORKLOADS, Workload, describe_args
from graphc.errors import GraphcError, GraphcInternalError

PEERS = ("torch", "torch.compile")


def _normal(rng: np.random.Generator, *shape: int, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape, dtype=np.float32) * np.float32(scale))


def _large_layernorm(rng: np.random.Generator) -> tuple:
    rows, cols = 32768, 1024
    return (_normal(rng, rows, cols), 1.0 + _normal(rng, cols, scale=0.1),
            _normal(rng, cols, scale=0.1))


# the memory-bound workloads at GPU sizes: 16x their full size, 128-256 MB an array,
# ~50-100 us a pass at an H100's bandwidth (the full sizes take a few microseconds,
# which launch overhead would swamp). The others run at their full sizes.
LARGE: dict[str, Callable[[np.random.Generator], tuple]] = {
    "gelu": lambda rng: (_normal(rng, 67_108_864),),
    "chain": lambda rng: (_normal(rng, 67_108_864),),
    "softmax": lambda rng: (_normal(rng, 32768, 1024),),
    "layernorm": _large_layernorm,
}


@dataclass
class Device:
    """Where the suite runs: 'cuda', or 'cpu' under the interpreter."""

    kind: str
    description: str
    copy_bandwidth: float  # bytes per second a device-to-device copy moves (read + write)
    sync: Callable[[], None] = field(repr=False, default=lambda: None)

    @property
    def interpreted(self) -> bool:
        return self.kind == "cpu"


def unavailable() -> str | None:
    """Why the suite cannot run here (None when it can).

    >>> unavailable() is None or "GPU" in unavailable() or "needs" in unavailable()
    True
    """
    missing = [m for m in ("torch", "triton") if importlib.util.find_spec(m) is None]
    if missing:
        return (f"needs {' and '.join(missing)} (pip install torch triton); "
                "`python -m graphc bench` runs the numpy suite without them")
    if _interpreting():
        return None
    import torch
    if not torch.cuda.is_available():
        return ("found no CUDA GPU (torch.cuda.is_available() is False): the Triton "
                "suite times kernels on a GPU. Run it on a machine with one, or set "
                "TRITON_INTERPRET=1 for a smoke run in Triton's interpreter on the CPU "
                "(tiny sizes, times meaningless), or run the numpy suite (no --backend)")
    return None


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "yes", "on")


def open_device(quick: bool) -> Device:
    """The device, its name and its measured copy bandwidth."""
    import torch
    if _interpreting():
        return Device("cpu", "Triton interpreter on the CPU (TRITON_INTERPRET=1)",
                      copy_bandwidth(32))
    sync = torch.cuda.synchronize
    src = torch.empty((32 if quick else 512) * 2**20 // 4, device="cuda")
    dst = torch.empty_like(src)
    dst.copy_(src)
    seconds = min(_timed(lambda: dst.copy_(src), 5, sync) for _ in range(3))
    props = torch.cuda.get_device_properties(0)
    return Device("cuda", f"{props.name} ({props.total_memory / 2**30:.0f} GiB)",
                  2 * src.numel() * 4 / seconds, sync)


# ---- timing ----------------------------------------------------------------------------

def _timed(fn: Callable[[], Any], number: int, sync: Callable[[], None]) -> float:
    sync()
    start = time.perf_counter()
    for _ in range(number):
        fn()
    sync()
    return (time.perf_counter() - start) / number


def device_medians(fns: Sequence[Callable[[], Any]], repeats: int,
                   sync: Callable[[], None], warmup: int = 2) -> list[float]:
    """Median seconds per call of each thunk, round-robin, the device synchronised
    around each sample (not each call: calls queue on the device as a user's do).

    >>> a, b = device_medians([lambda: None, lambda: sum(range(1000))], 3, lambda: None)
    >>> 0 < a < b
    True
    """
    for fn in fns:
        for _ in range(warmup):
            fn()
    numbers = [max(1, math.ceil(MIN_SAMPLE_SECONDS / max(_timed(fn, 1, sync), 1e-9)))
               for fn in fns]
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(max(1, repeats)):
        for fn, number, times in zip(fns, numbers, samples):
            times.append(_timed(fn, number, sync))
    return [float(np.median(times)) for times in samples]


# ---- one workload ----------------------------------------------------------------------

@dataclass
class TritonRow:
    """One workload: "ok" (graphc timed), "skipped" or "FAIL", with `reason`; `impls`
    maps "graphc", "torch", "torch.compile" to their results (first call as compile)."""

    name: str
    what: str
    size: str
    memory_bound: bool
    bytes_moved: int
    status: str = "ok"
    reason: str = ""
    flops: int = 0
    kernels: tuple[int, int] | None = None
    impls: dict[str, ImplResult] = field(default_factory=dict)

    def seconds(self, impl: str) -> float | None:
        r = self.impls.get(impl)
        return r.seconds if r is not None and r.status == "ok" else None

    def speedup(self, over: str) -> float | None:
        """graphc's speedup over `over` (above 1: graphc is faster)."""
        ours, theirs = self.seconds("graphc"), self.seconds(over)
        return theirs / ours if ours and theirs else None

    def bandwidth(self) -> float | None:
        """graphc's achieved bytes per second, for a memory-bound workload."""
        ours = self.seconds("graphc")
        return self.bytes_moved / ours if self.memory_bound and ours else None

    def flop_rate(self) -> float | None:
        ours = self.seconds("graphc")
        return self.flops / ours if self.flops and not self.memory_bound and ours else None


def matmul_flops(graph) -> int:
    """2 M N K summed over the graph's matmuls (batched: times the batch).

    >>> import graphc
    >>> g = graphc.trace(lambda a, b: a @ b, np.ones((2, 3, 4), np.float32),
    ...                  np.ones((4, 5), np.float32))
    >>> matmul_flops(g)
    240
    """
    total = 0
    for node in graph.nodes:
        if node.op == "matmul":
            a = node.inputs[0].type
            k = a.shape[-2] if node.attrs.get("transpose_a", False) else a.shape[-1]
            total += 2 * k * math.prod(node.outputs[0].type.shape)
    return total


def _on_device(x: Any, device: str):
    import torch
    if isinstance(x, (np.ndarray, np.generic)):
        return torch.from_numpy(np.array(x)).to(device)
    return x


def _first_call(thunk: Callable[[], Any], sync: Callable[[], None]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = thunk()
    sync()
    return out, time.perf_counter() - start


def _graphc(w: Workload, args: tuple, device: Device, row: TritonRow, want: Any
            ) -> Callable[[], Any] | None:
    """graphc's thunk on device tensors, after checking it; None when skipped or FAIL
    (said in `row`)."""
    from graphc.api import compile as graphc_compile
    from graphc.frontend.trace import signature
    fn = w.graphc_fn or w.fn
    try:
        lowered = graphc_compile(fn, backend="triton", check=False).lower(*args)
    except GraphcInternalError as exc:
        row.status, row.reason = "FAIL", _reason(exc)
        return None
    except GraphcError as exc:  # the backend lacks something the workload needs
        row.status, row.reason = "skipped", _reason(exc)
        return None
    except Exception as exc:
        row.status, row.reason = "FAIL", _reason(exc)
        return None
    row.kernels, row.flops = tuple(lowered.kernels), matmul_flops(lowered.optimized)
    (_, keys), leaves = signature(args, {})
    flat = [_on_device(leaf, device.kind) for leaf, key in zip(leaves, keys)
            if key[0] == "array"]
    try:
        outs, first = _first_call(lambda: lowered(*flat), device.sync)
        why = mismatch(lowered.traced.rebuild(list(outs)), want)
        why = why and f"graphc differs from eager numpy: {why}"
    except Exception as exc:
        why = f"graphc's first call raised {_reason(exc)}"
    if why:
        row.status, row.reason = "FAIL", why
        row.impls["graphc"] = ImplResult("FAIL", reason=why)
        return None
    # the first call as a user pays it: graphc's compile, then Triton's compile,
    # tuning and one run
    row.impls["graphc"] = ImplResult("ok", compile_seconds=first + lowered.compile_seconds)
    return lambda: lowered(*flat)


def _torch_peers(w: Workload, args: tuple, device: Device, row: TritonRow, want: Any,
                 peers: Iterable[str]) -> dict[str, Callable[[], Any]]:
    """The peers' thunks on device tensors, each checked; the others' results in `row`."""
    try:
        from graphc.bench import peers_torch
        peers_torch.setup()
    except Exception as exc:
        for impl in peers:
            row.impls[impl] = ImplResult("n/a", reason=f"torch failed to load "
                                                       f"({_reason(exc)})")
        return {}
    fn = peers_torch.TORCH[w.fn.__name__]
    targs = tuple(_on_device(a, device.kind) for a in args)
    thunks: dict[str, Callable[[], Any]] = {}
    for impl in peers:
        try:
            call = fn if impl == "torch" else peers_torch.torch.compile(fn)
            got, first = _first_call(lambda: call(*targs), device.sync)
        except Exception as exc:  # a peer that cannot run here is n/a, not a FAIL
            row.impls[impl] = ImplResult("n/a", reason=_reason(exc))
            continue
        why = mismatch(got, want)
        if why:
            row.impls[impl] = ImplResult("FAIL", reason=f"differs from eager numpy: {why}")
            continue
        row.impls[impl] = ImplResult("ok", compile_seconds=first if impl != "torch"
                                     else None)
        thunks[impl] = lambda call=call: call(*targs)
    return thunks


def run_workload(w: Workload, device: Device, quick: bool, repeats: int,
                 peers: Iterable[str] = PEERS,
                 progress: Callable[[str], None] = lambda step: None) -> TritonRow:
    """Check graphc and the peers against eager numpy on `device`, then time them."""
    make = LARGE.get(w.name) if device.kind == "cuda" and not quick else None
    args = make(np.random.default_rng(0)) if make else w.args(quick)
    progress("eager numpy")
    want = w.fn(*args)
    row = TritonRow(w.name, w.what, describe_args(args), w.memory_bound,
                    nbytes(args) + nbytes(want))
    progress("compiling graphc")
    ours = _graphc(w, args, device, row, want)
    if ours is None:
        return row
    progress("checking peers")
    thunks = {"graphc": ours, **_torch_peers(w, args, device, row, want, peers)}
    progress("timing " + ", ".join(thunks))
    medians = device_medians(list(thunks.values()), repeats, device.sync,
                             warmup=1 if device.interpreted else 2)
    for impl, seconds in zip(thunks, medians):
        row.impls[impl].seconds = seconds
    return row


def run_triton_suite(names: Iterable[str] | None = None, quick: bool = False,
                     repeats: int = 10, peers: Iterable[str] = PEERS, stream=None,
                     device: Device | None = None) -> list[TritonRow]:
    """Run the named workloads (all by default) on the GPU, or in the interpreter."""
    names, peers = list(names or WORKLOADS), list(peers)
    device = device or open_device(quick)
    quick = quick or device.interpreted  # full sizes would take the interpreter hours
    progress = Progress(len(names), stream)
    rows = []
    for i, name in enumerate(names, 1):
        rows.append(run_workload(WORKLOADS[name], device, quick, repeats, peers,
                                 lambda step, i=i, name=name: progress.update(i, name, step)))
    progress.done()
    return rows


# ---- the report ------------------------------------------------------------------------

def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1e3
    return f"{ms:.4f}" if ms < 0.1 else f"{ms:.3f}" if ms < 10 else f"{ms:.1f}"


def _cell(row: TritonRow, impl: str) -> str:
    if row.status == "skipped":
        return "skipped"
    r = row.impls.get(impl)
    if r is None:
        return "FAIL" if impl == "graphc" else "-"
    return r.status if r.status != "ok" else _ms(r.seconds)


def format_table(rows: Sequence[TritonRow], device: Device,
                 peers: Sequence[str] = PEERS) -> str:
    """Times, speedups, bandwidth (and its share of the copy bandwidth), TFLOP/s."""
    head = (["workload", "graphc ms"] + [f"{p} ms" for p in peers]
            + [f"vs {p}" for p in peers] + ["GB/s", "% copy", "TFLOP/s", "kernels", "size"])
    body = []
    for row in rows:
        bw, rate = row.bandwidth(), row.flop_rate()
        body.append(
            [row.name, _cell(row, "graphc")] + [_cell(row, p) for p in peers]
            + [f"{s:.2f}x" if (s := row.speedup(p)) else "-" for p in peers]
            + [f"{bw / 1e9:.4g}" if bw else "-",
               f"{100 * bw / device.copy_bandwidth:.0f}%" if bw else "-",
               f"{rate / 1e12:.3g}" if rate else "-",
               f"{row.kernels[0]} -> {row.kernels[1]}" if row.kernels else "-", row.size])
    return _columns(head, body)


def format_first_calls(rows: Sequence[TritonRow], peers: Sequence[str] = PEERS) -> str:
    impls = ["graphc"] + [p for p in peers if p != "torch"]
    body = [[row.name] + [_ms(r.compile_seconds) if (r := row.impls.get(i)) and
                          r.compile_seconds is not None else "-" for i in impls]
            for row in rows]
    return _columns(["first call ms"] + impls, body)


def format_notes(rows: Sequence[TritonRow]) -> str:
    """Every skipped or failed workload, and every peer that is n/a or FAIL, with why."""
    lines = [f"{row.name} {row.status}: {row.reason}" for row in rows
             if row.status != "ok"]
    lines += [f"{row.name}: {impl} {r.status}: {r.reason}" for row in rows
              for impl, r in row.impls.items() if impl != "graphc" and r.status != "ok"]
    return "\n".join(lines)


LEGEND = ("vs X: graphc's speedup over X (above 1: graphc is faster); GB/s: bytes in + "
          "bytes out over graphc's time,\nfor the memory-bound workloads, and as a share of "
          "the device's copy bandwidth; TFLOP/s: the optimized\ngraph's matmuls (2 M N K "
          "each) over graphc's time; kernels: before -> after fusion; first call:\ngraphc's "
          "trace, passes, codegen, Triton compile, tuning and one run; torch.compile's "
          "compile and one run")


def write_json(path: str, rows: Sequence[TritonRow], device: Device,
               config: dict[str, Any]) -> None:
    data = {"device": {"kind": device.kind, "description": device.description,
                       "copy_bandwidth_gb_s": device.copy_bandwidth / 1e9},
            "config": config,
            "workloads": [{**asdict(row), "bandwidth_gb_s": (row.bandwidth() or 0) / 1e9,
                           "tflops": (row.flop_rate() or 0) / 1e12} for row in rows]}
    with open(path, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")


def command(names: list[str], quick: bool, repeats: int | None, peers: Sequence[str],
            json_path: str | None = None) -> int:
    """`python -m graphc bench --backend triton`: 0 when every workload ran or was
    skipped, 1 when any FAILed, 2 when the suite cannot run here."""
    why = unavailable()
    if why:
        print(f"graphc bench --backend triton: {why}", file=sys.stderr)
        return 2
    device = open_device(quick)
    if device.interpreted:
        quick, repeats = True, repeats or 1  # the interpreter: a smoke run, not a benchmark
    repeats = repeats or (5 if quick else 10)
    peers = list(PEERS) if "torch" in peers else []  # jax has no peer on this suite
    rows = run_triton_suite(names, quick, repeats, peers, device=device)
    sizes = "quick (tiny) sizes" if quick else "full sizes, memory-bound workloads at LARGE"
    print(f"graphc bench --backend triton on {device.description}: {sizes}, median of "
          f"{repeats} interleaved sample{'s' * (repeats != 1)}, copy bandwidth "
          f"{device.copy_bandwidth / 1e9:.1f} GB/s")
    if device.interpreted:
        print("(a smoke run in Triton's interpreter: these times say nothing about a GPU)")
    print("\n" + format_table(rows, device, peers) + "\n\n" + LEGEND + "\n")
    print(format_first_calls(rows, peers))
    notes = format_notes(rows)
    if notes:
        print("\n" + notes)
    if json_path:
        write_json(json_path, rows, device, {"quick": quick, "repeats": repeats,
                                             "peers": peers, "workloads": names})
    return 1 if any(row.status == "FAIL" or any(r.status == "FAIL" for r in
                                                row.impls.values()) for row in rows) else 0
