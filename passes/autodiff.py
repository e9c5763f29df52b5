"""Reverse-mode autodiff on the IR: the backward of a graph is more graph.

`backward(graph, wrt, seeds)` returns a joint graph computing the original outputs and
then, node by node in reverse, the cotangent of every value that depends on the inputs
in `wrt`, using one VJP rule per primitive from the table `VJP`. The result is ordinary
IR: it prints, verifies, simplifies, fuses, and can be differentiated again.

    before:  graph f(%x: f32[3]) -> (f32[]) { %0 = tanh %x ; %1 = sum %0 ; return %1 }
    after:   graph f(%x: f32[3]) -> (f32[], f32[3]) {
               %0 = tanh %x ; %1 = sum %0
               %2 = const 1.0 ; %3 = broadcast_to %2 {shape=(3,)}        # d sum
               %4 = mul %0, %0 ; %5 = sub 1.0, %4 ; %6 = mul %3, %5      # d tanh
               return %1, %6 }

Rules receive an `Emit` (which builds nodes at the forward node's source line), the
node, and the cotangent of its output; they return one cotangent per input (None for
no gradient). Broadcasting is undone by summing to the input's shape. Ties in max,
min, maximum and minimum split the gradient evenly, as torch does (amax/amin, maximum).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from graphc import dtypes
from graphc.errors import GraphcError, SourceLoc
from graphc.ir import Graph, Node, TensorType, Value
from graphc.ops import OPS
from graphc.passes.rewrite import GraphBuilder


class Emit:
    """Builds backward nodes; `want(i)` says whether input i needs a cotangent."""

    def __init__(self, gb: GraphBuilder, node: Node, wants: Sequence[bool]):
        self.gb, self.node, self.wants = gb, node, wants
        self.loc: SourceLoc | None = node.loc

    def want(self, i: int) -> bool:
        return self.wants[i]

    def __call__(self, op: str, *inputs: Value, **attrs) -> Value:
        return self.gb.emit(op, inputs, attrs, self.loc)

    def scalar(self, value: float, like: Value) -> Value:
        return self.gb.const(np.array(value, dtypes.to_numpy(like.type.dtype)), self.loc)

    def x(self, i: int) -> Value:
        """The forward node's i-th input, as it is in the joint graph."""
        return self.gb.inputs_of(self.node)[i]

    @property
    def y(self) -> Value:
        return self.gb.mapped(self.node.outputs[0])

    def unbroadcast(self, g: Value, shape: tuple[int, ...]) -> Value:
        """Sum `g` down to `shape`, undoing numpy broadcasting."""
        if g.type.shape == shape:
            return g
        lead = g.type.ndim - len(shape)
        if lead:  # axes numpy added in front: summed away
            g = self("sum", g, axes=tuple(range(lead)), keepdims=False)
        ones = tuple(i for i, d in enumerate(shape) if d == 1 and g.type.shape[i] != 1)
        if ones:  # size-1 axes numpy stretched: summed, kept
            g = self("sum", g, axes=ones, keepdims=True)
        return g

    def expand(self, g: Value, shape: tuple[int, ...], axes: tuple[int, ...],
               keepdims: bool) -> Value:
        """Broadcast a reduction's cotangent back over the reduced axes."""
        if not keepdims:
            kept = tuple(1 if i in axes else d for i, d in enumerate(shape))
            g = self("reshape", g, shape=kept)
        return self("broadcast_to", g, shape=shape)


Rule = Callable[[Emit, Node, Value], Sequence["Value | None"]]
VJP: dict[str, Rule] = {}


def defvjp(*names: str):
    def register(rule: Rule) -> Rule:
        for name in names:
            VJP[name] = rule
        return rule
    return register


def _unary(name: str, dydx: Callable[[Emit], Value]) -> None:
    """A rule g -> g * dy/dx for an elementwise unary op."""
    VJP[name] = lambda e, n, g: [e("mul", g, dydx(e))]


# ---- elementwise unary: d/dx, written with the forward input x and output y ----------
_unary("exp", lambda e: e.y)
_unary("expm1", lambda e: e("add", e.y, e.scalar(1, e.y)))
_unary("log", lambda e: e("reciprocal", e.x(0)))
_unary("log1p", lambda e: e("reciprocal", e("add", e.x(0), e.scalar(1, e.y))))
_unary("sqrt", lambda e: e("div", e.scalar(0.5, e.y), e.y))
_unary("rsqrt", lambda e: e("mul", e.scalar(-0.5, e.y), e("mul", e.y, e("mul", e.y, e.y))))
_unary("reciprocal", lambda e: e("neg", e("mul", e.y, e.y)))
_unary("tanh", lambda e: e("sub", e.scalar(1, e.y), e("mul", e.y, e.y)))
_unary("sigmoid", lambda e: e("mul", e.y, e("sub", e.scalar(1, e.y), e.y)))
_unary("sin", lambda e: e("cos", e.x(0)))
_unary("cos", lambda e: e("neg", e("sin", e.x(0))))
_unary("abs", lambda e: e("sign", e.x(0)))
_unary("erf", lambda e: e("mul", e.scalar(2 / math.sqrt(math.pi), e.y),
                          e("exp", e("neg", e("mul", e.x(0), e.x(0))))))
