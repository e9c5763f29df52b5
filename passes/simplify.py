"""Algebraic simplification: rewrite rules from one table, applied to a fixed point.

    before:  %0 = const {value=3.0} ; %1 = pow %x, %0
             %2 = const {value=1.0} ; %3 = mul %1, %2 ; return %3
    after:   %0 = const {value=3.0} ; %4 = mul %x, %x ; %1 = mul %4, %x
             %2 = const {value=1.0} ; return %1

Each entry of `RULES` names a rule, the ops it matches and a small function that
looks at one node (a `Site`, its inputs already rewritten) and returns the value that
replaces the node's output, or None. A sweep rebuilds the graph once, in order, trying
each node's rules; sweeps repeat until none fires. Consts left without readers are
dropped later by dce.

Rules must keep the output's dtype and shape: a rule may return a value whose shape
only broadcasts to the node's (x*1 where the 1 is the bigger operand returns x), and
the driver adds the broadcast_to. A rule emits nodes only once it has decided to fire.

Deliberately missing: x*0 -> 0 (wrong for nan and inf).
Edge cases accepted, as fast-math compilers accept them: x+0 -> x keeps a -0.0 input
negative where the add gives +0.0, and x**-0.5 -> rsqrt(x) gives nan for x = -inf and
-inf for x = -0.0 where pow gives 0 and inf. (x**0.5 -> sqrt(x) is exact: numpy's pow
itself takes sqrt for a scalar 0.5.) The rest is exact or within an ulp or two
(x**3 as (x*x)*x, x/c as x*(1/c)).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from graphc import dtypes
from graphc.errors import SourceLoc
from graphc.ir import Attrs, Graph, Node, TensorType, Value
from graphc.ops import ELEMENTWISE_OPS, infer_types
from graphc.ops.elementwise import broadcast_shapes
from graphc.passes.rewrite import GraphBuilder


@dataclass(frozen=True)
class Site:
    """What a rule sees: one node, with its inputs already rewritten. `emit` and
    `const` add nodes to the new graph at the node's source location."""

    builder: GraphBuilder
    op: str
    inputs: tuple[Value, ...]
    attrs: Attrs
    type: TensorType
    loc: SourceLoc | None
    # the node's one reader is an add of the same type (a link in a chain of sums,
    # which the chain's last add joins whole)
    in_sum: bool = False
    links: frozenset = frozenset()  # ids of the new graph's values made by such links

    def emit(self, op: str, *inputs: Value, **attrs: Any) -> Value:
        return self.builder.emit(op, inputs, attrs, self.loc)

    def const(self, array: np.ndarray) -> Value:
        return self.builder.const(array, self.loc)


RewriteFn = Callable[[Site], "Value | None"]


@dataclass(frozen=True)
class Rule:
    name: str
    ops: frozenset[str]
    rewrite: RewriteFn


# ---- looking at operands ------------------------------------------------------------

def _producer(v: Value, op: str) -> Node | None:
    """The node making `v` when it is an `op` node."""
    return v.node if v.node is not None and v.node.op == op else None


def _splat(v: Value) -> np.generic | None:
    """The one value every element of `v` holds, when `v` is a constant (a const, or a
    broadcast_to or reshape of one) whose elements are all equal; else None."""
    node = v.node
    while node is not None and node.op in ("broadcast_to", "reshape"):
        node = node.inputs[0].node
    if node is None or node.op != "const":
        return None
    array = node.attrs["value"].array
    if array.size == 0 or not np.all(array == array.flat[0]):
        return None
    return array.flat[0]


def _is(v: Value, k: float) -> bool:
    """`v` is a constant whose every element equals k."""
    s = _splat(v)
    return s is not None and bool(s == k)


# ---- the rules ----------------------------------------------------------------------

def _mul_one(s: Site) -> Value | None:
    x, y = s.inputs
    return x if _is(y, 1) else y if _is(x, 1) else None


def _add_zero(s: Site) -> Value | None:
    x, y = s.inputs
    return x if _is(y, 0) else y if _is(x, 0) else None


