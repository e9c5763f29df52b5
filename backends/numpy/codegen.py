"""The numpy backend: prints a graph as a readable Python function over numpy.

Unfused nodes become one line each. A fused group becomes one call: a kernel from
`kernels.py` run block by block over rows on the runtime's threads, writing into
preallocated buffers; a matmul writes into its buffer with `out=` and its epilogue
runs as such a kernel on the result. Intermediates that pass between kernels live in
buffers planned by `passes.memory` and kept in a pool across calls; outputs are
always fresh arrays. Every line's comment names its IR node and the user's line.

`render` makes the source and what binding it needs, as plain data (loading.Rendered);
`loading.bind` builds or finds the native library and runs the source (under a
filename registered with `linecache`, so a traceback shows the generated line). The
persistent compile cache keeps what `render` made.
"""
from __future__ import annotations

import dataclasses
import keyword
import math
import re
import warnings
from typing import Any, Callable


from graphc.backends import settings
from graphc.backends.options import Options, resolve
from graphc import dtypes, ops
from graphc.errors import GraphcError
from graphc.ir import Graph, Group, Node, Value
from graphc.ir.symbols import Sym, typical
from graphc.ir.text import format_node
from graphc.backends.numpy import loading, lowering, runtime
from graphc.backends.numpy.kernels import Kernel, blockable, row_kernel
from graphc.backends.numpy.lowering import LOWERINGS, Emitter, matmul_operands, lower_into
from graphc.backends.numpy.literals import py, py_comment, size_names
from graphc.backends import toolchain
from graphc.backends.numpy import native, scan
from graphc.backends.numpy.loading import Executable, Rendered  # noqa: F401  (Executable: public)
from graphc.passes.fusion import reduces_axis0
from graphc.passes.memory import last_reads, plan_memory
from graphc.passes.schedule import KernelPlan, plan_kernels, reuse_pairs

_RESHAPED = re.compile(r"^np\.reshape\((\w+), .*\)$")  # a kernel argument's array
_FIRST = r"\1"
VIEW_OPS = frozenset({"reshape", "transpose", "broadcast_to", "slice"})  # numpy views
# A group this small runs as plain numpy calls: blocks, threads and buffers would
# cost more than they save (and per-call overhead is what counts at this size).
# GRAPHC_SMALL_GROUP overrides it (the test suite runs once with 0: all kernels).
SMALL_GROUP = settings.SETTINGS["GRAPHC_SMALL_GROUP"].default  # 1 << 15
# A small group of two or more ops still becomes a native kernel from this many
# elements: a ctypes call costs ~2 us per array passed (ctypes' pointer lookup), a
# numpy call ~2-5 us per op at this size. An LSTM cell on (64, 128) ran in 34 us as
# one C call, 86 us as numpy calls; polyfit's groups of 2000 elements ran slower.
NATIVE_MIN = 4096


_RESERVED = {"np", "_sizes", "_consts", "_A", "_arena", "_run", "_runc", "_view", "_out",
             "_C_SOURCE", "_locs", "_IndexingError"}
# Ops that the user's data can make fail at run time (a traced index out of range), and
# the GraphcError each failure becomes, named at the op's source line.
_USER_FAILURES = {"gather": ("IndexError", "_IndexingError")}


def _ident(name: str, taken: set[str] | None = None) -> str:
    """A Python identifier for `name`, distinct from keywords and from `taken`."""
    ident = re.sub(r"\W", "_", name)
    if not ident or ident[0].isdigit():
        ident = "v" + ident
    if keyword.iskeyword(ident) or ident in _RESERVED or ident.startswith(
            ("_c", "_ref_", "_k", "_s", "_n", "_win_", "_b", "_dim")):
        ident += "_"
    if taken is not None:
        base, n = ident, 1
        while ident in taken:
            ident, n = f"{base}_{n}", n + 1
        taken.add(ident)
    return ident


