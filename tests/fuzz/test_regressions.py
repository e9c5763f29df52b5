"""Graphs the fuzzer found miscompiled, kept as regression tests (each checked against
the reference interpreter, normally and with every group forced through block kernels)."""
from __future__ import annotations

import numpy as np
import pytest

import graphc
from graphc.fuzz import check_graph, native_available
from graphc.ir import parse
from graphc.passes import pipeline


def test_elementwise_producer_of_a_matmul_is_not_merged_as_its_epilogue_sibling():
    # passes/fusion.py: %7 = minimum %0, %5 joined the matmul group of %2 and pulled in
    # %0's elementwise group as a "sibling" of the same shape, although %0 feeds the
    # matmul: a matmul group cannot run a prologue (the backend emits the matmul first),
    # so the forced-kernel code read %0 before computing it (KeyError in codegen).
    graph = parse("""graph fuzz(%x0: f32[3,3]) -> (f32[3,3], f32[3,3]) {
  %0: f32[3,3] = mul %x0, %x0
  %2: f32[3,3] = matmul %0, %0
  %5: f32[3,3] = minimum %x0, %2
  %7: f32[3,3] = minimum %0, %5
  %9: f32[3,3] = transpose %0 {perm=(1, 0)}
  %11: f32[3,3] = div %7, %9
  return %11, %0
}""")
    fused = pipeline.run(graph)[-1].graph  # fusion reads no backend option
    for group in fused.groups:
        if group.kind == "matmul":
            assert group.nodes[0].op == "matmul", str(fused)
    x0 = np.random.default_rng(0).uniform(0.5, 2.0, (3, 3)).astype(np.float32)
    check_graph(graph, [x0])


def test_batched_matmul_by_a_matrix_with_an_empty_inner_dim():
    # backends/numpy/codegen.py ran a (..., M, K) @ (K, N) matmul as one GEMM over
    # np.reshape(a, (-1, K)), which numpy cannot resolve when K is 0 (ValueError)
    graph = parse("""graph fuzz(%x0: f32[1,3,0], %x4: f32[0,2]) -> (f32[1,3,2]) {
  %0: f32[1,3,0] = neg %x0
  %4: f32[1,3,2] = matmul %0, %x4
  return %4
}""")
    check_graph(graph, [np.zeros((1, 3, 0), np.float32), np.zeros((0, 2), np.float32)])


def _issue10_program(x0):
    v0 = x0 + 2
    v1 = v0 + 2
    v2 = v1.mean(axis=(0, -2))
    v5 = 0.272 - v2
    v6 = np.where(x0 < 0.5, v1, v5)
    v7 = np.log(np.abs(v6) + 1.0)
    v8 = np.sqrt(np.abs(v7) + 1.0)
    v10 = np.max(v7, axis=(-3, 1, 2))
    return (v10, v1, v8)


def test_reduction_broadcast_back_into_its_own_input_does_not_close_a_fusion_cycle():
    # issue 10 (1 random program in 230): the where's group took v1's chain as a
    # "sibling" although v1 -> mean -> v5 -> where, so fusion raised networkx's
    # NetworkXUnfeasible. Against eager numpy in float64: with x0 in [0, 1) every value
    # stays >= 2 away from zero (0.272 - v2 is near -4), so each of the ~10 float32 ops
    # adds at most a few ulp (sqrt and + are correctly rounded, glibc's log, scalar or
    # libmvec's, is within 4) and no step amplifies them (every condition number is
    # near 1 or below): 32 ulp of float32 bound the whole; measured, under 1
    x0 = np.random.default_rng(0).random((1, 4, 7)).astype(np.float32)
    got = graphc.compile(_issue10_program)(x0)
    want = _issue10_program(x0.astype(np.float64))
    for g, w in zip(got, want, strict=True):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, w, rtol=32 * np.finfo(np.float32).eps, atol=0)


# found by graphc.fuzz's reduce_back family against the old fusion, shrunk by hypothesis:
# the mask's group, a full reduction of a's chain, and a's chain meet in one where
SIBLING_CYCLES = [
    """graph fuzz(%x0: f32[1], %x1: f32[1], %x2: f32[]) -> (f32[1]) {
  %0: f32[1] = neg %x0
  %1: f32[1] = max %0 {axes=(0,), keepdims=true}
  %2: f32[1] = abs %0
  %3: bool[1] = eq %x1, %x2
  %4: f32[1] = where %3, %1, %2
  return %4
}""",
    # with a second reduction over the where, and broadcasting back over size-1 axes
    """graph fuzz(%x0: f32[3], %x1: f32[1,1,2], %x2: f32[]) -> (f32[1,1,1], f32[1,1,2]) {
  %0: f32[3] = cast %x0 {dtype=float32}
  %1: f32[1,1,2] = neg %x1
  %2: f32[1,1,1] = max %1 {axes=(0, 1, 2), keepdims=true}
  %3: bool[1,1,2] = eq %x1, %x2
  %4: f32[1,1,2] = where %3, %2, %1
  %5: f32[1,1,1] = max %4 {axes=(0, 1, 2), keepdims=true}
  return %5, %1
}""",
    # `python -m graphc fuzz --seed 1`'s 22nd graph (less two unrelated nodes): a sum
    # with keepdims over a size-1 axis and another, a row reduction after the where
    """graph fuzz(%x4: f64[1,4,2]) -> (f64[1,1,2]) {
  %2: f64[1,4,2] = abs %x4
  %3: f64[1,4,2] = neg %2
  %4: f64[1,1,2] = sum %3 {axes=(0, 1), keepdims=true}
  %5: bool[1,4,2] = eq %x4, %x4
  %6: f64[1,4,2] = where %5, %3, %4
  %7: f64[1,1,2] = max %6 {axes=(1,), keepdims=true}
  return %7
}""",
]


@pytest.mark.parametrize("text", SIBLING_CYCLES)
def test_fusion_cycles_the_fuzzer_found(text):
    graph = parse(text)
    rng = np.random.default_rng(1)
    # exact halves: the eq mask meets ties, and both branches of the where run
    inputs = [np.round(rng.uniform(-2, 2, v.type.shape) * 2).astype(v.type.dtype) / 2
              for v in graph.inputs]
    modes = ("plain", "blocks") + (("native",) if native_available() else ())
    check_graph(graph, inputs, modes)


def test_sign_of_negative_zero_is_positive_zero_in_native_kernels():
    # backends/numpy/native.py passed zeros through sign unchanged: sign(-0.0) gave -0.0
    # where numpy gives +0.0, so rsqrt of it was -inf instead of inf (fuzz seed 1, #488)
    graph = parse("""graph fuzz(%x0: f32[3]) -> (f32[3]) {
  %0: f32[3] = sign %x0
  %1: f32[3] = rsqrt %0
  return %1
}""")
    x0 = np.array([-0.0, 0.0, 2.0], np.float32)
    modes = ("plain", "blocks") + (("native",) if native_available() else ())
    check_graph(graph, [x0], modes)


def test_a_mismatch_of_infinities_names_the_element():
    from graphc.check import compare
    with pytest.raises(graphc.MismatchError, match=r"first at index \[1\]: .*inf.* against .*-inf"):
        compare("f", [np.array([1.0, np.inf])], [np.array([1.0, -np.inf])])
