"""A graph text is data, never code (issue 19, item 3).

Every attribute of every primitive has a schema; a graph text holding anything else
is refused by `parse` (IRParseError naming the line), a graph built in Python with it
by `verify`, `interpret` and the numpy backend (VerifyError); and none of it ever
runs: nothing printed, no file created. The backend renders attributes only through
its own formatter (backends/numpy/literals.py).
"""
from __future__ import annotations

import numpy as np
import pytest

import graphc
from graphc import dtypes, ops
from graphc.backends.numpy import compile_graph, literals
from graphc.errors import GraphcError, IRParseError, SourceLoc, VerifyError
from graphc.ir import Attrs, Graph, Node, TensorType, Value, parse
from graphc.ops.schema import KINDS

from op_samples import SAMPLES

# the string from the issue: pasted as keepdims, it ran a shell command
ISSUE = ("True, dtype=None) + np.add(0, 0 if __import__('os').system('echo INJECTED') "
         "else 0")


def payload(marker) -> str:
    """An expression that, were it ever run as Python, would create `marker`."""
    return f"__import__('os').system('touch {marker}') or 0"


def sample_graph(op: str) -> tuple[Graph, list[np.ndarray]]:
    """A one-node graph of `op` from its first sample case, and its inputs."""
    inputs, attrs, _ = SAMPLES[op][0]
    params = [Value(f"x{i}", TensorType(a.shape, dtypes.canonical(a.dtype)))
              for i, a in enumerate(inputs)]
    frozen = Attrs(attrs)
    out_types = ops.infer_types(op, tuple(v.type for v in params), frozen)
    node = Node(op, tuple(params), frozen, loc=SourceLoc("model.py", 3))
    node.outputs = tuple(Value(f"y{i}", t, node) for i, t in enumerate(out_types))
    return Graph(f"{op}_sample", params, [node], list(node.outputs)), inputs


def with_attr(graph: Graph, name: str, value) -> Graph:
    """`graph` with its node's attribute `name` set to `value` (no check)."""
    (node,) = graph.nodes
    node.attrs = Attrs({**node.attrs, name: value})
    return graph


def _every_attribute():
    for op_name, op in sorted(ops.OPS.items()):
        for attr in list(op.attrs) + [name for name, _ in op.optional]:
            yield pytest.param(op_name, attr, id=f"{op_name}.{attr}")


EVERY_ATTRIBUTE = list(_every_attribute())


def test_every_attribute_of_every_primitive_has_a_schema():
    for op in ops.OPS.values():
        schema = dict(op.schema)
        for name in list(op.attrs) + [name for name, _ in op.optional]:
            assert name in schema and schema[name].kind in KINDS, (op.name, name)


def test_every_primitive_with_attributes_has_a_sample():
    # the injection tests below build their graphs from the op samples
    assert [op.name for op in ops.OPS.values() if op.attrs and op.name not in SAMPLES] == []


def test_the_issues_string_is_refused_at_parse_and_runs_nothing(capfd):
    g = graphc.trace(lambda x: np.sum(x, axis=1, keepdims=True), np.ones((2, 3), np.float32))
    text = str(g).replace("keepdims=true", f'keepdims="{ISSUE}"')
    assert ISSUE in text
    with pytest.raises(IRParseError, match=r"line 2: .*keepdims=.*expected a bool"):
        parse(text)
    bad = with_attr(sample_graph("sum")[0], "keepdims", ISSUE)
    with pytest.raises(VerifyError, match="keepdims"):
        bad.verify()
    with pytest.raises(VerifyError, match="keepdims"):
        compile_graph(bad)
    with pytest.raises(VerifyError, match="keepdims"):
        graphc.interpret(bad, np.ones((2, 3), np.float32))
    assert "INJECTED" not in capfd.readouterr().out


@pytest.mark.parametrize("op, attr", EVERY_ATTRIBUTE)
def test_a_string_attribute_is_refused_everywhere(op, attr, tmp_path, capfd):
    marker = tmp_path / "ran"
    graph, inputs = sample_graph(op)
    bad = with_attr(graph, attr, payload(marker))
    text = str(bad)  # the printer shows what it holds; the parser refuses it
    with pytest.raises(IRParseError, match=rf"line 2: .*attribute {attr}="):
        parse(text)
    with pytest.raises(VerifyError, match=f"attribute {attr}="):
        bad.verify()
    with pytest.raises(VerifyError):
        compile_graph(bad)
    with pytest.raises(VerifyError):
        graphc.interpret(bad, *inputs)
    assert not marker.exists()
    assert "ran" not in capfd.readouterr().out


