"""Reduction kernels: a reduction group (softmax, layer norm, cross-entropy, a loss's
mean) as one kernel, over any reduced axes.

The group's space splits into kept axes (rows: `XBLOCK` of them per program) and
reduced axes (columns), both flattened in row-major order and indexed back per axis,
so inputs keep their own strides. Each value is "full" (varies along a reduced axis: a
[XBLOCK, RBLOCK] tile), "row" (kept axes only: [XBLOCK, 1]) or "scalar" (0-d), with a
level: a reduction's result is one level above its input.

- persistent (a row of at most `PERSISTENT_MAX` columns): `RBLOCK` covers the whole
  row, so every level runs in registers, node by node, with one load of each input;
- looped (longer rows): level by level, a loop over the row in chunks of `RBLOCK`
  computes that level's full values (again, from the inputs: nothing is kept), adds
  its reductions into accumulators and stores its outputs; a variance is two passes
  (the mean's, then the squares'), as the graph computes it.

Reductions follow numpy: `max`/`min` propagate nan, `argmax` is the first index of the
maximum (or of the first nan), a float16 sum accumulates in float32.
"""
from __future__ import annotations

import math

from graphc.backends.numpy.names import base_name
from graphc.backends.numpy.literals import py
from graphc.backends.triton.emit import (KernelText, Launch, compute_dtype, kernel_name,
                                         rounded, type_note)
from graphc.backends.triton.kernels import Split
from graphc.backends.triton.values import ValueEmitter, broadcast_axes, escaping, fits
from graphc.ir import Node, Value
from graphc.ops import OPS, Kind
from graphc.passes.schedule import KernelPlan, reduced_axes

# the longest row one program holds whole (RBLOCK, a power of two, covers it)
PERSISTENT_MAX = 4096
# two stages for at most this many rows of at least this many columns: chunks of about
# SPLIT_COLS_PER_CHUNK columns, at most SPLIT_CHUNKS of them (the second stage holds a
# row of partials whole)
SPLIT_ROWS, SPLIT_COLS = 64, 1 << 16
SPLIT_COLS_PER_CHUNK, SPLIT_CHUNKS = 1 << 13, 1024
_REDUCTIONS = ("sum", "max", "min", "argmax")


class _Shape:
    """The group's space cut into kept and reduced axes, and each value's frame:
    "S" (broadcasts into the space) or "K" (a reduction's result without its reduced
    axes, and what is computed from it: broadcasts into the kept axes)."""

    def __init__(self, plan: KernelPlan):
        nodes = plan.nodes
        reds = [n for n in nodes if OPS[n.op].kind is Kind.REDUCTION]
        if not reds:
            raise Split("no reduction in the group")
        space = tuple(plan.space) if plan.space is not None else \
            tuple(reds[0].inputs[0].type.shape)
        axes = {tuple(sorted(reduced_axes(n))) for n in reds}
        if len(axes) != 1:
            raise Split(f"reductions over different axes {sorted(axes)}")
        if any(tuple(n.inputs[0].type.shape) != space for n in reds):
            raise Split("reductions over inputs of different shapes")
        self.space, self.reduced = space, axes.pop()
        self.kept = tuple(d for d in range(len(space)) if d not in self.reduced)
        self.kept_shape = tuple(space[d] for d in self.kept)
        self.rows = math.prod(self.kept_shape)
        self.cols = math.prod(space[d] for d in self.reduced)
        self.frame: dict[int, str] = {}
        self.kind: dict[int, str] = {}
        self.level: dict[int, int] = {}
        for n in nodes:
            self._classify(n)

    def _classify(self, n: Node) -> None:
        frames = {self.frame.get(id(v), "S") for v in n.inputs if v.type.ndim}
        levels = [self.level.get(id(v), 0) for v in n.inputs]
        out = n.outputs[0]
        if len(n.outputs) != 1:
            raise Split(f"{n.op} has {len(n.outputs)} results")
        if OPS[n.op].kind is Kind.REDUCTION:
            self.frame[id(out)] = "S" if n.attrs["keepdims"] else "K"
            self.kind[id(out)] = "row"
            self.level[id(out)] = levels[0] + 1
            return
        if OPS[n.op].kind is not Kind.ELEMENTWISE:
            raise Split(f"{n.op} is not elementwise")
        if not fits(tuple(out.type.shape), self.space):
            raise Split(f"{n.op} makes {list(out.type.shape)}, wider than the group's "
                        f"space {list(self.space)}")
        kinds = {self.kind_of(v) for v in n.inputs}
        if "K" in frames and ("S" in frames or "full" in kinds):
            raise Split(f"{n.op} mixes a reduced result without its axes and the full space")
        self.frame[id(out)] = "K" if "K" in frames else "S"
        lv = max(levels, default=0)
        self.level[id(out)] = lv
        if out.type.ndim == 0 and lv == 0:
            self.kind[id(out)] = "scalar"
        elif self.frame[id(out)] == "K" or not set(
                broadcast_axes(tuple(out.type.shape), self.space)) & set(self.reduced):
            self.kind[id(out)] = "row"
        else:
            self.kind[id(out)] = "full"

    def kind_of(self, v: Value) -> str:
        """A value's kind; an input's from its shape."""
        if id(v) in self.kind:
            return self.kind[id(v)]
        if v.type.size == 1:
            return "scalar"
        if self.frame.get(id(v), "S") == "K" or not set(
                broadcast_axes(tuple(v.type.shape), self.space)) & set(self.reduced):
            return "row"
        return "full"


