"""The Triton backend's code generator: one module per graph, holding one `@triton.jit`
kernel per kernel plan, a thin wrapper per kernel (checks its inputs' shapes,
allocates its outputs, launches it over its grid with its tuned config) and the host
program that calls them in order, with every other op as a torch call (an extern).

    import triton
    import triton.language as tl
    from graphc.backends.triton import library as lib

    @triton.jit
    def k1_mul_tanh(x_ptr, out_ptr, size0, x_stride0, BLOCK: tl.constexpr): ...

    def launch_k1(x):
        '''group 1: 2 elementwise ops over [1024]; checks, allocates, launches'''
        _rt.check(x, (1024,))
        out = _rt.empty((1024,), 'float32')
        _rt.launch('k1', k1_mul_tanh, lambda cfg: (triton.cdiv(1024, cfg['BLOCK']),),
                   (x, out, 1024, x.stride(0)), 'pointwise', {'numel': 1024})
        return out

    def program(x):
        tanh2 = launch_k1(x)  # kernel k1
        return (tanh2,)

Kernels that Triton is the wrong tool for (convolutions, pooling, gathers; see
extern.py) run as torch calls on the device; the source says so at each, and
`notes` (shown by the fusion report) lists them.
"""
from __future__ import annotations

import itertools
import math
import keyword
import linecache
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from graphc.backends.numpy.literals import py, py_comment, size_names
from graphc.backends.options import Options, resolve
from graphc.backends.records import loc_from, loc_record, need, strings
from graphc.backends.triton import runtime
from graphc.backends.triton.emit import Launch, describe
from graphc.errors import IndexingError
from graphc.ir import Graph, Group, Node, Value
from graphc.ops import OPS, Kind
from graphc.passes.schedule import KernelPlan, groups_of, plan_kernels

_counter = itertools.count()
# kinds of group the kernel renderers take (others are single ops: externs, constants)
_KERNEL_KIND = {Kind.ELEMENTWISE: "elementwise", Kind.REDUCTION: "reduction",
                Kind.MATMUL: "matmul"}


@dataclass
class Executable:
    """A compiled graph: `fn(*flat_inputs) -> tuple of outputs`, and its source.

    `notes` are one line per kernel or extern (for the fusion report); `kernels` the
    names of the Triton kernels, in launch order."""

    name: str
    source: str
    fn: Callable[..., tuple]
    filename: str
    device: str
    notes: dict[int, list[str]] = field(default_factory=dict)
    kernels: list[str] = field(default_factory=list)
    takes_tensors: bool = True  # torch tensors in and out, without numpy in between
    rendered: Any = None  # the Rendered it was loaded from (the compile cache keeps it)

    def release(self) -> int:
        return 0  # no pools: outputs and intermediates are fresh tensors per call

    def pool_bytes(self) -> int:
        return 0


