"""`graphc.grad`, `graphc.value_and_grad` and `graphc.vjp`: gradients as graphs.

A gradient function traces the user's function into a graph, asks
`passes.autodiff.backward` for the joint forward + backward graph, and replays that
graph into the trace it is called from. Called on numpy arrays, it compiles itself
(with `graphc.compile`) and so traces itself with Tracers first; inside a compiled
function, or inside another gradient (second derivatives), it simply adds its nodes to
the enclosing trace. Either way the backward is ordinary IR that the pipeline
simplifies and fuses with the rest.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from graphc.api import CompiledFunction, Lowered, lower_graph
from graphc.backends.options import Options, resolve as resolve_options
from graphc.errors import ArgumentError, GraphcError
from graphc.frontend.pytree import flatten, unflatten
from graphc.frontend.pytree import leaves as leaves_of
from graphc.frontend.trace import Traced, trace_function
from graphc.ir import Graph, symbols
from graphc.frontend.tracer import Tracer
import graphc.passes.autodiff as autodiff  # a module: `import passes.autodiff` alone must work


def _is_array(leaf: Any) -> bool:
    return isinstance(leaf, (Tracer, np.ndarray, np.generic))


def _argnums(argnums, nargs: int) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for i in nums:
        if not -nargs <= i < nargs:
            raise ArgumentError(f"argnums {argnums} is out of range for {nargs} positional "
                                "arguments",
                                hint=f"argnums counts positional arguments from 0: this call "
                                     f"takes 0..{nargs - 1} (keyword arguments are never "
                                     "differentiated)")
    return tuple(i % nargs for i in nums)


class _Transformed:
    """What grad / value_and_grad / vjp share: eager calls compile the traced form."""

    def __init__(self, fn: Callable, label: str, backend: str = "numpy",
                 options: Options | dict | None = None):
        self.fn = fn
        functools.update_wrapper(self, fn, updated=())  # not __dict__: ours stays ours

        @functools.wraps(fn)
        def traced_entry(*args, **kwargs):
            return self._traced(args, kwargs)
        traced_entry.__name__ = f"{label}_{getattr(fn, '__name__', 'fn')}"
        self._compiled = CompiledFunction(traced_entry, backend=backend, options=options)
        self.options = self._compiled.options

    def __call__(self, *args, **kwargs):
        if any(isinstance(x, Tracer) for x in leaves_of((args, kwargs))):
            return self._traced(args, kwargs)
        return self._compiled(*args, **kwargs)

    def lower(self, *args, **kwargs):
        """The compiled forms (traced, optimized, source) for these arguments."""
        return self._compiled.lower(*args, **kwargs)

    def _traced(self, args: tuple, kwargs: dict):
        raise NotImplementedError


class GradFunction(_Transformed):
    """The gradient of `fn` with respect to the arguments in `argnums`."""

    def __init__(self, fn: Callable, argnums, has_aux: bool, with_value: bool,
                 backend: str = "numpy", options: Options | dict | None = None):
        self.argnums, self.has_aux, self.with_value = argnums, has_aux, with_value
        super().__init__(fn, "value_and_grad" if with_value else "grad", backend, options)

    def _traced(self, args: tuple, kwargs: dict):
        nums = _argnums(self.argnums, len(args))
        # graph inputs are the array leaves of (args, kwargs), in order
        counts = [sum(map(_is_array, leaves_of(a))) for a in args]
        starts = np.cumsum([0] + counts)
        wrt = [j for i in nums for j in range(starts[i], starts[i] + counts[i])]
        traced = trace_function(self.fn, args, kwargs)
        _check_loss(traced, self.has_aux)
        with symbols.as_a_pass():  # (a symbolic trace's sizes stay as open as they were)
            joint = autodiff.backward(traced.graph, wrt)
        ctx = next(x for x in leaves_of((args, kwargs)) if isinstance(x, Tracer)).ctx
        inputs = [x for x in leaves_of((args, kwargs)) if _is_array(x)]
        outs = ctx.inline(joint, inputs)
        n_out = len(traced.graph.outputs)
        value, grads = traced.rebuild(outs[:n_out]), outs[n_out:]
        per_arg = []
        for i in nums:
            leaves, treedef, _ = flatten(args[i])
            it = iter(grads[:counts[i]])
            grads = grads[counts[i]:]
            per_arg.append(unflatten(treedef, [next(it) if _is_array(x) else None
                                               for x in leaves]))
        g = per_arg[0] if isinstance(self.argnums, int) else tuple(per_arg)
        if self.has_aux:
            loss, aux = value
            return ((loss, aux), g) if self.with_value else (g, aux)
        return (value, g) if self.with_value else g


def _check_loss(traced, has_aux: bool) -> None:
    if has_aux:
        ok = traced.out_treedef[0] == "tuple" and len(traced.out_treedef[1]) == 2 \
            and traced.out_treedef[1][0] == ("leaf",)
        if not ok:
            raise GraphcError("with has_aux=True the function must return a pair (loss, "
                              "aux) whose first item is the scalar loss",
                              hint="return (loss, aux), packing several extra results into "
                                   "aux, e.g. return loss, (a, b); or drop has_aux=True")
    if not traced.out_slots or traced.out_slots[0] != 0:
        raise GraphcError("grad needs a function returning one float scalar (an array "
                          "computed from its inputs)",
                          hint="return a scalar loss such as np.sum(...) or np.mean(...)")
    if not has_aux and len(traced.out_slots) != 1:
        raise GraphcError("grad needs a function returning one float scalar; this one "
                          f"returns {len(traced.out_slots)} values",
                          hint="return only the loss, or pass has_aux=True and return "
                               "(loss, aux)")


def grad(fn: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False, *,
         backend: str = "numpy", options: Options | dict | None = None) -> GradFunction:
    """The gradient of a scalar function, derived symbolically on the IR.

    `argnums` picks the positional arguments (an int, or a tuple for a tuple of
    gradients); a pytree argument (a dict of parameters) gets a gradient of the same
    structure. With `has_aux`, `fn` returns `(loss, aux)` and the result is `(g, aux)`.
    Called on arrays, it compiles with `backend` and `options` (as `graphc.compile`).

    >>> import graphc, numpy as np
    >>> g = graphc.grad(lambda x: np.sum(x ** 3))
    >>> g(np.array([1.0, 2.0]))
    array([ 3., 12.])
    >>> graphc.grad(graphc.grad(lambda x: x ** 3))(np.float64(2.0))  # second derivative
    array(12.)
    """
    return GradFunction(fn, argnums, has_aux, False, backend, options)


def value_and_grad(fn: Callable, argnums: int | Sequence[int] = 0,
                   has_aux: bool = False, *, backend: str = "numpy",
                   options: Options | dict | None = None) -> GradFunction:
    """Like `grad`, returning `(value, gradient)`: one graph computes both.

    >>> import graphc, numpy as np
    >>> loss, g = graphc.value_and_grad(lambda w: np.sum(w * w))(np.array([3.0]))
    >>> float(loss), g
    (9.0, array([6.]))
    """
    return GradFunction(fn, argnums, has_aux, True, backend, options)


class _VJP(_Transformed):
    """(primals, cotangents) -> gradients of every array leaf of the primals."""

    def __init__(self, fn: Callable):
        super().__init__(fn, "vjp")  # only ever traced into an enclosing function

    def _traced(self, args: tuple, kwargs: dict):
        primals, cts = args
        traced = trace_function(self.fn, primals, {})
        ct_leaves = [c for c in leaves_of(cts)]
        if len(ct_leaves) != len(traced.graph.outputs):
            raise GraphcError(f"vjp: {len(ct_leaves)} cotangents for "
                              f"{len(traced.graph.outputs)} outputs",
                              hint="pass one cotangent per output, shaped like it")
        float_inputs = [i for i, v in enumerate(traced.graph.inputs)
                        if v.type.dtype.startswith(("float", "bfloat"))]
        joint = autodiff.backward(traced.graph, float_inputs, seed_inputs=True)
        leaves = leaves_of((primals, {}))
        ctx = next(x for x in leaves + ct_leaves if isinstance(x, Tracer)).ctx
        inputs = [x for x in leaves if _is_array(x)] + ct_leaves
        grads = iter(ctx.inline(joint, inputs)[len(traced.graph.outputs):])
        out, k = [], 0
        for x in leaves:  # a gradient for each float array leaf, None elsewhere
            out.append(next(grads) if _is_array(x) and k in float_inputs else None)
            k += _is_array(x)
        return unflatten(flatten(primals)[1], out)


def vjp(fn: Callable, *primals: Any, backend: str = "numpy",
        options: Options | dict | None = None):
    """`(fn(*primals), vjp_fn)`: `vjp_fn(cotangent)` gives the gradient of
    `sum(cotangent * fn(*primals))` for each primal (a tuple, one per argument).
    `backend` compiles both halves (with its fusion policy) when called on arrays, as
    `options` ask (see `graphc.compile`; `vjp_fn.options` holds them resolved).

    On numpy arrays the forward and the backward are compiled apart: the forward saves
    the intermediates a minimum cut picks (`passes/remat.py`) and the backward
    recomputes the cheap rest; `vjp_fn.saved_bytes` and `vjp_fn.save_all_bytes` say
    what was kept against saving every intermediate the backward reads.

    >>> import graphc, numpy as np
    >>> out, back = graphc.vjp(lambda x: x * x, np.array([1.0, 3.0]))
    >>> back(np.array([1.0, 1.0]))
    (array([2., 6.]),)
    """
    options = resolve_options(options)  # a bad option fails here, traced or not
    if any(isinstance(x, Tracer) for x in leaves_of(primals)):
        backward_fn = _VJP(fn)  # inside a trace: the backward joins the enclosing graph
        return fn(*primals), lambda cotangent: backward_fn(tuple(primals), cotangent)
    return _split_vjp(fn, primals, backend, options)


def _split_vjp(fn: Callable, primals: tuple, backend: str, options: Options):
    from graphc.backends import get

    traced = trace_function(fn, primals, {})
    graph = traced.graph
    floats = [i for i, v in enumerate(graph.inputs) if v.type.dtype.startswith(("float", "bf"))]
    n_out = len(graph.outputs)
    halves = lower_split(graph, floats, get(backend), options, fn=fn)
    leaves = leaves_of(primals)
    flat = [x for x in leaves if _is_array(x)]
    results = halves.forward(*flat)
    saved = list(results[n_out:])
    run_backward = halves.backward

    def vjp_fn(cotangent):
        cts = leaves_of(cotangent)
        if len(cts) != n_out:
            raise GraphcError(f"vjp: {len(cts)} cotangents for {n_out} outputs",
                              hint="pass one cotangent per output, shaped like it")
        grads = iter(run_backward(*[flat[i] for i in halves.takes], *saved, *cts))
        out, k = [], 0
        for x in leaves:  # a gradient for each float array leaf, None elsewhere
            out.append(next(grads) if _is_array(x) and k in floats else None)
            k += _is_array(x)
        return unflatten(flatten(primals)[1], out)

    vjp_fn.options = options
    vjp_fn.saved_bytes = halves.parts.saved_bytes
    vjp_fn.save_all_bytes = halves.parts.save_all_bytes
    return traced.rebuild(list(results[:n_out])), vjp_fn


@dataclass
class SplitLowered:
    """A graph's forward and backward, split by rematerialization (passes/remat.py) and
    each optimized and compiled for one backend.

    `forward(*inputs)` returns the graph's outputs, then the values saved for the
    backward; `backward(*[inputs[i] for i in takes], *saved, *cotangents)` returns the
    gradient of each input in `wrt`, in order (one cotangent per seeded output).
    """

    forward: Lowered
    backward: Lowered
    takes: list[int]
    parts: Any  # passes.remat.Split: the graphs as split, what is saved and its bytes

    @property
    def n_saved(self) -> int:
        return len(self.parts.saved)


def lower_split(graph: Graph, wrt: list[int], target, options: Options | None = None,
                passes=None, n_seeded: int | None = None,
                fn: Callable | None = None) -> SplitLowered:
    """Differentiate `graph` with respect to the inputs in `wrt` (cotangents seeding its
    first `n_seeded` outputs, default all; the rest are carried along), split the joint
    graph, and lower both halves with the backend module `target` (its fusion policy),
    `passes` and `options`; `fn` is the user's function that errors name.

    >>> import graphc, numpy as np
    >>> from graphc.backends import get
    >>> g = graphc.trace(lambda x: np.sum(np.tanh(x)), np.ones(3))
    >>> halves = lower_split(g, [0], get("numpy"))
    >>> y, *saved = halves.forward(np.zeros(3))
    >>> halves.backward(*[np.zeros(3)][:len(halves.takes)], *saved, np.float64(1.0))[0]
    array([1., 1., 1.])
    """
    from graphc.passes.remat import split
    from graphc.passes.simplify import simplify
    n_out = len(graph.outputs)
    n_seeded = n_out if n_seeded is None else n_seeded
    # simplified first, so that the gradient is taken of the simpler form (a weight
    # broadcast into a batched matmul, as torch's decompositions write some linear
    # layers, then gets one GEMM for its gradient, not a batch of them summed)
    joint = autodiff.backward(simplify(graph), wrt, seed_inputs=True, n_seeded=n_seeded)
    parts = split(joint, n_out, n_seeded)
    parts.forward.guards = parts.backward.guards = graph.guards
    position = {id(v): i for i, v in enumerate(graph.inputs)}
    takes = [position[id(v)] for v in parts.backward.inputs if id(v) in position]
    halves = [lower_graph(_as_traced(g), fn, target, passes, options)
              for g in (parts.forward, parts.backward)]
    return SplitLowered(halves[0], halves[1], takes, parts)


def _as_traced(graph: Graph) -> Traced:
    """A graph with no user's pytree around it: its outputs are returned as a tuple."""
    _, treedef, _ = flatten(tuple(range(len(graph.outputs))), with_paths=False)
    return Traced(graph, treedef, list(range(len(graph.outputs))),
                  [v.name for v in graph.inputs])