def _right_is(k: float) -> RewriteFn:
    """x op k -> x (x - 0, x / 1)."""
    return lambda s: s.inputs[0] if _is(s.inputs[1], k) else None


def _no_op(s: Site) -> Value | None:
    """cast, reshape or broadcast_to to the type the input already has."""
    return s.inputs[0] if s.inputs[0].type == s.type else None


def _transpose_identity(s: Site) -> Value | None:
    # not _no_op: transposing a square matrix keeps its type but not its value
    return s.inputs[0] if tuple(s.attrs["perm"]) == tuple(range(s.type.ndim)) else None


def _neg_neg(s: Site) -> Value | None:
    inner = _producer(s.inputs[0], "neg")
    return inner.inputs[0] if inner else None


def _pow(exponent: float, build: RewriteFn) -> RewriteFn:
    """x ** exponent -> build(x), for float x only: integer pow by these exponents
    means other things (x ** -1 is an error in numpy, x ** 0.5 is no integer op)."""
    def rewrite(s: Site) -> Value | None:
        e = _splat(s.inputs[1])
        if not dtypes.is_float(s.type.dtype) or e is None or float(e) != exponent:
            return None
        return build(s)
    return rewrite


def _ones(s: Site) -> Value | None:
    if s.type.dtype == "bfloat16":  # no numpy dtype to hold the literal
        return None
    return s.const(np.ones((), dtypes.to_numpy(s.type.dtype)))  # the driver broadcasts


def _cube(s: Site) -> Value:
    x = s.inputs[0]
    return s.emit("mul", s.emit("mul", x, x), x)


def _div_const(s: Site) -> Value | None:
    """x / c -> x * (1/c), 1/c computed in c's dtype: a multiply is cheaper."""
    x, c = s.inputs
    const = _producer(c, "const")
    if const is None or not dtypes.is_float(s.type.dtype) or _producer(x, "const"):
        return None  # const / const is left to fold, which divides exactly
    with np.errstate(all="ignore"):
        r = np.reciprocal(const.attrs["value"].array)
    # x * r is within an ulp of x / c only if r is finite and not subnormal (a
    # subnormal has lost mantissa bits); r = 0 (c = inf) is exact
    if not np.all(np.isfinite(r) & ((r == 0) | (np.abs(r) >= np.finfo(r.dtype).tiny))):
        return None
    return s.emit("mul", x, s.const(r))


def _transpose_transpose(s: Site) -> Value | None:
    inner = _producer(s.inputs[0], "transpose")
    if inner is None:
        return None
    perm = tuple(inner.attrs["perm"][p] for p in s.attrs["perm"])
    x = inner.inputs[0]
    return x if perm == tuple(range(len(perm))) else s.emit("transpose", x, perm=perm)


def _collapse(op: str) -> RewriteFn:
    """op(op(x)) -> op(x) with the outer attrs: a reshape of a reshape, or a
    broadcast_to of a broadcast_to (x broadcasts to the middle shape, which
    broadcasts to the outer one, so x broadcasts to the outer one directly)."""
    def rewrite(s: Site) -> Value | None:
        inner = _producer(s.inputs[0], op)
        if inner is None:
            return None
        x = inner.inputs[0]
        return x if x.type == s.type else s.emit(op, x, **s.attrs)
    return rewrite


def _scalar_broadcasts(s: Site) -> Value | None:
    """op(x, broadcast_to(k)) -> op(x, k) where k has one element and the other
    operands already give the output its shape: the op broadcasts k itself."""
    inputs = list(s.inputs)
    for i, v in enumerate(inputs):
        inner = _producer(v, "broadcast_to")
        if inner is None or inner.inputs[0].type.size != 1:
            continue
        trial = inputs[:i] + [inner.inputs[0]] + inputs[i + 1:]
        if broadcast_shapes(*(t.shape for t in trial)) == s.type.shape:
            inputs = trial
    if all(a is b for a, b in zip(inputs, s.inputs)):
        return None
    return s.emit(s.op, *inputs, **s.attrs)


