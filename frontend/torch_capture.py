"""Capture a torch module, function or Dynamo graph as a graphc graph, through torch's
own machinery.

The user's code runs once under `make_fx` in fake mode (no data, so `transformers`'
masking code takes its tracing path instead of asking a tensor for a Python bool),
with torch's core ATen decompositions and the Python dispatcher (which splits
`native_batch_norm` into the schema that states its running-statistics mutation).
That first graph may still mutate and view tensors: it is traced again through
`torch.func.functionalize(..., remove="mutations_and_views")`, until no in-place op
is left (a decomposition can itself write in place). Only the first trace sees
user tensors, because functionalization's wrappers are not fake tensors and the
masking code would not recognize them. `frontend.aten.translate` then turns the
functional ATen graph into graphc primitives.

Parameters and buffers are graph inputs (`named_parameters()` then `named_buffers()`
order), then the tensor leaves of `(args, kwargs)`; the `copy_` nodes
functionalization leaves on mutated buffers (BatchNorm's running statistics) become
extra graph outputs, listed in `mutated_buffers`. Non-tensor arguments are baked in.

>>> import torch
>>> cap = capture_module(torch.nn.Linear(3, 2), (torch.ones(4, 3),), {})
>>> [kind for kind, _ in cap.input_kinds], cap.n_outputs
(['param', 'param', 'arg'], 1)
>>> cap.output_spec.rebuild([torch.zeros(4, 2)]).shape
torch.Size([4, 2])
"""
from __future__ import annotations

import contextlib
import warnings
import functools
import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx
import torch.fx.traceback as fx_traceback
import torch.utils._pytree as pytree
from torch._decomp import core_aten_decompositions
from torch._dispatch.python import enable_python_dispatcher
from torch.fx.experimental.proxy_tensor import make_fx

from graphc.errors import GraphcError
from graphc.frontend.aten import node_loc, translate
from graphc.ir import Graph

aten = torch.ops.aten


@dataclass
class OutputSpec:
    """How to rebuild the user's output from the flat tensor outputs: the pytree
    spec, and the non-tensor leaves (by leaf position), which are kept as traced."""

    treedef: pytree.TreeSpec
    constants: dict[int, Any] = field(default_factory=dict)

    def rebuild(self, tensors: Sequence[Any]) -> Any:
        """The user's output (a tensor, tuple, dict, ModelOutput ...) of `tensors`."""
        it = iter(tensors)
        leaves = [self.constants[i] if i in self.constants else next(it)
                  for i in range(self.treedef.num_leaves)]
        return pytree.tree_unflatten(leaves, self.treedef)


@dataclass
class Captured:
    """A captured call: `graph.inputs[i]` is fed by `input_kinds[i]`, one of
    ("param", name), ("buffer", name), ("arg", k) (the k-th tensor leaf of (args,
    kwargs) as torch's pytree flattens them, or of Dynamo's example inputs) and
    ("seed", None) (an int64 0-d seed drawn per call). `graph.outputs[:n_outputs]` are
    the flat tensor outputs; the rest are the new values of `mutated_buffers`."""

    graph: Graph
    input_kinds: list[tuple[str, Any]]
    n_outputs: int
    output_spec: Any
    mutated_buffers: list[str | int]  # buffer names; under Dynamo, input positions


# ---- the decompositions ------------------------------------------------------------

def _dropout(x: torch.Tensor, p: float, train: bool) -> torch.Tensor:
    # aten.dropout on CPU becomes bernoulli_ on an empty tensor: keep the named op,
    # which the table turns into a mask from graphc's own random stream
    if not train or p == 0:
        return x
    return aten.native_dropout.default(x, p, train)[0]


@functools.cache
def decompositions() -> dict:
    """torch's core ATen decompositions, keeping dropout as native_dropout."""
    table = dict(core_aten_decompositions())
    table.pop(aten.native_dropout.default, None)
    table[aten.dropout.default] = _dropout
    return table


# ---- tracing -----------------------------------------------------------------------

def _mutating(gm: torch.fx.GraphModule) -> list[torch.fx.Node]:
    """In-place nodes other than the trailing copy_ onto placeholders."""
    return [n for n in gm.graph.nodes if n.op == "call_function"
            and isinstance(n.target, torch._ops.OpOverload) and n.target._schema.is_mutable
            and not (n.target is aten.copy_.default and n.args[0].op == "placeholder")]


