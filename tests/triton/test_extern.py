"""The Triton backend's host ops (`graphc.backends.triton.extern.HOST`) on torch CPU
tensors, against the independent references of `tests/op_samples.py`.

For every sample of every host op: build the one-node graph, render the op's torch
expression over arguments named x0, x1, ..., evaluate it with torch tensors made from
the inputs and compare with the case's reference: the IR's shape and dtype exactly,
values bit for bit where the op only moves or picks data (and for ints and bools), a
dtype-sized tolerance where it accumulates (as tests/test_ops.py does). Then what the
samples cannot show: the table covers exactly the ops that are no kernel, views stay
views, negative slice steps, gather's IndexingError, philox across its chunks, the
sign of cumsum's zeros, and that attributes are checked before they become code.

No triton is needed: the host ops are torch calls.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TRITON_INTERPRET", "1")  # if the package's __init__ loads triton
torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from graphc import dtypes, ops  # noqa: E402
from graphc.backends.triton import extern as ext  # noqa: E402
from graphc.errors import IndexingError  # noqa: E402
from graphc.ir import Attrs, Graph, Node, TensorType, Value  # noqa: E402
from graphc.ops import random as philox_reference  # noqa: E402

from op_samples import SAMPLES  # noqa: E402

# rtol = atol (relative to the result's largest value) per float dtype: a few units in
# the last place, as tests/test_ops.py (float16's significand has 11 bits, 2**-11)
TOLERANCE = {"float16": 1e-3, "float32": 1e-6, "float64": 1e-12}
NOT_HOST = {ops.Kind.ELEMENTWISE, ops.Kind.REDUCTION, ops.Kind.MATMUL, ops.Kind.SOURCE}


def one_node_graph(op: str, inputs, attrs) -> Graph:
    """%x0, %x1, ... -> op -> %y, typed by the op's own rule (as tests/test_ops.py)."""
    params = [Value(f"x{i}", TensorType(a.shape, dtypes.canonical(a.dtype)))
              for i, a in enumerate(inputs)]
    frozen = Attrs(attrs)
    (out_type,) = ops.infer_types(op, tuple(v.type for v in params), frozen)
    node = Node(op, tuple(params), frozen, loc=None)
    node.outputs = (Value("y", out_type, node),)
    graph = Graph(f"{op}_sample", params, [node], list(node.outputs))
    graph.verify()
    return graph


def run_host(op: str, inputs, attrs) -> tuple[torch.Tensor, TensorType, str]:
    """The op's rendered expression, evaluated as the generated module would: with
    torch, F and ext in scope and the inputs as torch tensors (sharing their memory)."""
    node = one_node_graph(op, inputs, attrs).nodes[0]
    names = [v.name for v in node.inputs]
    expr = ext.HOST[op].call(names, node.attrs, node)
    scope = {"torch": torch, "F": F, "ext": ext}
    scope.update((n, torch.from_numpy(a)) for n, a in zip(names, inputs))
    return eval(expr, scope), node.outputs[0].type, expr  # noqa: S307 - under test


