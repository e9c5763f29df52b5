"""Matmul kernels: a matmul group (one matmul and its elementwise epilogue: bias,
activation, residual, scaling) as one tiled `tl.dot` kernel, as in Triton's matmul
tutorial.

Each program computes one BLOCK_M x BLOCK_N tile of the output, in grouped order
(GROUP_M row blocks before the next column block, so neighbouring programs share
their operands' tiles in L2); the second grid axis is the batch (the output's leading
axes flattened, indexed back per axis so each operand adds its own batch strides: a
broadcast axis has no term, so (B, M, K) @ (K, N) reads the one weight). The transpose
flags are strides: a transposed operand is passed with its last two strides swapped,
never copied. The accumulator is float32 (float64 for float64; 16-bit inputs go to
`tl.dot` as they are and accumulate in float32); the epilogue runs on it in registers,
with its inputs loaded over the tile with their own strides and masks, and every value
that leaves the group is stored once.

    @triton.jit
    def k1_matmul_add_maximum(x_ptr, w1_ptr, b1_ptr, out_ptr,   # pointers
                              M, N, K,                          # sizes
                              stride_am, stride_ak, stride_bk, stride_bn,
                              b1_stride1,                       # strides
                              BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                              BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr):
        pid = tl.program_id(0)
        ...                                     # grouped order: pid -> (pid_m, pid_n)
        rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        rk = tl.arange(0, BLOCK_K)
        a_ptrs = x_ptr + rm[:, None] * stride_am + rk[None, :] * stride_ak
        b_ptrs = w1_ptr + rk[:, None] * stride_bk + rn[None, :] * stride_bn
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for k0 in range(0, K, BLOCK_K):
            a_tile = tl.load(a_ptrs, mask=mask_m & (rk[None, :] < K - k0), other=0)
            b_tile = tl.load(b_ptrs, mask=(rk[:, None] < K - k0) & mask_n, other=0)
            acc = tl.dot(a_tile, b_tile, acc, input_precision="ieee")
            a_ptrs += BLOCK_K * stride_ak
            b_ptrs += BLOCK_K * stride_bk
        matmul0 = acc                           # %0 = matmul %x, %w1
        b1 = tl.load(b1_ptr + rn[None, :] * b1_stride1, mask=mask_n, other=0)
        add1 = (matmul0 + b1)                   # %1 = add %0, %b1
        maximum3 = ...                          # %3 = maximum %1, %2
        tl.store(out_ptr + rm[:, None] * 45 + rn[None, :], maximum3, mask=mask)

Decisions a user can see:
- float32 products are full float32 (`input_precision="ieee"`), as numpy's are: no TF32.
- int32 and int64 (which `tl.dot` does not take: it takes int8 only) accumulate one
  rank-1 update per k, `acc += a[:, None] * b[None, :]`, in the dtype itself: exact,
  wrapping on overflow as numpy's integer matmul does. A broadcast product over a K
  chunk would need a BLOCK_M x BLOCK_K x BLOCK_N tensor, past Triton's 2**20 elements
  for the tuned tiles; integer matmuls are rare enough not to have tiles of their own.
- offsets are int32 (as in the tutorial): an operand or output of more than 2**31
  elements would need int64 offsets; the batch is grid axis 1, at most 65535 on a GPU.
- a bare matmul never splits (its Split would come straight back here); a group whose
  epilogue holds something other than elementwise ops over the output (or 0-d ones)
  is split into one kernel per op.
"""
from __future__ import annotations

import math

from graphc.backends.numpy.literals import py
from graphc.backends.triton.emit import (KernelText, Launch, Param, compute_dtype,
                                         kernel_name, rounded, tl_dtype, type_note)
from graphc.backends.triton.kernels import Split
from graphc.backends.triton.values import ValueEmitter, broadcast_axes
from graphc.ir import Node, Value
from graphc.ops import OPS, Kind
from graphc.passes.schedule import KernelPlan