class _Program:
    """The state of generating one module: host names, kernels, externs, lines."""

    def __init__(self, graph: Graph, options: Options):
        self.graph, self.options = graph, options
        self.names: dict[int, str] = {}
        self.taken: set[str] = {"program", "torch", "triton", "tl", "lib", "ext", "F",
                                "_rt", "_consts", "cfg", "_locs", "_IndexingError", "_e"}
        self.consts: list[Any] = []
        self.kernel_sources: list[str] = []
        self.wrappers: list[str] = []
        self.body: list[str] = []
        self.notes: dict[int, list[str]] = {}
        self.kernel_names: list[str] = []
        self.locs: list = []  # source locations of the ops in extern.USER_FAILURES
        # symbolic sizes: the call's size variables (`_dim0`), which the program binds
        # from its inputs' shapes and passes to every launch wrapper
        self.size_vars: list[str] = []

    def host_name(self, v: Value) -> str:
        if id(v) not in self.names:
            text = v.name if v.node is None or not v.name.isdigit() else f"{v.node.op}{v.name}"
            ident = re.sub(r"\W", "_", text)[:32] or "v"
            if ident[0].isdigit():
                ident = "v" + ident
            if keyword.iskeyword(ident) or ident.startswith(("launch_", "k")) and \
                    ident[1:2].isdigit():
                ident += "_"
            base, n = ident, 1
            while ident in self.taken:
                ident, n = f"{base}_{n}", n + 1
            self.taken.add(ident)
            self.names[id(v)] = ident
        return self.names[id(v)]

    # --- one plan -------------------------------------------------------------------

    def plan(self, plan: KernelPlan) -> None:
        from graphc.backends.triton import kernels
        if plan.kind == "source" or [n.op for n in plan.group.nodes] == ["size"]:
            for node in plan.group.nodes:
                self.constant(node)
            return
        try:
            launch = kernels.render(plan, self.host_name)
        except kernels.Split as why:
            if len(plan.group.nodes) == 1:
                from graphc.errors import UnsupportedError
                raise UnsupportedError(f"the triton backend cannot run "
                                       f"{plan.group.nodes[0].op} here: {why}",
                                       hint="use backend='numpy' for this function",
                                       loc=plan.group.nodes[0].loc) from None
            self.notes.setdefault(plan.index, []).append(
                f"split into one kernel per op: {why}")
            for node in plan.group.nodes:
                self.plan(_single_plan(node, plan.index))
            return
        if launch is None:  # no Triton kernel for this group: its ops on the host
            for node in plan.group.nodes:
                self.extern(node, plan.index)
            return
        self.kernel(plan, launch)

    def constant(self, node: Node) -> None:
        v = node.outputs[0]
        if node.op == "size" and not all(type(d) is int for d in node.attrs["dims"]):
            # a count of symbolic sizes: made per call from the call's sizes
            self.body.append(f"{self.host_name(v):<20} = _rt.scalar("
                             f"{py(math.prod(node.attrs['dims']))}, {v.type.dtype!r})"
                             f"  # {describe(node)}")
            return
        if node.op == "iota" and not v.type.static:  # per call, from the call's sizes
            self.body.append(f"{self.host_name(v):<20} = _rt.iota({py(v.type.shape)}, "
                             f"{py(node.attrs['axis'])}, {v.type.dtype!r})"
                             f"  # {describe(node)}")
            return
        if not v.type.static:
            from graphc.errors import UnsupportedError
            raise UnsupportedError(f"the triton backend makes {node.op} of fixed sizes "
                                   f"only, not {v.type}", loc=node.loc or False)
        if node.op == "const":
            array = node.attrs["value"].array
        else:
            array = OPS[node.op].impl(**node.attrs)
        self.consts.append((array, v.type.dtype))
        self.body.append(f"{self.host_name(v):<20} = _consts[{len(self.consts) - 1}]"
                         f"  # {describe(node)}")

    def extern(self, node: Node, index: int) -> None:
        from graphc.backends.triton.extern import HOST
        entry = HOST[node.op]
        args = [self.host_name(v) for v in node.inputs]
        outs = ", ".join(self.host_name(v) for v in node.outputs)
        if len(node.outputs) == 1:
            target = outs
        else:
            target = outs + ","
        from graphc.backends.triton.extern import USER_FAILURES
        line = (f"{target} = {entry.call(args, node.attrs, node)}"
                f"  # extern (torch): {describe(node)}")
        if node.op in USER_FAILURES:
            # the user's data can make it fail: the error names the op's line (kept as
            # data, never pasted into the code)
            self.locs.append(node.loc)
            self.body += ["try:", "    " + line, "except _IndexingError as _e:",
                          f"    raise _e.with_loc(_locs[{len(self.locs) - 1}]) from None"]
        else:
            self.body.append(line)
        self.notes.setdefault(index, []).append(
            f"extern: {node.op} runs as a torch call ({entry.why})")

    def kernel(self, plan: KernelPlan, launch: Launch) -> None:
        """One wrapper for the plan: its launches (one, or a chain: a two-stage
        reduction's partial and final kernels) with their output tensors."""
        chain = [launch]
        while chain[-1].then is not None:
            chain.append(chain[-1].then)
        for step in chain:
            k = step.kernel
            base, n = k.name, 1
            while k.name in self.kernel_names:  # a split group's ops share its index
                k.name, n = f"{base}_{n}", n + 1
            self.kernel_sources.append(k.text())
            self.kernel_names.append(k.name)
        name = chain[0].kernel.name
        ins = [self.host_name(v) for v in plan.inputs] + self.size_vars
        outs = [self.host_name(plan.origin(v)) for step in chain for v, _ in step.outputs]
        lines = [f"def launch_{name}({', '.join(ins)}):",
                 f'    """group {plan.index} ({plan.kind}): checks its inputs, allocates '
                 'its outputs, launches the kernel over its grid."""']
        for v in plan.inputs:
            lines.append(f"    _rt.check({self.host_name(v)}, {py(tuple(v.type.shape))}, "
                         f"{v.type.dtype!r})")
        for step in chain:
            k = step.kernel
            lines += ["    " + line for line in step.prelude]
            args = ", ".join(k.host_args())
            lines.append(f"    _rt.launch({k.name!r}, {k.name}, lambda cfg: {step.grid}, "
                         f"({args}{',' if len(k.host_args()) == 1 else ''}), "
                         f"{step.kind!r}, {_problem(step.problem)})")
        lines.append(f"    return ({''.join(o + ', ' for o in outs)})")
        self.wrappers.append("\n".join(lines) + "\n")
        note = "; ".join(step.note for step in chain if step.note)
        self.body.append(f"{''.join(o + ', ' for o in outs)}= launch_{name}"
                         f"({', '.join(ins)})  # kernel {name}"
                         + (f": {py_comment(note)}" if note else ""))
        for step in chain:
            self.notes.setdefault(plan.index, []).append(
                f"triton: {step.kernel.name} ({step.kind})" +
                (f": {step.note}" if step.note else ""))


