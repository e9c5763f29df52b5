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

from dataclasses import dataclass
from typing import Callable

from graphc.backends.numpy import cdivision
from graphc.ir import Node, Value
from graphc.ir.text import format_node
from graphc.ops import OPS, Kind
from graphc.ops.elementwise import power_of_ten

CTYPE = {"float32": "float", "float64": "double", "int32": "int32_t", "int64": "int64_t",
         "bool": "uint8_t"}
_UNSIGNED = {"int32": "uint32_t", "int64": "uint64_t"}
_FLOATS = ("float32", "float64")


@dataclass
class NativeKernel:
    name: str
    source: str               # one C function
    inputs: list[Value]       # external values, in parameter order
    outputs: list[Value]      # values written whole
    rows: int                 # what threads split: rows, or elements of a flat kernel
    align: int                # split points are multiples of this
    math: frozenset[tuple]    # (C math function, its type, arity) called


class _Unsupported(Exception):
    pass


# --- one entry per primitive: (dtype of the inputs, C operands) -> C expression -----

def _fn(name: str, dt: str, math: set, arity: int = 1) -> str:
    """The C math function `name` for dtype `dt` (expf for float32), recorded as used."""
    full = name + ("f" if dt == "float32" else "")
    math.add((full, CTYPE[dt], arity))
    return full


def _math(name: str) -> Callable:
    def lower(dt, a, math):
        if dt not in _FLOATS:
            return None
        return f"{_fn(name, dt, math)}({a[0]})"
    return lower


def _arith(op: str) -> Callable:
    def lower(dt, a, math):
        if dt in _UNSIGNED:  # wrap around as numpy does; signed overflow is undefined in C
            u = _UNSIGNED[dt]
            return f"({CTYPE[dt]})(({u}){a[0]} {op} ({u}){a[1]})"
        return f"({a[0]} {op} {a[1]})" if dt in _FLOATS else None
    return lower


def _neg(dt, a, math):
    if dt in _UNSIGNED:
        return f"({CTYPE[dt]})(({_UNSIGNED[dt]})0 - ({_UNSIGNED[dt]}){a[0]})"
    return f"(-{a[0]})" if dt in _FLOATS else None


def _abs(dt, a, math):
    if dt in _FLOATS:
        return f"{_fn('fabs', dt, math)}({a[0]})"
    if dt in _UNSIGNED:
        return f"({a[0]} < 0 ? {_neg(dt, a, math)} : {a[0]})"
    return None


def _sign(dt, a, math):
    t = CTYPE.get(dt)
    if dt in _FLOATS:  # NaN passes through; -0.0 becomes +0.0, as numpy's sign gives
        return (f"({a[0]} > 0 ? ({t})1 : {a[0]} < 0 ? ({t})-1 : "
                f"{a[0]} == 0 ? ({t})0 : {a[0]})")
    return f"({t})(({a[0]} > 0) - ({a[0]} < 0))" if dt in _UNSIGNED else None


def _float_only(template: str) -> Callable:
    def lower(dt, a, math):
        if dt not in _FLOATS:
            return None
        return template.format(*a, t=CTYPE[dt], sqrt=_fn("sqrt", dt, math) if
                               "{sqrt}" in template else "")
    return lower


def _sigmoid(dt, a, math):
    if dt not in _FLOATS:
        return None
    t, x = CTYPE[dt], a[0]
    e = f"{_fn('exp', dt, math)}(-{_fn('fabs', dt, math)}({x}))"
    # exp of a non-positive number only, as the reference does: no overflow
    return f"({x} >= 0 ? ({t})1 / (({t})1 + {e}) : {e} / (({t})1 + {e}))"


def _extreme(cmp: str) -> Callable:
    def lower(dt, a, math):
        x, y = a
        if dt in _FLOATS:  # numpy's maximum/minimum propagate a NaN from either side
            return f"(({x} {cmp}= {y} || {x} != {x}) ? {x} : {y})"
        return f"({x} {cmp} {y} ? {x} : {y})"
    return lower


def _compare(op: str) -> Callable:
    return lambda dt, a, math: f"(uint8_t)({a[0]} {op} {a[1]})"


def _pow(dt, a, math):
    return f"{_fn('pow', dt, math, 2)}({a[0]}, {a[1]})" if dt in _FLOATS else None


def _divmod(op: str) -> Callable:
    def lower(dt, a, math):  # numpy's floored semantics: see cdivision
        helper = cdivision.name(op, CTYPE[dt])
        math.add((helper, CTYPE[dt], 2))
        return f"{helper}({a[0]}, {a[1]})"
    return lower