def describe(node: Node) -> str:
    text = format_node(node).split("  #")[0].strip()
    return py_comment(text + (f"  ({node.loc})" if node.loc else ""))


def _line(code: str, node: Node) -> str:
    return f"{code:<60}  # {describe(node)}"


class _Program:
    """The state of generating one function: names, kernels, buffers, lines."""

    def __init__(self, graph: Graph, options: Options):
        self.graph = graph
        self.options = options
        self.use_native = native_enabled(options)
        self.natives: list[native.NativeKernel] = []
        self.native_by_body: dict[str, str] = {}  # a kernel's C (unnamed) -> its name
        self.uses_sizes = False  # a native kernel reads the call's `_sizes`
        self.em = Emitter()
        self.names: dict[int, str] = {}
        self.taken: set[str] = set()
        self.kernels: list[Kernel] = []
        self.body: list[str] = []
        self.plans = plan_kernels(graph)
        self.group_of = {id(n): p.index for p in self.plans for n in p.group.nodes}
        self.outputs = {id(v) for v in graph.outputs}
        self.last_read = last_reads(graph, VIEW_OPS)  # value id -> group, views to base
        self.buffered: list[Value] = []  # values written into planned buffers
        self.in_place: dict[int, Value] = {}  # id(value) -> the buffer's donor (memory)
        # Options.donate: graph inputs whose buffers outputs may take (id -> position)
        self.donors = {id(graph.inputs[i]): i for i in options.donate
                       if i < len(graph.inputs)}
        self.donated: dict[int, Value] = {}  # id(graph output) -> the input it takes
        self.donor_flags: dict[int, str] = {}  # id(donated input) -> its flag's name
        self.locs: list = []  # source locations of the ops in _USER_FAILURES

    def buffer(self, v: Value) -> str:
        """A line making v's full-size buffer: fresh for outputs, else a planned one."""
        name = self.name_of(v)
        np_dtype = f"np.{dtypes.to_numpy(v.type.dtype).name}"
        if id(v) in self.outputs:
            alloc = "_out.empty" if typical(v.type.nbytes) >= runtime.Recycler.MIN_BYTES \
                else "np.empty"
            alloc = f"{alloc}({py(v.type.shape)}, {np_dtype})"
            donor = self.donated.get(id(v))
            if donor is not None:  # the caller's array, where it turned out donatable
                alloc = f"{self.names[id(donor)]} if {self.donor_flag(donor)} else {alloc}"
            self.body.append(f"{name} = {alloc}")
        else:
            self.buffered.append(v)
            self.body.append(f"{name} = _view(_A[@{id(v)}@], {py(v.type.shape)}, {np_dtype})")
        return name

    def donor_flag(self, donor: Value) -> str:
        """The name of the flag saying whether donated input `donor` may be written."""
        if id(donor) not in self.donor_flags:
            self.donor_flags[id(donor)] = _ident("_d_" + self.names[id(donor)], self.taken)
        return self.donor_flags[id(donor)]

    def name_of(self, v: Value) -> str:
        if id(v) not in self.names:
            self.names[id(v)] = _ident("v" + v.name, self.taken)
        return self.names[id(v)]

    def single(self, node: Node) -> None:
        expr = LOWERINGS[node.op](self.em, [self.names[id(v)] for v in node.inputs],
                                  node.attrs)
        if ops.OPS[node.op].kind is ops.Kind.SOURCE and re.fullmatch(r"_c\d+", expr):
            self.names[id(node.output)] = expr  # a hoisted constant, read where used
            return
        target = ", ".join(self.name_of(v) for v in node.outputs)
        failure = _USER_FAILURES.get(node.op)
        if failure is None:
            self.body.append(_line(f"{target} = {expr}", node))
            return
        # a try costs nothing until it raises; the loc is data, never pasted into code
        self.locs.append(node.loc)
        self.body += ["try:", "    " + _line(f"{target} = {expr}", node),
                      f"except {failure[0]} as _e:",
                      f"    raise {failure[1]}.at_run(_e, _locs[{len(self.locs) - 1}]) from _e"]

    def matmul(self, node: Node, gi: int) -> None:
        a, b = matmul_operands([self.names[id(v)] for v in node.inputs], node.attrs)
        out = self.buffer(node.output)
        ta, tb = (v.type for v in node.inputs)
        if ta.ndim > 2 and tb.ndim == 2 and not node.attrs.get("transpose_a"):
            # a batch of rows times one matrix is one GEMM over all the rows: BLAS runs
            # it ~1.3x faster than numpy's loop of one GEMM per batch entry
            k, n = tb.shape[::-1] if node.attrs.get("transpose_b") else tb.shape
            rows = math.prod(ta.shape[:-1])  # not -1: K may be 0
            self.body.append(_line(f"np.matmul(np.reshape({a}, {py((rows, k))}), {b}, "
                                   f"out=np.reshape({out}, {py((rows, n))}))", node))
            return
        self.body.append(_line(f"np.matmul({a}, {b}, out={out})", node))

    def scan(self, node: Node, gi: int) -> bool:
        """A cumsum as a native scan kernel (see backends/numpy/scan.py); False where C
        cannot run it, and the caller lowers it through numpy."""
        nk = scan.scan_kernel(f"_n{len(self.natives)}", node)
        if nk is None:
            return False
        self.natives.append(nk)
        args = [self.names[id(node.inputs[0])], self.buffer(node.output)] + ["_sizes"] * nk.sizes
        self.uses_sizes |= nk.sizes
        self.body.append(_line(f"_runc({nk.name}, {py(nk.rows)}, {nk.align}, "
                               f"{py(node.output.type.size)}, 1, {', '.join(args)})", node))
        return True

    def kernel(self, plan: KernelPlan, native_only: bool = False) -> bool:
        """Emit the plan as one kernel: native where C can express it, else a numpy
        block kernel (or, with native_only, nothing: False, and the caller emits the
        nodes one by one)."""
        in_place = self.in_place_pairs(plan)
        donated = self.donation_pairs(plan)

        def arg(v: Value) -> str:
            graph_v = plan.origin(v)
            name = self.buffer(graph_v) if id(v) in outs else self.names[id(graph_v)]
            same = graph_v.type.shape == v.type.shape
            return name if same else f"np.reshape({name}, {py(v.type.shape)})"

        def described(n: Node) -> str:
            return describe(plan.source_node(n))

        nk = native.native_kernel(f"_n{len(self.natives)}", plan, {**in_place, **donated}) \
            if self.use_native else None
        if nk is not None:
            # an unrolled loop makes the same kernel many times over: one C function
            # serves every group whose C is the same but for its name and comments
            # (the comments name the first group's nodes)
            key = nk.key
            if key in self.native_by_body:
                nk = dataclasses.replace(nk, name=self.native_by_body[key])
            else:
                self.native_by_body[key] = nk.name
                self.natives.append(nk)
            self.in_place.update(in_place)
            self.donated.update(donated)
            outs = {id(v) for v in nk.outputs}
            args = [arg(v) for v in nk.inputs + nk.outputs] + ["_sizes"] * nk.sizes
            self.uses_sizes |= nk.sizes
            elements = _elements(plan.group)
            self.call(plan, nk.name, nk.params, args,
                      f"rows={nk.rows}, align={nk.align}, elements={elements}, "
                      f"inputs={len(nk.inputs)}", native=True)
            self.body.append(f"_runc({nk.name}, {py(nk.rows)}, {nk.align}, {py(elements)}, "
                             f"{len(nk.inputs)}, {', '.join(args)})")
            return True
        if native_only:
            return False
        k = row_kernel(f"_k{len(self.kernels)}", plan,
                       lambda n, args, out: lower_into(n, args, out, self.em), described,
                       lambda n, args: LOWERINGS[n.op](self.em, args, n.attrs),
                       self.options.block_elements, lambda v: self.constant(v, plan))
        self.kernels.append(k)
        self.in_place.update(in_place)
        self.donated.update(donated)
        outs = {id(v) for v in k.outputs}
        args = [arg(v) for v in k.inputs + k.outputs]
        scratch, block = f"_s{len(self.kernels) - 1}", str(k.block)
        self.call(plan, k.name, k.params, args, f"rows={k.rows}, block={k.block}, "
                  f"scratch={scratch}")
        if not blockable(plan):  # symbolic row sizes: block and scratch per call
            block, scratch = self.sized_blocks(k, scratch)
        self.body.append(f"_run({k.name}, {py(k.rows)}, {block}, {scratch}, {', '.join(args)})")
        return True

    def sized_blocks(self, k: Kernel, scratch: str) -> tuple[str, str]:
        """A block kernel whose rows have symbolic sizes: a line working its block
        (rows per block) out from this call's sizes, as row_kernel does from fixed ones,
        and its scratch pool for that block; the names of both."""
        b = f"_b{len(self.kernels) - 1}"
        widest = f"max(1, {py(k.widest)})"
        self.body.append(f"{b} = max(1, {self.options.block_elements} // {widest})"
                         f"  # rows per block of {k.name}, for this call's sizes")
        if not k.scratch:  # nothing to size: the (empty) pool as it is
            return b, scratch
        specs = []
        for shape, dtype in k.scratch:
            dims = [b] + [py(d) for d in shape[1:]]
            specs.append(f"(({', '.join(dims)}{',' if len(dims) == 1 else ''}), {dtype!r})")
        return b, f"{scratch}.at(({''.join(s + ', ' for s in specs)}))"

    def call(self, plan: KernelPlan, name: str, params, args: list[str], fields: str,
             native: bool = False) -> None:
        """The comment above a kernel call: what each of its arguments is."""
        ops_ = f"{len(plan.nodes)} op" + ("s" if len(plan.nodes) != 1 else "")
        kind = f"group {plan.index}: {plan.kind}, {ops_}" + \
            (", native" if native else "")
        binds = ", ".join(f"{p}={_RESHAPED.sub(_FIRST, a)}" for p, a in zip(params, args))
        self.body.append(f"# {name} ({kind}): {fields}; {binds}")

    def constant(self, v: Value, plan: KernelPlan) -> str | None:
        """The module-level name of a hoisted constant that kernel value v is (a kernel
        reads it directly), unless the plan flattened it (it is then passed reshaped)."""
        graph_v = plan.origin(v)
        name = self.names.get(id(graph_v), "")
        hoisted = graph_v.node is not None and \
            ops.OPS[graph_v.node.op].kind is ops.Kind.SOURCE
        same = graph_v.type.shape == v.type.shape
        return name if hoisted and same and re.fullmatch(r"_c\d+", name) else None

    def in_place_pairs(self, plan: KernelPlan) -> dict[int, Value]:
        """The plan's in-place candidates this program can take (id(graph output) ->
        graph input): both in planned buffers, the input dying in this kernel."""
        pairs = {}
        for vid, donor in plan.reuse.items():
            out = plan.origin(plan.nodes_output(vid))
            if id(out) in self.outputs or id(donor) in self.outputs or \
                    not any(b is donor for b in self.buffered) or \
                    self.last_read.get(id(donor)) != plan.index:
                continue
            pairs[id(out)] = donor
        return pairs

    def donation_pairs(self, plan: KernelPlan) -> dict[int, Value]:
        """The outputs of this kernel that may be written over a donated graph input
        (id(graph output) -> input): the input dies in this kernel, is not itself
        returned, and gives its buffer to one output only."""
        if not self.donors:
            return {}
        eligible = {k for k in self.donors
                    if self.last_read.get(k) == plan.index and k not in self.outputs
                    and all(id(d) != k for d in self.donated.values())}
        pairs = {}
        for vid, donor in reuse_pairs(plan, eligible).items():
            out = plan.origin(plan.nodes_output(vid))
            if id(out) in self.outputs and id(out) not in self.donated:
                pairs[id(out)] = donor
        return pairs


