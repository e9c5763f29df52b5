"""Native kernels: a fused group as one C function, built by the system's C compiler
and called through ctypes on the same numpy buffers the rest of the backend uses.

Why: in a numpy kernel every op is a pass of numpy's own loop over the block, so a
softmax makes five passes and broadcasting a per-row value costs a loop call per row.
One C loop does the whole chain per element while it sits in a register (softmax
over (4096, 1024) float32: 3.3 ms as numpy blocks, 1.5 ms native, 1.0 ms to copy
the array once). Matmul stays with BLAS; whatever this module cannot express returns
None and runs as a numpy kernel instead.

Two forms:

* flat: an elementwise group whose inputs all have the group's shape or a single
  element: one loop over the elements.
* nd: any other elementwise group: a loop per axis, inputs broadcast by leaving an
  axis out of their index (a conv's (1, C, 1, 1) bias over (N, C, H, W)).
* rows: a group over a 2-d space (R, C) (rank >= 3 values arrive flattened to it,
  see codegen.flatten_rows); inputs may broadcast along rows or along columns, and
  reductions over the last axis give per-row values. A row is computed by a few
  loops over its C columns, one per level of reductions: softmax's max is level 0,
  its sum level 1 and its output level 2.

    void k0(int64_t lo, int64_t hi, void *const *args) {
      const float *restrict a0 = args[0];
      float *restrict o0 = args[1];
      for (int64_t r = lo; r < hi; r++) {
        float acc1 = -INFINITY; uint8_t nan1 = 0;
        #pragma omp simd reduction(max:acc1) reduction(|:nan1)
        for (int64_t c = 0; c < 1024; c++) {
          const float v0 = a0[r * 1024 + c];           // %x
          acc1 = v0 > acc1 ? v0 : acc1; nan1 |= v0 != v0;
        }
        ...

A value computed in one loop and needed in a later one is recomputed there (it is
cheap next to a trip to memory) unless the kernel writes it out anyway, in which
case it is read back from its row of the output, still in cache.

Semantics follow numpy: NaN propagates through max, min, maximum and minimum;
integer arithmetic wraps; float-to-int casts and integer powers are left to numpy
(C leaves their overflow undefined). Each line of C names its IR node.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from graphc.backends.numpy import cdivision, cexpr, cmath
from graphc.backends.numpy.literals import c_comment, c_size
from graphc.backends.numpy.lowering import LOWERINGS
from graphc.ir import Node, Value
from graphc.ir.text import format_node
from graphc.ops import OPS, Kind
from graphc.backends.numpy.names import ParamNames
from graphc.passes.schedule import KernelPlan

# the C types, by dtype (the C forms of the primitives are in cexpr and lowering)
CTYPE = cexpr.CTYPE
_UNSIGNED = cexpr.UNSIGNED
_FLOATS = cexpr.FLOATS


@dataclass
class NativeKernel:
    name: str
    source: str               # one C function
    inputs: list[Value]       # external values, in parameter order
    outputs: list[Value]      # values written whole
    rows: int                 # what threads split: rows, or elements of a flat kernel
    align: int                # split points are multiples of this
    math: frozenset[tuple]    # (C math function, its type, arity) called
    # the C with its own name, its parameters' names and its comments left out: two
    # kernels with the same key compute the same thing (an unrolled loop's groups)
    key: str = ""
    params: tuple[str, ...] = ()  # its parameters' names: inputs, then outputs
    # whether it reads symbolic sizes: then its last argument is the call's `_sizes`
    # (int64, one per symbol), after the outputs
    sizes: bool = False


class _Unsupported(Exception):
    pass


REDUCTIONS = ("sum", "max", "min")
# Stack bytes per kernel call for rows of values that later loops read (see
# plan_saved); what does not fit is computed again. Threads' stacks are megabytes.
SCRATCH_BYTES = 64 * 1024
# Primitives of the kinds fused into kernels that run as numpy kernels instead, and why.
NOT_NATIVE = {
    "argmax": "numpy's first-index tie and NaN rules are kept by numpy's own argmax",
}


def _expression(node: Node, args: list[str], math: set[str]) -> str:
    """The C expression of `node` from its operands' (the C form of its lowering
    entry); raises _Unsupported where there is none."""
    dt = node.inputs[-1].type.dtype  # where's condition is bool; its other inputs agree
    form = getattr(LOWERINGS.get(node.op), "c", None)
    text = form(dt, args, math, node.attrs) if form else None
    if text is None:
        raise _Unsupported(node.op)
    return text


# --- the kernel ----------------------------------------------------------------------

def native_kernel(name: str, plan: KernelPlan, in_place: dict[int, Value] | None = None
                  ) -> NativeKernel | None:
    """The C kernel computing `plan` (a fused group), or None where it cannot. Values
    that escape the plan are written out; `in_place` (id(graph output) -> graph input)
    names outputs written over an input's buffer, whose pointers may alias."""
    try:
        return _Kernel(name, plan, in_place or {}).generate()
    except _Unsupported:
        return None