def _round(dt: str, decimals: int, x: str, math: set) -> str | None:
    """np.round: rint (half to even in the default rounding mode) of x * 10**d,
    divided back, in x's type, as numpy's steps are."""
    if dt not in _FLOATS:
        return None
    rint = _fn("rint", dt, math)
    if decimals == 0:
        return f"{rint}({x})"
    scale = f"(({CTYPE[dt]}){power_of_ten(abs(decimals))!r})"
    return f"({rint}({x} * {scale}) / {scale})" if decimals > 0 else \
        f"({rint}({x} / {scale}) * {scale})"


EXPRESSIONS: dict[str, Callable] = {
    "neg": _neg, "abs": _abs, "sign": _sign,
    "exp": _math("exp"), "expm1": _math("expm1"), "log": _math("log"),
    "log1p": _math("log1p"), "sqrt": _math("sqrt"), "tanh": _math("tanh"),
    "sin": _math("sin"), "cos": _math("cos"), "erf": _math("erf"),
    "rsqrt": _float_only("(({t})1 / {sqrt}({0}))"),
    "reciprocal": _float_only("(({t})1 / {0})"),
    "sigmoid": _sigmoid,
    "logical_not": lambda dt, a, math: f"(uint8_t)!{a[0]}",
    "add": _arith("+"), "sub": _arith("-"), "mul": _arith("*"),
    "div": _float_only("({0} / {1})"), "pow": _pow,
    "maximum": _extreme(">"), "minimum": _extreme("<"),
    "eq": _compare("=="), "ne": _compare("!="), "lt": _compare("<"),
    "le": _compare("<="), "gt": _compare(">"), "ge": _compare(">="),
    "logical_and": lambda dt, a, math: f"(uint8_t)({a[0]} && {a[1]})",
    "logical_or": lambda dt, a, math: f"(uint8_t)({a[0]} || {a[1]})",
    "where": lambda dt, a, math: f"({a[0]} ? {a[1]} : {a[2]})",
    "cast": None,  # needs both dtypes: see _cast
    "floor": _math("floor"), "ceil": _math("ceil"),
    "round": None,  # needs its decimals: see _round
    "floor_divide": _divmod("floor_divide"), "remainder": _divmod("remainder"),
}
REDUCTIONS = ("sum", "max", "min")
# Stack bytes per kernel call for rows of values that later loops read (see
# plan_saved); what does not fit is computed again. Threads' stacks are megabytes.
SCRATCH_BYTES = 64 * 1024
# Primitives of the kinds fused into kernels that run as numpy kernels instead, and why.
NOT_NATIVE = {
    "argmax": "numpy's first-index tie and NaN rules are kept by numpy's own argmax",
}


def _cast(src: str, dst: str, x: str) -> str | None:
    if dst == "bool":
        return f"(uint8_t)({x} != 0)"
    if src in _FLOATS and dst not in _FLOATS:
        return None  # out-of-range float to int is undefined in C; numpy gives a value
    return f"({CTYPE[dst]}){x}"


def _expression(node: Node, args: list[str], math: set[str]) -> str:
    dt = node.inputs[-1].type.dtype  # where's condition is bool; its other inputs agree
    if node.op == "cast":
        text = _cast(dt, node.output.type.dtype, args[0])
    elif node.op == "round":
        text = _round(dt, node.attrs["decimals"], args[0], math)
    else:
        lower = EXPRESSIONS.get(node.op)
        text = lower(dt, args, math) if lower else None
    if text is None:
        raise _Unsupported(node.op)
    return text


# --- the kernel ----------------------------------------------------------------------

def native_kernel(name: str, nodes: list[Node], escaping: set[int]) -> NativeKernel | None:
    """The C kernel computing `nodes` (a fused group), or None where it cannot.
    `escaping` holds ids of values needed outside the group: they are written out."""
    try:
        return _Kernel(name, nodes, escaping).generate()
    except _Unsupported:
        return None


def _describe(node: Node) -> str:
    text = format_node(node).split("  #")[0].strip()
    return text.replace("*/", "* /")


