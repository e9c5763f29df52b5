"""The IR: the printer's text form (golden), the parser, the verifier."""
import numpy as np
import pytest

import graphc
from graphc.errors import SourceLoc
from graphc.ir import Attrs, Graph, Node, TensorType, Value, parse

GOLDEN = """\
graph gelu(%x: f32[4,8]) -> (f32[4,8], f32[4,1]) {
  %0: f32[] = const {value=0.5}
  %1: f32[4,8] = mul %x, %0                             # model.py:12
  %2: f32[4,8] = tanh %1                                # model.py:12
  %3: f32[4,1] = sum %2 {axes=(1,), keepdims=true}      # model.py:13
  %4: f32[3] = const {value=[1.5, -inf, nan]}
  return %2, %3
}"""


def _build_golden() -> Graph:
    x = Value("x", TensorType((4, 8), "float32"))
    g = Graph("gelu", [x])
    loc12, loc13 = SourceLoc("/somewhere/model.py", 12), SourceLoc("model.py", 13)

    def add(op, inputs, loc=None, **attrs):
        a = Attrs(attrs)
        (t,) = graphc.ops.infer_types(op, tuple(v.type for v in inputs), a)
        node = Node(op, tuple(inputs), a, loc=loc)
        node.outputs = (Value(str(len(g.nodes)), t, node),)
        g.nodes.append(node)
        return node.output

    half = add("const", [], value=np.array(0.5, np.float32))
    y = add("tanh", [add("mul", [x, half], loc12)], loc12)
    s = add("sum", [y], loc13, axes=(1,), keepdims=True)
    add("const", [], value=np.array([1.5, -np.inf, np.nan], np.float32))
    g.outputs = [y, s]
    return g


def test_printer_golden():
    g = _build_golden()
    g.verify()
    assert str(g) == GOLDEN


def test_parse_golden_round_trip():
    g = parse(GOLDEN)
    g.verify()
    assert str(g) == GOLDEN
    assert g.nodes[1].loc == SourceLoc("model.py", 12)
    assert g.nodes[3].attrs["axes"] == (1,) and g.nodes[3].attrs["keepdims"] is True


def test_round_trip_keeps_exact_float_constants():
    values = np.array([0.1, 1 / 3, 1e-30, -2.5e12, 7.0], np.float64)

    def f(x):
        return x * values[0] + x * values[1] + x * values[2] + x * values[3] + x * values[4]

    g = graphc.trace(f, np.ones(2))
    again = parse(str(g))
    consts = [n.attrs["value"].array for n in again.nodes if n.op == "const"]
    np.testing.assert_array_equal(np.array(consts), values)
    np.testing.assert_array_equal(graphc.interpret(again, np.ones(2)),
                                  graphc.interpret(g, np.ones(2)))


def test_round_trip_large_constant_and_every_attribute_kind(rng):
    table = rng.standard_normal((20, 3)).astype(np.float32)
    big = rng.standard_normal(40)  # a closed-over constant: printed as base64

    def f(x, idx, table):
        y = np.concatenate([x, x[::-2]], axis=0)
        z = np.transpose(np.reshape(y, (-1, 1)), (1, 0))
        return table[idx] @ x.T, z.astype(np.float64) + big[:18], np.argmax(x, axis=1)

    x, idx = rng.standard_normal((4, 3)).astype(np.float32), np.array([3, -1])
    g = graphc.trace(f, x, idx, table)
    text = str(g)
    assert 'b64"' in text
    again = parse(text)
    assert str(again) == text
    for got, want in zip(graphc.interpret(again, x, idx, table),
                         graphc.interpret(g, x, idx, table)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("text, message", [
    ("", "empty text"),
    ("graph f(%x: f32[2]) -> (f32[2]) {\n  %0: f32[2] = exp %y\n  return %0\n}",
     "%y is used before it is defined"),
    ("graph f(%x: q7[2]) -> (q7[2]) {\n  return %x\n}", "unknown dtype q7"),
    ("graph f(%x: f32[2]) -> (f32[2]) {\n  %0: f32[2] = exp %x $\n}", "unexpected character"),
])
def test_parse_errors(text, message):
    with pytest.raises(graphc.IRParseError, match=message):
        parse(text)


def test_verify_rejects_wrong_types():
    text = GOLDEN.replace("%2: f32[4,8] = tanh", "%2: f64[4,8] = tanh")
    with pytest.raises(graphc.VerifyError, match="tanh gives f32"):
        parse(text).verify()


def test_verify_rejects_use_before_definition():
    g = _build_golden()
    g.nodes[1], g.nodes[2] = g.nodes[2], g.nodes[1]
    with pytest.raises(graphc.VerifyError, match="before it is defined"):
        g.verify()


def test_verify_rejects_duplicate_names_and_unknown_ops():
    g = _build_golden()
    g.nodes[2].outputs[0].name = "1"
    with pytest.raises(graphc.VerifyError, match="defined twice"):
        g.verify()
    g = _build_golden()
    g.nodes[2].op = "frobnicate"
    with pytest.raises(graphc.VerifyError, match="unknown primitive 'frobnicate'"):
        g.verify()


def test_verify_rejects_bad_attributes():
    # parse verifies what it read: the error names the line, and is a VerifyError
    with pytest.raises(graphc.VerifyError, match="line 5: .*axis 2 is out of range"):
        parse(GOLDEN.replace("axes=(1,)", "axes=(2,)"))
    g = _build_golden()
    g.nodes[3].attrs = Attrs({"axes": (2,), "keepdims": True})
    with pytest.raises(graphc.VerifyError, match="axis 2 is out of range"):
        g.verify()


def test_types_print_compactly():
    assert str(TensorType((), "bool")) == "bool[]"
    assert str(TensorType((2, 0, 3), "int64")) == "i64[2,0,3]"
    assert TensorType((2, 3), "float16").nbytes == 12
