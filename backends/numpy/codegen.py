"""The numpy backend: prints a graph as a readable Python function over numpy.

Each IR node becomes one line whose trailing comment is the IR node and the user's
source line; constants are hoisted out of the function. The source is compiled with
a filename of its own and registered with `linecache`, so a traceback through
generated code shows the generated line.

`LOWERINGS` is the backend's one table: op name -> function(emitter, args, attrs)
returning a Python expression. A test checks that it covers every primitive.
"""
from __future__ import annotations

import itertools
import keyword
import linecache
import re
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from graphc import dtypes, ops
from graphc.ir import Graph, Node
from graphc.ir.text import format_node

_counter = itertools.count()


class Emitter:
    """Collects hoisted constants while the body is printed."""

    def __init__(self):
        self.consts: list[np.ndarray] = []
        self.const_lines: list[str] = []

    def hoist(self, array: np.ndarray, comment: str) -> str:
        name = f"_c{len(self.consts)}"
        self.consts.append(array)
        self.const_lines.append(f"{name} = _consts[{len(self.consts) - 1}]  # {comment}")
        return name


def _np_dtype(dtype: str) -> str:
    return f"np.{dtypes.to_numpy(dtype).name}"


def _call(fn: str, **fixed: Any) -> Callable:
    """Lowering to `fn(arg0, arg1, ..., key=attr...)`."""
    def lower(em, args, attrs):
        kw = "".join(f", {k}={v!r}" for k, v in fixed.items())
        kw += "".join(f", {k}={v!r}" for k, v in attrs.items())
        return f"{fn}({', '.join(args)}{kw})"
    return lower


def _reduce(fn: str, keep_dtype: bool = False) -> Callable:
    # keep_dtype: np.sum would give int64 for int32; the primitive keeps the dtype
    def lower(em, args, attrs):
        dtype = f", dtype={args[0]}.dtype" if keep_dtype else ""
        return (f"{fn}({args[0]}, axis={tuple(attrs['axes'])!r}, "
                f"keepdims={attrs['keepdims']}{dtype})")
    return lower


def _slice(em, args, attrs):
    parts = []
    for a, b, s in zip(attrs["starts"], attrs["stops"], attrs["steps"]):
        stop = "" if b < 0 else str(b)
        parts.append(f"{a}:{stop}:{s}")
    if not parts:  # a 0-d array: x[] is a syntax error
        return f"{args[0]}[()]"
    return f"{args[0]}[{', '.join(parts)}{',' if len(parts) == 1 else ''}]"


def _scalar(v: Any) -> str:
    """A Python literal for an attribute scalar (repr of inf or nan is not one)."""
    if isinstance(v, float) and not np.isfinite(v):
        return f"float({str(v)!r})"
    return repr(v)


def _pad(em, args, attrs):
    if not attrs["widths"]:  # a 0-d array: nothing to pad, and np.pad rejects ()
        return f"np.array({args[0]})"
    return f"np.pad({args[0]}, {attrs['widths']!r}, constant_values={_scalar(attrs['value'])})"


def _const(em, args, attrs):
    arr = attrs["value"].array
    text = np.array2string(arr, threshold=6, precision=6).replace("\n", " ")
    return em.hoist(arr, f"{dtypes.short(dtypes.canonical(arr.dtype))}{list(arr.shape)} "
                         f"{text}")


def _iota(em, args, attrs):
    arr = ops.OPS["iota"].impl(**attrs)
    arr.flags.writeable = False
    return em.hoist(arr, f"iota {attrs['shape']} along axis {attrs['axis']}")


def _ref(name: str) -> Callable:
    """Lowering that calls the op's numpy reference implementation (window ops, erf)."""
    return _call(f"_ref_{name}")


LOWERINGS: dict[str, Callable] = {
    "neg": _call("np.negative"), "abs": _call("np.abs"), "sign": _call("np.sign"),
    "exp": _call("np.exp"), "expm1": _call("np.expm1"), "log": _call("np.log"),
    "log1p": _call("np.log1p"), "sqrt": _call("np.sqrt"),
    "rsqrt": lambda em, a, at: f"np.reciprocal(np.sqrt({a[0]}))",
    "reciprocal": _call("np.reciprocal"), "tanh": _call("np.tanh"),
    "sigmoid": _ref("sigmoid"), "sin": _call("np.sin"), "cos": _call("np.cos"),
    "erf": _ref("erf"), "logical_not": _call("np.logical_not"),
    "add": _call("np.add"), "sub": _call("np.subtract"), "mul": _call("np.multiply"),
    "div": _call("np.true_divide"), "pow": _call("np.power"),
    "maximum": _call("np.maximum"), "minimum": _call("np.minimum"),
    "eq": _call("np.equal"), "ne": _call("np.not_equal"), "lt": _call("np.less"),
    "le": _call("np.less_equal"), "gt": _call("np.greater"),
    "ge": _call("np.greater_equal"), "logical_and": _call("np.logical_and"),
    "logical_or": _call("np.logical_or"), "where": _call("np.where"),
    "cast": lambda em, a, at: f"{a[0]}.astype({_np_dtype(at['dtype'])})",
    "sum": _reduce("np.sum", keep_dtype=True), "max": _reduce("np.max"),
    "min": _reduce("np.min"),
    "argmax": lambda em, a, at: (f"np.argmax({a[0]}, axis={at['axis']}, "
                                 f"keepdims={at['keepdims']}).astype(np.int64)"),
    "reshape": lambda em, a, at: f"np.reshape({a[0]}, {tuple(at['shape'])!r})",
    "transpose": lambda em, a, at: f"np.transpose({a[0]}, {tuple(at['perm'])!r})",
    "broadcast_to": lambda em, a, at: f"np.broadcast_to({a[0]}, {tuple(at['shape'])!r})",
    "slice": _slice,
    "concat": lambda em, a, at: f"np.concatenate(({', '.join(a)},), axis={at['axis']})",
    "pad": _pad,
    "gather": _call("np.take"),
    "iota": _iota, "const": _const,
    "matmul": _call("np.matmul"),
    "conv2d": _ref("conv2d"), "max_pool2d": _ref("max_pool2d"),
    "avg_pool2d": _ref("avg_pool2d"),
}