# the kernel's own names, kept from the values' (a graph value may be called `rm`)
_OWN_NAMES = frozenset({
    "M", "N", "K", "pid", "pid_b", "pid_m", "pid_n", "num_pid_m", "num_pid_n",
    "num_pid_in_group", "group_id", "first_pid_m", "group_size_m", "rm", "rn", "rk",
    "mask_m", "mask_n", "mask", "a_ptrs", "b_ptrs", "a_tile", "b_tile", "a_col", "b_row",
    "acc", "k0", "rest", "BLOCK_M", "BLOCK_N", "BLOCK_K", "GROUP_M"})
# the accumulator's dtype by the operands' (16-bit floats accumulate in float32)
_ACCUMULATOR = {"float16": "tl.float32", "bfloat16": "tl.float32", "float32": "tl.float32",
                "float64": "tl.float64", "int32": "tl.int32", "int64": "tl.int64"}
_INTS = frozenset({"int32", "int64"})


def render(plan: KernelPlan, host_name) -> Launch:
    """The kernel of a matmul plan; `host_name(graph value)` names a value on the host.

    >>> import graphc, numpy as np
    >>> from graphc.passes.schedule import plan_kernels
    >>> x, w = np.ones((33, 17), np.float32), np.ones((17, 45), np.float32)
    >>> graph = graphc.compile(lambda x, w: np.maximum(x @ w, 0)).lower(x, w).optimized
    >>> (plan,) = [p for p in plan_kernels(graph) if p.kind == "matmul"]
    >>> launch = render(plan, lambda v: v.name)
    >>> launch.kind, launch.problem["K"], launch.note
    ('matmul', 17, 'matmul 33x17 @ 17x45, float32 + 1 epilogue op')
    >>> launch.grid
    "(triton.cdiv(33, cfg['BLOCK_M']) * triton.cdiv(45, cfg['BLOCK_N']), 1)"
    """
    mm = plan.matmul
    epilogue = [n for n in plan.group.nodes if n is not mm]
    shape = _Problem(mm)
    _check_epilogue(epilogue, shape.space)
    ops = f"{len(epilogue)} epilogue op{'s' if len(epilogue) != 1 else ''}"
    k = KernelText(kernel_name(plan.index, plan.group.nodes),
                   f"{shape.describe()} with {ops} (group {plan.index})")
    k.taken |= _OWN_NAMES
    r = _Renderer(k, plan, host_name, shape)
    r.program_ids()
    r.main_loop()
    r.epilogue(epilogue)
    for name in ("BLOCK_M", "BLOCK_N", "BLOCK_K", "GROUP_M"):
        k.param(name, "meta-parameters")
    tiles = f"triton.cdiv({py(shape.m)}, cfg['BLOCK_M']) * triton.cdiv({py(shape.n)}, cfg['BLOCK_N'])"
    problem = {"M": shape.m, "N": shape.n, "K": shape.k, "dtype": shape.dtype,
               "batch": shape.batch_size}
    return Launch(k, "matmul", problem, grid=f"({tiles}, {py(shape.batch_size)})",
                  prelude=r.em.prelude,
                  outputs=[(v, r.em.out_host[id(v)]) for v in r.stored],
                  note=shape.describe() + (f" + {ops}" if epilogue else ""))


