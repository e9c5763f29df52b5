"""Variable batch sizes: `python -m graphc bench --suite dynamic`.

The suite's mlp forward (`workloads.mlp`, gelu(x @ W1 + b1) @ W2 + b2) called once per
batch of a sequence of sizes drawn uniformly from 1-512 (a fixed seed), as a server or
the last batch of each epoch feeds it. Each implementation runs the whole sequence
twice: the first pass includes whatever it compiles (graphc: the first call's sizes,
then one symbolic trace for every batch size; `torch.compile(dynamic=True)`: one
symbolic graph; torch.compile's default: a second, dynamic, compile; `jax.jit`: a trace
and an XLA compile per new size; graphc with `dynamic=False`: a trace and codegen per
new size, the compile cache off as for a process that has not met these sizes, the C
libraries read from graphc's native cache where an earlier run built them), the second pass
is steady state. "first / steady" is the ratio of the two passes (the issue asks 1.3 at
most); the steady pass is compared with eager numpy's. An untimed eager pass warms the
machine (BLAS's threads, the batches' pages) before the first timed one. The passes
run one implementation after another, in two rounds, the order reversed in the second
round (a drifting machine then favours none); each pass is timed whole.

Every result of the first pass is checked against eager numpy's for that batch
(float32 through sums of D and H terms): a mismatch marks the row FAIL.

>>> rows = run(quick=True, peers=(), out=None)
>>> [r["name"] for r in rows][:3], all(r["check"] == "ok" for r in rows)
(['numpy (eager)', 'graphc', 'graphc, dynamic=False'], True)
"""
from __future__ import annotations

import sys
import time
import types
import warnings
from typing import Any, Callable

import numpy as np

from graphc.backends import settings
from graphc.bench.workloads import F32, mlp
from graphc.retrace import RecompileWarning

FULL = {"calls": 300, "d": 1024, "h": 4096, "largest": 512}  # the suite's mlp
QUICK = {"calls": 12, "d": 16, "h": 32, "largest": 24}


def batch_sizes(calls: int, largest: int, seed: int = 14) -> list[int]:
    """The sequence of batch sizes: uniform in 1..largest."""
    return [int(n) for n in np.random.default_rng(seed).integers(1, largest + 1, calls)]


def _weights(d: int, h: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    return ((rng.standard_normal((d, h)) * d**-0.5).astype(F32),
            (rng.standard_normal(h) * 0.1).astype(F32),
            (rng.standard_normal((h, d)) * h**-0.5).astype(F32),
            (rng.standard_normal(d) * 0.1).astype(F32))


def _batches(sizes: list[int], d: int) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.standard_normal((n, d)).astype(F32) for n in sizes]


def _graphc(dynamic: bool | None) -> Callable:
    import graphc
    f = graphc.compile(mlp, dynamic=dynamic)
    if dynamic is not False:
        return f

    def uncached(*args):  # a compile per size, none read from an earlier process's cache
        with settings.overridden("GRAPHC_CACHE", "0"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RecompileWarning)  # what this row shows
            return f(*args)
    uncached.compiled = f
    return uncached


def _torch(mode: str | None) -> Callable | None:
    try:
        import torch
    except ImportError:
        return None
    from graphc.bench import peers_torch
    fn = peers_torch.mlp
    if mode is not None:  # a code object of its own: Dynamo keeps its cache per code
        fn = types.FunctionType(fn.__code__.replace(co_name=f"mlp_{mode}"), fn.__globals__,
                                f"mlp_{mode}")
        fn = torch.compile(fn, dynamic=True if mode == "dynamic" else None)

    def call(x, *weights):
        with torch.no_grad():
            return fn(torch.from_numpy(x), *(torch.from_numpy(w) for w in weights)).numpy()
    return call


def _jax() -> Callable | None:
    try:
        import jax
    except ImportError:
        return None

    @jax.jit
    def f(x, w1, b1, w2, b2):
        return jax.nn.gelu(x @ w1 + b1, approximate=True) @ w2 + b2

    def call(x, *weights):
        return np.asarray(jax.block_until_ready(f(x, *weights)))
    call.compiles = f._cache_size  # its traces: one per distinct size
    return call