def _describe(node: Node) -> str:
    """A C comment's text for `node`: its IR line and the user's `file:line`."""
    text = format_node(node).split("  #")[0].strip()
    if node.loc:
        text += f"  ({node.loc})"
    return c_comment(text)


def c_literal(v: Value) -> str | None:
    """A C literal for a one-element constant (`0.5f`, `((int64_t)3LL)`), or None.

    float32 prints as numpy's shortest repr that reads back as the same float32 (C
    rounds the decimal to the nearest float, which is that value); float64 as Python's;
    infinities and NaN by name, as math.h spells them."""
    node = v.node
    if node is None or node.op != "const" or v.type.size != 1 or v.type.dtype not in CTYPE:
        return None
    x = node.attrs["value"].array.reshape(())
    dt = v.type.dtype
    if dt in _FLOATS:
        t = CTYPE[dt]
        if np.isnan(x):
            return f"(({t})NAN)"
        if np.isinf(x):
            return f"(({t}){'-' if x < 0 else ''}INFINITY)"
        text = str(np.float32(x)) if dt == "float32" else repr(float(x))
        if not any(ch in text for ch in ".en"):  # an integral float reads as 3.0, not 3
            text += ".0"
        return f"{text}f" if dt == "float32" else text
    if dt == "bool":
        return f"((uint8_t){int(bool(x))})"
    value = int(x)
    if value == np.iinfo(np.int64).min:  # -9223372036854775808 is not a C literal
        return "(INT64_MIN)"
    return f"(({CTYPE[dt]}){value}LL)"


