"""graphc.benchmark and the suite (`python -m graphc bench`): what they report, never
how fast (machines are noisy, so nothing here asserts on a time)."""
import doctest
import importlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import graphc
from graphc.bench import measure
from graphc.bench.runner import run_suite
from graphc.bench.workloads import WORKLOADS
from graphc.benchmark import EAGER_GRAPH
from graphc.ir import Graph

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLE_HEADER = ("eager ms", "compiled ms", "speedup", "kernels before", "kernels after",
                "compile ms")


def gelu(x):
    return 0.5 * x * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x**3)))


def test_benchmark_reports_times_kernels_and_a_table(rng):
    f = graphc.compile(gelu, check=False)
    r = graphc.benchmark(f, rng.standard_normal(256).astype(np.float32), repeats=3, warmup=1)
    assert r.name == "gelu" and r.repeats == 3 and r.warmup == 1
    assert r.eager_seconds > 0 and r.compiled_seconds > 0 and r.compile_seconds > 0
    assert r.speedup == pytest.approx(r.eager_seconds / r.compiled_seconds)
    assert r.kernels_before == 8 and 1 <= r.kernels_after <= r.kernels_before
    assert set(r.stage_seconds) >= {"trace", "passes", "codegen"}
    assert r.notes == []
    text = str(r)
    for column in TABLE_HEADER:
        assert column in text
    d = r.to_dict()
    assert set(d) >= {"name", "eager_seconds", "compiled_seconds", "compile_seconds",
                      "kernels_before", "kernels_after", "speedup", "stage_seconds"}
    json.dumps(d)  # plain values only
    assert f.cache_info().entries == 1  # the fresh lowering refilled the cache


def test_benchmark_compiles_a_plain_function_and_takes_pytrees(rng):
    def step(params, x):
        return {"y": np.tanh(x @ params["w"]), "norm": np.sum(params["w"] ** 2)}

    params = {"w": rng.standard_normal((8, 4)).astype(np.float32)}
    r = graphc.benchmark(step, params, rng.standard_normal((3, 8)).astype(np.float32),
                         repeats=2)
    assert r.name == "step" and r.kernels_before >= 4
    # conftest turns on GRAPHC_CHECK, and a plain function is compiled with the default
    assert any("check mode" in note for note in r.notes)


def test_benchmark_catches_a_wrong_compiled_function():
    def broken(g):  # returns the input instead of the result
        return Graph(g.name, g.inputs, g.nodes, [g.inputs[0]])

    f = graphc.compile(lambda x: np.exp(x) * 2.0, passes=[("broken", broken)], check=False)
    with pytest.raises(graphc.MismatchError, match="differs from eager"):
        graphc.benchmark(f, np.linspace(-1, 1, 16, dtype=np.float32), repeats=1)


def mse(w, x, y):
    return np.mean((np.tanh(x @ w) - y) ** 2)


def sgd_step(w, x, y):  # a new value_and_grad on every call: a Python call retraces
    loss, g = graphc.value_and_grad(mse)(w, x, y)
    return loss, w - 0.1 * g


def _regression(rng):
    return (rng.standard_normal((8, 3)).astype(np.float32),
            rng.standard_normal((32, 8)).astype(np.float32),
            rng.standard_normal((32, 3)).astype(np.float32))


def vjp_step(w, x, y):
    out, back = graphc.vjp(lambda w, x: np.tanh(x @ w), w, x)
    return back(out - y)[0]


@pytest.mark.parametrize("make", [lambda: sgd_step, lambda: graphc.value_and_grad(mse),
                                  lambda: vjp_step])