def _on(*names: str) -> frozenset[str]:
    return frozenset(names)


def _swaps_last_two(perm, ndim: int) -> bool:
    return ndim >= 2 and tuple(perm) == tuple(range(ndim - 2)) + (ndim - 1, ndim - 2)


def _transpose_into_matmul(s: Site) -> Value | None:
    """matmul(x.T, y) -> matmul(x, y, transpose_a): the flag toggles, the transpose
    goes (a backend reads the operand transposed: BLAS's trans flag, tl.trans)."""
    flags = {f"transpose_{k}": bool(s.attrs.get(f"transpose_{k}", False)) for k in "ab"}
    operands = list(s.inputs)
    fired = False
    for i, k in enumerate("ab"):
        inner = _producer(operands[i], "transpose")
        if inner is not None and _swaps_last_two(inner.attrs["perm"], operands[i].type.ndim):
            operands[i] = inner.inputs[0]
            flags[f"transpose_{k}"] = not flags[f"transpose_{k}"]
            fired = True
    if not fired:
        return None
    return s.emit("matmul", *operands, **{k: v for k, v in flags.items() if v})


def _broadcast_into_matmul(s: Site) -> Value | None:
    """matmul(a, broadcast_to(w)) -> matmul(a, w) where the broadcast only adds or
    widens batch axes: matmul broadcasts those itself, and a 2-d w under a batched a is
    one GEMM over all of a's rows (with one GEMM for w's gradient) instead of a batch
    of small ones (torch's matmul decomposition expands a weight so for a
    non-contiguous input: nn.MultiheadAttention's in_proj, 4x slower)."""
    operands = list(s.inputs)
    for i in range(2):
        inner = _producer(operands[i], "broadcast_to")
        if inner is not None and inner.inputs[0].type.ndim >= 2 and \
                inner.inputs[0].type.shape[-2:] == operands[i].type.shape[-2:]:
            operands[i] = inner.inputs[0]
    if all(x is y for x, y in zip(operands, s.inputs)):
        return None
    # the other operand's batch axes must still give the result its shape
    (out,) = infer_types("matmul", tuple(v.type for v in operands), s.attrs)
    return s.emit("matmul", *operands, **dict(s.attrs)) if out == s.type else None


def _parts(v: Value, axis: int) -> list[Value]:
    """What `v` contributes to a concat along `axis`: its own parts if it is one (so
    that joins of joins stay one flat concat), else itself."""
    node = _producer(v, "concat")
    return list(node.inputs) if node is not None and node.attrs["axis"] == axis else [v]


def _zero_pad(v: Value) -> Node | None:
    node = _producer(v, "pad")
    return node if node is not None and node.attrs["value"] == 0 else None


def _pads_add_up(s: Site) -> Value | None:
    """pad(a) + pad(b) -> pad(concat(a, b)) where the two zero pads place a and b next
    to each other along one axis (and alike along the others). The gradient of a loop
    that reads x[:, t] for every t is such a sum: one full-size pad per step added up,
    quadratic in the steps, where the concat is linear. (Exact but for the sign of a
    zero, as x + 0 -> x.)"""
    x, y = s.inputs
    pa, pb = _zero_pad(x), _zero_pad(y)
    if pa is None or pb is None or x.type != s.type or y.type != s.type:
        return None
    wa, wb = tuple(pa.attrs["widths"]), tuple(pb.attrs["widths"])
    differ = [k for k in range(len(wa)) if wa[k] != wb[k]]
    if len(differ) != 1:
        return None
    k = differ[0]
    a, b = pa.inputs[0], pb.inputs[0]
    if wa[k][0] + a.type.shape[k] == wb[k][0]:        # a, then b
        first, second, lo, hi = a, b, wa[k][0], wb[k][1]
    elif wb[k][0] + b.type.shape[k] == wa[k][0]:      # b, then a
        first, second, lo, hi = b, a, wb[k][0], wa[k][1]
    else:
        return None
    joined = s.emit("concat", *_parts(first, k), *_parts(second, k), axis=k)
    widths = wa[:k] + ((lo, hi),) + wa[k + 1:]
    if all(w == (0, 0) for w in widths):
        return joined
    return s.emit("pad", joined, widths=widths, value=pa.attrs["value"])


