"""Every primitive, one node at a time, against an independent reference.

The cases live in `tests/op_samples.py` (one table, by op name). For each case we
build a one-node graph by hand, so that these tests exercise the IR, the op's
shape/dtype rule, the reference interpreter and the numpy backend without the
frontend in between, then check:

* both the interpreter and the compiled numpy code give the reference's shape,
  dtype and values (exact for ints and bools, a dtype-sized tolerance for floats);
* the graph survives a round trip through the text IR.

The second half checks that the shape/dtype rules reject what they must, with the
right error class, and that every op has samples and a numpy lowering.
"""
from __future__ import annotations

import numpy as np
import pytest

import graphc
from graphc.backends.numpy import LOWERINGS, compile_graph
from graphc import dtypes, ops
from graphc.errors import DtypeError, ShapeError
from graphc.ir import Attrs, Graph, Node, TensorType, Value, parse

from op_samples import SAMPLES

# rtol = atol per float dtype: a few units in the last place of each format
# (float16 has an 11-bit significand, 2**-11 ~ 4.9e-4)
TOLERANCE = {"float16": 1e-3, "float32": 1e-6, "float64": 1e-12}


def one_node_graph(op: str, inputs, attrs) -> Graph:
    """%x0, %x1, ... -> op -> %y, typed by the op's own rule (no frontend involved)."""
    params = [Value(f"x{i}", TensorType(a.shape, dtypes.canonical(a.dtype)))
              for i, a in enumerate(inputs)]
    frozen = Attrs(attrs)
    out_types = ops.infer_types(op, tuple(v.type for v in params), frozen)
    node = Node(op, tuple(params), frozen, loc=None)
    node.outputs = tuple(Value("y" if len(out_types) == 1 else f"y{i}", t, node)
                         for i, t in enumerate(out_types))
    graph = Graph(f"{op}_sample", params, [node], list(node.outputs))
    graph.verify()
    return graph


def _case_id(op: str, index: int, inputs, attrs) -> str:
    """'add[3]:f32[3,1,4],f32[5,4]' (const and iota show their output's type)."""
    if inputs:
        sig = ",".join(str(TensorType(a.shape, dtypes.canonical(a.dtype))) for a in inputs)
    else:
        sig = "->" + str(one_node_graph(op, inputs, attrs).outputs[0].type)
    return f"{op}[{index}]:{sig}"


CASES = [pytest.param(op, i, id=_case_id(op, i, inputs, attrs))
         for op, cases in sorted(SAMPLES.items())
         for i, (inputs, attrs, _) in enumerate(cases)]


def run_interpreter(graph, inputs):
    return graphc.interpret(graph, *inputs)


def run_numpy_backend(graph, inputs):
    outputs = compile_graph(graph).fn(*inputs)
    assert isinstance(outputs, tuple) and len(outputs) == 1, outputs
    return outputs[0]


def assert_matches(got, want: np.ndarray, out_type: TensorType) -> None:
    """Same shape and dtype as the reference (and as the IR says), close values."""
    assert isinstance(got, np.ndarray), f"got a {type(got).__name__}, not an ndarray"
    assert got.shape == want.shape, f"shape {got.shape}, reference {want.shape}"
    assert got.dtype == want.dtype, f"dtype {got.dtype}, reference {want.dtype}"
    assert (got.shape, dtypes.canonical(got.dtype)) == (out_type.shape, out_type.dtype), \
        f"result is {got.dtype}{list(got.shape)} but the graph says {out_type}"
    tol = TOLERANCE.get(dtypes.canonical(want.dtype))
    if tol is None:  # ints and bools
        np.testing.assert_array_equal(got, want, strict=True)
        return
    want64 = want.astype(np.float64)
    # atol relative to the result's largest value, not a fixed 1e-6: a fixed atol
    # would hide exp(x) - 1 standing in for expm1(x) on tiny x
    finite = np.abs(want64[np.isfinite(want64)])
    scale = finite.max() if finite.size else 0.0
    np.testing.assert_allclose(got.astype(np.float64), want64, rtol=tol, atol=tol * scale,
                               equal_nan=True)