def test_eager_side_of_a_transformed_function_is_its_graph_not_a_retrace(rng, make):
    from graphc.frontend.trace import traces_started
    f, args = make(), _regression(rng)
    start = traces_started()
    graphc.compile(f).lower(*args)
    one_lowering = traces_started() - start  # the function's trace and its gradient's
    assert one_lowering >= 2
    start = traces_started()
    r = graphc.benchmark(f, *args, repeats=3, warmup=2)
    # one fresh lowering, then warm-up and timed calls of both sides: no more traces
    assert traces_started() - start == one_lowering
    assert r.eager == EAGER_GRAPH == "graph op by op"
    assert "eager (graph op by op) ms" in str(r) and "op by op" in " ".join(r.notes)
    assert r.to_dict()["eager"] == "graph op by op"


def test_eager_side_of_a_plain_function_is_the_python_function(rng):
    calls = []

    def traced_gelu(x):
        calls.append(type(x).__name__)
        return gelu(x)

    r = graphc.benchmark(traced_gelu, rng.standard_normal(64).astype(np.float32),
                         repeats=2, warmup=1)
    assert r.eager == "numpy" and "eager ms" in str(r) and "op by op" not in str(r)
    assert calls.count("ndarray") >= 1 + 1 + 2  # the check, the warm-up, the samples


def test_mismatch_compares_whole_pytrees_with_a_scaled_tolerance():
    x = np.array([1000.0, 1e-3], np.float32)
    assert measure.mismatch((x, {"a": x}), (x, {"a": x})) is None
    # an error small against the array's largest magnitude is fine ...
    assert measure.mismatch(x + np.float32(1e-3), x) is None
    # ... a large one, a dtype change or a shape change is not
    assert "differ" in measure.mismatch(x * 1.01, x)
    assert "dtype" in measure.mismatch(x.astype(np.float64), x)
    assert "shape" in measure.mismatch(x[:1], x)
    assert "outputs" in measure.mismatch((x,), (x, x))
    assert "nested" in measure.mismatch([x, x], (x, x))


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_workloads_compile_and_match_eager_numpy(name):
    w = WORKLOADS[name]
    args = w.args(quick=True)
    got = graphc.compile(w.fn)(*args)  # conftest's check mode also runs the interpreter
    assert measure.mismatch(got, w.fn(*args)) is None
    leaves = measure.flatten(got)[0]
    assert all(np.asarray(leaf).dtype == np.float32 for leaf in leaves)


@pytest.mark.parametrize("name", list(WORKLOADS))
@pytest.mark.parametrize("peer", ["torch", "jax"])
def test_peers_match_eager_numpy(peer, name):
    pytest.importorskip(peer)
    module = importlib.import_module(f"graphc.bench.peers_{peer}")
    table, convert = ((module.TORCH, module.to_torch) if peer == "torch"
                      else (module.JAX, module.to_jax))
    w = WORKLOADS[name]
    args = w.args(quick=True)
    assert measure.mismatch(table[w.fn.__name__](*convert(args)), w.fn(*args)) is None


def test_suite_reports_a_missing_peer_as_na():
    rows = run_suite(["tiny"], quick=True, repeats=1, peers=("jax",), bandwidth=1e10)
    jax = rows[0].impls["jax.jit"]
    assert jax.status in ("ok", "n/a")  # n/a (with the reason) unless jax is installed
    assert jax.status == "ok" or "not installed" in jax.reason
    assert rows[0].check == "pass"


def test_suite_reports_a_failing_torch_compile_as_na(monkeypatch):
    pytest.importorskip("torch")
    from graphc.bench import peers_torch

    def broken_compile(fn):
        def call(*args):
            raise RuntimeError("inductor exploded\nlong traceback")
        return call

    monkeypatch.setattr(peers_torch.torch, "compile", broken_compile)
    row = run_suite(["tiny"], quick=True, repeats=1, peers=("torch",), bandwidth=1e10)[0]
    assert row.impls["torch.compile"].status == "n/a"
    assert row.impls["torch.compile"].reason == "RuntimeError: inductor exploded"
    assert row.impls["torch"].status == "ok" and row.check == "pass"