class _EvilInt(int):
    """An int whose repr is code: only exact ints may be rendered."""

    def __repr__(self):
        return "__import__('os').system('echo EVIL') or 0"

    __str__ = __repr__


@pytest.mark.parametrize("op, attr", EVERY_ATTRIBUTE)
def test_a_value_of_the_wrong_kind_is_refused(op, attr, capfd):
    graph, inputs = sample_graph(op)
    kind = dict(ops.OPS[op].schema)[attr].kind
    good = graph.nodes[0].attrs.get(attr, False)
    # an int subclass where an int is, a tuple of one where a scalar is, and so on
    wrong = {"bool": 1, "int": _EvilInt(1), "axis": _EvilInt(0), "scalar": "0",
             "dtype": "float32; import os", "literal": 1.5}.get(kind)
    if wrong is None:  # the tuple kinds: a tuple holding an evil int
        wrong = (_EvilInt(1),) + tuple(good)[1:] if good else (_EvilInt(1),)
    bad = with_attr(graph, attr, wrong)
    with pytest.raises(VerifyError, match=f"attribute {attr}="):
        bad.verify()
    with pytest.raises(VerifyError):
        compile_graph(bad)
    text = str(bad)  # the printer writes an int's value, never its repr
    assert "__import__" not in text
    try:
        parse(text)
    except IRParseError:
        pass
    assert "EVIL" not in capfd.readouterr().out


@pytest.mark.parametrize("text, message", [
    # each a valid graph's line with one attribute value out of its schema's range
    ("%0: f32[2,1] = sum %x {axes=(1, 1), keepdims=false}", "repeat"),
    ("%0: f32[3,2] = transpose %x {perm=(1, 1)}", "permutation"),
    ("%0: f32[6] = reshape %x {shape=(-6,)}", "non-negative"),
    ("%0: f32[6] = reshape %x {shape=(4611686018427387904, 4)}", "fits in int64"),
    ("%0: f32[2,3] = cast %x {dtype=complex64}", "expected one of"),
    ("%0: f32[2,3] = round %x {decimals=1.5}", "expected an int"),
    ("%0: f32[2,3] = round %x {decimals=99999999}", "in -10000..10000"),
    ("%0: f32[4,5] = pad %x {widths=((1, 1), (1, 1)), value=\"0\"}", "a number"),
    ("%0: f32[4,5] = pad %x {widths=((1, 1), (-1, 3)), value=0.0}", "pairs of ints"),
    ("%0: f32[2,3] = slice %x {starts=(0, 0), stops=(2, 3), steps=(1, 0)}", "nonzero"),
    ("%0: i64[2] = argmax %x {axis=true, keepdims=false}", "expected an int in 0..1"),
    ("%0: f32[2,3] = cumsum %x {axis=-1}", "axis -1 is out of range"),
])
def test_out_of_range_values_are_refused_at_parse(text, message):
    graph = f"graph g(%x: f32[2,3]) -> (f32[2,3]) {{\n  {text}\n  return %x\n}}"
    with pytest.raises(IRParseError, match=f"line 2: .*{message}"):
        parse(graph)


