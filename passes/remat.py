"""Rematerialization: split a joint forward+backward graph into a forward graph that
saves some intermediates and a backward graph that recomputes the rest.

Which values to save is a minimum cut over the forward values, weighted by bytes
(networkx `minimum_cut`): each forward value is an edge `v.in -> v.out` whose capacity
is its size; the graph inputs are free (the source feeds them); every forward value the
backward reads must reach the sink. A cut through `v.in -> v.out` means "save v"; the
backward recomputes whatever lies between the saved values and what it needs. Only
cheap elementwise and shape ops may be recomputed: other ops are fed from the source
as well, so the cut must save them (or something after them).

    joint:     %0 = matmul %x, %w ; %1 = tanh %0 ; %2 = sum %1 | backward reads %1
    forward:   saves %0 (the matmul: not recomputed) -> returns %2, %0
    backward:  %1 = tanh %0 (recomputed, cheap) ; ... ; returns the gradients
"""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from graphc.ir import Graph, Node, NodeBuilder, Value
from graphc.ir.symbols import typical
from graphc.ops import OPS, Kind

RECOMPUTABLE = frozenset({Kind.ELEMENTWISE, Kind.SHAPE, Kind.SOURCE})


@dataclass
class Split:
    forward: Graph    # inputs -> original outputs + saved values
    backward: Graph   # inputs + saved values + cotangents -> gradients
    saved: list[Value]
    saved_bytes: int
    save_all_bytes: int  # what saving every forward value the backward reads would cost


def split(joint: Graph, n_outputs: int, n_cotangents: int) -> Split:
    """Split `joint` (from `autodiff.backward(..., seed_inputs=True)`): its first
    `n_outputs` outputs are the forward's, its last `n_cotangents` inputs the seeds."""
    primal_inputs = joint.inputs[:len(joint.inputs) - n_cotangents]
    seeds = joint.inputs[len(joint.inputs) - n_cotangents:]
    fwd_nodes = _ancestors(joint.nodes, joint.outputs[:n_outputs], set(map(id, seeds)))
    fwd_ids = {id(n) for n in fwd_nodes}
    bwd_nodes = [n for n in joint.nodes if id(n) not in fwd_ids]
    fwd_values = {id(v): v for n in fwd_nodes for v in n.outputs}
    needed = [v for v in _reads(bwd_nodes, joint.outputs[n_outputs:]) if id(v) in fwd_values]

    flow = nx.DiGraph()
    for v in primal_inputs:
        flow.add_edge("source", ("out", id(v)))  # inputs are available for free
    for n in fwd_nodes:
        for v in n.outputs:
            flow.add_edge(("in", id(v)), ("out", id(v)), capacity=max(typical(v.type.nbytes), 1))
            if OPS[n.op].kind not in RECOMPUTABLE:
                flow.add_edge("source", ("in", id(v)))
            for u in n.inputs:
                flow.add_edge(("out", id(u)), ("in", id(v)))
    for v in needed:
        flow.add_edge(("out", id(v)), "sink")
    if not needed:
        saved_ids: set[int] = set()
    else:
        _, (reach, _) = nx.minimum_cut(flow, "source", "sink")
        saved_ids = {i for i in fwd_values if ("in", i) in reach and ("out", i) not in reach}
    saved = [fwd_values[i] for i in fwd_values if i in saved_ids]

    forward = Graph(f"{joint.name}_forward", list(primal_inputs), fwd_nodes,
                    list(joint.outputs[:n_outputs]) + saved)
    # the backward: recompute what it needs from inputs and saved values
    have = set(map(id, primal_inputs)) | saved_ids | set(map(id, seeds))
    recompute = _ancestors(fwd_nodes, needed, have)
    body = recompute + bwd_nodes
    used = {id(v) for n in body for v in n.inputs} | {id(v) for v in joint.outputs[n_outputs:]}
    # saved values enter the backward as inputs: fresh values with no producer
    env: dict[int, Value] = {id(v): Value(v.name, v.type) for v in saved}
    bwd_inputs = [v for v in primal_inputs if id(v) in used] + \
        [env[id(v)] for v in saved] + list(seeds)
    b = NodeBuilder(f"{joint.name}_backward", bwd_inputs)
    for n in body:
        copy = b.copy(n, [env.get(id(v), v) for v in n.inputs])
        for old, new in zip(n.outputs, copy.outputs):
            env[id(old)] = new
    backward = b.finish([env.get(id(v), v) for v in joint.outputs[n_outputs:]])
    return Split(forward, backward, saved, sum(v.type.nbytes for v in saved),
                 sum(v.type.nbytes for v in needed))


def _reads(nodes: list[Node], outputs: list[Value]) -> list[Value]:
    seen: dict[int, Value] = {}
    for n in nodes:
        for v in n.inputs:
            seen.setdefault(id(v), v)
    for v in outputs:
        seen.setdefault(id(v), v)
    return list(seen.values())


def _ancestors(nodes: list[Node], targets: list[Value], stop: set[int]) -> list[Node]:
    """The nodes (in order) that `targets` need, not looking past values in `stop`."""
    want = {id(v) for v in targets if id(v) not in stop}
    picked = []
    for n in reversed(nodes):
        if any(id(v) in want for v in n.outputs):
            picked.append(n)
            want.update(id(v) for v in n.inputs if id(v) not in stop)
    return picked[::-1]
