"""Graphs the fuzzer found miscompiled, kept as regression tests (each checked against
the reference interpreter, normally and with every group forced through block kernels)."""
from __future__ import annotations

import numpy as np

from graphc.fuzz import KERNEL_ENV, check_graph, environ
from graphc.ir import parse
from passes import pipeline


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
    with environ(KERNEL_ENV):
        fused = pipeline.run(graph)[-1].graph
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