class _Kernel:
    def __init__(self, name: str, nodes: list[Node], escaping: set[int]):
        self.name, self.nodes, self.escaping = name, nodes, escaping
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
        first = next((n for n in nodes if n.output.type.ndim), None)
        if first is None:
            raise _Unsupported("scalars only")
        self.space = first.inputs[0].type.shape if OPS[first.op].kind is Kind.REDUCTION \
            else first.output.type.shape
        for n in nodes:
            if id(n.output) in escaping:
                if n.output.type.ndim == 0:
                    raise _Unsupported("escaping scalar")
                self.out_name[id(n.output)] = f"o{len(self.outputs)}"
                self.outputs.append(n.output)

    def param(self, v: Value) -> str:
        if id(v) not in self.params:
            self.params[id(v)] = f"a{len(self.inputs)}"
            self.inputs.append(v)
        return self.params[id(v)]

    def scalar_lines(self) -> list[str]:
        """0-d nodes: computed once at the top, from 0-d inputs."""
        lines = []
        for i, n in enumerate(self.nodes):
            if n.output.type.ndim == 0:
                args = [self.local[id(v)] if id(v) in self.local else f"{self.param(v)}[0]"
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
                        f"// {_describe(n)}"]

    def generate(self) -> NativeKernel:
        flat = all(OPS[n.op].kind is Kind.ELEMENTWISE for n in self.nodes) and all(
            n.output.type.shape in (self.space, ()) and
            all(v.type.shape == self.space or v.type.size == 1 for v in n.inputs)
            for n in self.nodes)
        if flat:
            body, rows, align = self.flat(), _size(self.space), 64
        elif all(OPS[n.op].kind is Kind.ELEMENTWISE for n in self.nodes):
            body = self.nd()
            rows, align = self.nd_rows, 1
        elif len(self.space) == 2:
            body, rows, align = self.rows(), self.space[0], 1
        else:
            raise _Unsupported(f"rank {len(self.space)}")
        # every kernel takes (lo, hi, the arrays' data pointers): one ABI, one caller
        unpack = [f"const {CTYPE[v.type.dtype]} *restrict {self.params[id(v)]} = args[{i}];"
                  for i, v in enumerate(self.inputs)]
        unpack += [f"{CTYPE[v.type.dtype]} *restrict {self.out_name[id(v)]} = "
                   f"args[{len(self.inputs) + i}];" for i, v in enumerate(self.outputs)]
        source = "\n".join(
            [f"void {self.name}(int64_t lo, int64_t hi, void *const *args) {{"] +
            ["  " + line for line in unpack + body] + ["}"])
        return NativeKernel(self.name, source, self.inputs, self.outputs, rows, align,
                            frozenset(self.math))

    # --- flat: one loop over the elements --------------------------------------------

    def flat(self) -> list[str]:
        top = self.scalar_lines()
        loop = []
        for i, n in enumerate(self.nodes):
            if n.output.type.ndim == 0:
                continue
            args = [self.local[id(v)] if id(v) in self.local else
                    f"{self.param(v)}[{'i' if v.type.shape == self.space else '0'}]"
                    for v in n.inputs]
            loop += self.define(n, i, args)
            if id(n.output) in self.out_name:
                loop.append(f"{self.out_name[id(n.output)]}[i] = v{i};")
        return top + ["#pragma omp simd", "for (int64_t i = lo; i < hi; i++) {"] + \
            ["  " + line for line in loop] + ["}"]

    # --- nd: a loop per axis ----------------------------------------------------------

    def nd(self) -> list[str]:
        if any(n.output.type.shape not in (self.space, ()) for n in self.nodes):
            raise _Unsupported("elementwise group of mixed shapes")
        space, merged = _coalesce(self.space, [v.type.shape for n in self.nodes
                                               for v in n.inputs if v.type.ndim])
        rank = len(space)

        def index(shape: tuple[int, ...]) -> str:
            terms, stride = [], 1
            for k, d in reversed(list(enumerate(merged(shape)))):
                if d > 1:  # a size-1 axis broadcasts: left out of the index
                    terms.append(f"i{k}" + (f" * {stride}" if stride > 1 else ""))
                stride *= d
            return " + ".join(reversed(terms)) or "0"

        top = self.scalar_lines()
        inner = []
        for i, n in enumerate(self.nodes):
            if n.output.type.ndim:
                args = [self.local[id(v)] if id(v) in self.local else
                        f"{self.param(v)}[{index(v.type.shape)}]" for v in n.inputs]
                inner += self.define(n, i, args)
                if id(n.output) in self.out_name:
                    inner.append(f"{self.out_name[id(n.output)]}[{index(self.space)}] = v{i};")
        self.nd_rows = space[0]
        loops = ["for (int64_t i0 = lo; i0 < hi; i0++) {"]
        for k in range(1, rank):
            loops += (["#pragma omp simd"] if k == rank - 1 else []) + \
                [f"for (int64_t i{k} = 0; i{k} < {space[k]}; i{k}++) {{"]
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
        kind: dict[int, str] = {}   # internal value -> "scalar" | "row" | "full"
        level: dict[int, int] = {}
        for n in self.nodes:
            out = n.output.type.shape
            lv = max([level.get(id(v), 0) for v in n.inputs] + [0])
            if OPS[n.op].kind is Kind.REDUCTION:
                x = n.inputs[0]
                if x.type.shape != self.space or tuple(n.attrs["axes"]) != (1,) or \
                        kind.get(id(x), "full") != "full":
                    raise _Unsupported("reduction not over the last axis of the space")
                kind[id(n.output)], level[id(n.output)] = "row", lv + 1
            elif out == ():
                kind[id(n.output)], level[id(n.output)] = "scalar", 0
            elif out == self.space:
                kind[id(n.output)], level[id(n.output)] = "full", lv
            elif out in ((R, 1), (R,)):
                if any(kind.get(id(v)) == "full" or (id(v) not in kind and v.type.size > R)
                       for v in n.inputs):
                    raise _Unsupported("full-width input to a per-row value")
                kind[id(n.output)], level[id(n.output)] = "row", lv
            else:
                raise _Unsupported(f"shape {out} in space {self.space}")
            for v in n.inputs:  # a per-row local can only stand for a column of (R, 1)
                if kind.get(id(v)) == "row" and out == self.space and R > 1 and \
                        v.type.shape != (R, 1):
                    raise _Unsupported("per-row value broadcast along a row")
        self.kind, self.level = kind, level
        top = self.scalar_lines() + self.plan_saved(C)
        body: list[str] = []
        last = max(level.values())
        for k in range(last + 1):
            for i, n in enumerate(self.nodes):
                if kind[id(n.output)] == "row" and level[id(n.output)] == k and \
                        OPS[n.op].kind is not Kind.REDUCTION:
                    body += self.define(n, i, [self.row_operand(v) for v in n.inputs])
                    self.store_row(n, i, body)
            body += self.loop(k, C)
        return top + [f"for (int64_t r = lo; r < hi; r++) {{"] + \
            ["  " + line for line in body] + ["}"]

    def plan_saved(self, C: int) -> list[str]:
        """Full values that a later loop reads, kept in a row of scratch on the stack
        (a store and a load from L1) rather than computed again (softmax's exp)."""
        self.saved: dict[int, str] = {}
        budget = SCRATCH_BYTES
        for n in self.nodes:
            v = n.output
            if self.kind[id(v)] != "full" or id(v) in self.out_name:
                continue
            later = any(self.kind[id(u.output)] == "full" and
                        self.level[id(u.output)] > self.level[id(v)]
                        for u in self.nodes if v in u.inputs)
            row_bytes = v.type.nbytes // max(1, self.space[0])
            if later and row_bytes <= budget:
                budget -= row_bytes
                self.saved[id(v)] = f"s{len(self.saved)}"
        return [f"{CTYPE[self.internal[vid].output.type.dtype]} {name}[{C}];  "
                f"// a row of {_describe(self.internal[vid])}"
                for vid, name in self.saved.items()]

    def written(self, vid: int, k: int) -> bool:
        """Whether full value vid was stored by a loop before loop k."""
        return (vid in self.out_name or vid in self.saved) and self.level[vid] < k

    def row_operand(self, v: Value) -> str:
        if id(v) in self.local:
            return self.local[id(v)]
        return f"{self.param(v)}[{'r' if v.type.size > 1 else '0'}]"

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
                    inner.append(f"{self.out_name[id(n.output)]}[r * {C} + c] = v{i};")
                if id(n.output) in self.saved and self.level[id(n.output)] == k:
                    inner.append(f"{self.saved[id(n.output)]}[c] = v{i};")
        for i, n in reductions:
            x = self.full_operand(n.inputs[0], C)
            self.reduction(i, n, x, head, pragma, inner, tail)
        for vid in needed:  # loop-local names, out of scope after the loop
            del self.local[vid]
        self.loaded = {}
        return head + [" ".join(pragma), f"for (int64_t c = 0; c < {C}; c++) {{"] + \
            ["  " + line for line in inner] + ["}"] + tail

    def full_operand(self, v: Value, C: int) -> str:
        """v as read inside a loop over the columns of row r."""
        kind = self.kind.get(id(v))
        if kind == "full" and id(v) not in self.in_loop:  # stored by an earlier loop
            if id(v) in self.saved:
                return f"{self.saved[id(v)]}[c]"
            return f"{self.out_name[id(v)]}[r * {C} + c]"
        if kind is not None:
            return self.local[id(v)]
        shape = (1,) * (2 - v.type.ndim) + v.type.shape
        a, b = shape
        row = f"r * {b}" if a > 1 else ""
        col = "c" if b > 1 else ""
        index = " + ".join(p for p in (row, col) if p) or "0"
        return f"{self.param(v)}[{index}]"

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
            inner.append(f"{acc} += ({at}){x};  // {_describe(n)}")
            value = f"({t}){acc}"
        else:
            cmp = ">" if n.op == "max" else "<"
            head.append(f"{t} {acc} = {_START[n.op, dt]};")
            pragma.append(f"reduction({n.op}:{acc})")
            inner.append(f"{acc} = {x} {cmp} {acc} ? {x} : {acc};  // {_describe(n)}")
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
    return "\n".join(lines + [""] + [k.source + "\n" for k in kernels])