def _donation_checks(p: _Program, params: list[str]) -> list[str]:
    """The lines that decide, per call, whether each donated input that an output
    takes is fit to be written (runtime.donatable), before any kernel runs."""
    taken = {id(d) for d in p.donated.values()}
    lines = []
    for v in p.graph.inputs:
        if id(v) in taken:
            name = p.names[id(v)]
            others = "".join(f"{q}, " for q in params if q != name)
            lines.append(f"{p.donor_flag(v)} = _donatable({name}, ({others}))  "
                         "# donated: the outputs may take its buffer")
    return lines


def native_enabled(options: Options | None = None) -> bool:
    """Native kernels are on unless the options (None: the environment's, where
    GRAPHC_NATIVE=0 turns them off) say not, where a C compiler exists."""
    return resolve(options).native and toolchain.compiler() is not None


def render(graph: Graph, options: Options | None = None) -> Rendered:
    """The Python source of `graph` and what binding it needs (loading.Rendered: plain
    data, nothing built or loaded yet), as `options` (None: the environment's defaults)
    ask. A symbolic size is a variable of the generated function (`_dim0`), read from
    the first input dimension that is that symbol."""
    sizes: dict[str, tuple[int, int]] = {}  # symbol -> (input, axis) that gives it
    for i, v in enumerate(graph.inputs):
        for k, d in enumerate(v.type.shape):
            if type(d) is Sym and d.name is not None:
                sizes.setdefault(d.name, (i, k))
    with size_names(list(sizes)):
        return _render(graph, options, sizes)