@dataclass
class Executable:
    """A compiled graph: `fn(*flat_inputs) -> tuple of outputs`, and its source."""

    name: str
    source: str
    fn: Callable[..., tuple]
    filename: str


_RESERVED = {"np", "_consts"}


def _ident(name: str, taken: set[str] | None = None) -> str:
    """A Python identifier for `name`, distinct from keywords and from `taken`."""
    ident = re.sub(r"\W", "_", name)
    if not ident or ident[0].isdigit():
        ident = "v" + ident
    if keyword.iskeyword(ident) or ident in _RESERVED or ident.startswith(("_c", "_ref_")):
        ident += "_"
    if taken is not None:
        base, n = ident, 1
        while ident in taken:
            ident, n = f"{base}_{n}", n + 1
        taken.add(ident)
    return ident


def generate(graph: Graph) -> tuple[str, list[np.ndarray]]:
    """The Python source of `graph` and the constants it refers to."""
    em = Emitter()
    names: dict[int, str] = {}
    taken: set[str] = set()
    params = []
    for v in graph.inputs:
        names[id(v)] = _ident(v.name, taken)
        params.append(names[id(v)])
    # free each intermediate after its last use, as eager code does: numpy's
    # allocator then reuses warm memory instead of touching fresh pages
    last_use: dict[int, int] = {}
    for i, node in enumerate(graph.nodes):
        for v in node.inputs:
            last_use[id(v)] = i
    keep = {id(v) for v in graph.outputs}
    body = []
    for i, node in enumerate(graph.nodes):
        expr = LOWERINGS[node.op](em, [names[id(v)] for v in node.inputs], node.attrs)
        if node.op in ("const", "iota"):
            names[id(node.output)] = expr
            continue
        for v in node.outputs:
            names[id(v)] = _ident("v" + v.name, taken)
        target = ", ".join(names[id(v)] for v in node.outputs)
        body.append(_line(f"{target} = {expr}", node))
        dead = sorted({names[id(v)] for v in node.inputs if last_use[id(v)] == i and
                       id(v) not in keep and v.node is not None and
                       v.node.op not in ("const", "iota")})
        if dead:
            body.append(f"del {', '.join(dead)}")
    returned = []
    seen: set[int] = set()
    for v in graph.outputs:
        ref = names[id(v)]
        producer = v.node
        shared = id(v) in seen or producer is None or ops.OPS[producer.op].kind in (
            ops.Kind.SHAPE, ops.Kind.SOURCE)
        # an output never aliases an input, a hoisted constant or another output
        returned.append(f"np.array({ref})" if shared else
                        (f"np.asarray({ref})" if v.type.ndim == 0 else ref))
        seen.add(id(v))
    fn_name = _ident(graph.name)
    lines = [f"# generated by graphc's numpy backend from graph {graph.name}", *em.const_lines,
             "", "", f"def {fn_name}({', '.join(params)}):"]
    lines += ["    " + b for b in body]
    lines.append(f"    return ({''.join(r + ', ' for r in returned)})")
    return "\n".join(lines) + "\n", em.consts


def _line(code: str, node: Node) -> str:
    return f"{code:<60}  # {format_node(node).split('  #')[0].strip()}" + (
        f"  ({node.loc})" if node.loc else "")


def compile_graph(graph: Graph) -> Executable:
    source, consts = generate(graph)
    filename = f"<graphc-numpy:{graph.name}:{next(_counter)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {"np": np, "_consts": consts}
    for name in ("sigmoid", "erf", "conv2d", "max_pool2d", "avg_pool2d"):
        namespace[f"_ref_{name}"] = ops.OPS[name].impl
    exec(compile(source, filename, "exec"), namespace)
    return Executable(graph.name, source, namespace[_ident(graph.name)], filename)
