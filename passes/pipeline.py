"""The pass pipeline: a named list of passes, with the verifier between them.

`run(graph, passes)` returns the final graph and every stage (`{"traced": g,
"dce": g1, ...}`) with the time each pass took, so that `f.lower(...)` and
`GRAPHC_DUMP` can show the IR after each pass. The fusion pass takes the policy of
the backend the graph is compiled for: the caller (the face, which knows the backend)
passes it to `resolve` or `run`, so that passes never import a backend.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Callable

from graphc.ir import Graph
from graphc.passes.cse import cse
from graphc.passes.dce import dce
from graphc.passes.fold import fold
from graphc.passes.simplify import simplify
from graphc.passes.fusion import ROW_BLOCKED, FusionPolicy, fuse

Pass = Callable[[Graph], Graph]

DEFAULT_PIPELINE: list[tuple[str, Pass]] = [
    ("simplify", simplify),
    ("cse", cse),
    ("fold", fold),
    ("dce", dce),
    ("fusion", fuse),
]


@dataclass
class Stage:
    name: str
    graph: Graph
    seconds: float


def resolve(pipeline, policy: FusionPolicy | None = None) -> list[tuple[str, Pass]]:
    """A pipeline from what `graphc.compile(passes=...)` takes: None (the default), or a
    list whose items are (name, pass) pairs or names of default passes, e.g.
    `["dce", "fusion"]` to keep only those two. `policy` (a backend's FUSION_POLICY)
    is bound to the default fusion pass; a pass of the user's own is left as it is.

    >>> [name for name, _ in resolve(["dce", "fusion"], FusionPolicy(max_group_nodes=2))]
    ['dce', 'fusion']
    """
    return [(name, _bound(fn, policy)) for name, fn in _named(pipeline)]


def describe(pipeline: list[tuple[str, Pass]]) -> str | None:
    """A resolved pipeline as text that names what each pass is (a default pass and
    the policy bound to it), for the compile cache's key; None where a pass is the
    user's own, whose code graphc cannot name (such a compile is never cached)."""
    defaults = {fn: name for name, fn in DEFAULT_PIPELINE}
    parts = []
    for name, fn in pipeline:
        policy = None
        if isinstance(fn, functools.partial) and fn.func is fuse and not fn.args and \
                set(fn.keywords) == {"policy"}:
            fn, policy = fuse, fn.keywords["policy"]
        if fn not in defaults:
            return None
        bound = ROW_BLOCKED if fn is fuse and policy is None else policy
        parts.append(f"{name}={defaults[fn]}" + ("" if bound is None else f"({bound!r})"))
    return ", ".join(parts)


def _bound(fn: Pass, policy: FusionPolicy | None) -> Pass:
    # the default policy binds to the default pass itself, so that dumps and replay
    # commands still recognise it as the default one
    if fn is not fuse or policy is None or policy == ROW_BLOCKED:
        return fn
    return functools.partial(fuse, policy=policy)


def _named(pipeline) -> list[tuple[str, Pass]]:
    if pipeline is None:
        return list(DEFAULT_PIPELINE)
    known = dict(DEFAULT_PIPELINE)
    out = []
    for item in pipeline:
        if isinstance(item, str):
            if item not in known:
                from graphc.errors import GraphcError
                raise GraphcError(f"unknown pass {item!r}",
                                  hint="default passes: " + ", ".join(known))
            out.append((item, known[item]))
        else:
            name, fn = item
            out.append((name, fn))
    return out


def run(graph: Graph, pipeline=None, verify: bool | str = True,
        policy: FusionPolicy | None = None) -> list[Stage]:
    """Run the passes in order; the first stage is the input graph ("traced"). `policy`
    is the fusion policy of the backend the graph is for (see `resolve`).

    `verify`: True checks the input and the graph after every pass (a broken pass is
    named at once: GRAPHC_VERIFY=1, and the test suite); "end" only the final graph,
    which is what a compile does by default (verification re-infers every node's type:
    six times per compile was a third of a long graph's compile time); False none."""
    each = verify is True
    if each:
        graph.verify()
    stages = [Stage("traced", graph, 0.0)]
    guards = graph.guards  # what the sizes meet: no pass changes that, so none carries it
    for name, fn in resolve(pipeline, policy):
        start = time.perf_counter()
        graph = _run_pass(name, fn, graph)
        graph.guards = guards
        seconds = time.perf_counter() - start
        if each:
            graph.verify()
        stages.append(Stage(name, graph, seconds))
    if verify == "end":
        graph.verify()
    return stages


def _run_pass(name: str, fn: Pass, graph: Graph) -> Graph:
    """One pass; a library exception inside it (networkx, numpy, a bug) becomes a
    GraphcInternalError that keeps the graph it was given, so that the face can write
    the IR that reproduces it."""
    from graphc.errors import GraphcError, GraphcInternalError
    try:
        return fn(graph)
    except GraphcError:
        raise
    except Exception as exc:
        raise GraphcInternalError(f"pass {name}", exc, graph=graph) from exc