defvjp("neg")(lambda e, n, g: [e("neg", g)])


# ---- elementwise binary ---------------------------------------------------------------
def _binary(n: Node, e: Emit, ga: Callable[[], Value], gb: Callable[[], Value]):
    a, b = n.inputs
    return [e.unbroadcast(ga(), a.type.shape) if e.want(0) else None,
            e.unbroadcast(gb(), b.type.shape) if e.want(1) else None]


defvjp("add")(lambda e, n, g: _binary(n, e, lambda: g, lambda: g))
defvjp("sub")(lambda e, n, g: _binary(n, e, lambda: g, lambda: e("neg", g)))
defvjp("mul")(lambda e, n, g: _binary(n, e, lambda: e("mul", g, e.x(1)),
                                      lambda: e("mul", g, e.x(0))))
defvjp("div")(lambda e, n, g: _binary(
    n, e, lambda: e("div", g, e.x(1)),
    lambda: e("neg", e("div", e("mul", g, e.y), e.x(1)))))


@defvjp("pow")
def _pow(e: Emit, n: Node, g: Value):
    a, b = e.x(0), e.x(1)

    def d_base():  # b * a**(b - 1); a constant exponent stays constant (x**3 -> 3 x**2)
        b_node = n.inputs[1].node
        if b_node is not None and b_node.op == "const":
            lower = e.gb.const(b_node.attrs["value"].array - 1, e.loc)
        else:
            lower = e("sub", b, e.scalar(1, b))
        return e("mul", g, e("mul", b, e("pow", a, lower)))

    def d_exponent():  # y * log(a), taken as 0 where a <= 0 (as torch does at a == 0)
        zero = e.scalar(0, a)
        safe = e("where", e("gt", a, zero), a, e.scalar(1, a))
        return e("mul", g, e("where", e("gt", a, zero), e("mul", e.y, e("log", safe)), zero))
    return _binary(n, e, d_base, d_exponent)


def _select(name: str):
    """maximum / minimum: the gradient goes to the chosen input, ties split evenly."""
    cmp = "gt" if name == "maximum" else "lt"

    def rule(e: Emit, n: Node, g: Value):
        a, b = e.x(0), e.x(1)
        zero, half = e.scalar(0, g), e.scalar(0.5, g)
        tie = e("mul", g, half)
        win_a = e("where", e(cmp, a, b), g, e("where", e("eq", a, b), tie, zero))
        win_b = e("where", e(cmp, b, a), g, e("where", e("eq", a, b), tie, zero))
        return _binary(n, e, lambda: win_a, lambda: win_b)
    return rule


VJP["maximum"] = _select("maximum")
VJP["minimum"] = _select("minimum")
# a % b = a - b * floor(a / b), the floor constant between its jumps
defvjp("remainder")(lambda e, n, g: _binary(
    n, e, lambda: g, lambda: e("neg", e("mul", g, e("floor_divide", e.x(0), e.x(1))))))


@defvjp("where")
def _where(e: Emit, n: Node, g: Value):
    c = e.x(0)
    zero = e.scalar(0, g)
    return [None,
            e.unbroadcast(e("where", c, g, zero), n.inputs[1].type.shape) if e.want(1) else None,
            e.unbroadcast(e("where", c, zero, g), n.inputs[2].type.shape) if e.want(2) else None]


@defvjp("cast")
def _cast(e: Emit, n: Node, g: Value):
    src = n.inputs[0].type.dtype
    return [e("cast", g, dtype=src) if dtypes.is_float(src) else None]


# ---- reductions ----------------------------------------------------------------------
@defvjp("sum")
def _sum(e: Emit, n: Node, g: Value):
    shape = n.inputs[0].type.shape
    return [e.expand(g, shape, n.attrs["axes"], n.attrs["keepdims"])]