# ---------------------------------------------------------------- sample cases


def test_references_agree_with_the_shape_rules():
    """Guards the table itself: each reference's shape and dtype is the op's
    inferred type, so a wrong reference cannot silently pass as a backend bug."""
    bad = []
    for op, cases in SAMPLES.items():
        for i, (inputs, attrs, reference) in enumerate(cases):
            want = np.asarray(reference(*inputs, **attrs))
            (out,) = one_node_graph(op, inputs, attrs).outputs
            if (want.shape, dtypes.canonical(want.dtype)) != (out.type.shape, out.type.dtype):
                bad.append(f"{op}[{i}]: reference {want.dtype}{list(want.shape)}, "
                           f"rule {out.type}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("run", [run_interpreter, run_numpy_backend],
                         ids=["interpreter", "numpy"])
@pytest.mark.parametrize("op, index", CASES)
def test_op_matches_reference(op, index, run):
    inputs, attrs, reference = SAMPLES[op][index]
    graph = one_node_graph(op, inputs, attrs)
    before = [np.array(a) for a in inputs]
    with np.errstate(all="ignore"):  # the reference and the op may both see inf/nan
        got = run(graph, inputs)
        want = np.asarray(reference(*inputs, **attrs))
    assert_matches(got, want, graph.outputs[0].type)
    for a, b in zip(inputs, before):  # outputs never alias or overwrite the inputs
        np.testing.assert_array_equal(a, b, strict=True)
        assert not np.shares_memory(got, a)


@pytest.mark.parametrize("op, index", CASES)
def test_one_node_graph_round_trips_through_text(op, index):
    inputs, attrs, _ = SAMPLES[op][index]
    graph = one_node_graph(op, inputs, attrs)
    text = str(graph)
    again = parse(text)
    assert str(again) == text
    again.verify()
    # attributes (floats, -inf, nan, array literals) read back to equal values
    assert again.nodes[0].attrs == graph.nodes[0].attrs or _same_with_nan(
        again.nodes[0].attrs, graph.nodes[0].attrs)


def _same_with_nan(a: Attrs, b: Attrs) -> bool:
    """Attrs equality where a float nan equals a float nan (nan != nan in Python)."""
    if a.keys() != b.keys():
        return False
    return all(x == y or (isinstance(x, float) and isinstance(y, float) and x != x and y != y)
               for x, y in zip(a.values(), b.values()))


def missing_entries() -> dict[str, list[str]]:
    """Per per-op table, the primitives of `ops.OPS` it lacks, and the names it has
    that are not primitives (a stale entry never runs)."""
    from graphc.passes import precision
    from graphc.passes.autodiff import VJP
    accumulating = {n for n, op in ops.OPS.items() if op.rounding is ops.Rounding.ACCUMULATES}
    differentiable = {n for n, op in ops.OPS.items() if op.differentiable}
    tables = {  # table -> (the names it should have, the names it has)
        "tests/op_samples.py SAMPLES": (set(ops.OPS), set(SAMPLES)),
        "backends.numpy.LOWERINGS": (set(ops.OPS), set(LOWERINGS)),
        "passes.autodiff.VJP (or differentiable=False)": (differentiable, set(VJP)),
        "passes.precision.TERMS (Rounding.ACCUMULATES)": (accumulating, set(precision.TERMS)),
    }
    out = {}
    for table, (want, have) in tables.items():
        if want - have:
            out[f"missing from {table}"] = sorted(want - have)
        if have - want:
            out[f"stale in {table}"] = sorted(have - want)
    return out


def test_every_primitive_is_in_every_per_op_table():
    missing = missing_entries()
    assert not missing, "\n".join(f"{k}: {v}" for k, v in missing.items())


# ---------------------------------------------------------------- rule errors


def T(shape, dtype="float32") -> TensorType:
    return TensorType(shape, dtype)


