"""The compile report of a Triton compile (graphc/report): each kernel's section holds
its `@triton.jit` kernel, its launch wrapper and the program's line that calls it."""
import os
import re

import numpy as np
import pytest

pytest.importorskip("triton")
os.environ.setdefault("TRITON_INTERPRET", "1")
pytest.importorskip("torch")

import graphc  # noqa: E402
from graphc.report import render, sections  # noqa: E402


def layer(x, w, b):
    h = np.maximum(x @ w + b, 0.0)
    return np.sum(h, axis=1) * 0.5, np.tanh(h) - 1.0


def test_each_triton_kernel_is_in_its_groups_section(monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE", "0")
    rng = np.random.default_rng(0)
    low = graphc.compile(layer, backend="triton").lower(
        rng.standard_normal((16, 8), np.float32), rng.standard_normal((8, 8), np.float32),
        np.ones(8, np.float32))
    code = sections.kernel_code(low.source, low.optimized)
    for gi, group in enumerate(low.optimized.groups):
        if group.kind == "source":
            continue
        lines = code[gi]
        assert "@triton.jit" in lines and any(ln.startswith(f"def k{gi}_") for ln in lines)
        assert any(ln.startswith(f"def launch_k{gi}_") for ln in lines)
        assert any(f"= launch_k{gi}_" in ln for ln in lines)  # the program's call
    # every line of every kernel's body is in some section (a signature over several
    # lines closes with `):` in column 0, which once ended the kernel there)
    stores = [ln for ln in low.source.splitlines() if "tl.store(" in ln]
    shown = [ln for lines in code.values() for ln in lines if "tl.store(" in ln]
    assert stores and sorted(stores) == sorted(shown)
    text = render(low)
    assert re.search(r'class="code-line linked" data-node="[^"]+">\s*tl\.store\(', text)
    assert text.count('<details class="kernel"') == sum(
        g.kind != "source" for g in low.optimized.groups)
    assert "backend</th><td>triton" in text