def _extreme(e: Emit, n: Node, g: Value):
    """max/min over axes: the gradient is shared evenly by the elements that tie."""
    x, shape = e.x(0), n.inputs[0].type.shape
    axes, keepdims = n.attrs["axes"], n.attrs["keepdims"]
    y = e.expand(e.y, shape, axes, keepdims)
    hit = e("cast", e("eq", x, y), dtype=g.type.dtype)
    count = e.expand(e("sum", hit, axes=axes, keepdims=keepdims), shape, axes, keepdims)
    return [e("div", e("mul", e.expand(g, shape, axes, keepdims), hit), count)]


VJP["max"] = VJP["min"] = _extreme


# ---- shapes --------------------------------------------------------------------------
defvjp("reshape")(lambda e, n, g: [e("reshape", g, shape=n.inputs[0].type.shape)])
defvjp("transpose")(lambda e, n, g: [e("transpose", g, perm=tuple(
    int(i) for i in np.argsort(n.attrs["perm"])))])
defvjp("broadcast_to")(lambda e, n, g: [e.unbroadcast(g, n.inputs[0].type.shape)])


@defvjp("slice")
def _slice(e: Emit, n: Node, g: Value):
    """Place g back where the slice took it from, with zeros elsewhere."""
    shape = n.inputs[0].type.shape
    for axis, (a, b, s) in enumerate(zip(n.attrs["starts"], n.attrs["stops"],
                                          n.attrs["steps"])):
        length = g.type.shape[axis]
        if length == 0:
            g = _zeros_like_axis(e, g, axis, shape[axis])
            continue
        if s < 0:  # reversed: flip g, then it is a forward slice from the last index
            g = _flip(e, g, axis)
            a, s = a + (length - 1) * s, -s
        if s > 1:  # interleave s - 1 zeros after each element
            g = _spread(e, g, axis, s)
        span = g.type.shape[axis]
        widths = [(0, 0)] * g.type.ndim
        widths[axis] = (a, shape[axis] - a - span)
        if widths[axis] != (0, 0):
            g = e("pad", g, widths=tuple(widths), value=0.0)
    return [g]


def _flip(e: Emit, g: Value, axis: int) -> Value:
    n = g.type.shape[axis]
    starts = [0] * g.type.ndim
    stops, steps = list(g.type.shape), [1] * g.type.ndim
    starts[axis], stops[axis], steps[axis] = n - 1, -1, -1
    return e("slice", g, starts=tuple(starts), stops=tuple(stops), steps=tuple(steps))


def _spread(e: Emit, g: Value, axis: int, s: int) -> Value:
    """[a, b] -> [a, 0, .., 0, b] with s - 1 zeros between neighbours."""
    shape = g.type.shape
    n = shape[axis]
    col = shape[:axis + 1] + (1,) + shape[axis + 1:]
    g = e("reshape", g, shape=col)
    widths = [(0, 0)] * len(col)
    widths[axis + 1] = (0, s - 1)
    g = e("pad", g, widths=tuple(widths), value=0.0)
    g = e("reshape", g, shape=shape[:axis] + (n * s,) + shape[axis + 1:])
    starts = [0] * len(shape)
    stops = list(shape[:axis]) + [(n - 1) * s + 1] + list(shape[axis + 1:])
    return e("slice", g, starts=tuple(starts), stops=tuple(stops), steps=(1,) * len(shape))


def _zeros_like_axis(e: Emit, g: Value, axis: int, size: int) -> Value:
    shape = list(g.type.shape)
    shape[axis] = size
    return e("broadcast_to", e.scalar(0, g), shape=tuple(shape))


@defvjp("concat")
def _concat(e: Emit, n: Node, g: Value):
    axis, out, start = n.attrs["axis"], [], 0
    for v in n.inputs:
        size = v.type.shape[axis]
        starts, stops = [0] * g.type.ndim, list(g.type.shape)
        starts[axis], stops[axis] = start, start + size
        out.append(e("slice", g, starts=tuple(starts), stops=tuple(stops),
                     steps=(1,) * g.type.ndim))
        start += size
    return out


@defvjp("pad")
def _pad(e: Emit, n: Node, g: Value):
    widths = n.attrs["widths"]
    starts = tuple(lo for lo, _ in widths)
    stops = tuple(d - hi for d, (_, hi) in zip(g.type.shape, widths))
    return [e("slice", g, starts=starts, stops=stops, steps=(1,) * g.type.ndim)]


@defvjp("gather")
def _gather(e: Emit, n: Node, g: Value):
    x = n.inputs[0]
    zeros = e("broadcast_to", e.scalar(0, g), shape=x.type.shape)
    return [e("scatter_add", zeros, e.x(1), g, axis=n.attrs["axis"]), None]


