"""graphc.debug.bisect names the first stage (pass or generated code) that changes a
function's result, and shows the IR around it."""
import numpy as np
import pytest

import graphc
from graphc.debug import BisectResult, bisect
from graphc.ir import parse

X = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)


def model(x):
    h = np.tanh(x) * 2.0 + 1.0
    return np.sum(h * h, axis=1)


def tanh_to_sin(graph):
    """A broken pass: a new graph (the input is left alone) with tanh turned into sin."""
    return parse(str(graph).replace(" = tanh ", " = sin "))


def test_clean_pipeline_agrees_everywhere(capsys):
    result = bisect(model, X)
    assert isinstance(result, BisectResult)
    assert result.stage is None and not result
    assert result.before is None and result.after is None
    assert result.stages == ["traced", "simplify", "cse", "fold", "dce", "fusion", "codegen"]
    assert "all 7 stages agree" in capsys.readouterr().out


def test_broken_pass_is_named(capsys):
    passes = ["simplify", "cse", ("tanh_to_sin", tanh_to_sin), "dce", "fusion"]
    result = bisect(model, X, passes=passes)
    assert result.stage == "tanh_to_sin"
    assert result.stages == ["traced", "simplify", "cse", "tanh_to_sin"]
    assert any(n.op == "tanh" for n in result.before.nodes)
    assert any(n.op == "sin" for n in result.after.nodes)
    assert not any(n.op == "tanh" for n in result.after.nodes)
    assert "differs from the reference" in result.details and "max abs error" in result.details
    out = capsys.readouterr().out
    assert "first differs after stage 'tanh_to_sin'" in out
    assert "--- IR before 'tanh_to_sin' ---" in out and "= tanh " in out
    assert "--- IR after 'tanh_to_sin' ---" in out and "= sin " in out
    assert out.strip() == str(result).strip()


def test_input_graph_is_not_mutated_by_bisect():
    g = graphc.trace(model, X)
    text = str(g)
    tanh_to_sin(g)
    assert str(g) == text


def test_compiled_function_uses_its_passes(capsys):
    f = graphc.compile(model, passes=["simplify", ("tanh_to_sin", tanh_to_sin), "dce"])
    result = bisect(f, X, quiet=True)
    assert result.stage == "tanh_to_sin"
    assert capsys.readouterr().out == ""
    # `passes` overrides the compiled function's pipeline
    assert bisect(f, X, passes=["simplify", "dce"], quiet=True).stage is None


def test_pass_that_crashes_is_named():
    def crash(graph):
        raise RuntimeError("boom")

    result = bisect(model, X, passes=["cse", ("crash", crash)], quiet=True)
    assert result.stage == "crash" and result.after is None
    assert "RuntimeError: boom" in result.details
    assert "<none: it raised>" in str(result)


def test_pass_that_changes_an_output_shape():
    def drop_sum(graph):
        return graphc.trace(lambda x: np.tanh(x), X)

    result = bisect(model, X, passes=[("drop_sum", drop_sum)], quiet=True)
    assert result.stage == "drop_sum"
    assert "float32[3, 4]" in result.details and "float32[3]" in result.details


def test_broken_backend_lowering_is_codegen(monkeypatch, capsys):
    from graphc.backends.numpy import lowering
    monkeypatch.setitem(lowering.LOWERINGS, "tanh", lowering._call("np.sin"))
    # the broken entry is in the numpy lowering: bisect builds with the function's options
    result = bisect(graphc.compile(model, options={"native": False}), X)
    assert result.stage == "codegen"
    assert result.stages[-1] == "codegen" and "fusion" in result.stages
    assert result.before is result.after  # the graph the backend compiled
    assert "np.sin" in result.source
    out = capsys.readouterr().out
    assert "first differs after stage 'codegen'" in out and "--- generated code" in out


def test_multiple_outputs_and_pytree_arguments():
    def f(params, x):
        return np.tanh(x @ params["w"]), np.exp(x).mean()

    params = {"w": np.ones((4, 2), np.float32)}
    assert bisect(f, params, X, quiet=True).stage is None
    result = bisect(f, params, X, passes=[("tanh_to_sin", tanh_to_sin)], quiet=True)
    assert result.stage == "tanh_to_sin" and "output 0" in result.details


def test_integer_results_compare_exactly():
    def f(x):
        return np.argmax(np.tanh(x), axis=1)

    def neg(graph):
        return parse(str(graph).replace(" = tanh ", " = neg "))

    assert bisect(f, X, quiet=True).stage is None
    result = bisect(f, X, passes=[("neg", neg)], quiet=True)
    assert result.stage == "neg" and "int64" in result.details


def test_unknown_pass_name_is_a_graphc_error():
    with pytest.raises(graphc.GraphcError, match="unknown pass 'nope'"):
        bisect(model, X, passes=["nope"])