def _render(graph: Graph, options: Options | None, sizes: dict[str, tuple[int, int]]
            ) -> Rendered:
    p = _Program(graph, resolve(options))
    params = []
    for v in graph.inputs:
        p.names[id(v)] = _ident(v.name, p.taken)
        params.append(p.names[id(v)])
    small_group = p.options.small_group
    # the values each group reads last, worked out once (scanning every value's last
    # read per group was groups x values: 17 of 40 s of a 1,600-layer gradient's build)
    dies_in: dict[int, list[int]] = {}
    for k, last in p.last_read.items():
        dies_in.setdefault(last, []).append(k)
    for plan in p.plans:
        gi = plan.index
        small = typical(_elements(plan.group)) <= small_group
        if not small:  # op by op, any group runs; as one kernel, only this backend's
            _check_policy(plan.group, gi)
        start = len(p.body)
        RENDERERS[plan.kind](p, plan, small)
        if p.options.profile and len(p.body) > start and plan.kind != "source":
            # graphc.profile: the group's lines timed, into its slot of _prof
            p.body.insert(start, "_t = _clock()")
            p.body.append(f"_prof[{gi}] += _clock() - _t")
        # free what no later group reads, as eager code does: numpy's allocator then
        # hands back warm memory instead of touching fresh pages
        dead = sorted({p.names[k] for k in dies_in.get(gi, ())
                       if k not in p.outputs and k in p.names
                       and not p.names[k].startswith("_c")})
        if dead and gi < len(p.plans) - 1:
            p.body.append(f"del {', '.join(dead)}")
    p.body[:0] = [f"_dim{j} = {params[i]}.shape[{k}]  # {py_comment(name)}"
                  for j, (name, (i, k)) in enumerate(sizes.items())] + \
        ([f"_sizes = np.array({py(tuple(Sym.var(n) for n in sizes))}, np.int64)  "
          "# for the native kernels"] if p.uses_sizes else []) + \
        _donation_checks(p, params)
    memory = plan_memory([(v, p.group_of[id(v.node)]) for v in p.buffered], p.last_read,
                         p.in_place)
    slot_of, slot_bytes = memory.slot_of, memory.slot_bytes
    body = [re.sub(r"@(\d+)@", lambda m: str(slot_of[int(m.group(1))]), line)
            for line in p.body]
    body.append("return (" + "".join(r + ", " for r in _returned(p)) + ")")
    fn_name = _ident(graph.name)
    lines = [f"# generated by graphc's numpy backend from graph {py_comment(graph.name)}",
             *p.em.const_lines, ""]
    c_source = ""
    if p.natives:
        vector = toolchain.vector_math(lowering.libm_functions())
        c_source = native.library_source(p.natives, vector)
        lines += ["# native kernels, built by the C compiler (the _n functions below):",
                  '_C_SOURCE = r"""', c_source.rstrip("\n"), '"""', ""]
    for k in p.kernels:
        lines += ["", k.source]
    lines += ["", f"def {fn_name}({', '.join(params)}):"]
    if slot_bytes and all(type(n) is int for n in slot_bytes):
        lines += ["    _A = _arena.get()  # this call's buffers: " +
                  ", ".join(f"{n} B" for n in slot_bytes), "    try:"]
        lines += ["        " + b for b in body]
        lines += ["    finally:", "        _arena.put(_A)"]
    elif slot_bytes:  # sized by this call's sizes: an arena per set of sizes
        lines += [f"    {b}" for b in body[:len(sizes)]]
        lines += [f"    _B = {py(tuple(slot_bytes))}  # this call's buffers: " +
                  ", ".join(f"{n} B" for n in slot_bytes),
                  "    _A = _arenas.get(_B)", "    try:"]
        lines += ["        " + b for b in body[len(sizes):]]
        lines += ["    finally:", "        _arenas.put(_B, _A)"]
        slot_bytes = []
    else:
        lines += ["    " + b for b in body]
    return Rendered(graph.name, fn_name, "\n".join(lines) + "\n", c_source,
                    [nk.name for nk in p.natives], list(slot_bytes),
                    [list(k.scratch) for k in p.kernels], list(p.em.consts), list(p.locs),
                    p.use_native, p.options.threads, p.options.march,
                    len(p.plans) if p.options.profile else 0)


