"""graphc.export / graphc.load / python -m graphc show.

References are the functions themselves, run in process (eagerly, compiled, or as the
gradient functions graphc returns); loaded files must give the same arrays.
"""
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import graphc
from graphc.export import FORMAT


def mlp(params, x, scale=1.0, act="tanh"):
    h = x @ params["w1"] + params["b1"]
    h = np.tanh(h) if act == "tanh" else np.maximum(h, 0.0)
    return {"out": (h @ params["w2"]) * scale, "norm": np.sum(h * h)}


def loss(params, x, y, scale=2.0):
    z = mlp(params, x)["out"]
    return np.mean((z - y) ** 2) * scale


def params(seed=0):
    rng = np.random.default_rng(seed)
    return {"w1": rng.normal(size=(3, 5)).astype(np.float32),
            "b1": rng.normal(size=5).astype(np.float32),
            "w2": rng.normal(size=(5, 2)).astype(np.float32)}


X = np.random.default_rng(1).normal(size=(4, 3)).astype(np.float32)
Y = np.random.default_rng(2).normal(size=(4, 2)).astype(np.float32)


def assert_trees_close(got, want, rtol=1e-6):
    if isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want)
        for k in want:
            assert_trees_close(got[k], want[k], rtol)
    elif isinstance(want, (tuple, list)):
        assert type(got) is type(want) and len(got) == len(want)
        for g, w in zip(got, want):
            assert_trees_close(g, w, rtol)
    else:
        assert np.asarray(got).dtype == np.asarray(want).dtype
        np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-7)