class _Kernel:
    def __init__(self, name: str, plan: KernelPlan, in_place: dict[int, Value]):
        self.name, self.plan, self.nodes = name, plan, list(plan.nodes)
        nodes = self.nodes
        # pointers that may alias (an output over its input) lose `restrict`
        self.aliased = {id(v) for v in in_place.values()} | set(in_place)
        self.internal = {id(n.output): n for n in nodes}
        self.params: dict[int, str] = {}
        self.inputs: list[Value] = []
        self.outputs: list[Value] = []
        self.out_name: dict[int, str] = {}
        self.local: dict[int, str] = {}
        self.math: set[tuple] = set()
        self.in_loop: set[int] = set()   # full values computed in the loop being written
        self.loaded: dict[str, str] = {}  # array reads already in locals, in this scope
        self.loads = 0
        for n in nodes:
            if len(n.outputs) != 1 or n.op in NOT_NATIVE:
                raise _Unsupported(n.op)
            for v in (*n.inputs, *n.outputs):
                if v.type.dtype not in CTYPE:
                    raise _Unsupported(v.type.dtype)
        if plan.form is None:
            raise _Unsupported("no loop nest")
        # a symbolic size past the first axis is read from the `sizes` argument
        # (literals.c_size); the first axis arrives as the rows the caller passes
        self.space = plan.space
        self.names = ParamNames(plan.origin, sum(plan.escapes(n.output) for n in nodes),
                                reserved=lambda name: False)  # "_ptr" sets them apart
        for n in nodes:
            if plan.escapes(n.output):
                if n.output.type.ndim == 0:
                    raise _Unsupported("escaping scalar")
                self.out_name[id(n.output)] = self.names.output(n.output) + "_ptr"
                self.outputs.append(n.output)

    def param(self, v: Value) -> str:
        if id(v) not in self.params:
            self.params[id(v)] = self.names.input(v) + "_ptr"
            self.inputs.append(v)
        return self.params[id(v)]

    def read(self, v: Value, index: str) -> str:
        """Element `index` of input v: a literal for a one-element constant (inlined,
        not loaded through a pointer), else a load."""
        literal = c_literal(self.plan.origin(v))
        return literal if literal is not None else f"{self.param(v)}[{index}]"

    def scalar_lines(self) -> list[str]:
        """0-d nodes: computed once at the top, from 0-d inputs."""
        lines = []
        for i, n in enumerate(self.nodes):
            if n.output.type.ndim == 0:
                args = [self.local[id(v)] if id(v) in self.local else self.read(v, "0")
                        for v in n.inputs]
                lines += self.define(n, i, args)
        self.loaded = {}
        return lines

    def define(self, n: Node, i: int, args: list[str]) -> list[str]:
        """Lines computing node n as the local v{i}. Array reads among the arguments
        become locals first: a read inside `c ? a[i] : b[i]` would be a branch (the
        compiler may not load what C does not evaluate), a local makes it a blend."""
        lines = []
        for k, arg in enumerate(args):
            if "[" in arg:
                if arg not in self.loaded:
                    self.loaded[arg] = f"x{self.loads}"
                    self.loads += 1
                    t = CTYPE[n.inputs[k].type.dtype]
                    lines.append(f"const {t} {self.loaded[arg]} = {arg};")
                args = args[:k] + [self.loaded[arg]] + args[k + 1:]
        name = f"v{i}"
        self.local[id(n.output)] = name
        t = CTYPE[n.output.type.dtype]
        return lines + [f"const {t} {name} = {_expression(n, args, self.math)};  "
                        f"// {self.describe(n)}"]

    def generate(self) -> NativeKernel:
        form = self.plan.form
        if form == "flat":
            body, rows, align = self.flat(), _size(self.space), 64
        elif form == "nd":
            body = self.nd()
            rows, align = self.nd_rows, 1
        elif form == "rows":
            body, rows, align = self.rows(), self.space[0], 1
        else:
            raise _Unsupported(f"a {form} plan")
        # every kernel takes (lo, hi, the arrays' data pointers): one ABI, one caller
        unpack = [f"const {CTYPE[v.type.dtype]} *{self.restrict(v)}{self.params[id(v)]} = "
                  f"args[{i}];" for i, v in enumerate(self.inputs)]
        unpack += [f"{CTYPE[v.type.dtype]} *{self.restrict(v)}{self.out_name[id(v)]} = "
                   f"args[{len(self.inputs) + i}];" for i, v in enumerate(self.outputs)]
        sized = any("sizes[" in line for line in body)
        if sized:
            unpack.append(f"const int64_t *restrict sizes = args[{len(unpack)}];"
                          "  // the call's symbolic sizes")
        source = "\n".join(
            [f"void {self.name}(int64_t lo, int64_t hi, void *const *args) {{"] +
            ["  " + line for line in unpack + body] + ["}"])
        return NativeKernel(self.name, source, self.inputs, self.outputs, rows, align,
                            frozenset(self.math), self.key(source),
                            tuple(self.params[id(v)] for v in self.inputs) +
                            tuple(self.out_name[id(v)] for v in self.outputs) +
                            (("sizes",) if sized else ()), sized)

    def key(self, source: str) -> str:
        params = [self.params[id(v)] for v in self.inputs] + \
            [self.out_name[id(v)] for v in self.outputs]
        text = re.sub(r"//[^\n]*", "", source.replace(f"void {self.name}(", "void _(", 1))
        position = {name: k for k, name in enumerate(params)}  # @k@: no name has an @
        return re.sub(r"\b\w+_ptr\b", lambda m: f"@{position[m[0]]}@" if m[0] in position
                      else m[0], text)

    def describe(self, n: Node) -> str:
        """The comment of n's C line: the graph's node (not a flattened copy) and the
        user's line."""
        return _describe(self.plan.source_node(n))

    def restrict(self, v: Value) -> str:
        return "" if id(self.plan.origin(v)) in self.aliased else "restrict "

    # --- flat: one loop over the elements --------------------------------------------

    def flat(self) -> list[str]:
        top = self.scalar_lines()
        loop = []
        for i, n in enumerate(self.nodes):
            if n.output.type.ndim == 0:
                continue
            args = [self.local[id(v)] if id(v) in self.local else
                    self.read(v, "i" if v.type.shape == self.space else "0")
                    for v in n.inputs]
            loop += self.define(n, i, args)
            if id(n.output) in self.out_name:
                loop.append(f"{self.out_name[id(n.output)]}[i] = v{i};")
        return top + ["#pragma omp simd", "for (int64_t i = lo; i < hi; i++) {"] + \
            ["  " + line for line in loop] + ["}"]

    # --- nd: a loop per axis ----------------------------------------------------------

    def nd(self) -> list[str]:
        space, merged = _coalesce(self.space, [v.type.shape for n in self.nodes
                                               for v in n.inputs if v.type.ndim])
        rank = len(space)

        def index(shape: tuple[int, ...]) -> str:
            terms, stride = [], 1
            for k, d in reversed(list(enumerate(merged(shape)))):
                if d > 1:  # a size-1 axis broadcasts: left out of the index
                    terms.append(f"i{k}" + (f" * {c_size(stride)}" if stride != 1 else ""))
                stride *= d
            return " + ".join(reversed(terms)) or "0"

        # the loop bounds by name: axis k of the space, after merging axes
        top = [f"const int64_t {', '.join(f'size{k} = {c_size(space[k])}' for k in range(1, rank))};"
               f"  // the space {list(self.space)} as {list(space)}"] if rank > 1 else []
        top += self.scalar_lines()
        inner = []
        for i, n in enumerate(self.nodes):
            if n.output.type.ndim:
                args = [self.local[id(v)] if id(v) in self.local else
                        self.read(v, index(v.type.shape)) for v in n.inputs]
                inner += self.define(n, i, args)
                if id(n.output) in self.out_name:
                    inner.append(f"{self.out_name[id(n.output)]}[{index(self.space)}] = v{i};")
        self.nd_rows = space[0]
        loops = ["for (int64_t i0 = lo; i0 < hi; i0++) {"]
        for k in range(1, rank):
            loops += (["#pragma omp simd"] if k == rank - 1 else []) + \
                [f"for (int64_t i{k} = 0; i{k} < size{k}; i{k}++) {{"]
        lines, depth = [], 0
        for line in loops:
            lines.append("  " * depth + line)
            depth += line.endswith("{")
        lines += ["  " * depth + line for line in inner]
        lines += ["  " * d + "}" for d in reversed(range(depth))]
        return top + lines

    # --- rows: per row, a loop over the columns per level of reductions --------------

    def rows(self) -> list[str]:
        R, C = self.space
        self.kind, self.level = self.plan.value_kind, self.plan.level  # its loop levels
        top = [f"const int64_t n_cols = {c_size(C)};  // the columns of each of the {R} rows"]
        top += self.scalar_lines()
        self.saved: dict[int, str] = {}
        if type(C) is int:
            return top + self.plan_saved(C) + self.row_loop()
        # symbolic columns: rows that fit the stack scratch keep their saved values in
        # it (arrays of `limit`), longer ones compute them again; one loop nest each
        itemsizes = sum(np.dtype(v.type.dtype).itemsize for v in self.plan.kept)
        limit = SCRATCH_BYTES // itemsizes if itemsizes else 0
        if not limit:
            return top + self.row_loop()
        short = self.plan_saved(limit) + self.row_loop()
        self.saved = {}
        long = self.row_loop()
        return top + [f"if (n_cols <= {limit}) {{  // rows that fit the stack scratch"] + \
            ["  " + line for line in short] + ["} else {"] + \
            ["  " + line for line in long] + ["}"]

    def row_loop(self) -> list[str]:
        """The loop over the rows lo..hi, each computed by its loops over the columns."""
        kind, level = self.kind, self.level
        body: list[str] = []
        last = max(level.values())
        for k in range(last + 1):
            for i, n in enumerate(self.nodes):
                if kind[id(n.output)] == "row" and level[id(n.output)] == k and \
                        OPS[n.op].kind is not Kind.REDUCTION:
                    body += self.define(n, i, [self.row_operand(v) for v in n.inputs])
                    self.store_row(n, i, body)
            body += self.loop(k, self.space[1])
        return ["for (int64_t r = lo; r < hi; r++) {"] + ["  " + line for line in body] + ["}"]

    def plan_saved(self, C: int) -> list[str]:
        """Full values that a later loop reads, kept in a row of scratch on the stack
        (a store and a load from L1) rather than computed again (softmax's exp)."""
        self.saved: dict[int, str] = {}
        budget = SCRATCH_BYTES
        for v in self.plan.kept:  # (R, C) values: a row is C of them
            row_bytes = C * np.dtype(v.type.dtype).itemsize
            if row_bytes <= budget:
                budget -= row_bytes
                self.saved[id(v)] = f"s{len(self.saved)}"
        return [f"{CTYPE[self.internal[vid].output.type.dtype]} {name}[{C}];  "
                f"// a row of {self.describe(self.internal[vid])}"
                for vid, name in self.saved.items()]

    def written(self, vid: int, k: int) -> bool:
        """Whether full value vid was stored by a loop before loop k."""
        return (vid in self.out_name or vid in self.saved) and self.level[vid] < k

    def row_operand(self, v: Value) -> str:
        if id(v) in self.local:
            return self.local[id(v)]
        return self.read(v, "r" if v.type.size > 1 else "0")

    def store_row(self, n: Node, i: int, body: list[str]) -> None:
        if id(n.output) in self.out_name:
            body.append(f"{self.out_name[id(n.output)]}[r] = v{i};")

    def loop(self, k: int, C: int) -> list[str]:
        """Loop k over a row's columns: the full values of level k, the reductions
        whose input is of level k, and what those need."""
        reductions = [(i, n) for i, n in enumerate(self.nodes)
                      if OPS[n.op].kind is Kind.REDUCTION and self.level[id(n.output)] == k + 1]
        targets = {id(n.output) for n in self.nodes if self.kind[id(n.output)] == "full"
                   and self.level[id(n.output)] == k and id(n.output) in self.out_name}
        targets |= {id(n.inputs[0]) for _, n in reductions if id(n.inputs[0]) in self.internal}
        targets |= {vid for vid in self.saved if self.level[vid] == k}
        if not targets and not reductions:
            return []
        needed = set()
        stack = list(targets)
        while stack:
            vid = stack.pop()
            if vid in needed:
                continue
            needed.add(vid)
            n = self.internal[vid]
            for v in n.inputs:
                if self.kind.get(id(v)) == "full" and not self.written(id(v), k):
                    stack.append(id(v))
        head, pragma, inner, tail = [], ["#pragma omp simd"], [], []
        self.in_loop, self.loaded = needed, {}
        for i, n in enumerate(self.nodes):
            if id(n.output) in needed:
                inner += self.define(n, i, [self.full_operand(v, C) for v in n.inputs])
                if id(n.output) in self.out_name and self.level[id(n.output)] == k:
                    inner.append(f"{self.out_name[id(n.output)]}[r * n_cols + c] = v{i};")
                if id(n.output) in self.saved and self.level[id(n.output)] == k:
                    inner.append(f"{self.saved[id(n.output)]}[c] = v{i};")
        for i, n in reductions:
            x = self.full_operand(n.inputs[0], C)
            self.reduction(i, n, x, head, pragma, inner, tail)
        for vid in needed:  # loop-local names, out of scope after the loop
            del self.local[vid]
        self.loaded = {}
        return head + [" ".join(pragma), "for (int64_t c = 0; c < n_cols; c++) {"] + \
            ["  " + line for line in inner] + ["}"] + tail

    def full_operand(self, v: Value, C: int) -> str:
        """v as read inside a loop over the columns of row r."""
        kind = self.kind.get(id(v))
        if kind == "full" and id(v) not in self.in_loop:  # stored by an earlier loop
            if id(v) in self.saved:
                return f"{self.saved[id(v)]}[c]"
            return f"{self.out_name[id(v)]}[r * n_cols + c]"
        if kind is not None:
            return self.local[id(v)]
        shape = (1,) * (2 - v.type.ndim) + v.type.shape
        a, b = shape
        row = ("r * n_cols" if b == C else f"r * {c_size(b)}") if a > 1 else ""
        col = "c" if b > 1 else ""
        index = " + ".join(p for p in (row, col) if p) or "0"
        return self.read(v, index)

    def reduction(self, i, n, x, head, pragma, inner, tail) -> None:
        dt = n.output.type.dtype
        t = CTYPE[dt]
        acc = f"acc{i}"
        if n.op == "sum":
            if dt == "bool":
                raise _Unsupported("bool sum")
            at = _UNSIGNED.get(dt, t)  # integers wrap as numpy's do
            head.append(f"{at} {acc} = 0;")
            pragma.append(f"reduction(+:{acc})")
            inner.append(f"{acc} += ({at}){x};  // {self.describe(n)}")
            value = f"({t}){acc}"
        else:
            cmp = ">" if n.op == "max" else "<"
            head.append(f"{t} {acc} = {_START[n.op, dt]};")
            pragma.append(f"reduction({n.op}:{acc})")
            inner.append(f"{acc} = {x} {cmp} {acc} ? {x} : {acc};  // {self.describe(n)}")
            value = acc
            if dt in _FLOATS:  # OpenMP's max drops NaN; numpy's keeps it
                head.append(f"uint8_t nan{i} = 0;")
                pragma.append(f"reduction(|:nan{i})")
                inner.append(f"nan{i} |= {x} != {x};")
                value = f"(nan{i} ? NAN : {acc})"
        tail.append(f"const {t} v{i} = {value};")
        self.local[id(n.output)] = f"v{i}"
        self.store_row(n, i, tail)