def generate(graph: Graph, options: Options | None = None) -> tuple[str, dict[str, Any]]:
    """The Python source of `graph` and the objects it refers to (constants, pools,
    native kernels: building them runs the C compiler, see `native`), as `options`
    (None: the environment's defaults) ask."""
    rendered = render(graph, options)
    return rendered.source, loading.namespace(rendered)


# How each kind of kernel plan (passes/schedule.py; its kind is its group's) becomes
# code. A renderer appends the plan's lines to the program; `small` says the group is at
# most GRAPHC_SMALL_GROUP elements, where blocks, threads and buffers would cost more
# than they save.
Renderer = Callable[[_Program, KernelPlan, bool], None]


def _render_ops(p: _Program, plan: KernelPlan, small: bool) -> None:
    """One numpy line per op: the kinds that run unblocked, and every small group."""
    for node in plan.group.nodes:
        p.single(node)


def _render_fused(p: _Program, plan: KernelPlan, small: bool) -> None:
    """An elementwise or reduction group as one kernel: native, else a numpy block
    kernel; small, it runs op by op unless it is worth one C call."""
    if not small:
        p.kernel(plan)
    # one C call costs less than two numpy calls even this small
    elif not (p.use_native and len(plan.nodes) >= 2 and typical(_elements(plan.group)) >= NATIVE_MIN
              and p.kernel(plan, native_only=True)):
        _render_ops(p, plan, small)


