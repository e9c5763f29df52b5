"""The reference interpreter: runs a graph node by node through the ops' numpy
reference implementations. No passes, no code generation: it is the ground truth
that the compiled code, the fuzzer and pass bisection are compared against."""
from __future__ import annotations

from typing import Any

import numpy as np

from graphc import dtypes, ops
from graphc.errors import ArgumentError, IndexingError
from graphc.ir import Graph
from graphc.ir.sizes import bind, specialize


def interpret(graph: Graph, *args: Any):
    """Run `graph` on flat input arrays (one per graph input, in order).

    Returns the single output, or a tuple when the graph has several (or none). A
    graph that does not verify raises VerifyError.

    >>> import graphc, numpy as np
    >>> g = graphc.trace(lambda x: np.exp(x) + 1.0, np.zeros(2, np.float32))
    >>> graphc.interpret(g, np.zeros(2, np.float32))
    array([2., 2.], dtype=float32)
    """
    # a graph is data (it may come from a file): its attributes are checked against
    # their schemas before any reaches a reference implementation
    graph.verify()
    if len(args) != len(graph.inputs):
        raise ArgumentError(f"graph {graph.name} takes {len(graph.inputs)} inputs, "
                            f"got {len(args)}")
    env: dict[int, np.ndarray] = {}
    arrays = [np.asarray(a) for a in args]
    # a symbolic size takes its value from the inputs' shapes
    sizes, problem = bind([v.type.shape for v in graph.inputs],
                                  [a.shape for a in arrays])
    for i, (v, arr) in enumerate(zip(graph.inputs, arrays)):
        if (problem is not None and problem.startswith(f"input {i} ")) or \
                dtypes.canonical(arr.dtype) != v.type.dtype:
            raise ArgumentError(f"input %{v.name} of {graph.name} is {v.type}, got "
                                f"{dtypes.canonical(arr.dtype)}{list(arr.shape)}")
        env[id(v)] = arr
    failed = [str(g) for g in graph.guards if not g.holds(sizes)]
    if failed:
        raise ArgumentError(f"graph {graph.name} assumes {', '.join(failed)}, which the "
                            f"inputs' sizes {sizes} do not meet")
    for node in graph.nodes:
        attrs = {k: specialize(a, sizes) for k, a in node.attrs.items()} \
            if sizes else node.attrs
        try:
            results = ops.OPS[node.op].impl(*(env[id(v)] for v in node.inputs), **attrs)
        except IndexError as exc:
            if node.op != "gather":
                raise
            # a traced index out of range: the user's error, at their line
            raise IndexingError.at_run(exc, node.loc) from exc
        if len(node.outputs) == 1:
            results = (results,)
        for v, r in zip(node.outputs, results):
            env[id(v)] = np.asarray(r)
    outs = tuple(np.array(env[id(v)]) for v in graph.outputs)
    return outs[0] if len(outs) == 1 else outs