def _coalesce(space: tuple[int, ...], shapes: list[tuple[int, ...]]):
    """Fewer, longer axes: size-1 axes of the space dropped, and neighbouring axes
    merged where every operand either has both or broadcasts over both, so that the
    innermost loop is long. Returns the new space and a map from an operand's shape
    (broadcastable to `space`) to its shape over the new axes."""
    rank = len(space)

    def pad(shape):
        return (1,) * (rank - len(shape)) + tuple(shape)

    padded = [pad(s) for s in shapes]
    groups: list[list[int]] = []
    for k in [k for k in range(rank) if space[k] != 1] or [0]:
        if groups and all((p[groups[-1][-1]] == 1) == (p[k] == 1) for p in padded):
            groups[-1].append(k)
        else:
            groups.append([k])

    def merged(shape):
        p = pad(shape)
        return tuple(_size(tuple(p[k] for k in g)) for g in groups)
    return merged(space), merged


_START = {("max", "float32"): "-INFINITY", ("max", "float64"): "-INFINITY",
          ("min", "float32"): "INFINITY", ("min", "float64"): "INFINITY",
          ("max", "int32"): "INT32_MIN", ("min", "int32"): "INT32_MAX",
          ("max", "int64"): "INT64_MIN", ("min", "int64"): "INT64_MAX",
          ("max", "bool"): "0", ("min", "bool"): "1"}


def _size(shape: tuple[int, ...]) -> int:
    size = 1
    for d in shape:
        size *= d
    return size


def library_source(kernels: list[NativeKernel], vector_math: frozenset[str]) -> str:
    """One C file with every kernel of a function. Math functions that glibc's libmvec
    provides in vector form are declared `simd`, so that loops calling them vectorize."""
    used = sorted(set().union(*(k.math for k in kernels)))
    lines = ["// generated by graphc's numpy backend: native kernels",
             "#include <math.h>", "#include <stdint.h>", ""]
    for fn, t, arity in used:
        if fn in vector_math:
            lines += ["#pragma omp declare simd notinbranch",
                      f"{t} {fn}({', '.join([t] * arity)});"]
        if fn in cdivision.HELPERS:
            lines += [cdivision.helper(fn)]
    if any(fn in cmath.OWN.values() for fn, _, _ in used):
        lines += [cmath.source()]
    return "\n".join(lines + [""] + [k.source + "\n" for k in kernels])