def _partial_dtype(node: Node) -> str:
    """The partial results' dtype: the accumulator's (float32 for 16-bit floats)."""
    dt = node.inputs[0].type.dtype
    return "float32" if dt in ("float16", "bfloat16") else dt


def render(plan: KernelPlan, host_name) -> Launch:
    """The kernel of a reduction (or reduce_all) plan; Split where one cannot hold it."""
    shape = _Shape(plan)
    if any(n.op == "argmax" for n in plan.nodes) and \
            (type(shape.cols) is not int or shape.cols > PERSISTENT_MAX):
        raise Split(f"argmax over rows of {shape.cols} (> {PERSISTENT_MAX}) columns")
    if _two_stage(plan, shape):
        return _render_two_stage(plan, host_name, shape)
    # symbolic columns: the looped form, which takes rows of any length
    persistent = type(shape.cols) is int and shape.cols <= PERSISTENT_MAX
    ops = ", ".join(dict.fromkeys(n.op for n in plan.nodes))
    k = KernelText(kernel_name(plan.index, plan.nodes),
                   f"{'persistent' if persistent else 'looped'} reduction over "
                   f"{shape.rows} rows of {shape.cols}: {ops} (group {plan.index})")
    r = _Renderer(k, plan, host_name, shape)
    r.header()
    if persistent:
        r.persistent()
    else:
        r.looped()
    k.param("XBLOCK", "meta-parameters")
    k.param("RBLOCK", "meta-parameters")
    problem = {"rows": shape.rows, "row_length": shape.cols, "persistent": persistent}
    return Launch(k, "reduction" if persistent else "looped_reduction", problem,
                  grid=f"(triton.cdiv({py(shape.rows)}, cfg['XBLOCK']),)",
                  prelude=r.em.prelude,
                  outputs=[(v, r.em.out_host[id(v)]) for v in r.stored],
                  note=f"{'persistent' if persistent else 'looped'}, {shape.rows} rows "
                       f"x {shape.cols}")


def _two_stage(plan: KernelPlan, shape: _Shape) -> bool:
    """A few long rows (a loss's sum, a full mean): one program per row would leave a
    GPU idle, so the rows are cut into chunks with a partial result each, which a
    second kernel combines, in a fixed order: deterministic, unlike atomics. Only
    where every reduction reads level-0 values and nothing full comes after them."""
    if type(shape.rows) is not int or type(shape.cols) is not int or \
            shape.rows > SPLIT_ROWS or shape.cols < SPLIT_COLS:
        return False  # (symbolic sizes: one stage, any length)
    reds = [n for n in plan.nodes if OPS[n.op].kind is Kind.REDUCTION]
    return all(n.op in ("sum", "max", "min") and shape.level[id(n.outputs[0])] == 1
               for n in reds) and \
        all(shape.kind[id(n.outputs[0])] != "full" or shape.level[id(n.outputs[0])] == 0
            for n in plan.nodes)