class _Problem:
    """The matmul's sizes: batch axes (the output's leading ones), M, N, K, and each
    operand's axes for m, k (a) and k, n (b) after its transpose flag."""

    def __init__(self, mm: Node):
        a, b = mm.inputs
        out = mm.outputs[0]
        self.a, self.b, self.out = a, b, out
        self.dtype = a.type.dtype
        self.space = tuple(out.type.shape)
        self.batch = self.space[:-2]
        self.batch_size = math.prod(self.batch)
        self.m, self.n = self.space[-2:]
        ta, tb = mm.attrs.get("transpose_a", False), mm.attrs.get("transpose_b", False)
        # (axis of m, axis of k) in a; (axis of k, axis of n) in b
        self.a_axes = (a.type.ndim - 1, a.type.ndim - 2) if ta else \
            (a.type.ndim - 2, a.type.ndim - 1)
        self.b_axes = (b.type.ndim - 1, b.type.ndim - 2) if tb else \
            (b.type.ndim - 2, b.type.ndim - 1)
        self.k = a.type.shape[self.a_axes[1]]
        self.flags = [f for f, on in (("transpose_a", ta), ("transpose_b", tb)) if on]

    def describe(self) -> str:
        """`matmul (2 x) 33x17 @ 17x45, transpose_b, float32`."""
        batch = f"({' x '.join(map(str, self.batch))} x) " if self.batch else ""
        flags = "".join(f", {f}" for f in self.flags)
        return f"matmul {batch}{self.m}x{self.k} @ {self.k}x{self.n}{flags}, {self.dtype}"


def _check_epilogue(epilogue: list[Node], space: tuple[int, ...]) -> None:
    """Split where an epilogue node is not elementwise over the output tile (or 0-d)."""
    for n in epilogue:
        if OPS[n.op].kind is not Kind.ELEMENTWISE or len(n.outputs) != 1:
            raise Split(f"{n.op} in a matmul epilogue is not one elementwise op")
        if tuple(n.outputs[0].type.shape) not in (space, ()):
            raise Split(f"{n.op} makes {list(n.outputs[0].type.shape)}, not the matmul's "
                        f"{list(space)}")