def _render_matmul(p: _Program, plan: KernelPlan, small: bool) -> None:
    """The matmul into its buffer (BLAS), then its epilogue as one kernel."""
    if small:
        _render_ops(p, plan, small)
        return
    p.matmul(plan.matmul, plan.index)
    if plan.nodes:
        p.kernel(plan)


def _render_single(p: _Program, plan: KernelPlan, small: bool) -> None:
    """One op; a large prefix sum is a C loop of its own (backends/numpy/scan.py)."""
    node = plan.group.nodes[0]
    if not (len(plan.group.nodes) == 1 and node.op == "cumsum" and p.use_native
            and not small and p.scan(node, plan.index)):
        _render_ops(p, plan, small)


def _check_policy(group: Group, gi: int) -> None:
    """Refuse, by name, a kernel that only another fusion policy makes: the numpy
    backend's kernels cut reduction groups into blocks of rows and run a matmul (BLAS)
    before the rest of its group (backends/numpy/policy.py)."""
    why = None
    if group.kind == "matmul" and _feeds_matmul(group):
        why = "ops before its matmul (a prologue)"
    across = [n.op for n in group.nodes
              if ops.OPS[n.op].kind is ops.Kind.REDUCTION and reduces_axis0(n)]
    if group.kind == "reduction" and across:
        why = f"a reduction over axis 0 ({across[0]})"
    if why is not None:
        raise GraphcError(f"kernel k{gi} ({group.kind}) holds {why}, which the numpy "
                          "backend's kernels cannot run", loc=False,
                          hint="fuse with the numpy backend's policy "
                               "(graphc.backends.numpy.FUSION_POLICY) or a stricter one")