@defvjp("scatter_add")
def _scatter_add(e: Emit, n: Node, g: Value):
    return [g, None, e("gather", g, e.x(1), axis=n.attrs["axis"])]


@defvjp("cumsum")
def _cumsum(e: Emit, n: Node, g: Value):
    """x[i] feeds every y[j] with j >= i: its cotangent is the sum of g over j >= i, a
    cumsum of g run from the end (flip, cumsum, flip back)."""
    axis = n.attrs["axis"]
    if g.type.shape[axis] <= 1:  # a running sum of one element is the element
        return [g]
    return [_flip(e, e("cumsum", _flip(e, g, axis), axis=axis), axis)]


# ---- matmul --------------------------------------------------------------------------
def _swap_last(e: Emit, v: Value) -> Value:
    perm = tuple(range(v.type.ndim - 2)) + (v.type.ndim - 1, v.type.ndim - 2)
    return e("transpose", v, perm=perm)


@defvjp("matmul")
def _matmul(e: Emit, n: Node, g: Value):
    # with transpose flags, the operands as multiplied are a.T and/or b.T: their
    # gradients come from the plain rule, then go back through the same transposes
    # (which simplify folds into the matmuls that use them)
    flags = [bool(n.attrs.get(f"transpose_{k}", False)) for k in "ab"]
    a, b = (_swap_last(e, e.x(i)) if flags[i] else e.x(i) for i in range(2))
    da = db = None
    if e.want(0):
        da = e.unbroadcast(e("matmul", g, _swap_last(e, b)), a.type.shape)
        da = _swap_last(e, da) if flags[0] else da
    if e.want(1):
        db = _matmul_weight_grad(e, a, b.type, g)
        db = _swap_last(e, db) if flags[1] else db
    return [da, db]


def _matmul_weight_grad(e: Emit, a: Value, b: TensorType, g: Value) -> Value:
    """d(a @ b)/db. A 2-d b (a layer's weight) under a batched a gets the sum over the
    batch as one GEMM over all rows, (rows, K)^T @ (rows, N), rather than a batch of
    products summed afterwards (a (batch, K, N) array made only to be reduced)."""
    if b.ndim == 2 and a.type.ndim > 2:
        k, rows = a.type.shape[-1], math.prod(a.type.shape[:-1])
        flat_a = e("reshape", a, shape=(rows, k))
        flat_g = e("reshape", g, shape=(rows, g.type.shape[-1]))
        return e("matmul", _swap_last(e, flat_a), flat_g)
    return e.unbroadcast(e("matmul", _swap_last(e, a), g), b.shape)


# ---- convolution and pooling ---------------------------------------------------------
# Each gradient op is linear in its cotangent and the adjoint of a forward window op,
# so their rules pair them up and second derivatives come from this same table:
# <h, grad_input(g, w)> = <conv2d(h, w), g> = <w, grad_weight(h, g)>.
def _window_attrs(n: Node, names=("stride", "padding", "dilation", "groups")) -> dict:
    return {k: n.attrs[k] for k in names}


_POOL = ("kernel", "stride", "padding")


@defvjp("conv2d")
def _conv2d(e: Emit, n: Node, g: Value):
    x, w, at = *n.inputs, _window_attrs(n)
    return [e("conv2d_grad_input", g, e.x(1), input_shape=x.type.shape, **at)
            if e.want(0) else None,
            e("conv2d_grad_weight", e.x(0), g, weight_shape=w.type.shape, **at)
            if e.want(1) else None]


@defvjp("conv2d_grad_input")
def _conv2d_grad_input(e: Emit, n: Node, h: Value):
    at = _window_attrs(n)
    return [e("conv2d", h, e.x(1), **at) if e.want(0) else None,
            e("conv2d_grad_weight", h, e.x(0), weight_shape=n.inputs[1].type.shape, **at)
            if e.want(1) else None]


@defvjp("conv2d_grad_weight")
def _conv2d_grad_weight(e: Emit, n: Node, k: Value):
    at = _window_attrs(n)
    return [e("conv2d_grad_input", e.x(1), k, input_shape=n.inputs[0].type.shape, **at)
            if e.want(0) else None,
            e("conv2d", e.x(0), k, **at) if e.want(1) else None]


defvjp("avg_pool2d")(lambda e, n, g: [e("avg_pool2d_grad", g, input_shape=n.inputs[0].type.shape,
                                        **_window_attrs(n, _POOL))])