_CONV = {"stride": (1, 1), "padding": (0, 0), "dilation": (1, 1), "groups": 1}
_POOL = {"kernel": (2, 2), "stride": (2, 2), "padding": (0, 0)}

# (op, input types, attrs, expected error); grouped by family, each says why
REJECTED = [
    # elementwise: numpy broadcasting, one dtype per op, dtype families
    ("add", [T((3,)), T((4,))], {}, ShapeError),                   # 3 vs 4
    ("mul", [T((2, 3)), T((3, 2))], {}, ShapeError),
    ("add", [T((3,)), T((3,), "float64")], {}, DtypeError),        # no implicit promotion
    ("sub", [T((3,), "int32"), T((3,), "int64")], {}, DtypeError),
    ("lt", [T((2,)), T((2,), "int32")], {}, DtypeError),
    ("exp", [T((3,), "int32")], {}, DtypeError),                   # float-only math
    ("div", [T((3,), "int64"), T((3,), "int64")], {}, DtypeError),
    ("neg", [T((3,), "bool")], {}, DtypeError),
    ("logical_and", [T((2,)), T((2,))], {}, DtypeError),           # bool-only
    ("logical_not", [T((2,), "int32")], {}, DtypeError),
    ("where", [T((3,)), T((3,)), T((3,))], {}, DtypeError),        # non-bool condition
    ("where", [T((3,), "bool"), T((3,)), T((3,), "float64")], {}, DtypeError),
    ("where", [T((2,), "bool"), T((3,)), T((3,))], {}, ShapeError),
    # reductions: axes in range, sorted and distinct; no max/argmax of nothing
    ("sum", [T((2, 3))], {"axes": (2,), "keepdims": False}, ShapeError),
    ("sum", [T(())], {"axes": (0,), "keepdims": False}, ShapeError),
    ("max", [T((2, 3))], {"axes": (1, 0), "keepdims": False}, ShapeError),
    ("min", [T((2, 3))], {"axes": (1, 1), "keepdims": False}, ShapeError),
    ("max", [T((0, 3))], {"axes": (0,), "keepdims": False}, ShapeError),
    ("min", [T((2, 0))], {"axes": (0, 1), "keepdims": True}, ShapeError),
    ("argmax", [T((3, 0))], {"axis": 1, "keepdims": False}, ShapeError),
    ("argmax", [T((3, 4))], {"axis": 2, "keepdims": False}, ShapeError),
    ("sum", [T((3,), "bool")], {"axes": (0,), "keepdims": False}, DtypeError),
    # shape ops
    ("reshape", [T((2, 3))], {"shape": (4, 2)}, ShapeError),        # 6 vs 8 elements
    ("reshape", [T((2, 3))], {"shape": (-1, 3)}, ShapeError),       # -1 resolved upstream
    ("transpose", [T((2, 3))], {"perm": (0, 0)}, ShapeError),       # not a permutation
    ("transpose", [T((2, 3))], {"perm": (1, 2)}, ShapeError),
    ("transpose", [T((2, 3, 4))], {"perm": (1, 0)}, ShapeError),
    ("broadcast_to", [T((3,))], {"shape": (4,)}, ShapeError),
    ("broadcast_to", [T((2, 3))], {"shape": (3,)}, ShapeError),     # cannot drop axes
    ("slice", [T((5,))], {"starts": (0,), "stops": (5,), "steps": (0,)}, ShapeError),
    ("slice", [T((5,))], {"starts": (0,), "stops": (9,), "steps": (1,)}, ShapeError),
    # forms slice.indices never returns, on which x[a:b:s] and len(range(a, b, s)) differ
    ("slice", [T((5,))], {"starts": (0,), "stops": (-1,), "steps": (1,)}, ShapeError),
    ("slice", [T((5,))], {"starts": (5,), "stops": (-1,), "steps": (-1,)}, ShapeError),
    ("slice", [T((5,))], {"starts": (-1,), "stops": (-1,), "steps": (-1,)}, ShapeError),
    ("slice", [T((5, 2))], {"starts": (0,), "stops": (5,), "steps": (1,)}, ShapeError),
    ("concat", [T((2, 3)), T((2, 4)), T((1, 3))], {"axis": 0}, ShapeError),
    ("concat", [T((2, 3)), T((2, 3, 1))], {"axis": 0}, ShapeError),
    ("concat", [T((2,)), T((2,), "int32")], {"axis": 0}, DtypeError),
    ("concat", [T((2,)), T((2,))], {"axis": 1}, ShapeError),
    ("pad", [T((2, 3))], {"widths": ((1, 1),), "value": 0.0}, ShapeError),
    ("pad", [T((2,))], {"widths": ((-1, 0),), "value": 0.0}, ShapeError),
    ("gather", [T((5, 3)), T((2,), "float32")], {"axis": 0}, DtypeError),  # float indices
    ("gather", [T((5, 3)), T((2,), "bool")], {"axis": 0}, DtypeError),
    ("gather", [T((5, 3)), T((2,), "int64")], {"axis": 2}, ShapeError),
    ("gather", [T((0, 3)), T((2,), "int64")], {"axis": 0}, ShapeError),     # nothing to take
    ("iota", [], {"shape": (2, 3), "axis": 2, "dtype": "int32"}, ShapeError),
    ("cast", [T((2,))], {"dtype": "complex64"}, DtypeError),
    # matmul
    ("matmul", [T((3, 4)), T((5, 6))], {}, ShapeError),              # inner 4 vs 5
    ("matmul", [T((2, 3, 4)), T((3, 4, 5))], {}, ShapeError),        # batch 2 vs 3
    ("matmul", [T((4,)), T((4, 2))], {}, ShapeError),                # rank 1 is frontend's
    ("matmul", [T((2, 2)), T((2, 2), "float64")], {}, DtypeError),
    ("matmul", [T((2, 2), "bool"), T((2, 2), "bool")], {}, DtypeError),
    # conv2d: channels must match weight's in-channels times groups
    ("conv2d", [T((1, 3, 5, 5)), T((4, 2, 3, 3))],
     {"stride": (1, 1), "padding": (0, 0), "dilation": (1, 1), "groups": 1}, ShapeError),
    ("conv2d", [T((1, 4, 5, 5)), T((3, 2, 3, 3))],                   # 3 out % 2 groups
     {"stride": (1, 1), "padding": (0, 0), "dilation": (1, 1), "groups": 2}, ShapeError),
    ("conv2d", [T((1, 3, 5, 5)), T((3, 1, 3, 3))],                   # 3 channels, 2 groups
     {"stride": (1, 1), "padding": (0, 0), "dilation": (1, 1), "groups": 2}, ShapeError),
    ("conv2d", [T((1, 1, 3, 3)), T((1, 1, 3, 3))],                   # dilated 5x5 kernel
     {"stride": (1, 1), "padding": (0, 0), "dilation": (2, 2), "groups": 1}, ShapeError),
    ("conv2d", [T((1, 1, 5, 5)), T((1, 1, 3, 3))],
     {"stride": (0, 1), "padding": (0, 0), "dilation": (1, 1), "groups": 1}, ShapeError),
    ("conv2d", [T((1, 1, 5, 5), "int32"), T((1, 1, 3, 3), "int32")],
     {"stride": (1, 1), "padding": (0, 0), "dilation": (1, 1), "groups": 1}, DtypeError),
    ("conv2d", [T((1, 5, 5)), T((1, 1, 3, 3))],
     {"stride": (1, 1), "padding": (0, 0), "dilation": (1, 1), "groups": 1}, ShapeError),
    # pooling
    ("max_pool2d", [T((1, 1, 4, 4))], {"kernel": (5, 5), "stride": (1, 1), "padding": (0, 0)},
     ShapeError),                                                     # window too big
    ("avg_pool2d", [T((1, 1, 4, 4))], {"kernel": (2, 2), "stride": (1, 1), "padding": (2, 2)},
     ShapeError),                                                     # pad > kernel / 2
    ("max_pool2d", [T((4, 4))], {"kernel": (2, 2), "stride": (2, 2), "padding": (0, 0)},
     ShapeError),
    ("avg_pool2d", [T((1, 1, 4, 4), "int32")],
     {"kernel": (2, 2), "stride": (2, 2), "padding": (0, 0)}, DtypeError),
    ("max_pool2d", [T((1, 1, 4, 4), "bool")],
     {"kernel": (2, 2), "stride": (2, 2), "padding": (0, 0)}, DtypeError),
    # conv/pool gradients: the cotangent must be the forward output's shape
    ("conv2d_grad_input", [T((1, 4, 3, 3)), T((4, 2, 3, 3))],        # forward gives 4x4
     {**_CONV, "input_shape": (1, 2, 6, 6)}, ShapeError),
    ("conv2d_grad_input", [T((1, 4, 4, 4)), T((4, 3, 3, 3))],        # 2 channels, not 3
     {**_CONV, "input_shape": (1, 2, 6, 6)}, ShapeError),
    ("conv2d_grad_input", [T((1, 4, 4, 4)), T((4, 2, 3, 3))],
     {**_CONV, "input_shape": (2, 6, 6)}, ShapeError),
    ("conv2d_grad_input", [T((1, 4, 4, 4)), T((4, 2, 3, 3), "float64")],
     {**_CONV, "input_shape": (1, 2, 6, 6)}, DtypeError),
    ("conv2d_grad_weight", [T((1, 2, 6, 6)), T((1, 4, 4, 5))],
     {**_CONV, "weight_shape": (4, 2, 3, 3)}, ShapeError),
    ("conv2d_grad_weight", [T((1, 2, 6, 6)), T((1, 4, 4, 4))],       # 4 out % 3 groups
     {**_CONV, "groups": 3, "weight_shape": (4, 2, 3, 3)}, ShapeError),
    ("conv2d_grad_weight", [T((1, 2, 6, 6), "int32"), T((1, 4, 4, 4), "int32")],
     {**_CONV, "weight_shape": (4, 2, 3, 3)}, DtypeError),
    ("max_pool2d_grad", [T((1, 1, 4, 4)), T((1, 1, 3, 3))], _POOL, ShapeError),
    ("max_pool2d_grad", [T((1, 1, 4, 4), "int32"), T((1, 1, 2, 2), "int32")], _POOL,
     DtypeError),
    ("max_pool2d_gather", [T((1, 1, 4, 4)), T((1, 1, 2, 2))], _POOL, ShapeError),
    ("max_pool2d_gather", [T((1, 1, 4, 4)), T((1, 1, 4, 4), "float64")], _POOL, DtypeError),
    ("avg_pool2d_grad", [T((1, 1, 2, 2))], {**_POOL, "input_shape": (1, 1, 6, 6)}, ShapeError),
    ("avg_pool2d_grad", [T((1, 1, 2, 2))], {**_POOL, "input_shape": (1, 1, 4, -4)},
     ShapeError),
    ("avg_pool2d_grad", [T((1, 1, 2, 2), "int64")], {**_POOL, "input_shape": (1, 1, 4, 4)},
     DtypeError),
]


def _rejected_id(op, in_types, attrs, error) -> str:
    return f"{op}:{','.join(map(str, in_types))}:{error.__name__}"


@pytest.mark.parametrize("op, in_types, attrs, error",
                         [pytest.param(*r, id=_rejected_id(*r)) for r in REJECTED])
def test_rule_rejects(op, in_types, attrs, error):
    with pytest.raises(error) as info:
        ops.infer_types(op, tuple(in_types), Attrs(attrs))
    # the other class would mean the rule blamed the wrong thing
    other = DtypeError if error is ShapeError else ShapeError
    assert not isinstance(info.value, other)