def _transpose_of_matmul(s: Site) -> Value | None:
    """(a @ b).T -> b.T @ a.T as one matmul with its flags: the product is written in
    the order it is read (a weight's gradient, made for the transposed weight)."""
    mm = _producer(s.inputs[0], "matmul")
    if mm is None or not _swaps_last_two(s.attrs["perm"], s.type.ndim):
        return None
    flags = {"transpose_a": not mm.attrs.get("transpose_b", False),
             "transpose_b": not mm.attrs.get("transpose_a", False)}
    return s.emit("matmul", mm.inputs[1], mm.inputs[0], **{k: v for k, v in flags.items() if v})


def _matmuls_add_up(s: Site) -> Value | None:
    """a1 @ b1 + a2 @ b2 + ... -> concat(a1, a2, ...) @ concat(b1, b2, ...), joined
    along the axis each product sums over: one GEMM instead of several and their sum.
    A weight's gradient in an unrolled recurrence is such a sum, one small product per
    step. The chain is joined once, at its last add (an add whose one reader is another
    add waits for it): joining it add by add made a concat of every length, quadratic
    in the steps. 2-d operands with the same transpose flags only; the sum's rounding
    is BLAS's."""
    if s.in_sum:
        return None
    terms = _sum_terms(s.inputs, s.type, s.links)
    if terms is None or any(t.attrs != terms[0].attrs for t in terms):
        return None
    flags = {k: bool(terms[0].attrs.get(k, False)) for k in ("transpose_a", "transpose_b")}
    k_a = 0 if flags["transpose_a"] else 1   # the axis of a that the product sums over
    k_b = 1 if flags["transpose_b"] else 0
    a = s.emit("concat", *[p for t in terms for p in _parts(t.inputs[0], k_a)], axis=k_a)
    b = s.emit("concat", *[p for t in terms for p in _parts(t.inputs[1], k_b)], axis=k_b)
    return s.emit("matmul", a, b, **{k: v for k, v in flags.items() if v})


def _sum_terms(inputs: tuple[Value, ...], t: TensorType, links) -> list[Node] | None:
    """The matmul nodes whose sum `inputs` are (through adds of type `t`), or None
    as soon as a term is something else (a residual stream's adds are not a sum of
    products: the walk stops at its first term)."""
    out, todo = [], list(reversed(inputs))
    while todo:
        x = todo.pop()
        if x.type != t:
            return None
        mm = _producer(x, "matmul")
        if mm is not None and all(u.type.ndim == 2 for u in mm.inputs):
            out.append(mm)
            continue
        add = _producer(x, "add")
        if add is None or id(x) not in links or any(u.type != t for u in add.inputs):
            return None
        todo += [add.inputs[1], add.inputs[0]]
    return out