CASES = {
    "plain": (mlp, (params(), X), {"scale": 3.0, "act": "relu"}),
    "compiled": (graphc.compile(mlp), (params(), X), {"scale": 0.5}),
    "grad": (graphc.grad(loss), (params(), X, Y), {}),
    "value_and_grad": (graphc.value_and_grad(loss, argnums=(0, 1)), (params(), X, Y),
                       {"scale": 4.0}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_round_trip_through_text_and_file(case, tmp_path):
    fn, args, kwargs = CASES[case]
    want = fn(*args, **kwargs)
    exp = graphc.export(fn, *args, **kwargs)
    assert str(exp).splitlines()[0] == f"# graphc export format {FORMAT}, graphc " \
                                       f"{graphc.__version__}"
    assert exp.graph.groups is None  # as traced, before passes
    path = tmp_path / "f.graphc"
    exp.save(path)
    for source in (path, str(path), str(exp)):
        loaded = graphc.load(source)
        assert str(loaded) == str(exp)
        assert_trees_close(loaded(*args, **kwargs), want)
    assert_trees_close(exp(*args, **kwargs), want)


def test_statics_and_structure_are_recorded():
    exp = graphc.export(mlp, params(), X, scale=3.0, act="relu")
    assert exp.statics == {"scale": 3.0, "act": "relu"}
    assert exp.signature().startswith("mlp(params: {'w1': f32[3,5], 'b1': f32[5], "
                                      "'w2': f32[5,2]}, x: f32[4,3], *, scale=3.0, act='relu')")
    inputs = json.loads(str(exp).splitlines()[1][len("# inputs: "):])
    assert inputs["kwargs"] == [["scale", {"static": 3.0}], ["act", {"static": "relu"}]]
    # static keyword arguments may be left out: they are what was exported
    assert_trees_close(graphc.load(str(exp))(params(), X),
                       mlp(params(), X, scale=3.0, act="relu"))


def test_nonfinite_static_round_trips():
    exp = graphc.export(lambda x, k: x * k, X, float("inf"))
    loaded = graphc.load(str(exp))
    np.testing.assert_array_equal(loaded(X, float("inf")), X * np.inf)


def test_static_that_json_cannot_hold_names_the_argument():
    with pytest.raises(graphc.GraphcError,
                       match=r"argument dt is a static .*which an exported file cannot hold"):
        graphc.export(lambda x, dt: x.astype(dt), X, np.dtype("float64"))


def test_bare_graph_text_loads():
    g = graphc.trace(lambda a, b: (np.tanh(a) * b, np.sum(b)), X, X)
    loaded = graphc.load(str(g))
    got = loaded(X, X)
    assert isinstance(got, tuple) and len(got) == 2
    want = graphc.interpret(g, X, X)
    assert_trees_close(got, tuple(want))


def test_fresh_process_runs_the_file(tmp_path):
    fn, args, kwargs = CASES["value_and_grad"]
    graphc.export(fn, *args, **kwargs).save(tmp_path / "step.graphc")
    np.savez(tmp_path / "in.npz", x=X, y=Y, **params())
    child = textwrap.dedent("""
        import sys, numpy as np, graphc
        a = dict(np.load("in.npz", allow_pickle=False))
        p = {k: a[k] for k in ("w1", "b1", "w2")}
        (value, (gp, gx)) = graphc.load("step.graphc")(p, a["x"], a["y"], scale=4.0)
        np.savez("out.npz", value=value, gx=gx, **gp)
        print("test_export" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", child], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
    value, (gp, gx) = fn(*args, **kwargs)
    with np.load(tmp_path / "out.npz", allow_pickle=False) as out:
        np.testing.assert_allclose(out["value"], value, rtol=1e-6)
        np.testing.assert_allclose(out["gx"], gx, rtol=1e-6)
        for k in gp:
            np.testing.assert_allclose(out[k], gp[k], rtol=1e-6)


def test_newer_format_names_both_versions():
    text = str(graphc.export(mlp, params(), X)).replace(
        f"export format {FORMAT}, graphc {graphc.__version__}", "export format 99, graphc 9.0")
    with pytest.raises(graphc.GraphcError, match=rf"format 99 \(written by graphc 9.0\).*"
                                                 rf"\({graphc.__version__}\) reads format "
                                                 rf"{FORMAT}"):
        graphc.load(text)


@pytest.mark.parametrize("call, match", [
    (lambda f: f(params(), X[:2]), r"argument x was exported as f32\[4,3\], given f32\[2,3\]"),
    (lambda f: f(params(), X.astype(np.float64)),
     r"argument x was exported as f32\[4,3\], given f64\[4,3\]"),
    (lambda f: f({"w1": params()["w1"]}, X), r"argument params has structure \{'w1': \*\}"),
    (lambda f: f(params(), [X]), r"argument x has structure \[\*\]; .* takes \*"),
    (lambda f: f(params()), r"takes 2 positional arguments \(params, x\), given 1"),
    (lambda f: f(params(), X, scale=1.0), r"argument scale is static: .* as 2.0, given 1.0"),
    (lambda f: f(params(), X, bias=1.0), r"no keyword argument 'bias'"),
    (lambda f: f(params(), X.tolist()), r"argument x has structure"),
])
def test_wrong_calls_name_expected_and_given(call, match):
    loaded = graphc.load(str(graphc.export(mlp, params(), X, scale=2.0)))
    with pytest.raises(graphc.ArgumentError, match=match):
        call(loaded)


def _lines():
    return str(graphc.export(mlp, params(), X, scale=2.0)).splitlines()


@pytest.mark.parametrize("lineno, edit, match", [
    (1, lambda s: s.replace("format", "fromat"), r"line 1: expected '# graphc export"),
    (1, lambda s: s.replace(f"format {FORMAT}", "format 0"), r"line 1: there is no"),
    (2, lambda s: s.replace("f32[3,5]", "f32[3,x]"), r"line 2: bad inputs: expected an "),
    (2, lambda s: s.replace("f32[3,5]", "f32[3,6]"), r"line 2: the inputs line says"),
    (2, lambda s: s.replace("2.0", "NaN"), r"line 2: the inputs are not valid JSON"),
    (2, lambda s: s.replace('{"static": 2.0}', '{"static": [2.0]}'), r"line 2: bad inputs"),
    (2, lambda s: s.replace('"args"', '"argz"'), r"line 2: bad inputs"),
    (2, lambda s: s[:-1], r"line 2: the inputs are not valid JSON"),
    (2, lambda s: "# inputs: " + "[" * 100000 + "]" * 100000, r"line 2: "),
    (3, lambda s: s.replace('"output": 1', '"output": 7'), r"line 3: the outputs line"),
    (3, lambda s: s.replace("outputs", "outputz"), r"line 3: expected '# outputs: "),
])
def test_tampered_signature_lines_name_the_line(lineno, edit, match):
    lines = _lines()
    lines[lineno - 1] = edit(lines[lineno - 1])
    with pytest.raises(graphc.GraphcError, match=match):
        graphc.load("\n".join(lines))


def test_tampered_graph_is_an_ir_error(tmp_path):
    lines = _lines()
    assert " tanh " in lines[6]
    lines[6] = lines[6].replace("tanh", "frobnicate")
    path = tmp_path / "bad.graphc"
    path.write_text("\n".join(lines))
    with pytest.raises(graphc.GraphcError, match=r"bad.graphc: .*frobnicate"):
        graphc.load(path)


def test_missing_file_is_a_graphc_error(tmp_path):
    with pytest.raises(graphc.GraphcError, match=r"cannot read"):
        graphc.load(str(tmp_path / "nope.graphc"))


def test_show_prints_signature_and_graph(tmp_path):
    exp = graphc.export(mlp, params(), X, scale=2.0)
    exp.save(tmp_path / "f.graphc")
    done = subprocess.run([sys.executable, "-m", "graphc", "show", str(tmp_path / "f.graphc")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"# {exp.signature()}" in done.stdout.splitlines()
    assert str(exp.graph) in done.stdout
    (tmp_path / "bad.graphc").write_text("# graphc export format 99, graphc 9.0\n")
    done = subprocess.run([sys.executable, "-m", "graphc", "show", str(tmp_path / "bad.graphc")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "format 99" in done.stderr


def test_example_runs_both_exports_in_a_fresh_process():
    from test_examples import example
    r = example("export_model").main(steps=30)
    assert r["losses"][-1] < r["losses"][0]
    np.testing.assert_allclose(r["fresh"]["scores"], r["scores"], rtol=1e-6)


def test_docstring_examples_run():
    import doctest
    import importlib
    mod = importlib.import_module("graphc.export")  # the module: graphc.export is the function
    result = doctest.testmod(mod)
    assert result.failed == 0 and result.attempted > 0


def test_an_attribute_holding_code_is_refused_not_run(tmp_path):
    mark = tmp_path / "ran"
    code = f"__import__('pathlib').Path({str(mark)!r}).touch()"
    exp = graphc.export(lambda x: np.sum(x, axis=1, keepdims=True), X)
    text = str(exp).replace("keepdims=true",
                            f'keepdims="True, dtype=None) + np.add(0, 0 if {code} else 0"')
    assert text != str(exp)
    with pytest.raises(graphc.GraphcError, match=r"line 5: .*keepdims"):
        graphc.load(text)(X)
    assert not mark.exists()
