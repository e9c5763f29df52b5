"""`python -m graphc bench --backend triton` (graphc/bench/triton_suite.py): the quick
smoke run under the interpreter end to end, a clear refusal without a GPU, and how a
workload the backend refuses, a wrong result and a peer show. What is reported, never
how fast (and under the interpreter the times mean nothing)."""
import dataclasses
import doctest
import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("triton")
os.environ.setdefault("TRITON_INTERPRET", "1")
torch = pytest.importorskip("torch")

import graphc  # noqa: E402
from graphc.__main__ import main  # noqa: E402
from graphc.bench import triton_suite  # noqa: E402
from graphc.bench.workloads import WORKLOADS  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WITH_MATMULS = ("mlp", "mlp_train", "attention")
interpreted = pytest.mark.skipif(not triton_suite._interpreting(),
                                 reason="checks the interpreter's smoke run")


def _env(**changes):
    env = {k: v for k, v in os.environ.items() if k != "GRAPHC_CHECK"}
    env.update(changes)
    return {k: v for k, v in env.items() if v is not None}


@interpreted
def test_the_quick_interpreted_run_times_or_skips_every_workload(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "graphc", "bench", "--backend", "triton",
                           "--peers", "none", "--json", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env=_env(TRITON_INTERPRET="1"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Triton interpreter" in proc.stdout and "quick (tiny) sizes" in proc.stdout
    table = proc.stdout.split("\n\n")[1].splitlines()
    assert table[0].split()[:3] == ["workload", "graphc", "ms"]
    assert [line.split()[0] for line in table[1:]] == list(WORKLOADS)
    data = json.loads(out.read_text())
    assert data["config"]["quick"] and data["config"]["repeats"] == 1
    assert data["device"]["copy_bandwidth_gb_s"] > 0
    assert [w["name"] for w in data["workloads"]] == list(WORKLOADS)
    for w in data["workloads"]:
        assert w["status"] in ("ok", "skipped"), w
        if w["status"] == "skipped":
            assert w["reason"] and f"{w['name']} skipped: {w['reason']}" in proc.stdout
            continue
        assert w["impls"]["graphc"]["seconds"] > 0
        assert (w["bandwidth_gb_s"] > 0) == w["memory_bound"], w["name"]
        assert (w["tflops"] > 0) == (w["name"] in WITH_MATMULS), w["name"]
        assert w["kernels"][0] >= w["kernels"][1] >= 1


def test_without_a_gpu_it_says_so_and_exits_non_zero():
    proc = subprocess.run([sys.executable, "-m", "graphc", "bench", "--backend", "triton",
                           "--only", "tiny"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env=_env(TRITON_INTERPRET=None, CUDA_VISIBLE_DEVICES=""))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "found no CUDA GPU" in proc.stderr and "TRITON_INTERPRET=1" in proc.stderr
    assert proc.stdout == ""


class _Refusing:
    """graphc.compile as if the backend lacked an op (or, `internal`, had a bug)."""

    def __init__(self, internal: bool):
        self.internal = internal

    def __call__(self, fn, **kwargs):
        return self

    def lower(self, *args):
        if self.internal:
            raise graphc.GraphcInternalError("codegen", RuntimeError("boom"), loc=False)
        raise graphc.GraphcError("the triton backend has no lowering for 'frobnicate'",
                                 loc=False)


@interpreted
def test_a_workload_the_backend_refuses_is_skipped_with_the_reason(monkeypatch, capsys):
    monkeypatch.setattr(graphc.api, "compile", _Refusing(internal=False))
    assert main(["bench", "--backend", "triton", "--peers", "none", "--only",
                 "gelu"]) == 0
    out = capsys.readouterr().out
    assert "gelu skipped: GraphcError: the triton backend has no lowering for" in out
    assert out.split("\n\n")[1].splitlines()[1].split()[:2] == ["gelu", "skipped"]


@interpreted
def test_an_internal_error_or_a_wrong_result_is_a_fail(monkeypatch, capsys):
    monkeypatch.setattr(graphc.api, "compile", _Refusing(internal=True))
    assert main(["bench", "--backend", "triton", "--peers", "none", "--only",
                 "tiny"]) == 1
    assert "tiny FAIL: GraphcInternalError" in capsys.readouterr().out
    monkeypatch.undo()
    wrong = dataclasses.replace(WORKLOADS["tiny"], graphc_fn=lambda x: x + 2.0)
    monkeypatch.setitem(WORKLOADS, "tiny", wrong)
    assert main(["bench", "--backend", "triton", "--peers", "none", "--only",
                 "tiny"]) == 1
    assert "tiny FAIL: graphc differs from eager numpy" in capsys.readouterr().out


@interpreted
def test_the_peers_run_on_the_same_device_and_are_checked():
    (row,) = triton_suite.run_triton_suite(["softmax"], quick=True, repeats=1)
    assert row.status == "ok"
    for impl in ("graphc", "torch", "torch.compile"):
        assert row.impls[impl].status == "ok", row.impls[impl]
        assert row.impls[impl].seconds > 0
    assert row.impls["torch.compile"].compile_seconds > 0  # its first call
    assert row.speedup("torch") > 0 and row.bandwidth() > 0


def test_the_flop_count_is_two_m_n_k_per_matmul():
    w = WORKLOADS["mlp"]
    x, w1, b1, w2, b2 = w.args(quick=True)
    n, d = x.shape
    h = w1.shape[1]
    graph = graphc.trace(w.fn, x, w1, b1, w2, b2)
    assert triton_suite.matmul_flops(graph) == 2 * n * d * h + 2 * n * h * d
    g = graphc.trace(lambda a, b: a.T @ b, np.ones((7, 3), np.float32),
                     np.ones((7, 5), np.float32))
    assert triton_suite.matmul_flops(g) == 2 * 3 * 5 * 7


def test_the_docstring_examples_run():
    result = doctest.testmod(triton_suite)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.skipif(triton_suite._interpreting() or not torch.cuda.is_available(),
                    reason="needs a CUDA GPU, without TRITON_INTERPRET")
def test_on_a_gpu_the_quick_suite_times_graphc_and_both_peers(capsys):
    assert main(["bench", "--backend", "triton", "--quick", "--repeats", "2", "--only",
                 "gelu,mlp,tiny"]) == 0
    out = capsys.readouterr().out
    assert "torch.compile ms" in out and "Triton interpreter" not in out
