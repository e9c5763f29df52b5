"""A failure inside graphc (a pass, networkx, codegen, the build, the generated code) is a
GraphcInternalError naming the stage, the user's function and line, keeping the cause,
and writing the IR that `python -m graphc replay` re-runs to reproduce it."""
import inspect
import math
import os
import shlex
import stat
import subprocess
import sys
import tempfile

import networkx
import numpy as np
import pytest

import graphc
from graphc.passes import fusion
from graphc.passes.simplify import simplify

# these tests watch or break the passes and the code generator, which a hit of the
# persistent compile cache would skip
pytestmark = pytest.mark.usefixtures("no_compile_cache")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.dirname(os.path.abspath(__file__))


def boom(graph):
    """A pass with a bug (module level, so that `replay --pass` can import it)."""
    raise KeyError("a bug in a pass")


def loss(x):
    return np.sum(np.tanh(x) * 2.0)


class _CyclicNx:
    """networkx, except that the fusion pass's DAG "contains a cycle" when built."""

    def __getattr__(self, name):
        return getattr(networkx, name)

    @staticmethod
    def DiGraph(*args, **kwargs):
        raise networkx.NetworkXUnfeasible("Graph contains a cycle")


def install_cyclic_nx(monkeypatch=None):
    if monkeypatch is None:  # in a replay subprocess
        fusion.nx = _CyclicNx()
    else:
        monkeypatch.setattr(fusion, "nx", _CyclicNx())