def test_adam_runs_donated_and_against_torchs_fused_adam():
    pytest.importorskip("torch")
    row = run_suite(["adam"], quick=True, repeats=2, peers=("torch",), bandwidth=1e10)[0]
    # both were checked against eager numpy on their first call, then timed
    for impl in ("graphc", "graphc donated", "torch", "torch best"):
        assert row.impls[impl].status == "ok" and row.impls[impl].seconds > 0, impl
    assert row.check == "pass"
    assert row.best_graphc in ("graphc", "graphc donated")
    assert row.speedup("torch best") == pytest.approx(
        row.seconds("torch best") / row.seconds(row.best_graphc))


def test_quick_suite_runs_every_workload(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "GRAPHC_CHECK"}
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "graphc", "bench", "--quick", "--peers",
                           "none", "--json", str(out)],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    assert [w["name"] for w in data["workloads"]] == list(WORKLOADS)
    for w in data["workloads"]:
        assert w["check"] == "pass", w
        for impl in ("numpy", "graphc"):
            assert w["impls"][impl]["status"] == "ok"
            assert w["impls"][impl]["seconds"] > 0
        assert w["kernels"]["before"] >= w["kernels"]["after"] >= 1
        # a floor for memory-bound workloads (bytes over bandwidth) and for the matmul
        # workloads (their matmuls alone, timed), for no other
        has_floor = w["memory_bound"] or w["name"] in ("mlp", "mlp_train")
        assert (w["floor_seconds"] is not None) == has_floor, w["name"]
    assert data["machine"]["copy_bandwidth_gb_s"] > 0
    assert "workload" in proc.stdout and "vs numpy" in proc.stdout
    assert f"bench [{len(WORKLOADS)}/{len(WORKLOADS)}] tiny" in proc.stderr  # the progress line


def test_only_runs_the_named_workloads(tmp_path, capsys):
    from graphc.__main__ import main
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--peers", "none", "--only", "gelu,tiny", "--repeats",
                 "2", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert [w["name"] for w in data["workloads"]] == ["gelu", "tiny"]
    assert data["config"]["repeats"] == 2
    table = capsys.readouterr().out
    assert "gelu" in table and "tiny" in table and "softmax" not in table


def test_bench_usage_errors(monkeypatch, capsys):
    from graphc.__main__ import main
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--only", "gelu,nope"])
    assert exc.value.code == 2 and "nope" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    assert main(["bench", "--quick", "--only", "tiny", "--plot", "x.png"]) == 2
    assert "pip install matplotlib" in capsys.readouterr().err


@pytest.mark.parametrize("module", ["graphc.benchmark", "graphc.bench.measure",
                                    "graphc.bench.workloads",
                                    "graphc.bench.runner", "graphc.bench.report",
                                    "graphc.bench.dynamic_suite"])
def test_docstring_examples_run(module):
    mod = importlib.import_module(module)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


def test_compile_suite_times_each_chain_and_prints_the_table():
    import io
    from graphc.bench import compile_suite
    out = io.StringIO()
    rows = compile_suite.run([10, 20], peers=False, out=out, lstm=False)
    assert [r["layers"] for r in rows] == [10, 20]
    assert rows[1]["forward_nodes"] > rows[0]["forward_nodes"]
    assert all(r["forward"] > 0 and r["value_and_grad"] > 0 for r in rows)
    text = out.getvalue()
    assert "| 10 (" in text and "| 20 (" in text


def test_dynamic_suite_compiles_graphc_twice_and_checks_every_batch():
    import io
    from graphc.bench import dynamic_suite
    out = io.StringIO()
    rows = {r["name"]: r for r in dynamic_suite.run(quick=True, peers=(), out=out)}
    sizes = dynamic_suite.batch_sizes(dynamic_suite.QUICK["calls"],
                                      dynamic_suite.QUICK["largest"])
    assert all(r["check"] == "ok" for r in rows.values())
    assert rows["graphc"]["compiles"] == "2"  # the first call's sizes, then all of them
    assert rows["graphc, dynamic=False"]["compiles"] == str(len(set(sizes)))
    assert "| graphc | ok | 2 |" in out.getvalue()
