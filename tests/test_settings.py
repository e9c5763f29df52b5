"""GRAPHC_* environment variables: one table (backends/settings.py), checked values.

A value a setting does not accept warns once per variable and value, naming what is
accepted, and the default is used; the README documents every setting in the table.
"""
import ast
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import graphc
from graphc.backends import settings
from graphc.backends.settings import SETTINGS, SettingWarning

ROOT = Path(__file__).resolve().parent.parent
F32 = np.float32
BOOLS = [name for name, s in SETTINGS.items() if s.kind == "bool"]


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    """Each test sees every bad value as new (the module warns once per process)."""
    monkeypatch.setattr(settings, "_warned", set())


@pytest.mark.parametrize("name", BOOLS)
@pytest.mark.parametrize("raw, value", [("1", True), ("0", False), ("true", True),
                                        ("FALSE", False), ("Yes", True), ("no", False),
                                        ("on", True), (" OFF ", False)])
def test_booleans_accept_the_usual_spellings(monkeypatch, name, raw, value):
    monkeypatch.setenv(name, raw)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SettingWarning)
        assert settings.get(name) is value


@pytest.mark.parametrize("name, raw, accepted", [
    ("GRAPHC_LOG", "recompile", "recompiles"),
    ("GRAPHC_CHECK", "ture", "true/false"),
    ("GRAPHC_NUM_THREADS", "abc", "integer at least 0"),
    ("GRAPHC_NUM_THREADS", "-2", "integer at least 0"),
    ("GRAPHC_BLOCK_ELEMENTS", "0", "integer at least 1"),
    ("GRAPHC_MARCH", "native -o /tmp/x", "x86-64-v3"),
    ("GRAPHC_POOL_BYTES", "1GB", "integer at least 0"),
])
def test_a_bad_value_warns_once_naming_the_accepted_ones(monkeypatch, name, raw, accepted):
    monkeypatch.setenv(name, raw)
    with pytest.warns(SettingWarning, match=re.escape(accepted)) as caught:
        assert settings.get(name) == SETTINGS[name].default
    assert name in str(caught[0].message) and repr(raw) in str(caught[0].message)
    assert caught[0].filename == __file__  # the reader's caller, not graphc's frame
    with warnings.catch_warnings():
        warnings.simplefilter("error", SettingWarning)  # the same value: no second warning
        monkeypatch.delenv(name)
        settings.get(name)
        monkeypatch.setenv(name, raw)
        assert settings.get(name) == SETTINGS[name].default


def test_another_bad_value_of_the_same_variable_warns_again(monkeypatch):
    for raw in ("abc", "x2"):
        monkeypatch.setenv("GRAPHC_NUM_THREADS", raw)
        with pytest.warns(SettingWarning, match=raw):
            settings.get("GRAPHC_NUM_THREADS")


def test_unset_or_empty_is_the_default(monkeypatch):
    for name, s in SETTINGS.items():
        monkeypatch.delenv(name, raising=False)
        assert settings.get(name) == s.default
        monkeypatch.setenv(name, "")
        assert settings.get(name) == s.default


def test_graphc_check_true_turns_check_mode_on(monkeypatch):
    monkeypatch.setenv("GRAPHC_CHECK", "true")  # was read as off: only "1" counted

    def broken(graph):  # a wrong pass: the result is the input
        return graphc.ir.Graph(graph.name, graph.inputs, graph.nodes, [graph.inputs[0]])
    g = graphc.compile(lambda x: x + 1.0, passes=[("broken", broken)])
    with pytest.raises(graphc.MismatchError):
        g(np.arange(3, dtype=F32))
    monkeypatch.setenv("GRAPHC_CHECK", "off")
    h = graphc.compile(lambda x: x + 1.0, passes=[("broken", broken)])
    np.testing.assert_array_equal(h(np.arange(3, dtype=F32)), np.arange(3, dtype=F32))


def test_graphc_log_is_a_checked_list(monkeypatch, capsys):
    f = graphc.compile(lambda x: x * 2.0, dynamic=False)  # every size a retrace
    f(np.ones(2, F32))
    monkeypatch.setenv("GRAPHC_LOG", "recompile")  # the typo of the issue: warns, no log
    with pytest.warns(SettingWarning, match="recompiles"):
        f(np.ones(3, F32))
    assert "recompiling" not in capsys.readouterr().err
    monkeypatch.setenv("GRAPHC_LOG", "Recompiles")
    f(np.ones(4, F32))
    assert "recompiling" in capsys.readouterr().err


# -- every read goes through the table ---------------------------------------------------

def _sources():
    for folder in ("graphc", "frontend", "passes", "backends"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name != "settings.py" or path.parent.name != "backends":
                yield path


def _environ_reads(tree: ast.AST):
    """(line, name) of each `os.environ.get("GRAPHC_...")`, `os.getenv(...)` and
    `os.environ["GRAPHC_..."]` read (writes, as the fuzzer's, are fine)."""
    for node in ast.walk(tree):
        target = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.args and isinstance(node.args[0], ast.Constant):
            name = ast.unparse(node.func)
            if name in ("os.environ.get", "os.getenv", "environ.get"):
                target = node.args[0].value
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and \
                ast.unparse(node.value) in ("os.environ", "environ") and \
                isinstance(node.slice, ast.Constant):
            target = node.slice.value
        if isinstance(target, str) and target.startswith("GRAPHC_"):
            yield node.lineno, target


def test_no_graphc_variable_is_read_around_the_table():
    stray = [f"{p.relative_to(ROOT)}:{line}: {name}" for p in _sources()
             for line, name in _environ_reads(ast.parse(p.read_text()))]
    assert not stray, "read these through backends.settings.get:\n" + "\n".join(stray)


def test_every_graphc_variable_named_in_the_code_is_in_the_table():
    named = set()
    for p in _sources():
        named |= set(re.findall(r"\bGRAPHC_[A-Z_]+[A-Z]\b", p.read_text()))
    assert named - set(SETTINGS) == set(), "declare these in backends/settings.py"


def _readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Environment variables")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def test_the_readme_documents_every_setting():
    # the rows come from settings.markdown_rows(); the table is the source of truth
    section = _readme_section()
    missing = [name for name in SETTINGS if f"`{name}" not in section]
    assert not missing, f"README's Environment variables section lacks {missing}"
    unknown = set(re.findall(r"\bGRAPHC_[A-Z_]+[A-Z]\b", section)) - set(SETTINGS)
    assert not unknown, f"README documents settings the table lacks: {unknown}"


def test_markdown_rows_cover_the_table():
    rows = settings.markdown_rows().splitlines()
    assert [r.split("`")[1] for r in rows] == list(SETTINGS)


def test_docstring_examples_run():
    import doctest
    result = doctest.testmod(settings)
    assert result.failed == 0 and result.attempted > 0
