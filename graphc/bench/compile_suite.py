"""Compile time against graph size: `python -m graphc bench --suite compile`.

The residual chain `h = tanh(h @ w) * 0.5 + h` of N layers (four traced ops a layer),
compiled on its first call, forward and `value_and_grad`, by graphc (each stage's
seconds, from `Lowered.stage_seconds`, and seconds per traced forward node), by
`jax.jit` where jax is installed, and by `torch.compile` (forward, and forward plus
backward, each with an empty Inductor cache) on the chains of at most
TORCH_MAX_LAYERS layers where torch is installed. Compile time should grow linearly with N: the
growth column is each row's time per node over the first row's. The chains compile
with the persistent compile cache off (GRAPHC_CACHE=0, for this process while they
run); the "from the cache" column is a `value_and_grad` compiled once more after one
that stored its entry, as a second process would. For cold compiles (the C compiler
included) run it with an empty cache:
`GRAPHC_CACHE_DIR=$(mktemp -d) python -m graphc bench --suite compile`.

Then the LSTM example's training step (examples/lstm.py, where the checkout has it) in
fresh processes over one fresh cache folder: with every cache empty, again with the
native libraries cached but the compile cache off, and again with the compile cache.

>>> rows = run([20], peers=False, out=None, lstm=False)
>>> rows[0]["layers"], rows[0]["forward_nodes"] > 0
(20, True)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock
from typing import Any

import numpy as np

from graphc.backends import settings

LAYERS = (200, 400, 800, 1600)
QUICK_LAYERS = (50, 100, 200)


def chain(n: int):
    def f(h, w):
        for _ in range(n):
            h = np.tanh(h @ w) * 0.5 + h
        return np.sum(h)
    f.__name__ = f"chain{n}"
    return f


def _inputs():
    return np.full((4, 8), 0.1, np.float32), np.eye(8, dtype=np.float32) * 0.5


def _graphc(n: int) -> dict[str, Any]:
    import graphc
    h, w = _inputs()
    out: dict[str, Any] = {}
    fwd = graphc.compile(chain(n))
    start = time.perf_counter()
    fwd(h, w)
    out["forward"] = time.perf_counter() - start
    low = fwd.lower(h, w)
    out["forward_nodes"] = len(low.graph.nodes)
    out["forward_stages"] = dict(low.stage_seconds)
    vg = graphc.value_and_grad(chain(n), argnums=(0, 1))
    start = time.perf_counter()
    vg(h, w)
    out["value_and_grad"] = time.perf_counter() - start
    out["vg_stages"] = dict(vg.lower(h, w).stage_seconds)  # (the signature compiled above)
    return out


def _from_cache(n: int) -> float:
    """Seconds of a `value_and_grad` compile that finds its entry (stored just before)."""
    import graphc
    h, w = _inputs()
    graphc.value_and_grad(chain(n), argnums=(0, 1)).lower(h, w)
    start = time.perf_counter()
    low = graphc.value_and_grad(chain(n), argnums=(0, 1)).lower(h, w)
    seconds = time.perf_counter() - start
    return seconds if low.cache == "hit" else float("nan")


def _jax(n: int) -> dict[str, float] | None:
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None

    def f(h, w):
        for _ in range(n):
            h = jnp.tanh(h @ w) * 0.5 + h
        return jnp.sum(h)
    h, w = _inputs()
    out = {}
    for name, fn in (("forward", jax.jit(f)),
                     ("value_and_grad", jax.jit(jax.value_and_grad(f, argnums=(0, 1))))):
        start = time.perf_counter()
        jax.block_until_ready(fn(h, w))
        out[name] = time.perf_counter() - start
    return out


# torch.compile takes tens of seconds a chain: it is timed on the chains up to this long
TORCH_MAX_LAYERS = 200


def _torch(n: int) -> dict[str, float] | None:
    """torch.compile's first call of the chain (Dynamo and Inductor, a fresh cache of
    its own): forward, and forward plus backward."""
    try:
        import torch
    except ImportError:
        return None
    import torch._dynamo

    def f(h, w):
        for _ in range(n):
            h = torch.tanh(h @ w) * 0.5 + h
        return torch.sum(h)
    h0, w0 = (torch.from_numpy(a) for a in _inputs())
    out = {}
    with tempfile.TemporaryDirectory() as folder, \
            mock.patch.dict(os.environ, {"TORCHINDUCTOR_CACHE_DIR": folder}):
        # torch.compile's first use in a process loads Inductor (seconds): not the chain's
        torch.compile(lambda a: torch.tanh(a) * 0.5)(h0)
        for name, grad in (("forward", False), ("forward_backward", True)):
            torch._dynamo.reset()
            h, w = h0.clone().requires_grad_(grad), w0.clone().requires_grad_(grad)
            start = time.perf_counter()
            loss = torch.compile(f)(h, w)
            if grad:
                loss.backward()
            out[name] = time.perf_counter() - start
    torch._dynamo.reset()
    return out


def run(layers=LAYERS, peers: bool = True, out=sys.stdout, lstm: bool = True
        ) -> list[dict[str, Any]]:
    """Measure every chain length, and the LSTM example's processes where `lstm` asks
    and the checkout has it; print the tables to `out` (None: print nothing)."""
    rows = []
    for n in layers:
        with settings.overridden("GRAPHC_CACHE", "0"):
            row = {"layers": n, **_graphc(n)}
        row["from_cache"] = _from_cache(n)
        row["jax"] = _jax(n) if peers else None
        row["torch"] = _torch(n) if peers and n <= TORCH_MAX_LAYERS else None
        rows.append(row)
    if out is not None:
        print(table(rows), file=out)
    processes = lstm_processes() if lstm else None
    if out is not None and processes:
        print("\n" + lstm_table(processes), file=out)
    return rows


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
_LSTM_CHILD = """
import json, sys
sys.path.insert(0, {examples!r})
import numpy as np
import lstm
from _common import bias_corrections
rng = np.random.default_rng(0)
params = lstm.init_params(rng)
x = rng.standard_normal((lstm.BATCH, lstm.SEQ, lstm.INPUT), dtype=np.float32)
labels = rng.integers(0, lstm.CLASSES, lstm.BATCH)
low = lstm.train_step.lower(params, params, params, x, labels, *bias_corrections(1))
print(json.dumps({{"cache": low.cache, "stages": low.stage_seconds,
                  "ops": low.kernels[0], "kernels": low.kernels[1]}}))