@pytest.mark.parametrize("text, message", [
    ("graph f(%x: f32[4,.8]) -> (f32[4]) {\n  return %x\n}", "non-negative int64, not .8"),
    ("graph f(%x: f32[-1]) -> (f32[-1]) {\n  return %x\n}", "non-negative int64"),
    ("graph f(%x: f32[inf]) -> (f32[2]) {\n  return %x\n}", "non-negative int64"),
    ("graph f(%x: f32[99999999999999999999]) -> () {\n  return\n}", "non-negative int64"),
    ("graph f(%x: f32[4294967296,4294967296]) -> () {\n  return\n}", "fit in int64"),
    ("graph f() -> (f32[2]) {\n  %0: f32[2] = const {value=[1.0]}\n  return %0\n}",
     "does not make a f32\\[2\\] array"),
    ("graph f() -> (f32[2]) {\n  %0: f32[2] = const {value=b64\"AAA\"}\n  return %0\n}",
     "base64"),
    ("graph f() -> (f32[2]) {\n  %0: f32[2] = const {value=\"1\"}\n  return %0\n}",
     "not a str"),
    ("graph f() -> (i32[]) {\n  %0: i32[] = const {value=99999999999}\n  return %0\n}",
     "does not make"),
    ("graph f() -> (bf16[]) {\n  %0: bf16[] = const {value=1.0}\n  return %0\n}",
     "bfloat16"),
    ("graph f() -> (i64[]) {\n  %0: i64[] = const {value=" + "9" * 5000 + "}\n  return %0\n}",
     "does not fit in int64"),
    ("graph f(%x: f32[2]) -> (f32[2]) {\n  %0: f32[2] = neg %x {a=" + "(" * 500 +
     "}\n  return %0\n}", "nested deeper"),
    ("graph f(%x: f32[2]) -> (f32[2]) {\n  %0: f32[2] = neg %x  # a.py:\u00b2\n  return %0\n}",
     None),  # a superscript digit is no line number: no location, no error
    ("graph f(%x: f32[2,3]) -> (f32[2]) {\n  %0: f32[2] = sum %x {axes=(1,), axes=(1,), "
     "keepdims=false}\n  return %0\n}", "given twice"),
    ("graph f(%x: f32[2]) -> (f64[2]) {\n  return %x\n}", "line 1: the header says"),
    ("graph f(%x: f32[2]) -> (f32[2]) {\n  %0: f32[2] = exp %x {axis=0}\n  return %0\n}",
     "line 2: .*do not match"),
])
def test_malformed_text_is_an_ir_parse_error(text, message):
    if message is None:
        assert parse(text).nodes[0].loc is None
        return
    with pytest.raises(IRParseError, match=message):
        parse(text)


def test_a_fused_text_names_only_known_kinds_of_kernel():
    g = graphc.compile(lambda x: np.tanh(x) * 2.0).lower(np.ones(3, np.float32)).optimized
    text = str(g).replace("elementwise", "bogus")
    with pytest.raises(IRParseError, match="line 3: .*kind 'bogus'"):
        parse(text)


def test_a_source_location_cannot_leave_its_comment(tmp_path, capfd):
    # a file name from a graph text lands in comments of the generated Python and C,
    # and the C sits in a Python string: it must not close either
    marker = tmp_path / "ran"
    escape = f'x"""+{payload(marker)}+r"""\\'
    g = graphc.trace(lambda x: np.tanh(x) * 2.0 + 1.0, np.ones((64, 64), np.float32))
    text = "\n".join(line.split("  #")[0] + (f"  # {escape}.py:7" if " = " in line else "")
                      for line in str(g).splitlines())
    graph = parse(text)
    assert graph.nodes[0].loc.file == f"{escape}.py"
    from graphc.fuzz import compile_optimized, native_available
    for mode in ("plain", "blocks") + (("native",) if native_available() else ()):
        exe = compile_optimized(graph, mode)
        x = np.full((64, 64), 0.5, np.float32)
        np.testing.assert_allclose(exe.fn(x)[0], np.tanh(x) * 2 + 1, rtol=1e-6)
    assert not marker.exists()
    assert "ran" not in capfd.readouterr().out


def test_the_backend_formatter_renders_only_validated_values():
    assert literals.py(((0, 1), (2, 3))) == repr(((0, 1), (2, 3)))
    assert literals.py((0.5, float("nan"), True)) == "(0.5, float('nan'), True)"
    assert literals.c_double(float("-inf")) == "(-INFINITY)"
    for bad in ("x", _EvilInt(3), (1, "y"), [1, 2], None, np.float32(1.0), b"1"):
        with pytest.raises(VerifyError):
            literals.py(bad)
    assert literals.c_comment('a"""b\\ */ ??/\nz') == "a'''b/ * / ? ?/ z"
    assert literals.py_comment("one\ntwo\rthree\u2028") == "one two three "


def test_valid_graphs_generate_the_same_text_as_before():
    # the formatter keeps generated code as it was for every sample of every op
    for op in sorted(SAMPLES):
        graph, _ = sample_graph(op)
        (node,) = graph.nodes
        source = compile_graph(graph).source
        for name, value in node.attrs.items():
            if type(value) is tuple and value:
                assert repr(value) in source or op in ("slice", "iota", "const"), (op, name)


def test_errors_are_graphc_errors_with_a_hint():
    bad = with_attr(sample_graph("transpose")[0], "perm", "(1, 0)")
    with pytest.raises(GraphcError) as info:
        bad.verify()
    assert "schema" in info.value.hint and "expected a permutation" in str(info.value)