class _Renderer:
    def __init__(self, k: KernelText, plan: KernelPlan, host_name, shape: _Problem):
        self.k, self.plan, self.shape = k, plan, shape
        self.em = ValueEmitter(k, plan, host_name, space=shape.space)
        self.em.mask_of = self._mask_of
        self.stored: list[Value] = []
        self.escaping = {id(v) for n in plan.group.nodes for v in n.outputs
                         if plan.escapes(v)}
        nb = len(shape.batch)
        self.m_axis, self.n_axis = nb, nb + 1

    def _size(self, name: str, value: int, comment: str) -> None:
        # M, N and K as the tutorial names them (KernelText.ident keeps upper-case
        # names for meta-parameters; these are taken in _OWN_NAMES already)
        self.k.params.append(Param(name, "sizes", host=py(value), comment=comment))

    def _mask_of(self, v: Value, axes: tuple[int, ...]) -> str:
        m, n = self.m_axis in axes, self.n_axis in axes
        if m and n:
            return "mask"
        return "mask_m" if m else "mask_n" if n else "True"  # batch axes: always in range

    # --- which tile: grouped program order, batch ----------------------------------------

    def program_ids(self) -> None:
        k, s = self.k, self.shape
        self._size("M", s.m, "rows of the output")
        self._size("N", s.n, "columns of the output")
        self._size("K", s.k, "the reduced axis")
        k.line("pid = tl.program_id(0)", note="one BLOCK_M x BLOCK_N output tile a program")
        k.line("num_pid_m = tl.cdiv(M, BLOCK_M)")
        k.line("num_pid_n = tl.cdiv(N, BLOCK_N)")
        k.line("num_pid_in_group = GROUP_M * num_pid_n",
               note="GROUP_M row blocks share each column block (L2 reuse)")
        k.line("group_id = pid // num_pid_in_group")
        k.line("first_pid_m = group_id * GROUP_M")
        k.line("group_size_m = tl.minimum(num_pid_m - first_pid_m, GROUP_M)")
        k.line("pid_m = first_pid_m + ((pid % num_pid_in_group) % group_size_m)")
        k.line("pid_n = (pid % num_pid_in_group) // group_size_m")
        k.line("rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)", note="the tile's rows")
        k.line("rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)", note="the tile's columns")
        k.line("mask_m = rm[:, None] < M")
        k.line("mask_n = rn[None, :] < N")
        k.line("mask = mask_m & mask_n")
        self.em.index[self.m_axis] = "rm[:, None]"
        self.em.index[self.n_axis] = "rn[None, :]"
        self._batch_index()

    def _batch_index(self) -> None:
        """Lines naming the batch index along each leading axis of more than one."""
        batch = self.shape.batch
        if not self.shape.batch_size > 1:
            for d, n in enumerate(batch):
                if n != 1:  # an empty batch: the grid has no programs at all
                    self.em.index[d] = "0"
            return
        self.k.line("pid_b = tl.program_id(1)", note="the batch: the output's leading axes")
        axes = [d for d, n in enumerate(batch) if n != 1]
        rest = "pid_b"
        for pos in range(len(axes) - 1, -1, -1):
            d = axes[pos]
            name = self.k.ident(f"b{d}")
            if pos == 0:
                self.k.line(f"{name} = {rest}", note=f"index along axis {d}")
            else:
                size = self.k.param(f"batch{d}", "sizes", host=py(batch[d]),
                                    comment=f"batch axis {d}")
                self.k.line(f"{name} = {rest} % {size}", note=f"index along axis {d}")
                self.k.line(f"rest = {rest} // {size}")
                rest = "rest"
            self.em.index[d] = name

    # --- the K loop ------------------------------------------------------------------------

    def _operand(self, v: Value, role: str, axes: tuple[int, int]):
        """The pointer of operand `v` (`role` "a" or "b"), its batch offset and its
        strides along its two matrix axes (`axes`: m, k for a; k, n for b; in v's own
        order, so a transposed operand's are swapped), named as the tutorial's."""
        em = self.em
        ptr, host = em.pointer(v), em.view(v)
        names = ("m", "k") if role == "a" else ("k", "n")
        strides = [self.k.param(f"stride_{role}{name}", "strides",
                                host=f"{host}.stride({axis})")
                   for axis, name in zip(axes, names)]
        batch_shape = tuple(v.type.shape[:-2])
        offset = len(self.shape.batch) - len(batch_shape)
        terms = []
        for d in broadcast_axes(batch_shape, self.shape.batch):
            stride = self.k.param(f"stride_{role}{d - offset}", "strides",
                                  host=f"{host}.stride({d - offset})",
                                  comment=f"batch axis {d}")
            terms.append(f"{em.index[d]} * {stride}")
        return ptr, "".join(t + " + " for t in terms), strides

    def main_loop(self) -> None:
        s = self.shape
        a_ptr, a_off, (sam, sak) = self._operand(s.a, "a", s.a_axes)
        b_ptr, b_off, (sbk, sbn) = self._operand(s.b, "b", s.b_axes)
        if s.dtype in _INTS:
            self._rank1_loop(a_ptr, a_off, sam, sak, b_ptr, b_off, sbk, sbn)
        else:
            self._dot_loop(a_ptr, a_off, sam, sak, b_ptr, b_off, sbk, sbn)

    def _dot_loop(self, a_ptr, a_off, sam, sak, b_ptr, b_off, sbk, sbn) -> None:
        k, mm = self.k, self.shape.out.node
        acc_dtype = _ACCUMULATOR[self.shape.dtype]
        k.line("rk = tl.arange(0, BLOCK_K)")
        k.line(f"a_ptrs = {a_ptr} + {a_off}rm[:, None] * {sam} + rk[None, :] * {sak}",
               note="the operands' first tiles along K")
        k.line(f"b_ptrs = {b_ptr} + {b_off}rk[:, None] * {sbk} + rn[None, :] * {sbn}")
        k.line(f"acc = tl.zeros((BLOCK_M, BLOCK_N), dtype={acc_dtype})", mm)
        k.line("for k0 in range(0, K, BLOCK_K):")
        k.line("a_tile = tl.load(a_ptrs, mask=mask_m & (rk[None, :] < K - k0), other=0)",
               indent=2)
        k.line("b_tile = tl.load(b_ptrs, mask=(rk[:, None] < K - k0) & mask_n, other=0)",
               indent=2)
        # numpy's float32 matmul is full float32; 16-bit inputs take tl.dot's own path
        precision = ', input_precision="ieee"' if self.shape.dtype in ("float32", "float64") \
            else ""
        k.line(f"acc = tl.dot(a_tile, b_tile, acc{precision})", mm, indent=2)
        k.line(f"a_ptrs += BLOCK_K * {sak}", indent=2)
        k.line(f"b_ptrs += BLOCK_K * {sbk}", indent=2)

    def _rank1_loop(self, a_ptr, a_off, sam, sak, b_ptr, b_off, sbk, sbn) -> None:
        k, mm = self.k, self.shape.out.node
        k.line(f"a_ptrs = {a_ptr} + {a_off}rm * {sam}",
               note="integers: one rank-1 update per k (tl.dot takes int8 only)")
        k.line(f"b_ptrs = {b_ptr} + {b_off}rn * {sbn}")
        k.line(f"acc = tl.zeros((BLOCK_M, BLOCK_N), dtype={_ACCUMULATOR[self.shape.dtype]})",
               mm)
        k.line("for k0 in range(0, K):")
        k.line("a_col = tl.load(a_ptrs, mask=rm < M, other=0)", indent=2)
        k.line("b_row = tl.load(b_ptrs, mask=rn < N, other=0)", indent=2)
        k.line("acc += a_col[:, None] * b_row[None, :]", mm, indent=2)
        k.line(f"a_ptrs += {sak}", indent=2)
        k.line(f"b_ptrs += {sbk}", indent=2)

    # --- the epilogue and the stores ---------------------------------------------------

    def epilogue(self, nodes: list[Node]) -> None:
        out = self.shape.out
        name = self.k.value_name(out)
        self.k.line(f"{name} = {rounded('acc', out.type.dtype)}", out.node)
        self.em.bind(out, name)
        self._store(out)
        for n in nodes:
            self.em.compute(n)
            self._store(n.outputs[0])

    def _store(self, v: Value) -> None:
        if id(v) not in self.escaping or any(v is u for u in self.stored):
            return
        em = self.em
        ptr = em.output_pointer(v)
        value = em.name[id(v)]
        if compute_dtype(v.type.dtype) != tl_dtype(v.type.dtype):
            value = f"{value}.to({tl_dtype(v.type.dtype)})"
        note = f"out %{v.name} {type_note(v.type)}"
        if v.type.ndim == 0:
            first = "(pid == 0) & (pid_b == 0)" if self.shape.batch_size > 1 else "pid == 0"
            self.k.line(f"tl.store({ptr}, {value}, mask={first})",
                        note=note + " (0-d: program 0 stores it)")
        else:
            self.k.line(f"tl.store({ptr} + {self._tile_offset()}, {value}, mask=mask)",
                        note=note)
        self.stored.append(v)

    def _tile_offset(self) -> str:
        """The output tile's offsets in a fresh contiguous output, with terms for the
        rows and columns even where M or N is 1 (a store's pointers span the tile)."""
        s, index = self.shape, self.em.index
        terms = []
        for d, size in enumerate(s.batch):
            if size != 1:
                stride = math.prod(s.space[d + 1:])
                if type(stride) is not int:  # symbolic: passed, as the sizes are
                    stride = self.k.param(f"out_stride{d}", "sizes", host=py(stride),
                                          comment=f"the output's stride along axis {d}")
                terms.append(f"{index[d]} * {stride}")
        # (N: the kernel's own parameter where the columns are symbolic)
        terms.append("rm[:, None]" if s.n == 1 else
                     f"rm[:, None] * {s.n if type(s.n) is int else 'N'}")
        terms.append("rn[None, :]")
        return " + ".join(terms)
