"""The Triton backend's fusion policy: what one of its kernels may hold, and why it
differs from the numpy backend's.

- `full_reduction_epilogue` and `scalar_chains_join` as the numpy backend: a loss's
  mean divides in its sum's kernel, a few scalars are recomputed by every program.
- `row_blocked` stays: a reduction kernel gives each program whole rows (the kept
  axes), which is what the numpy backend's blocks of rows are too; a reduction over
  axis 0 is a kernel of its own ("reduce_all", two stages where the rows are few).
- What this backend fuses that the numpy backend does not run fused: a matmul's
  epilogue is applied to the accumulator tile in registers before the one store,
  where the numpy backend calls BLAS and then runs the epilogue as a second pass over
  memory; a whole reduction group (softmax, layer norm, cross-entropy) is one kernel at
  any row length (looped past a few thousand columns).
- `max_group_nodes`: a kernel's values all live in registers at once; 64 ops keep a
  Triton program's register use and compile time bounded.

>>> FUSION_POLICY.row_blocked, FUSION_POLICY.max_group_nodes
(True, 64)
"""
from graphc.passes.fusion import FusionPolicy

FUSION_POLICY = FusionPolicy(
    row_blocked=True,
    matmul_prologue=False,
    scalar_chains_join=True,
    full_reduction_epilogue=True,
    max_group_nodes=64,
)