def _feeds_matmul(group: Group) -> bool:
    """Whether an op of the group computes an operand of its matmul (a prologue; a
    sibling chain merged in beside the matmul may come first without feeding it)."""
    mm = next(n for n in group.nodes if ops.OPS[n.op].kind is ops.Kind.MATMUL)
    made = {id(v) for n in group.nodes if n is not mm for v in n.outputs}
    return any(id(v) in made for v in mm.inputs)


RENDERERS: dict[str, Renderer] = {
    "source": _render_ops, "scalar": _render_ops, "reduce_all": _render_ops,
    "single": _render_single, "elementwise": _render_fused, "reduction": _render_fused,
    "matmul": _render_matmul,
}


def _elements(group: Group) -> int:
    """The group's largest value's size (symbolic sizes ordered by their typical one)."""
    return max((v.type.size for n in group.nodes for v in (*n.inputs, *n.outputs)),
               key=typical)


def _returned(p: _Program) -> list[str]:
    out, seen = [], set()
    for v in p.graph.outputs:
        ref = p.names[id(v)]
        producer = v.node
        # an output never aliases an input, a constant, a buffer or another output
        copy = id(v) in seen or producer is None or ops.OPS[producer.op].kind in (
            ops.Kind.SHAPE, ops.Kind.SOURCE)
        out.append(f"np.array({ref})" if copy else
                   (f"np.asarray({ref})" if v.type.ndim == 0 else ref))
        seen.add(id(v))
    return out


def compile_graph(graph: Graph, options: Options | None = None) -> Executable:
    """`graph` as a runnable Executable, built as `options` ask (an Options or a dict;
    None: the environment's defaults, see backends/options.py). Its `rendered` is what
    the compile cache keeps: None where the C failed to build and the kernels fell
    back to numpy's, which is not what the options asked for."""
    options = resolve(options)
    graph.verify()  # a graph is data: only checked attributes reach generated code
    try:
        return loading.bind(render(graph, options))
    except toolchain.BuildError as exc:  # a bug in generated C: numpy kernels still work
        warnings.warn(f"graphc: native kernels of {graph.name} failed to build; using "
                      f"numpy kernels. {exc}", RuntimeWarning, stacklevel=2)
    executable = loading.bind(render(graph, options.replace(native=False)))
    executable.rendered = None
    return executable
