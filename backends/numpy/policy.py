"""The numpy backend's fusion policy: what one of its kernels may hold.

Its kernels run a group block by block over axis 0 (rows), in numpy calls or a C loop,
and a matmul is a BLAS call on finished operands; hence the policy below. Fusion reads
it through `FUSION_POLICY` (passes/fusion.py documents each field).

>>> FUSION_POLICY.row_blocked, FUSION_POLICY.matmul_prologue
(True, False)
"""
from graphc.passes.fusion import FusionPolicy

FUSION_POLICY = FusionPolicy(
    row_blocked=True,              # reduction groups run in blocks of rows (runtime.py)
    matmul_prologue=False,         # BLAS computes the matmul before its epilogue kernel
    scalar_chains_join=True,       # a kernel recomputes a few scalars per block cheaply
    full_reduction_epilogue=True,  # a loss's mean divides in the sum's own group
    max_group_nodes=None,          # blocks keep intermediates in cache at any length
)