@contextlib.contextmanager
def _tracing():
    # mkldnn off: nn.LSTM on CPU would be one mkldnn_rnn_layer, which nothing decomposes.
    # Setting the flags (on and back) warns about Intel GPUs' TF32, every capture: noise
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")
        with torch.backends.mkldnn.flags(enabled=False), enable_python_dispatcher():
            yield


def functional_graph(fn: Callable, inputs: Sequence[Any], rounds: int = 4
                     ) -> torch.fx.GraphModule:
    """A functional ATen graph of `fn(*inputs)`, its stack traces the user's."""
    table = decompositions()
    with _tracing():
        # non-fake inputs allowed: a tensor the code closes over becomes a constant
        gm = make_fx(fn, decomposition_table=table, tracing_mode="fake",
                     _allow_non_fake_inputs=True, record_stack_traces=True)(*inputs)
        for _ in range(rounds):
            if not _mutating(gm) and _round_done(gm):
                break
            gm = _refunctionalize(gm, inputs, table)
    gm.graph.eliminate_dead_code()  # e.g. BatchNorm's unused empty uint8 tensor
    left = _mutating(gm)
    if left:
        raise GraphcError(f"{left[0].target} is still in place after functionalization",
                          hint="please report this model", loc=node_loc(left[0]) or False)
    return gm


def _round_done(gm: torch.fx.GraphModule) -> bool:
    return getattr(gm, "_graphc_functional", False)


def _refunctionalize(gm: torch.fx.GraphModule, inputs, table) -> torch.fx.GraphModule:
    def run(*xs):
        return torch.fx.Interpreter(gm).run(*xs)
    # preserve_node_meta: each new node keeps the stack trace of the node it came from
    with fx_traceback.preserve_node_meta():
        out = make_fx(torch.func.functionalize(run, remove="mutations_and_views"),
                      decomposition_table=table, tracing_mode="fake",
                      _allow_non_fake_inputs=True)(*inputs)
    out._graphc_functional = True
    return out


# ---- names, inputs, outputs -----------------------------------------------------------

def _ident(name: str, taken: set[str]) -> str:
    """`name` as a graph value name (letters, digits, _ and .), unique in `taken`."""
    base = re.sub(r"[^A-Za-z0-9_.]", "_", name).strip("._") or "x"
    base = base if re.match(r"[A-Za-z_]", base) else "_" + base
    out, n = base, 1
    while out in taken:
        out, n = f"{base}_{n}", n + 1
    taken.add(out)
    return out


def _path_name(path) -> str:
    parts = []
    for key in path:
        for attr in ("key", "name", "idx"):
            if hasattr(key, attr):
                parts.append(str(getattr(key, attr)))
                break
    # the leading (args, kwargs) position says nothing; an arg's index does
    if parts and parts[0] == "0":
        parts = [f"arg{parts[1]}" if len(parts) > 1 else "arg"] + parts[2:]
    elif parts:
        parts = parts[1:]
    return ".".join(parts) or "arg"


class _Outputs:
    """Flattens the traced function's output, once, remembering how to rebuild it."""

    def __init__(self):
        self.spec: OutputSpec | None = None

    def flatten(self, out) -> list[torch.Tensor]:
        leaves, treedef = pytree.tree_flatten(out)
        if self.spec is None:
            self.spec = OutputSpec(treedef, {i: v for i, v in enumerate(leaves)
                                             if not isinstance(v, torch.Tensor)})
        return [v for v in leaves if isinstance(v, torch.Tensor)]