def torch_name(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def assert_same_bits(got: np.ndarray, want: np.ndarray) -> None:
    """Equal values, NaN where NaN, and the same sign on every zero."""
    np.testing.assert_array_equal(got, want, strict=True)
    if want.dtype.kind == "f":
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


def assert_close(got: np.ndarray, want: np.ndarray) -> None:
    tol = TOLERANCE[dtypes.canonical(want.dtype)]
    want64 = want.astype(np.float64)
    finite = np.abs(want64[np.isfinite(want64)])
    scale = finite.max() if finite.size else 0.0
    np.testing.assert_allclose(got.astype(np.float64), want64, rtol=tol, atol=tol * scale,
                               equal_nan=True)


CASES = [pytest.param(op, i, id=f"{op}[{i}]")
         for op in sorted(ext.HOST) for i in range(len(SAMPLES.get(op, [])))]


@pytest.mark.parametrize("op, index", CASES)
def test_host_op_matches_reference(op, index):
    inputs, attrs, reference = SAMPLES[op][index]
    inputs = [np.array(a) for a in inputs]  # own copies: the inputs are shared below
    before = [a.copy() for a in inputs]
    got, out_type, expr = run_host(op, inputs, attrs)
    assert isinstance(got, torch.Tensor), expr
    assert (tuple(got.shape), torch_name(got)) == (out_type.shape, out_type.dtype), \
        f"{expr} gives {torch_name(got)}{list(got.shape)}, the IR says {out_type}"
    with np.errstate(all="ignore"):
        want = np.asarray(reference(*[a.copy() for a in inputs], **attrs))
    got = got.numpy()
    exact = ops.OPS[op].rounding is ops.Rounding.EXACT or want.dtype.kind in "biu"
    (assert_same_bits if exact else assert_close)(got, want)
    for a, b in zip(inputs, before):  # a host op never writes into its inputs
        assert_same_bits(a, b)


def test_every_op_without_a_kernel_runs_on_the_host():
    """HOST holds exactly the ops that are neither elementwise, reductions, matmul nor
    sources (those become Triton kernels or hoisted constants; `size`, whose sizes are
    static on this backend, is one), each with samples."""
    from graphc.backends.triton.lowering import LOWERINGS
    want = {n for n, op in ops.OPS.items() if op.kind not in NOT_HOST
            and LOWERINGS[n].kind != "source"}
    assert set(ext.HOST) == want, (sorted(want - set(ext.HOST)), sorted(set(ext.HOST) - want))
    assert not [op for op in ext.HOST if not SAMPLES.get(op)]


@pytest.mark.parametrize("op", sorted(ext.HOST))
def test_why_is_one_line(op):
    why = ext.HOST[op].why
    assert why and "\n" not in why and len(why) <= 160, why


VIEWS = ["reshape", "transpose", "broadcast_to", "slice"]


@pytest.mark.parametrize("op", VIEWS)
def test_views_share_the_input_storage(op):
    """Views stay views: no copy, except a slice's flip (a negative step)."""
    checked = 0
    for inputs, attrs, _ in SAMPLES[op]:
        x = np.array(inputs[0])
        got, _, expr = run_host(op, [x], attrs)
        if ".flip(" in expr or got.numel() == 0:
            continue
        assert got.untyped_storage().data_ptr() == x.ctypes.data, expr
        checked += 1
    assert checked


@pytest.mark.parametrize("key, want", [
    ((slice(8, 1, -3),), "x0[2:9:3].flip((0,))"),   # picks 8, 5, 2
    ((slice(None, None, -1),), "x0[:].flip((0,))"),
    ((slice(3, None, -100),), "x0[3:4]"),           # one element: nothing to flip
    ((slice(5, 5, -1),), "x0[0:0]"),                # empty
    ((slice(None, None, 2),), "x0[0:10:2]")])
def test_negative_steps_slice_forwards_then_flip(key, want):
    x = np.arange(10.0)
    norm = [k.indices(10) for k in key]
    attrs = {"starts": tuple(a for a, _, _ in norm), "stops": tuple(b for _, b, _ in norm),
             "steps": tuple(s for _, _, s in norm)}
    if not len(range(*norm[0])):  # the normalized form of an empty slice
        attrs = {"starts": (0,), "stops": (0,), "steps": (1,)}
    got, _, expr = run_host("slice", [x], attrs)
    assert expr == want
    assert_same_bits(got.numpy(), x[key])


def test_slices_of_every_step_sign_match_numpy():
    """Random slices, both step signs on every axis of a 3-d array, against numpy."""
    rng = np.random.default_rng(13)
    x = rng.standard_normal((5, 6, 7))
    for _ in range(60):
        key = tuple(slice(int(rng.integers(-9, 9)), int(rng.integers(-9, 9)),
                          int(rng.choice([-3, -2, -1, 1, 2, 4]))) for _ in range(3))
        norm = []
        for k, n in zip(key, x.shape):
            a, b, s = k.indices(n)
            norm.append((a, b, s) if len(range(a, b, s)) else (0, 0, 1))
        attrs = {"starts": tuple(a for a, _, _ in norm),
                 "stops": tuple(b for _, b, _ in norm), "steps": tuple(s for _, _, s in norm)}
        got, _, expr = run_host("slice", [x], attrs)
        assert_same_bits(got.numpy(), x[key])


@pytest.mark.parametrize("op", ["gather", "scatter_add"])
@pytest.mark.parametrize("bad", [5, -6, 99])
def test_indices_out_of_range_raise_indexing_error_with_numpys_words(op, bad):
    x = np.arange(15.0).reshape(5, 3)
    idx = np.array([0, bad, 1], np.int64)
    with pytest.raises(IndexError) as numpy_error:
        np.take(x, idx, axis=0)
    inputs = [x, idx] + ([np.ones((3, 3))] if op == "scatter_add" else [])
    node = one_node_graph(op, inputs, {"axis": 0}).nodes[0]
    expr = ext.HOST[op].call([v.name for v in node.inputs], node.attrs, node)
    scope = {"torch": torch, "F": F, "ext": ext}
    scope.update((v.name, torch.from_numpy(a)) for v, a in zip(node.inputs, inputs))
    with pytest.raises(IndexingError) as ours:
        eval(expr, scope)  # noqa: S307 - under test
    assert ours.value.message == str(numpy_error.value)
    assert ext.USER_FAILURES[op] is IndexingError


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("seed, offset", [(0, 0), (-5, 3), (2**62 + 7, 2**33 - 5),
                                          (-(2**63), 1)])
def test_philox_matches_the_reference_bit_for_bit_across_chunks(monkeypatch, dtype, seed,
                                                                offset):
    """A draw of 61 elements in chunks of 3 blocks (the offset splitting the first
    block), against graphc.ops.random's numpy generator: the same bits."""
    monkeypatch.setattr(ext, "_CHUNK", 3)
    got = ext.philox_uniform(torch.tensor(seed, dtype=torch.int64), (61,), offset,
                             getattr(torch, dtype))
    want = philox_reference.philox_uniform(np.int64(seed), (61,), offset, dtype)
    bits = np.uint32 if dtype == "float32" else np.uint64
    np.testing.assert_array_equal(got.numpy().view(bits), want.view(bits))


def test_cumsum_keeps_leading_negative_zeros():
    """numpy adds from x[0] (-0.0 + -0.0 is -0.0), torch from +0.0: the host op gives
    numpy's signs, row by row along the axis."""
    x = np.array([[-0.0, -0.0, 1.0, -1.0], [0.0, -0.0, -0.0, 2.0], [-0.0, 3.0, -3.0, -0.0]],
                 np.float32)
    for axis in (0, 1):
        got = ext.cumsum(torch.from_numpy(x), axis).numpy()
        assert_same_bits(got, np.cumsum(x, axis=axis, dtype=np.float32))


def test_int32_cumsum_stays_int32():
    got, out_type, _ = run_host("cumsum", [np.array([2**31 - 1, 1], np.int32)], {"axis": 0})
    assert got.dtype == torch.int32 and got.tolist() == [2**31 - 1, -(2**31)]


@pytest.mark.parametrize("op, attrs", [
    ("reshape", {"shape": ("__import__('os')",)}),
    ("reshape", {"shape": (True,)}),
    ("transpose", {"perm": "(1, 0)"}),
    ("pad", {"widths": ((1, 1),), "value": "0); import os; ("}),
    ("pad", {"widths": ((1, 1),), "value": 2**40}),                 # int32 cannot hold it
    ("philox_uniform", {"shape": (2,), "offset": 0, "dtype": "float32); os.system('')"}),
    ("concat", {"axis": 1.0})])
def test_unchecked_attributes_never_become_code(op, attrs):
    """Rendering checks each attribute's Python type, whatever reached it."""
    x = Value("x0", TensorType((2,), "int32" if op == "pad" else "float32"))
    node = Node(op, (x,), Attrs(attrs), loc=None)
    with pytest.raises(ValueError):
        ext.HOST[op].call(["x0"], node.attrs, node)


def test_torch_dtype_takes_only_graphc_dtypes():
    assert [ext.torch_dtype(d) for d in ("bool", "int64")] == ["torch.bool", "torch.int64"]
    with pytest.raises(ValueError):
        ext.torch_dtype("float32; import os")


def test_the_module_doctests_run():
    import doctest
    result = doctest.testmod(ext)
    assert result.attempted and not result.failed