"""
# (what the process is, GRAPHC_CACHE for it): one after the other, one cache folder
LSTM_RUNS = (("empty caches", "1"), ("native libraries cached, GRAPHC_CACHE=0", "0"),
             ("second process, compile cache", "1"))


def lstm_processes() -> list[dict[str, Any]] | None:
    """The LSTM step's compile in fresh processes (LSTM_RUNS); None without examples/."""
    if not (EXAMPLES / "lstm.py").is_file():
        return None
    code = _LSTM_CHILD.format(examples=str(EXAMPLES))
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for what, cache in LSTM_RUNS:
            env = {**os.environ, "GRAPHC_CACHE_DIR": folder, "GRAPHC_CACHE": cache}
            done = subprocess.run([sys.executable, "-c", code], env=env, text=True,
                                  capture_output=True, timeout=600)
            if done.returncode != 0:
                raise RuntimeError(f"the LSTM compile ({what}) failed:\n{done.stderr}")
            rows.append({"what": what, **json.loads(done.stdout.splitlines()[-1])})
    return rows


def lstm_table(rows: list[dict[str, Any]]) -> str:
    """The LSTM processes as a Markdown table (seconds)."""
    head = (f"| LSTM example's training step ({rows[0]['ops']:,} ops as traced, "
            f"{rows[0]['kernels']} kernels) | cache | trace | passes | codegen | "
            "cache lookup and store/load | compile |")
    lines = [head, "| " + " | ".join(["---"] * 7) + " |"]
    for r in rows:
        st = r["stages"]
        lines.append(f"| {r['what']} | {r['cache']} | " + " | ".join(
            f"{st.get(k, 0.0):.2f} s" for k in ("trace", "passes", "codegen", "cache"))
            + f" | {sum(st.values()):.2f} s |")
    return "\n".join(lines)


def _per_node(row: dict[str, Any], stage: str) -> str:
    seconds = row.get("vg_stages", {}).get(stage)
    return "-" if seconds is None else f"{1e3 * seconds / row['forward_nodes']:.2f}"


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table (times in seconds, per node in ms)."""
    head = ("| layers (forward nodes) | graphc forward (trace / passes / codegen) | "
            "graphc value_and_grad | ms per node (vg: trace / passes / codegen) | "
            "growth per node (vg) | "
            "vg from the cache | jax.jit forward | jax.jit value_and_grad | "
            "torch.compile forward | torch.compile forward+backward |")
    lines = [head, "| " + " | ".join(["---"] * 10) + " |"]
    base = rows[0]["value_and_grad"] / rows[0]["forward_nodes"] if rows else 1.0
    for r in rows:
        st = r["forward_stages"]
        per = r["value_and_grad"] / r["forward_nodes"]
        jax = r.get("jax") or {}
        torch = r.get("torch") or {}
        lines.append(
            f"| {r['layers']} ({r['forward_nodes']}) | {r['forward']:.2f} s "
            f"({st.get('trace', 0):.2f} / {st.get('passes', 0):.2f} / "
            f"{st.get('codegen', 0):.2f}) | {r['value_and_grad']:.2f} s | "
            f"{1e3 * per:.2f} ({_per_node(r, 'trace')} / {_per_node(r, 'passes')} / "
            f"{_per_node(r, 'codegen')}) | {per / base:.2f}x | {r.get('from_cache', float('nan')):.2f} s | "
            + (f"{jax['forward']:.2f} s | {jax['value_and_grad']:.2f} s |" if jax
               else "- | - |")
            + (f" {torch['forward']:.2f} s | {torch['forward_backward']:.2f} s |" if torch
               else " - | - |"))
    return "\n".join(lines)