def _finish(gm: torch.fx.GraphModule, kinds: list[tuple[str, Any]], names: list[str],
            spec: OutputSpec, graph_name: str, args_mutable: bool = False,
            shape_env=None) -> Captured:
    """The translated graph with its in-place writes as extra outputs: a buffer's by
    name; with `args_mutable` (Dynamo's graphs, whose inputs include the module's
    buffers: BatchNorm's running statistics) an argument's by its position."""
    graph, facts = translate(gm, names, graph_name, shape_env)
    n_outputs = len(graph.outputs)
    tensor_phs = [i for i, n in enumerate(n for n in gm.graph.nodes if n.op == "placeholder")
                  if isinstance(n.meta.get("val"), torch.Tensor)]
    mutated = []
    for ph, value in sorted(facts["copies"].items()):
        kind, what = kinds[tensor_phs.index(ph)]
        if kind != "buffer" and not (kind == "arg" and args_mutable):
            raise GraphcError(f"the call writes into its {kind} {what} in place",
                              hint="graphc compiles pure functions: return the new value "
                                   "instead of writing into an input", loc=False)
        mutated.append(what)
        graph.outputs.append(value)
    kinds = list(kinds)
    if facts["seed"] is not None:
        kinds.append(("seed", None))
    return Captured(graph, kinds, n_outputs, spec, mutated)


def _detached(t):
    return t.detach() if isinstance(t, torch.Tensor) else t


# ---- the three ways in -------------------------------------------------------------

def capture_module(module: torch.nn.Module, args: tuple, kwargs: dict,
                   dynamic: dict[int, tuple[int, ...]] | None = None) -> Captured:
    """`module(*args, **kwargs)` in its current mode (train or eval) as a graph;
    `dynamic` (tensor argument k -> its axes) makes those sizes symbolic."""
    params = dict(module.named_parameters())
    buffers = dict(module.named_buffers())
    state = {**params, **buffers}
    kinds = [("param", n) for n in params] + [("buffer", n) for n in buffers]
    return _capture(lambda st, a, k: torch.func.functional_call(module, st, a, k),
                    state, kinds, args, kwargs, type(module).__name__, dynamic)


def capture_function(fn: Callable, args: tuple, kwargs: dict,
                     dynamic: dict[int, tuple[int, ...]] | None = None) -> Captured:
    """`fn(*args, **kwargs)`, a function of torch tensors, as a graph (`dynamic`: as
    capture_module's)."""
    # make_fx keeps stack frames of functions named `forward` only, and of anchors
    torch.fx.proxy._register_stack_trace_anchor(inspect.unwrap(fn))
    return _capture(lambda st, a, k: fn(*a, **k), {}, [], args, kwargs,
                    getattr(fn, "__name__", "fn"), dynamic)


def _capture(call: Callable, state: dict, kinds: list, args: tuple, kwargs: dict,
             graph_name: str, dynamic: dict[int, tuple[int, ...]] | None = None) -> Captured:
    leaves, spec = pytree.tree_flatten_with_path((tuple(args), dict(kwargs)))
    is_tensor = [isinstance(v, torch.Tensor) for _, v in leaves]
    tensors = [v for _, v in leaves if isinstance(v, torch.Tensor)]
    names_state = list(state)
    outputs = _Outputs()

    def flat_fn(*xs):
        st = dict(zip(names_state, xs[:len(names_state)]))
        it = iter(xs[len(names_state):])
        vals = [next(it) if t else v for t, (_, v) in zip(is_tensor, leaves)]
        a, k = pytree.tree_unflatten(vals, spec)
        return outputs.flatten(call(st, a, k))

    inputs = [_detached(t) for t in (*state.values(), *tensors)]
    shape_env = None
    if dynamic:
        inputs, shape_env = _symbolic_inputs(inputs, {len(state) + k: axes
                                                      for k, axes in dynamic.items()})
    gm = functional_graph(flat_fn, inputs)
    taken: set[str] = set()
    names = [_ident(n, taken) for n in names_state]
    names += [_ident(_path_name(p), taken) for p, v in leaves if isinstance(v, torch.Tensor)]
    kinds = kinds + [("arg", k) for k in range(len(tensors))]
    return _finish(gm, kinds, names, outputs.spec, _ident(graph_name, set()),
                   shape_env=shape_env)