def implementations(peers: tuple[str, ...]) -> dict[str, Callable | None]:
    """name -> the function a pass calls (None: its library is not installed)."""
    impls: dict[str, Callable | None] = {
        "numpy (eager)": mlp,
        "graphc": _graphc(None),
        "graphc, dynamic=False": _graphc(False)}
    if "torch" in peers:
        impls["torch eager"] = _torch(None)
        impls["torch.compile(dynamic=True)"] = _torch("dynamic")
        impls["torch.compile (default)"] = _torch("automatic")
    if "jax" in peers:
        impls["jax.jit"] = _jax()
    return impls


def _pass(fn: Callable, batches: list[np.ndarray], weights: tuple) -> tuple[float, list]:
    start = time.perf_counter()
    outs = [fn(x, *weights) for x in batches]
    return time.perf_counter() - start, outs


def _check(outs: list, want: list, d: int, h: int) -> str:
    for got, ref in zip(outs, want):
        got = np.asarray(got)
        # float32 sums of d then h products of O(1) terms: a few ulp per term
        atol = 4 * (d + h) * 2.0**-24 * max(1.0, float(np.abs(ref).max()))
        if got.shape != ref.shape or not np.allclose(got, ref, rtol=0, atol=atol):
            return "FAIL"
    return "ok"


def _compiles(name: str, fn: Callable) -> str:
    """How many times it compiled, where the library says."""
    compiled = getattr(fn, "compiled", fn)
    info = getattr(compiled, "cache_info", None)
    if info is not None:
        return str(info().misses)
    return str(fn.compiles()) if hasattr(fn, "compiles") else ""


def run(quick: bool = False, peers: tuple[str, ...] = ("torch", "jax"),
        out=sys.stdout) -> list[dict[str, Any]]:
    """Time every implementation over the batch-size sequence; print the table to
    `out` (None: print nothing); the rows."""
    size = QUICK if quick else FULL
    sizes = batch_sizes(size["calls"], size["largest"])
    weights = _weights(size["d"], size["h"])
    batches = _batches(sizes, size["d"])
    want = [mlp(x, *weights) for x in batches]
    impls = implementations(peers)
    rows = {name: {"name": name, "check": "n/a" if fn is None else "ok", "first": None,
                   "steady": []} for name, fn in impls.items()}
    live = [n for n, fn in impls.items() if fn is not None]
    _pass(mlp, batches, weights)  # untimed: BLAS's threads and the pages warm up first
    for name in live:  # the first pass, with its compiles
        seconds, outs = _pass(impls[name], batches, weights)
        rows[name].update(first=seconds, check=_check(outs, want, size["d"], size["h"]),
                          compiles=_compiles(name, impls[name]))
    for order in (live, live[::-1]):  # steady state, twice, in both orders
        for name in order:
            rows[name]["steady"].append(_pass(impls[name], batches, weights)[0])
    result = []
    for row in rows.values():
        row["steady"] = min(row["steady"]) if row["steady"] else None
        result.append(row)
    if out is not None:
        print(format_table(result, sizes, size), file=out)
    return result


def format_table(rows: list[dict[str, Any]], sizes: list[int], size: dict) -> str:
    eager = next((r["steady"] for r in rows if r["name"] == "numpy (eager)"), None)
    lines = [f"graphc bench --suite dynamic: mlp forward (D={size['d']}, H={size['h']}, "
             f"float32) over {len(sizes)} batches of {len(set(sizes))} distinct sizes in "
             f"1-{size['largest']}; whole passes, seconds",
             "", "| implementation | check | compiles | first pass (s) | steady pass (s) | "
             "first / steady | steady vs numpy |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if r["first"] is None:
            lines.append(f"| {r['name']} | {r['check']} | | | | | |")
            continue
        ratio = r["first"] / r["steady"]
        speed = f"{eager / r['steady']:.2f}x" if eager else ""
        lines.append(f"| {r['name']} | {r['check']} | {r.get('compiles', '')} | "
                     f"{r['first']:.3f} | {r['steady']:.3f} | {ratio:.2f} | {speed} |")
    return "\n".join(lines)