def _problem(problem: dict) -> str:
    """A launch's problem (what the autotuner's config space reads) as host source:
    symbolic sizes as the call's size variables, and then `"bucket": True`, which keys
    its tuned config by the sizes' powers of two rather than by every size."""
    items = [f"{key!r}: {py(value)}" for key, value in problem.items()]
    if any(type(value) not in (int, bool, str, float) for value in problem.values()):
        items.append("'bucket': True")
    return "{" + ", ".join(items) + "}"


def _single_plan(node: Node, index: int) -> KernelPlan:
    """The plan of one op of a split group, as a group of its own kind."""
    kind = _KERNEL_KIND.get(OPS[node.op].kind, "single")
    inputs = list({id(v): v for v in node.inputs}.values())
    view = Graph(f"op{index}", inputs, [node], list(node.outputs), [Group(kind, (node,))])
    plan = plan_kernels(view)[0]
    plan.index = index
    return plan


def regroup(graph: Graph) -> Graph:
    """The graph with its kernels' groups: a lone elementwise, reduction or matmul op
    (a "single" group, or a graph without fusion) becomes a group of its kind, so that
    it too runs as a Triton kernel."""
    groups = []
    for g in groups_of(graph):
        if g.kind == "single" and len(g.nodes) == 1 and OPS[g.nodes[0].op].kind in _KERNEL_KIND:
            g = Group(_KERNEL_KIND[OPS[g.nodes[0].op].kind], g.nodes, g.notes)
        groups.append(g)
    return Graph(graph.name, graph.inputs, graph.nodes, graph.outputs, groups)


def generate(graph: Graph, options: Options | None = None) -> tuple[str, _Program]:
    """The module's source for `graph`, and the generator's state."""
    sizes: dict[str, tuple[int, int]] = {}  # symbol -> (input, axis) that gives it
    for i, v in enumerate(graph.inputs):
        for k, d in enumerate(v.type.shape):
            if type(d) is not int and d.name is not None:
                sizes.setdefault(d.name, (i, k))
    with size_names(list(sizes)):
        return _generate(graph, options, sizes)


def _generate(graph: Graph, options: Options | None, sizes: dict[str, tuple[int, int]]
              ) -> tuple[str, _Program]:
    p = _Program(graph, resolve(options))
    p.size_vars = [f"_dim{j}" for j in range(len(sizes))]
    p.taken |= set(p.size_vars)
    params = [p.host_name(v) for v in graph.inputs]
    p.body += [f"_dim{j} = {params[i]}.shape[{k}]  # {py_comment(name)}"
               for j, (name, (i, k)) in enumerate(sizes.items())]
    for plan in plan_kernels(regroup(graph)):
        p.plan(plan)
    returned = [p.host_name(v) for v in graph.outputs]
    lines = [f"# generated by graphc's triton backend from graph {py_comment(graph.name)}",
             "import triton", "import triton.language as tl",
             "from graphc.backends.triton import library as lib", ""]
    for src in p.kernel_sources:
        lines += ["", src]
    for src in p.wrappers:
        lines += ["", src]
    lines += ["", f"def program({', '.join(params)}):"]
    lines += ["    " + b for b in p.body]
    lines.append("    return (" + "".join(r + ", " for r in returned) + ")")
    return "\n".join(lines) + "\n", p