def _symbolic_inputs(inputs: list[torch.Tensor], dynamic: dict[int, tuple[int, ...]]):
    """Fake tensors over a fresh torch ShapeEnv: the axes `dynamic` names (input ->
    axes) symbolic, every other size fixed (parameters keep theirs)."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import (DimDynamic, ShapeEnv,
                                                       StatelessSymbolicContext)
    mode = FakeTensorMode(shape_env=ShapeEnv())
    out = []
    for i, t in enumerate(inputs):
        axes = dynamic.get(i, ())
        context = StatelessSymbolicContext(dynamic_sizes=[
            DimDynamic.DYNAMIC if k in axes else DimDynamic.STATIC for k in range(t.ndim)])
        out.append(mode.from_tensor(t, symbolic_context=context))
    return out, mode.shape_env


def _concrete(x):
    """A Dynamo example input with concrete sizes: fake tensors of the same shape and
    dtype (a new shape recaptures), ints for SymInts."""
    if isinstance(x, torch.SymInt):
        return int(x.node.hint) if x.node.hint is not None else int(x)
    if not isinstance(x, torch.Tensor):
        return x
    shape = [_concrete(d) for d in x.shape]
    return torch.empty(shape, dtype=x.dtype, device="meta")


def capture_fx(gm: torch.fx.GraphModule, example_inputs: list) -> Captured:
    """Dynamo's graph `gm` on `example_inputs` (real, fake or SymInt-shaped) as a
    graph; input i is ("arg", i) for each tensor input (ints are baked in)."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    concrete = list(map(_concrete, example_inputs))
    inputs, shape_env = _dynamo_symbolic(gm, concrete)
    if shape_env is None:
        with FakeTensorMode():
            inputs = [torch.empty_strided(t.shape, t.stride(), dtype=t.dtype)
                      if isinstance(t, torch.Tensor) else t for t in concrete]
    outputs = _Outputs()

    def run(*xs):
        with fx_traceback.preserve_node_meta():
            return outputs.flatten(torch.fx.Interpreter(gm).run(*xs))

    functional = functional_graph(run, inputs)
    taken: set[str] = set()
    tensor_at = [i for i, t in enumerate(inputs) if isinstance(t, torch.Tensor)]
    names = [_ident(f"arg{i}", taken) for i in tensor_at]
    kinds = [("arg", i) for i in tensor_at]
    return _finish(functional, kinds, names, outputs.spec, "dynamo_graph",
                   args_mutable=True, shape_env=shape_env)


def symbolic_positions(gm: torch.fx.GraphModule) -> tuple[set[int], dict[int, tuple[int, ...]]]:
    """Where Dynamo's graph is symbolic (torch.compile(dynamic=True), or its automatic
    dynamic after a recompile): the positions of its SymInt inputs, and each tensor
    input's symbolic axes."""
    ints, axes = set(), {}
    for i, node in enumerate(n for n in gm.graph.nodes if n.op == "placeholder"):
        val = node.meta.get("example_value", node.meta.get("val"))
        if isinstance(val, torch.SymInt):
            ints.add(i)
        elif isinstance(val, torch.Tensor):
            dims = tuple(k for k, d in enumerate(val.shape) if isinstance(d, torch.SymInt))
            if dims:
                axes[i] = dims
    return ints, axes


def _dynamo_symbolic(gm: torch.fx.GraphModule, concrete: list):
    """Fake inputs with symbolic sizes where Dynamo's graph has them (a SymInt input
    becomes the symbolic size of the first tensor axis Dynamo gave the same symbol),
    and their ShapeEnv; (None, None) for a graph of fixed sizes."""
    ints, axes = symbolic_positions(gm)
    if not ints and not axes:
        return None, None
    tensors = {i: t for i, t in enumerate(concrete) if isinstance(t, torch.Tensor)}
    fakes, shape_env = _symbolic_inputs(list(tensors.values()),
                                        {list(tensors).index(i): a for i, a in axes.items()})
    fake_of = dict(zip(tensors, fakes))
    phs = [n for n in gm.graph.nodes if n.op == "placeholder"]
    by_symbol = {}
    for i, dims in axes.items():
        val = phs[i].meta.get("example_value", phs[i].meta.get("val"))
        for k in dims:
            by_symbol.setdefault(str(val.shape[k].node.expr), fake_of[i].shape[k])
    inputs = []
    for i, x in enumerate(concrete):
        if i in fake_of:
            inputs.append(fake_of[i])
        elif i in ints:
            val = phs[i].meta.get("example_value", phs[i].meta.get("val"))
            inputs.append(by_symbol.get(str(val.node.expr), x))
        else:
            inputs.append(x)
    return inputs, shape_env