def _render_two_stage(plan: KernelPlan, host_name, shape: _Shape) -> Launch:
    chunks = min(SPLIT_CHUNKS, -(-shape.cols // SPLIT_COLS_PER_CHUNK))
    chunk = -(-shape.cols // chunks)
    ops = ", ".join(dict.fromkeys(n.op for n in plan.nodes))
    name = kernel_name(plan.index, plan.nodes)
    k1 = KernelText(f"{name}_partial", f"stage 1 of {shape.rows} rows of {shape.cols}: "
                    f"{ops} over {chunks} chunks of {chunk} (group {plan.index})")
    first = _Renderer(k1, plan, host_name, shape)
    parts = first.partial(chunk, chunks)
    k2 = KernelText(name, f"stage 2: combines {chunks} partial results per row, then "
                    f"the rest of group {plan.index}")
    second = _Renderer(k2, plan, host_name, shape)
    second.final(parts, chunks)
    for k in (k1, k2):
        k.param("XBLOCK", "meta-parameters")
        k.param("RBLOCK", "meta-parameters")
    stage2 = Launch(k2, "reduction", {"rows": shape.rows, "row_length": chunks,
                                      "persistent": True},
                    grid=f"(triton.cdiv({shape.rows}, cfg['XBLOCK']),)",
                    prelude=second.em.prelude,
                    outputs=[(v, second.em.out_host[id(v)]) for v in second.stored],
                    note=f"combines {chunks} partials per row")
    return Launch(k1, "looped_reduction", {"rows": shape.rows, "row_length": chunk,
                                           "persistent": False},
                  grid=f"(triton.cdiv({shape.rows}, cfg['XBLOCK']), {chunks})",
                  prelude=first.em.prelude,
                  outputs=[(v, first.em.out_host[id(v)]) for v in first.stored],
                  note=f"two stages, {shape.rows} rows x {shape.cols} in {chunks} chunks",
                  then=stage2)


class _Renderer:
    def __init__(self, k: KernelText, plan: KernelPlan, host_name, shape: _Shape):
        self.k, self.plan, self.shape = k, plan, shape
        self.em = ValueEmitter(k, plan, host_name, space=shape.space)
        self.em.frame = self._frame
        self.em.mask_of = self._mask_of
        self.stored: list[Value] = []
        self.escaping = {id(v) for v in escaping(plan)}

    # --- index and masks ----------------------------------------------------------------

    def _frame(self, v: Value):
        if self.shape.frame.get(id(v), "S") == "K":
            return self.shape.kept_shape, {j: self.em.index[d]
                                           for j, d in enumerate(self.shape.kept)}
        return self.shape.space, self.em.index

    def _mask_of(self, v: Value, axes) -> str:
        if self.shape.frame.get(id(v), "S") == "K":
            return "rmask"
        reduced = set(axes) & set(self.shape.reduced)
        kept = set(axes) - reduced
        if reduced and kept:
            return "mask"
        return "cmask" if reduced else "rmask"

    def header(self) -> None:
        k, s = self.k, self.shape
        rows = k.param("n_rows", "sizes", host=py(s.rows), comment="kept elements")
        self.cols = k.param("n_cols", "sizes", host=py(s.cols), comment="reduced elements")
        k.line("pid = tl.program_id(0)", note="XBLOCK rows per program")
        k.line("xidx = pid * XBLOCK + tl.arange(0, XBLOCK)[:, None]")
        k.line(f"rmask = xidx < {rows}")
        self._split_index("xidx", s.kept, indent=1)

    def _split_index(self, flat: str, axes: tuple[int, ...], indent: int) -> None:
        """Lines naming the index along each of `axes` (row-major) of a flat index."""
        space = self.shape.space
        rest = flat
        for pos in range(len(axes) - 1, -1, -1):
            d = axes[pos]
            name = self.k.ident(f"{'x' if flat == 'xidx' else 'r'}{d}")
            if pos == 0:
                self.k.line(f"{name} = {rest}", indent=indent, note=f"index along axis {d}")
            else:
                size = space[d] or 1  # an empty axis: every lane is masked anyway
                if type(size) is not int:  # a symbolic size: a parameter of the kernel
                    size = self.k.param(f"size{d}", "sizes", host=py(size),
                                        comment=f"axis {d}")
                self.k.line(f"{name} = {rest} % {size}", indent=indent,
                            note=f"index along axis {d}")
                nxt = self.k.ident(f"{flat}_{pos}")
                self.k.line(f"{nxt} = {rest} // {size}", indent=indent)
                rest = nxt
            self.em.index[d] = name

    def _columns(self, start: str, indent: int) -> None:
        self.k.line(f"ridx = {start} + tl.arange(0, RBLOCK)[None, :]", indent=indent)
        self.k.line(f"cmask = ridx < {self.cols}", indent=indent)
        self.k.line("mask = rmask & cmask", indent=indent)
        self._split_index("ridx", self.shape.reduced, indent=indent)

    # --- the two shapes of kernel ---------------------------------------------------------

    def persistent(self) -> None:
        self._columns("0", indent=1)
        for node in self.plan.nodes:
            self._node(node)
            self._store(node.outputs[0])

    def looped(self) -> None:
        s, em = self.shape, self.em
        top = max(s.level.values(), default=0)
        for n in self.plan.nodes:  # rows first: they live across the loops
            for v in n.inputs:
                if id(v) not in s.kind and s.kind_of(v) in ("row", "scalar"):
                    em.arg(v)
        for level in range(top + 1):
            for n in self.plan.nodes:  # the rows this level starts from
                out = n.outputs[0]
                if s.kind[id(out)] != "full" and s.level[id(out)] == level and \
                        OPS[n.op].kind is not Kind.REDUCTION:
                    self._node(n)
                    self._store(out)
            full_here = [n for n in self.plan.nodes if s.kind[id(n.outputs[0])] == "full"
                         and s.level[id(n.outputs[0])] <= level]
            reds = [n for n in self.plan.nodes if OPS[n.op].kind is Kind.REDUCTION
                    and s.level[id(n.outputs[0])] == level + 1]
            stores = [n for n in full_here if s.level[id(n.outputs[0])] == level
                      and id(n.outputs[0]) in self.escaping]
            if not reds and not stores:
                continue
            for n in reds:
                self._accumulator(n)
            self.k.line(f"for c0 in range(0, {self.cols}, RBLOCK):",
                        note=f"level {level}: one pass over the row")
            em.indent = 2
            self._columns("c0", indent=2)
            for n in full_here:
                em.name.pop(id(n.outputs[0]), None)
            for v in [v for n in full_here + reds for v in n.inputs]:
                if s.kind_of(v) == "full" and id(v) not in s.kind:
                    em.name.pop(id(v), None)  # loaded afresh for this chunk
            for n in full_here:
                self._node(n)
            for n in stores:
                self._store(n.outputs[0])
            for n in reds:
                self._accumulate(n)
            em.indent = 1
            for n in reds:
                self._finish(n)
                self._store(n.outputs[0])

    # --- two stages -------------------------------------------------------------------

    def partial(self, chunk: int, chunks: int) -> dict[int, str]:
        """Stage 1: each program's chunk of its rows, the full values (stored where
        they escape) and one partial result per reduction; the host names of the
        partials' tensors, by reduction."""
        s, em, k = self.shape, self.em, self.k
        self.header()
        size = k.param("chunk", "sizes", host=str(chunk), comment="columns per chunk")
        n_chunks = k.param("n_chunks", "sizes", host=str(chunks), comment="chunks per row")
        k.line("pid_c = tl.program_id(1)", note="the chunk of the row")
        k.line(f"start = pid_c * {size}")
        k.line(f"end = tl.minimum(start + {size}, {self.cols})")
        reds = [n for n in self.plan.nodes if OPS[n.op].kind is Kind.REDUCTION]
        for n in reds:
            self._accumulator(n)
        k.line("for c0 in range(start, end, RBLOCK):", note="this program's chunk")
        em.indent = 2
        k.line("ridx = c0 + tl.arange(0, RBLOCK)[None, :]", indent=2)
        k.line("cmask = ridx < end", indent=2)
        k.line("mask = rmask & cmask", indent=2)
        self._split_index("ridx", s.reduced, indent=2)
        for n in self.plan.nodes:
            if s.kind[id(n.outputs[0])] == "full":
                self._node(n)
                self._store(n.outputs[0])
        for n in reds:
            self._accumulate(n)
        em.indent = 1
        parts = {}
        for i, n in enumerate(reds):
            self._finish(n, partial=True)
            host = f"part{i}_{k.name}"
            em.prelude.append(f"{host} = _rt.empty(({s.rows}, {chunks}), "
                              f"{_partial_dtype(n)!r})")
            ptr = k.param(f"part{i}_ptr", "pointers", host=host,
                          comment=f"partial results of %{self.plan.origin(n.outputs[0]).name}")
            k.line(f"tl.store({ptr} + xidx * {n_chunks} + pid_c, {em.name[id(n.outputs[0])]}, "
                   f"mask=rmask)", note="this chunk's partial result")
            parts[id(n)] = host
        return parts

    def final(self, parts: dict[int, str], chunks: int) -> None:
        """Stage 2: each row's partials combined in order, then the row's values."""
        s, em, k = self.shape, self.em, self.k
        self.header()
        n_chunks = k.param("n_chunks", "sizes", host=str(chunks), comment="chunks per row")
        k.line("ridx = tl.arange(0, RBLOCK)[None, :]", note="one lane per chunk")
        k.line(f"mask = rmask & (ridx < {n_chunks})")
        for n in self.plan.nodes:
            out = n.outputs[0]
            if OPS[n.op].kind is Kind.REDUCTION:
                ptr = k.param(f"part_{base_name(self.plan.origin(out)).lower()}_ptr",
                              "pointers", host=parts[id(n)],
                              comment=f"partial results of %{self.plan.origin(out).name}")
                tile = k.ident("partials")
                ident = self._identity(n, n.inputs[0].type.dtype)
                k.line(f"{tile} = tl.load({ptr} + xidx * {n_chunks} + ridx, mask=mask, "
                       f"other={ident})", self.plan.source_node(n))
                name = k.value_name(self.plan.origin(out))
                fn = {"sum": "tl.sum", "max": "tl.max", "min": "tl.min"}[n.op]
                expr = f"{fn}({tile}, axis=1, keep_dims=True)"
                k.line(f"{name} = {rounded(expr, out.type.dtype)}", self.plan.source_node(n))
                if n.op != "sum":
                    self._nan_rows(name, tile, n.inputs[0].type.dtype)
                em.bind(out, name)
                self._store(out)
            elif s.kind[id(out)] != "full":
                self._node(n)
                self._store(out)

    # --- nodes ------------------------------------------------------------------------

    def _node(self, node: Node) -> None:
        if OPS[node.op].kind is Kind.REDUCTION:
            self._reduce(node)
        else:
            self.em.compute(node)

    def _identity(self, node: Node, dtype: str) -> str:
        if node.op == "sum":
            return "0"
        if dtype == "bool":
            return "0" if node.op in ("max", "argmax") else "1"
        big = "float('inf')" if dtype.startswith(("float", "bfloat")) else \
            str((1 << 31) - 1 if dtype == "int32" else (1 << 63) - 1)
        return f"-{big}" if node.op in ("max", "argmax") else big

    def _reduce(self, node: Node) -> None:
        """A reduction in a persistent kernel: the whole row is one tile."""
        em, k = self.em, self.k
        x = em.arg(node.inputs[0])
        out = node.outputs[0]
        name = k.value_name(self.plan.origin(out))
        dt = node.inputs[0].type.dtype
        src = self.plan.source_node(node)
        # the row as a tile, masked lanes holding the reduction's identity
        tile = k.ident(f"{name}_in")
        k.line(f"{tile} = tl.where(mask, {x}, {self._identity(node, dt)})", src)
        if node.op == "sum":
            expr = f"tl.sum({tile}, axis=1, keep_dims=True)"
            k.line(f"{name} = {rounded(expr, out.type.dtype)}", src)
        elif node.op in ("max", "min"):
            fn = "tl.max" if node.op == "max" else "tl.min"
            k.line(f"{name} = {fn}({tile}, axis=1, keep_dims=True)", src)
            self._nan_rows(name, tile, dt)
        else:  # argmax: the first index of the maximum, or of the first nan
            top = k.ident(f"{name}_max")
            k.line(f"{top} = tl.max({tile}, axis=1, keep_dims=True)", src)
            self._nan_rows(top, tile, dt)
            hit = f"mask & (({tile} == {top}) | ({tile} != {tile}))"
            k.line(f"{name} = tl.min(tl.where({hit}, ridx, {self.cols}), axis=1, "
                   f"keep_dims=True).to(tl.int64)", src)
        em.bind(out, name)

    def _nan_rows(self, name: str, x: str, dtype: str) -> None:
        """numpy's max and min are nan where a row holds one (tl.max would skip it)."""
        if dtype.startswith(("float", "bfloat")):
            self.k.line(f"{name} = tl.where(tl.max(tl.where({x} != {x}, 1, 0), "
                        f"axis=1, keep_dims=True) > 0, float('nan'), {name})",
                        note="a row with a nan: nan, as numpy")

    def _accumulator(self, node: Node) -> None:
        dt = compute_dtype(node.inputs[0].type.dtype)
        acc = self.k.ident(f"acc_{base_name(self.plan.origin(node.outputs[0])).lower()}")
        self.acc = getattr(self, "acc", {})
        self.acc[id(node)] = acc
        init = self._identity(node, node.inputs[0].type.dtype)
        self.k.line(f"{acc} = tl.full([XBLOCK, RBLOCK], {init}, {dt})",
                    self.plan.source_node(node))
        if node.op in ("max", "min") and dt.startswith("tl.float"):
            self.k.line(f"{acc}_nan = tl.zeros([XBLOCK, RBLOCK], tl.int32)")

    def _accumulate(self, node: Node) -> None:
        x = self.em.arg(node.inputs[0])
        acc = self.acc[id(node)]
        ident = self._identity(node, node.inputs[0].type.dtype)
        src = self.plan.source_node(node)
        tile = self.k.ident(f"{acc}_in")
        self.k.line(f"{tile} = tl.where(mask, {x}, {ident})", src, indent=2)
        if node.op == "sum":
            self.k.line(f"{acc} += {tile}", src, indent=2)
        else:
            fn = "tl.maximum" if node.op == "max" else "tl.minimum"
            self.k.line(f"{acc} = {fn}({acc}, {tile})", src, indent=2)
            if compute_dtype(node.inputs[0].type.dtype).startswith("tl.float"):
                self.k.line(f"{acc}_nan = tl.maximum({acc}_nan, "
                            f"tl.where({tile} != {tile}, 1, 0))", indent=2)

    def _finish(self, node: Node, partial: bool = False) -> None:
        """The reduction's result from its accumulator (a partial one stays in the
        accumulator's dtype)."""
        acc = self.acc[id(node)]
        out = node.outputs[0]
        name = self.k.value_name(self.plan.origin(out))
        src = self.plan.source_node(node)
        if node.op == "sum":
            total = f"tl.sum({acc}, axis=1, keep_dims=True)"
            self.k.line(f"{name} = {total if partial else rounded(total, out.type.dtype)}",
                        src)
        else:
            fn = "tl.max" if node.op == "max" else "tl.min"
            self.k.line(f"{name} = {fn}({acc}, axis=1, keep_dims=True)", src)
            if compute_dtype(node.inputs[0].type.dtype).startswith("tl.float"):
                self.k.line(f"{name} = tl.where(tl.max({acc}_nan, axis=1, keep_dims=True) "
                            f"> 0, float('nan'), {name})", note="a row with a nan: nan")
        self.em.bind(out, name)

    # --- outputs ------------------------------------------------------------------------

    def _store(self, v: Value) -> None:
        if id(v) not in self.escaping or v in self.stored:
            return
        em, s = self.em, self.shape
        ptr = em.output_pointer(v)
        kind = s.kind_of(v)
        indent = em.indent
        note = f"out %{self.plan.origin(v).name} {type_note(self.plan.origin(v).type)}"
        if kind == "scalar":
            self.k.line(f"tl.store({ptr}, {em.name[id(v)]}, mask=pid == 0)", note=note,
                        indent=indent)
        else:
            address = em.address(v, contiguous=True)
            # the pointer as wide as the value: a term along each tile axis it lacks
            # (lanes that share an element store the same value)
            frame, index = self._frame(v)
            axes = set(broadcast_axes(tuple(v.type.shape), frame))
            if s.frame.get(id(v), "S") == "K":
                kept_terms = bool(axes)
                reduced_terms = False
            else:
                kept_terms = bool(axes - set(s.reduced))
                reduced_terms = bool(axes & set(s.reduced))
            if not kept_terms:
                address += " + xidx * 0"
            if kind == "full" and not reduced_terms:
                address += " + ridx * 0"
            mask = "rmask" if kind == "row" else "mask"
            value = em.name[id(v)]
            self.k.line(f"tl.store({ptr} + {address}, {value}, mask={mask})", note=note,
                        indent=indent)
        self.stored.append(v)
