"""GRAPHC_DUMP: every compiled function and signature gets files of its own (also across
processes), the folder's index.json lists them all, and the fusion report is dumped."""
import inspect
import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest

import graphc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def loss(x):
    return np.sum(np.tanh(x) * x)


@pytest.fixture
def dump(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_DUMP", str(tmp_path))
    return tmp_path


def _index(folder) -> list[dict]:
    return json.loads((folder / "index.json").read_text())


def test_every_function_and_signature_gets_its_own_files(dump, rng):
    x3 = rng.standard_normal(3).astype(np.float32)
    x5 = rng.standard_normal(5).astype(np.float32)
    first, second = graphc.compile(lambda x: x + 1.0), graphc.compile(lambda x: x * 3.0)
    first(x3)
    second(x3)
    f, vg = graphc.compile(loss, dynamic=False), graphc.value_and_grad(loss)
    f(x3)
    f(x5)  # a second signature of one function
    vg(x3)
    index = _index(dump)
    stems = [e["stem"] for e in index]
    assert len(set(stems)) == len(stems) == 5
    # each function's own traced IR is in its own file: the first lambda is not lost
    traced = {s: (dump / f"{s}.traced.ir").read_text() for s in stems}
    lambdas = [s for s in stems if s.startswith("lambda.")]
    assert sorted("add" in traced[s] for s in lambdas) == [False, True]
    assert sorted("mul" in traced[s] for s in lambdas) == [False, True]
    line = inspect.getsourcelines(loss)[1]
    by_sig = {(e["function"], tuple(e["signature"])): e for e in index}
    assert by_sig[("loss", ("%x: f32[3]",))]["source"] == f"{__file__}:{line}"
    assert ("loss", ("%x: f32[5]",)) in by_sig
    assert ("value_and_grad_loss", ("%x: f32[3]",)) in by_sig
    for entry in index:  # the index names exactly the files there are
        for name in entry["files"]:
            assert (dump / name).is_file(), name
            assert stat.S_IMODE((dump / name).stat().st_mode) == 0o600
        assert json.loads((dump / f"{entry['stem']}.json").read_text()) == entry


def test_the_fusion_report_is_dumped(dump, rng):
    x = rng.standard_normal((4, 8)).astype(np.float32)

    def softmax(x):
        e = np.exp(x - np.max(x, axis=-1, keepdims=True))
        return e / np.sum(e, axis=-1, keepdims=True)

    f = graphc.compile(softmax)
    f(x)
    (entry,) = _index(dump)
    assert f"{entry['stem']}.fusion.txt" in entry["files"]
    report = (dump / f"{entry['stem']}.fusion.txt").read_text()
    assert report == f.lower(x).fusion_report() + "\n"


_CHILD = """
import numpy as np, graphc
for i in range({n}):
    graphc.compile(lambda x: x + 1.0)(np.ones(i + 1, np.float32))
"""


def test_processes_dumping_into_one_folder_never_collide(dump):
    env = dict(os.environ, GRAPHC_DUMP=str(dump), PYTHONPATH=ROOT)
    n = 4
    procs = [subprocess.Popen([sys.executable, "-c", _CHILD.format(n=n)], cwd=ROOT, env=env)
             for _ in range(2)]
    assert [p.wait(timeout=180) for p in procs] == [0, 0]
    stems = sorted(e["stem"] for e in _index(dump))
    assert stems == sorted(f"lambda.{i}" for i in range(2 * n))
    # every signature's traced IR survives: each process wrote 1..n elements once
    sizes = sorted((dump / f"{s}.traced.ir").read_text().split("f32[")[1].split("]")[0]
                   for s in stems)
    assert sizes == sorted([str(i + 1) for i in range(n)] * 2)