@dataclass
class Rendered:
    """One graph's module and what loading it needs, as plain data (the persistent
    compile cache keeps it: graphc/compile_cache.py): the source, its constants
    ((array, dtype) pairs, `_consts[i]`), the source lines of ops the user's data can
    make fail, the fusion report's notes, the kernels' names and the inputs' dtypes."""

    name: str
    source: str
    consts: list[tuple[Any, str]]
    locs: list
    notes: dict[int, list[str]]
    kernel_names: list[str]
    input_dtypes: list[str]

    def record(self) -> tuple[dict[str, Any], list]:
        """The fields as JSON-able data, and the constants' arrays beside them."""
        return ({"name": self.name, "source": self.source,
                 "const_dtypes": [dt for _, dt in self.consts],
                 "locs": [loc_record(loc) for loc in self.locs],
                 "notes": [[k, v] for k, v in self.notes.items()],
                 "kernel_names": self.kernel_names, "input_dtypes": self.input_dtypes},
                [a for a, _ in self.consts])

    @classmethod
    def from_record(cls, meta: dict[str, Any], arrays: list) -> Rendered:
        """The inverse of `record`; RecordError where a field is not of its kind."""
        for name in ("name", "source"):
            need(isinstance(meta.get(name), str), name)
        for name in ("const_dtypes", "kernel_names", "input_dtypes"):
            need(strings(meta.get(name)), name)
        need(len(meta["const_dtypes"]) == len(arrays), "const_dtypes")
        notes = meta.get("notes")
        need(isinstance(notes, list) and all(
            isinstance(n, list) and len(n) == 2 and type(n[0]) is int and strings(n[1])
            for n in notes), "notes")
        need(isinstance(meta.get("locs"), list), "locs")
        return cls(meta["name"], meta["source"], list(zip(arrays, meta["const_dtypes"])),
                   [loc_from(loc) for loc in meta["locs"]], {k: v for k, v in notes},
                   meta["kernel_names"], meta["input_dtypes"])


def render(graph: Graph, options: Options | None = None) -> Rendered:
    """`graph`'s module as plain data: nothing loaded, no device needed."""
    source, p = generate(graph, options)
    return Rendered(graph.name, source, list(p.consts), list(p.locs), dict(p.notes),
                    list(p.kernel_names), [v.type.dtype for v in graph.inputs])


def compile_graph(graph: Graph, options: Options | None = None) -> Executable:
    """Generate and load the module for `graph` (see the module docstring)."""
    runtime.require_triton()
    return bind(render(graph, options), options)


def bind(r: Rendered, options: Options | None = None) -> Executable:
    """Load `r` on this process's device (a GPU, or the interpreter's CPU)."""
    torch, triton = runtime.require_triton()
    device = runtime.choose_device()
    filename = f"<graphc-triton-{next(_counter)}-{py_comment(r.name)[:40]}>"
    # Triton reads a kernel's source back through inspect, which finds it in linecache
    linecache.cache[filename] = (len(r.source), None, r.source.splitlines(True), filename)
    from graphc.backends.triton import autotune, extern
    rt = runtime.Runtime(device, autotune.default_tuner())
    namespace = {"torch": torch, "F": torch.nn.functional, "ext": extern, "_rt": rt,
                 "_consts": [rt.const(a, dt) for a, dt in r.consts], "_locs": r.locs,
                 "_IndexingError": IndexingError}
    exec(compile(r.source, filename, "exec"), namespace)
    program = namespace["program"]
    if resolve(options).cuda_graphs:  # one replay of the whole program per call
        from graphc.backends.triton.cudagraph import replayed
        program = replayed(program, rt)
    dtypes = r.input_dtypes

    def fn(*flat):
        as_numpy = not flat or not all(isinstance(x, torch.Tensor) for x in flat)
        tensors = [rt.to_device(x, dt) for x, dt in zip(flat, dtypes)]
        outs = program(*tensors)
        return tuple(rt.from_device(t, as_numpy) for t in rt.unaliased(outs, tensors))

    return Executable(r.name, r.source, fn, filename, device, r.notes, r.kernel_names,
                      rendered=r)
