"""Compile time against graph size: `python -m graphc bench --suite compile`.

The residual chain `h = tanh(h @ w) * 0.5 + h` of N layers (four traced ops a layer),
compiled on its first call, forward and `value_and_grad`, by graphc (each stage's
seconds, from `Lowered.stage_seconds`, and seconds per traced forward node) and by
`jax.jit` where jax is installed. Compile time should grow linearly with N: the
growth column is each row's time per node over the first row's. For cold compiles
(the C compiler included) run it with an empty cache:
`GRAPHC_CACHE_DIR=$(mktemp -d) python -m graphc bench --suite compile`.

>>> rows = run([20], peers=False, out=None)
>>> rows[0]["layers"], rows[0]["forward_nodes"] > 0
(20, True)
"""
from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

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
    return out


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


def run(layers=LAYERS, peers: bool = True, out=sys.stdout) -> list[dict[str, Any]]:
    """Measure every chain length; print the table to `out` (None: print nothing)."""
    rows = []
    for n in layers:
        row = {"layers": n, **_graphc(n)}
        row["jax"] = _jax(n) if peers else None
        rows.append(row)
    if out is not None:
        print(table(rows), file=out)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table (times in seconds, per node in ms)."""
    head = ("| layers (forward nodes) | graphc forward (trace / passes / codegen) | "
            "graphc value_and_grad | ms per node (vg) | growth per node (vg) | "
            "jax.jit forward | jax.jit value_and_grad |")
    lines = [head, "| " + " | ".join(["---"] * 7) + " |"]
    base = rows[0]["value_and_grad"] / rows[0]["forward_nodes"] if rows else 1.0
    for r in rows:
        st = r["forward_stages"]
        per = r["value_and_grad"] / r["forward_nodes"]
        jax = r.get("jax") or {}
        lines.append(
            f"| {r['layers']} ({r['forward_nodes']}) | {r['forward']:.2f} s "
            f"({st.get('trace', 0):.2f} / {st.get('passes', 0):.2f} / "
            f"{st.get('codegen', 0):.2f}) | {r['value_and_grad']:.2f} s | "
            f"{1e3 * per:.2f} | {per / base:.2f}x | "
            + (f"{jax['forward']:.2f} s | {jax['value_and_grad']:.2f} s |" if jax
               else "- | - |"))
    return "\n".join(lines)