RULES: list[Rule] = [
    # identities
    Rule("mul_one", _on("mul"), _mul_one),
    Rule("add_zero", _on("add"), _add_zero),
    Rule("sub_zero", _on("sub"), _right_is(0)),
    Rule("div_one", _on("div"), _right_is(1)),
    Rule("neg_neg", _on("neg"), _neg_neg),
    Rule("no_op", _on("cast", "reshape", "broadcast_to"), _no_op),
    Rule("transpose_identity", _on("transpose"), _transpose_identity),
    # strength reduction of pow by a constant exponent
    Rule("pow_one", _on("pow"), _pow(1.0, lambda s: s.inputs[0])),
    Rule("pow_zero", _on("pow"), _pow(0.0, _ones)),
    Rule("pow_two", _on("pow"), _pow(2.0, lambda s: s.emit("mul", s.inputs[0], s.inputs[0]))),
    Rule("pow_three", _on("pow"), _pow(3.0, _cube)),
    Rule("pow_half", _on("pow"), _pow(0.5, lambda s: s.emit("sqrt", s.inputs[0]))),
    Rule("pow_minus_one", _on("pow"), _pow(-1.0, lambda s: s.emit("reciprocal", s.inputs[0]))),
    Rule("pow_minus_half", _on("pow"), _pow(-0.5, lambda s: s.emit("rsqrt", s.inputs[0]))),
    Rule("div_const", _on("div"), _div_const),
    # chains of shape ops
    Rule("transpose_transpose", _on("transpose"), _transpose_transpose),
    Rule("transpose_into_matmul", _on("matmul"), _transpose_into_matmul),
    Rule("broadcast_into_matmul", _on("matmul"), _broadcast_into_matmul),
    Rule("transpose_of_matmul", _on("transpose"), _transpose_of_matmul),
    Rule("pads_add_up", _on("add"), _pads_add_up),
    Rule("matmuls_add_up", _on("add"), _matmuls_add_up),
    Rule("reshape_reshape", _on("reshape"), _collapse("reshape")),
    Rule("broadcast_broadcast", _on("broadcast_to"), _collapse("broadcast_to")),
    # broadcasts that elementwise ops do themselves
    Rule("scalar_broadcasts", ELEMENTWISE_OPS, _scalar_broadcasts),
]

_RULES_BY_OP: dict[str, list[Rule]] = {}
for _rule in RULES:
    for _op in _rule.ops:
        _RULES_BY_OP.setdefault(_op, []).append(_rule)


# ---- the driver ---------------------------------------------------------------------

def simplify(graph: Graph, max_sweeps: int = 32) -> Graph:
    """Apply `RULES` until none fires (or `max_sweeps` sweeps, a guard against a
    pair of rules undoing each other)."""
    for _ in range(max_sweeps):
        graph, fired = _sweep(graph)
        if not fired:
            break
    return graph


def _sweep(graph: Graph) -> tuple[Graph, int]:
    """Rebuild `graph` once, rewriting each node by its first rule that fires."""
    b = GraphBuilder(graph)
    fired = 0
    in_sum = _links_of_sums(graph)
    links: set[int] = set()  # the copies of the links, which a chain's last add joins
    for node in graph.nodes:
        inputs = b.inputs_of(node)
        new = _rewrite(b, node, inputs, id(node) in in_sum, links) \
            if len(node.outputs) == 1 else None
        if new is None:
            b.copy(node, inputs)
            if id(node) in in_sum:
                links.add(id(b.mapped(node.output)))
        else:
            b.bind(node.output, new)
            fired += 1
    return b.finish(), fired


def _links_of_sums(graph: Graph) -> set[int]:
    """The adds whose one reader is an add of their type, and those no one reads (a
    chain joined in an earlier sweep, which dce removes), not graph outputs."""
    readers: dict[int, list[Node]] = {}
    for n in graph.nodes:
        for v in n.inputs:
            readers.setdefault(id(v), []).append(n)
    outputs = {id(v) for v in graph.outputs}
    links = set()
    for n in graph.nodes:
        if n.op != "add" or len(n.outputs) != 1 or id(n.output) in outputs:
            continue
        users = readers.get(id(n.output), [])
        if not users or len(users) == 1 and users[0].op == "add" and \
                users[0].output.type == n.output.type:
            links.add(id(n))
    return links


def _rewrite(b: GraphBuilder, node: Node, inputs: tuple[Value, ...],
             in_sum: bool = False, links=frozenset()) -> Value | None:
    site = Site(b, node.op, inputs, node.attrs, node.output.type, node.loc, in_sum, links)
    for rule in _RULES_BY_OP.get(node.op, ()):
        start = len(b.nodes)
        new = rule.rewrite(site)
        if new is None:
            assert len(b.nodes) == start, f"rule {rule.name} emitted nodes, then declined"
            continue
        assert new.type.dtype == site.type.dtype, f"rule {rule.name} changed the dtype"
        if new.type.shape != site.type.shape:
            new = site.emit("broadcast_to", new, shape=site.type.shape)
        if len(b.nodes) > start and new is b.nodes[-1].output:
            new.name = node.output.name  # a node made just now keeps the old name
        return new
    return None