@pytest.fixture
def no_dump(monkeypatch, tmp_path):
    """Repro files go to a fresh temp folder (GRAPHC_DUMP unset)."""
    monkeypatch.delenv("GRAPHC_DUMP", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def _def_line(fn) -> str:
    return f"{os.path.basename(inspect.getsourcefile(fn))}:{inspect.getsourcelines(fn)[1]}"


def _internal_error(f, *args) -> graphc.GraphcInternalError:
    with pytest.raises(graphc.GraphcInternalError) as info:
        f(*args)
    return info.value


def _replay(*argv, prelude=""):
    """`python -m graphc replay ...` in a fresh process (after `prelude`, if any)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, ROOT]))
    if prelude:
        code = f"{prelude}; import sys; from graphc.__main__ import main; " \
               f"sys.exit(main({list(argv)!r}))"
        cmd = [sys.executable, "-c", code]
    else:
        cmd = [sys.executable, "-m", "graphc", *argv]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


def test_a_failing_pass_is_an_internal_error_with_a_replay_file(no_dump):
    x = np.linspace(-1, 1, 6, dtype=np.float32)
    f = graphc.compile(loss, passes=["simplify", ("boom", boom), "dce"])
    err = _internal_error(f, x)
    assert isinstance(err, graphc.GraphcError) and err.stage == "pass boom"
    assert isinstance(err.__cause__, KeyError)
    text = str(err)
    assert "graphc failed in pass boom while compiling loss: KeyError" in text
    assert text.startswith(inspect.getsourcefile(loss) + ":")
    assert str(err.loc) == _def_line(loss) and "def loss(x):" in text
    # the file holds the graph as it entered the failing pass, and is owner-only
    assert os.path.isfile(err.repro) and err.repro in text and err.command in text
    assert stat.S_IMODE(os.stat(err.repro).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(err.repro)).st_mode) == 0o700
    entered = simplify(graphc.trace(loss, x))
    assert str(graphc.ir.parse(open(err.repro).read())) == str(entered)
    # the printed command reproduces it, importing the custom pass it names
    argv = shlex.split(err.command)
    assert argv[1:4] == ["-m", "graphc", "replay"] and "boom=test_internal_errors:boom" in argv
    rc, out = _replay(*argv[3:])
    assert rc == 1, out
    assert "KeyError: 'a bug in a pass'" in out and "pass boom" in out


def test_networkx_failing_inside_fusion(no_dump, monkeypatch):
    install_cyclic_nx(monkeypatch)
    x = np.linspace(-1, 1, 6, dtype=np.float32)
    f = graphc.compile(loss)
    err = _internal_error(f, x)
    assert err.stage == "pass fusion"
    assert isinstance(err.__cause__, networkx.NetworkXUnfeasible)
    assert "pass fusion while compiling loss: NetworkXUnfeasible: Graph contains a cycle" \
        in str(err)
    assert str(err.loc) == _def_line(loss)
    graph = graphc.ir.parse(open(err.repro).read())
    assert [str(v.type) for v in graph.inputs] == ["f32[6]"]
    # the same networkx bug in a fresh process fails the same way on the file ...
    rc, out = _replay("replay", err.repro,
                      prelude="import test_internal_errors as t; t.install_cyclic_nx()")
    assert rc == 1 and "NetworkXUnfeasible: Graph contains a cycle" in out, out
    # ... and without it the file compiles and runs cleanly: it is the fusion's input
    rc, out = _replay("replay", err.repro, "--inputs", "random")
    assert rc == 0 and "not reproduced" in out, out


def test_the_users_own_exception_goes_through_unchanged(no_dump):
    def bad(x):
        raise ValueError("the user's own bug")

    with pytest.raises(ValueError, match="the user's own bug") as info:
        graphc.compile(bad)(np.ones(3))
    assert not isinstance(info.value, graphc.GraphcError)
    assert not list(no_dump.iterdir())  # nothing written for it


def test_a_tracer_failure_names_the_users_line(no_dump, monkeypatch):
    from graphc.frontend import numpy_api
    # a builtin raises, so the innermost Python frame is the tracer's own
    monkeypatch.setattr(numpy_api, "_no_out", math.log)

    def traced_tanh(x):
        y = x * 2.0
        return np.tanh(y)  # the line the tracer fails on

    err = _internal_error(graphc.compile(traced_tanh), np.ones(3))
    assert err.stage == "trace" and isinstance(err.__cause__, TypeError)
    line = inspect.getsourcelines(traced_tanh)[1] + 2
    assert err.loc.line == line and "return np.tanh(y)" in str(err)
    assert err.repro is None  # no graph reproduces a frontend failure


def test_codegen_and_build_failures(no_dump, monkeypatch):
    import graphc.backends.numpy.codegen as codegen

    def broken_render(graph, options=None):
        raise AttributeError("no lowering")
    monkeypatch.setattr(codegen, "render", broken_render)
    err = _internal_error(graphc.compile(loss), np.ones(3, np.float32))
    assert err.stage == "codegen" and "compiling loss: AttributeError" in str(err)
    assert "# passes: \n" in open(err.repro).read()  # nothing left but codegen
    fused = graphc.ir.parse(open(err.repro).read())
    assert fused.groups is not None  # the graph as it entered codegen: after fusion
    rc, out = _replay("replay", err.repro)
    assert rc == 0, out  # the real codegen handles it

    def bad_source(graph, options=None):
        return codegen.Rendered(graph.name, "broken", "def broken(:\n")
    monkeypatch.setattr(codegen, "render", bad_source)
    err = _internal_error(graphc.compile(loss), np.ones(3, np.float32))
    assert err.stage == "build" and isinstance(err.__cause__, SyntaxError)


class _RaisingBackend:
    """The numpy backend, except that the generated function raises `exc`."""
    from graphc.backends.numpy import FUSION_POLICY

    def __init__(self, exc):
        self.exc = exc

    def compile_graph(self, graph, options=None):
        from graphc.backends.numpy.codegen import compile_graph
        executable = compile_graph(graph, options)

        def fn(*args):
            raise self.exc
        executable.fn = fn
        return executable


def test_generated_code_failing_at_run_time(no_dump):
    f = graphc.compile(loss, check=False)
    f.backend = _RaisingBackend(ValueError("operands could not be broadcast together"))
    x = np.ones(3, np.float32)
    for _ in range(2):  # not cached onto the fast path: every call says so
        err = _internal_error(f, x)
        assert err.stage == "run" and isinstance(err.__cause__, ValueError)
        assert "--inputs random" in err.command
    rc, out = _replay(*shlex.split(err.command)[3:])
    assert rc == 0, out  # the real backend runs the file's graph correctly
    g = graphc.compile(loss, check=False)
    g.backend = _RaisingBackend(IndexError("index 12 is out of bounds"))
    with pytest.raises(IndexError):  # an index error is the user's (their data)
        g(x)


def test_repro_goes_into_the_dump_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_DUMP", str(tmp_path))
    install_cyclic_nx(monkeypatch)
    err = _internal_error(graphc.compile(loss), np.ones(3, np.float32))
    assert os.path.dirname(err.repro) == str(tmp_path)
    assert os.path.basename(err.repro) == "loss.0.repro.ir"
    import json
    index = json.loads((tmp_path / "index.json").read_text())
    assert index[0]["failed"] == "pass fusion" and "loss.0.repro.ir" in index[0]["files"]


def test_python_protocol_errors_of_a_tracer_stay_the_users(no_dump):
    def typo(x):
        return x.nosuchattribute

    with pytest.raises(AttributeError) as info:  # as eager numpy: x.nosuchattribute
        graphc.compile(typo)(np.ones(3))
    assert not isinstance(info.value, graphc.GraphcInternalError)
    with pytest.raises(AttributeError):
        typo(np.ones(3))
    assert not list(no_dump.iterdir())


def test_a_decorated_function_is_named_at_its_def_line(no_dump):
    @graphc.compile(passes=[("boom", boom)])
    def decorated(x):
        return x * 2.0

    err = _internal_error(decorated, np.ones(2))
    assert err.loc.line == inspect.getsourcelines(decorated.fn)[1] + 1  # past the @
    assert "    def decorated(x):" in str(err)


def test_replay_refuses_a_bad_file_or_an_unknown_pass(tmp_path, capsys):
    from graphc.__main__ import main
    assert main(["replay", str(tmp_path / "missing.ir")]) == 2
    path = tmp_path / "f.ir"
    g = graphc.trace(loss, np.ones(3, np.float32))
    path.write_text("# passes: simplify, mystery\n" + str(g))
    assert main(["replay", str(path)]) == 2
    assert "--pass NAME=MODULE:FUNCTION" in capsys.readouterr().out
    path.write_text("# passes: simplify, fusion\n" + str(g))
    assert main(["replay", str(path), "--inputs", "random"]) == 0
