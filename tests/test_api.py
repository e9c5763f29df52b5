"""The public API: compile (bare and with options), the signature cache and its
retrace explanations, lower, trace, interpret, GRAPHC_DUMP, check mode."""
import os
import re
import warnings

import numpy as np
import pytest

import graphc
from graphc.ir import Graph
from graphc.passes.pipeline import DEFAULT_PIPELINE


def _f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def test_bare_decorator_keeps_name_and_doc(rng):
    @graphc.compile
    def scaled_tanh(x):
        """Doc of scaled_tanh."""
        return np.tanh(x) * 3.0

    assert scaled_tanh.__name__ == "scaled_tanh"
    assert scaled_tanh.__doc__ == "Doc of scaled_tanh."
    x = _f32(rng, 5, 3)
    np.testing.assert_allclose(scaled_tanh(x), np.tanh(x) * 3.0, rtol=1e-6)


def test_decorator_with_options(rng):
    @graphc.compile(backend="numpy")
    def f(x, y):
        return x * y + 1.0

    x, y = _f32(rng, 4), _f32(rng, 4)
    np.testing.assert_allclose(f(x, y), x * y + 1.0, rtol=1e-6)
    assert f.__name__ == "f"


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(graphc.GraphcError, match="unknown backend 'tpu'"):
        graphc.compile(lambda x: x, backend="tpu")


def test_cache_hits_misses_entries(rng):
    @graphc.compile
    def f(x):
        return x + 1.0

    f(_f32(rng, 3))
    f(_f32(rng, 3))
    f(_f32(rng, 4))                      # new shape: traced again
    f(_f32(rng, 4).astype(np.float64))   # new dtype: traced again
    f(_f32(rng, 3))
    assert f.cache_info() == (2, 3, 3)
    info = f.cache_info()
    assert (info.hits, info.misses, info.entries) == (2, 3, 3)


def test_static_arguments_are_part_of_the_key(rng):
    @graphc.compile
    def f(x, power, mode="tanh"):
        y = x ** power
        return np.tanh(y) if mode == "tanh" else y

    x = _f32(rng, 6)
    np.testing.assert_allclose(f(x, 2), np.tanh(x ** 2), rtol=1e-6)
    np.testing.assert_allclose(f(x, 3), np.tanh(x ** 3), rtol=1e-6)
    np.testing.assert_allclose(f(x, 3, mode="id"), x ** 3, rtol=1e-6)
    f(x, 2)
    assert f.cache_info() == (1, 3, 3)


def test_pytree_arguments_and_results(rng):
    @graphc.compile
    def step(params, batch):
        h = np.maximum(batch["x"] @ params["w"] + params["b"], 0.0)
        return {"h": h, "norms": [np.sum(h * h), np.max(h)]}, 7

    params = {"w": _f32(rng, 4, 3), "b": _f32(rng, 3)}
    batch = {"x": _f32(rng, 5, 4)}
    got, seven = step(params, batch)
    want, _ = step.fn(params, batch)
    assert seven == 7
    assert set(got) == {"h", "norms"} and isinstance(got["norms"], list)
    np.testing.assert_allclose(got["h"], want["h"], rtol=1e-6)
    np.testing.assert_allclose(got["norms"][0], want["norms"][0], rtol=1e-5)
    names = [v.name for v in step.lower(params, batch).graph.inputs]
    assert names == ["params.w", "params.b", "batch.x"]


def test_retrace_log_names_the_argument(rng, monkeypatch, capsys):
    monkeypatch.setenv("GRAPHC_LOG", "recompiles")

    @graphc.compile
    def f(x, scale):
        return x * scale

    f(_f32(rng, 3), 2.0)
    f(_f32(rng, 4), 2.0)
    f(_f32(rng, 4), 3.0)
    f(_f32(rng, 4).astype(np.float64), 3.0)
    text = capsys.readouterr().err
    assert "x: shape changed from float32[3] to float32[4]" in text
    assert "scale: static value changed from 2.0 to 3.0" in text
    assert "x: dtype changed from float32[4] to float64[4]" in text
    assert "np.float32(lr)" in text  # says how to avoid it