defvjp("avg_pool2d_grad")(lambda e, n, h: [e("avg_pool2d", h, **_window_attrs(n, _POOL))])
defvjp("max_pool2d")(lambda e, n, g: [e("max_pool2d_grad", e.x(0), g, **_window_attrs(n, _POOL))])
# Which element wins a window is piecewise constant in x, so these two give x no
# gradient (as torch's double backward of max_pool2d does); in the cotangent the
# scatter to each window's max (max_pool2d_grad) and the read from it (gather) are
# each other's adjoints.
defvjp("max_pool2d_grad")(lambda e, n, h: [
    None, e("max_pool2d_gather", e.x(0), h, **_window_attrs(n, _POOL))])
defvjp("max_pool2d_gather")(lambda e, n, k: [
    None, e("max_pool2d_grad", e.x(0), k, **_window_attrs(n, _POOL))])


# ---- the transformation --------------------------------------------------------------
def needs_grad(graph: Graph, wrt: Sequence[Value]) -> set[int]:
    """ids of the values that depend on `wrt` through differentiable float ops."""
    live = {id(v) for v in wrt}
    for node in graph.nodes:
        if OPS[node.op].differentiable and any(id(v) in live for v in node.inputs):
            live.update(id(v) for v in node.outputs if dtypes.is_float(v.type.dtype))
    return live


def backward(graph: Graph, wrt: Sequence[int], seed_inputs: bool = False,
             name: str | None = None, n_seeded: int | None = None) -> Graph:
    """The joint graph: `graph`'s outputs, then the gradient of each input in `wrt`.

    With `seed_inputs` the cotangent of each output is a new graph input (`ct.0`, ...;
    a vjp); otherwise the first output must be a float scalar, seeded with 1 (a grad),
    and any further outputs (the `aux` of has_aux) get no cotangent. `n_seeded` limits
    the seeded outputs to the first n: the rest (a torch module's new buffer values)
    are carried along, as has_aux's are.
    """
    wrt_values = [graph.inputs[i] for i in wrt]
    for v in wrt_values:
        if not dtypes.is_float(v.type.dtype):
            raise GraphcError(f"cannot differentiate with respect to %{v.name}, a "
                              f"{v.type.dtype} array",
                              hint="integer and bool inputs have no gradient: leave them "
                                   "out of argnums, or cast them to float first")
    gb = GraphBuilder(graph)
    for node in graph.nodes:
        gb.copy(node)
    live = needs_grad(graph, wrt_values)
    cts: dict[int, Value] = {}
    seeds = []
    for i, out in enumerate(graph.outputs):
        if seed_inputs and n_seeded is not None and i >= n_seeded:
            continue
        if seed_inputs:
            seed = Value(gb.unique_name(f"ct.{i}"), out.type)
            seeds.append(seed)
            cts[id(out)] = seed
        elif i > 0:  # has_aux: outputs after the loss are carried along, not differentiated
            continue
        elif not dtypes.is_float(out.type.dtype) or out.type.shape != ():
            raise GraphcError(f"grad needs a function returning one float scalar; "
                              f"{graph.name} returns {out.type}",
                              hint="reduce the output to a scalar loss (e.g. np.sum or "
                                   "np.mean), or use graphc.vjp for non-scalar outputs")
        else:
            cts[id(out)] = gb.const(np.array(1, dtypes.to_numpy(out.type.dtype)), None)
    for node in reversed(graph.nodes):
        g = cts.get(id(node.outputs[0]))
        if g is None or not OPS[node.op].differentiable:
            continue
        wants = [id(v) in live for v in node.inputs]
        if not any(wants):
            continue
        rule = VJP.get(node.op)
        if rule is None:
            raise GraphcError(f"no gradient rule for {node.op} yet", loc=node.loc or False,
                              hint="see passes/autodiff.py, VJP table")
        for v, want, ct in zip(node.inputs, wants, rule(Emit(gb, node, wants), node, g)):
            if not want or ct is None:
                continue
            ct = ct if ct.type.dtype == v.type.dtype else \
                gb.emit("cast", (ct,), {"dtype": v.type.dtype}, node.loc)
            prev = cts.get(id(v))
            cts[id(v)] = ct if prev is None else gb.emit("add", (prev, ct), {}, node.loc)
    grads = []
    for v in wrt_values:
        g = cts.get(id(v))
        if g is None:  # the output does not depend on it
            zero = gb.const(np.array(0, dtypes.to_numpy(v.type.dtype)), None)
            g = gb.emit("broadcast_to", (zero,), {"shape": v.type.shape}, None)
        grads.append(g)
    joint = gb.finish()
    joint.name = name or f"{graph.name}_grad"
    joint.inputs = joint.inputs + seeds
    joint.outputs = joint.outputs + grads
    return joint