def test_warning_after_eight_retraces(rng):
    @graphc.compile(dynamic=False)  # every size a retrace
    def f(x):
        return x * 2.0

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in range(1, 10):
            f(np.ones(n, np.float32))
    recompiles = [w for w in caught if issubclass(w.category, graphc.RecompileWarning)]
    assert len(recompiles) == 1
    message = str(recompiles[0].message)
    assert "traced 9 times" in message and "x: shape changed" in message
    assert recompiles[0].filename == __file__  # points at the user's call


def test_lower_exposes_every_stage(rng):
    @graphc.compile
    def f(x):
        unused = np.exp(x)  # noqa: F841  (dead code, removed by dce)
        return np.tanh(x)

    x = _f32(rng, 3)
    low = f.lower(x)
    assert isinstance(low.graph, Graph) and isinstance(low.optimized, Graph)
    assert [n.op for n in low.graph.nodes] == ["exp", "tanh"]
    assert [n.op for n in low.optimized.nodes] == ["tanh"]
    assert list(low.stages) == ["traced"] + [name for name, _ in DEFAULT_PIPELINE]
    # numpy's tanh, or C's tanhf where groups are forced into native kernels
    assert "def f(x):" in low.source and ("np.tanh(" in low.source or "tanhf(" in low.source)
    assert f.cache_info().entries == 1


def test_trace_returns_the_graph(rng):
    g = graphc.trace(lambda a, b: np.sum(a * b, axis=0), _f32(rng, 2, 3), _f32(rng, 2, 3))
    assert [n.op for n in g.nodes] == ["mul", "sum"]
    assert str(g.outputs[0].type) == "f32[3]"
    g.verify()


def test_interpret_matches_compiled(rng):
    def f(x, w):
        return np.tanh(x @ w) - np.mean(x, axis=1, keepdims=True)

    x, w = _f32(rng, 4, 5), _f32(rng, 5, 5)
    g = graphc.trace(f, x, w)
    np.testing.assert_allclose(graphc.interpret(g, x, w), graphc.compile(f)(x, w), rtol=1e-6,
                               atol=1e-6)
    with pytest.raises(graphc.ArgumentError, match="takes 2 inputs"):
        graphc.interpret(g, x)


def test_dump_directory(rng, tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_DUMP", str(tmp_path))

    @graphc.compile
    def dumped(x):
        return np.exp(x) + 1.0

    dumped(_f32(rng, 2))
    dumped(_f32(rng, 3))
    files = sorted(os.listdir(tmp_path))
    for index in (0, 1):
        stage_files = [f"{i:02d}-{name}.ir" for i, (name, _) in enumerate(DEFAULT_PIPELINE, 1)]
        for suffix in ["traced.ir", "optimized.ir", "py"] + stage_files:
            assert f"dumped.{index}.{suffix}" in files
    traced = (tmp_path / "dumped.0.traced.ir").read_text()
    assert "graph dumped(%x: f32[2])" in traced and "exp %x" in traced
    source = (tmp_path / "dumped.1.py").read_text()
    assert "def dumped(x):" in source
    # the time of each stage heads the generated source
    assert re.match(r"# compile time: trace [\d.]+ ms, passes [\d.]+ ms, codegen [\d.]+ ms",
                    source), source[:200]


def test_check_mode_catches_a_wrong_pass(rng):
    def broken(graph):
        # a deliberately wrong pass: returns the input in place of the result
        return Graph(graph.name, graph.inputs, graph.nodes, [graph.inputs[0]])

    def f(x):
        return x + 1.0

    g = graphc.compile(f, passes=[("broken", broken)], check=True)
    with pytest.raises(graphc.MismatchError, match=r"f: output 0 .* differs .* max abs error"):
        g(_f32(rng, 8))


def test_check_mode_checks_every_call_not_just_the_first(rng, monkeypatch):
    # the cached runner decides check mode once per signature: a hit must still compare
    def broken(graph):
        return Graph(graph.name, graph.inputs, graph.nodes, [graph.inputs[0]])

    x = _f32(rng, 8)
    for g in (graphc.compile(lambda x: x + 1.0, passes=[("broken", broken)], check=True),
              graphc.compile(lambda x: x + 1.0, passes=[("broken", broken)])):
        if g.check is None:
            monkeypatch.setenv("GRAPHC_CHECK", "1")
        # positional arrays, keywords and numpy scalars: three signatures, each hit once
        for call in [lambda: g(x), lambda: g(x=x), lambda: g(x[0])] * 2:
            with pytest.raises(graphc.MismatchError):
                call()
        assert g.cache_info() == (3, 3, 3)


def test_fast_path_results_match_the_general_path(rng):
    # positional arrays take the fast path, keywords the general one (and a signature
    # of their own): both give the same results, single arrays and pytrees alike
    @graphc.compile
    def one(x):
        return x * 2.0

    @graphc.compile
    def several(x, y):
        return {"sum": x + y}, (x * y, 3)

    x, y = _f32(rng, 5), _f32(rng, 5)
    for _ in range(2):
        np.testing.assert_array_equal(one(x), x * 2.0)
        np.testing.assert_array_equal(one(x=x), x * 2.0)
        got = several(x, y)
        assert isinstance(got, tuple) and isinstance(got[1], tuple) and got[1][1] == 3
        np.testing.assert_array_equal(got[0]["sum"], x + y)
        np.testing.assert_array_equal(several(x, y=y)[1][0], x * y)
    s = np.float32(1.5)
    assert one(s) == 3.0 and one(s) == 3.0 and one(np.array(s)) == 3.0  # same signature
    assert one.cache_info() == (4, 3, 3)
    assert several.cache_info() == (2, 2, 2)
    assert one.cache_info() == (4, 3, 3)  # reading the counts leaves them as they are
    one.cache_clear()
    one(x)
    assert one.cache_info() == (0, 1, 1)


def test_inputs_never_mutated_and_outputs_fresh(rng):
    @graphc.compile
    def f(x):
        return x, x.T, np.reshape(x, (-1,)), x * 1.0

    x = _f32(rng, 3, 2)
    before = x.copy()
    outs = f(x)
    np.testing.assert_array_equal(x, before)
    for out in outs:
        assert not np.shares_memory(out, x)
    outs[0][0, 0] = 99.0
    assert x[0, 0] == before[0, 0]


def test_compiled_source_traceback_points_into_generated_code():
    @graphc.compile
    def f(idx, table):
        return table[idx]

    with pytest.raises(IndexError) as info:
        f(np.array([5]), np.ones((3, 2)))
    # the error names the user's line; numpy's own IndexError, its cause, shows the
    # generated line that raised it
    tb = info.value.__cause__.__traceback__
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
    assert any(str(p).startswith("<graphc-numpy:f:") for p in frames)


def test_passes_option_selects_replaces_or_disables_passes(rng):
    def f(x):
        return x**2 + 0.0

    x = _f32(rng, 4)
    only_dce = graphc.compile(f, passes=["dce"]).lower(x)
    assert list(only_dce.stages) == ["traced", "dce"]
    assert "pow" in [n.op for n in only_dce.optimized.nodes]  # simplify did not run
    full = graphc.compile(f).lower(x)
    assert "pow" not in [n.op for n in full.optimized.nodes]
    custom = graphc.compile(f, passes=[("mine", lambda g: g), "fusion"]).lower(x)
    assert list(custom.stages) == ["traced", "mine", "fusion"]
    np.testing.assert_allclose(graphc.compile(f, passes=[])(x), x**2, rtol=1e-6)
    with pytest.raises(graphc.GraphcError, match="unknown pass 'dcee'"):
        graphc.compile(f, passes=["dcee"])(x)


def test_a_long_compile_shows_its_stage_on_a_terminal_only(monkeypatch):
    import io
    import time as _time
    from graphc import progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True
    term = Terminal()
    monkeypatch.setattr(progress, "AFTER", 0.0)
    monkeypatch.setattr(progress, "EVERY", 0.001)
    monkeypatch.setattr(progress.sys, "stderr", term)

    def slow(x):
        _time.sleep(0.05)  # while tracing: the line appears, naming the stage
        return x * 2
    graphc.compile(slow)(np.ones(3))
    text = term.getvalue()
    assert "graphc: compiling slow: trace" in text
    assert text.endswith("\r")  # erased at the end
    monkeypatch.setenv("GRAPHC_PROGRESS", "0")
    term.seek(0)
    term.truncate()
    graphc.compile(lambda x: x + 1)(np.ones(3))
    assert term.getvalue() == ""
    pipe = io.StringIO()  # not a terminal: nothing
    monkeypatch.delenv("GRAPHC_PROGRESS")
    monkeypatch.setattr(progress.sys, "stderr", pipe)
    graphc.compile(lambda x: x - 1)(np.ones(3))
    assert pipe.getvalue() == ""
