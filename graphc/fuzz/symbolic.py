"""Symbolic sizes in the fuzzer: a random graph with one of its input sizes made the
symbol `B`, compiled once and called at several sizes.

`symbolize(graph, size)` replaces every input dimension equal to `size` by `B` and
infers the graph again node by node, under a ShapeEnv whose hint for `B` is `size`,
as a symbolic trace would: a rule that compares `B` with an int records a guard, and
a node whose attributes fix the size (a reshape to (6,), an iota of 3) equates `B`
with an int, in which case the graph has nothing symbolic left and symbolize gives
None. `check_symbolic` then compiles the symbolic graph once per mode and calls it at
every size its guards admit, against the interpreter at each size.
"""
from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from graphc.errors import GraphcError
from graphc.fuzz.builder import InputSpec, make_inputs
from graphc.ir import Graph, NodeBuilder, TensorType
from graphc.ir import symbols
from graphc.ir.sizes import substitute_graph
from graphc.ir.symbols import ShapeEnv, Sym

B = Sym.var("B")
SIZES = (2, 3, 5, 8, 13)  # besides the traced size: the sizes each program is called at


def symbolize(graph: Graph, size: int) -> Graph | None:
    """`graph` with every input dimension of `size` (>= MIN_SIZE) made `B`, or None
    where no input has one or a node's attributes fix it."""
    if size < symbols.MIN_SIZE or not any(size in v.type.shape for v in graph.inputs):
        return None
    b = NodeBuilder(graph.name)
    new = {}
    env = ShapeEnv({"B": size})
    with env.tracing():
        for v in graph.inputs:
            shape = tuple(B if d == size else d for d in v.type.shape)
            new[id(v)] = b.input(v.name, TensorType(shape, v.type.dtype))
        for n in graph.nodes:
            try:
                node = b.add(n.op, [new[id(v)] for v in n.inputs], n.attrs, loc=n.loc)
            except GraphcError:  # (a SymbolicError: a rule needed B's value)
                return None
            new.update((id(old), v) for old, v in zip(n.outputs, node.outputs))
        out = b.finish([new[id(v)] for v in graph.outputs])
    if any(g.relation == "==" for g in env.guards):  # B pinned (B == 3, B*B == 9)
        return None
    out.guards = tuple(g for g in env.guards if g.relation != "==")
    out.verify()
    return out


def pick_size(graph: Graph, k: int) -> int | None:
    """The k-th (cyclically) distinct input size of at least MIN_SIZE, or None."""
    sizes = sorted({d for v in graph.inputs for d in v.type.shape
                    if type(d) is int and d >= symbols.MIN_SIZE})
    return sizes[k % len(sizes)] if sizes else None


def symbolic_specs(specs: list[InputSpec], graph: Graph) -> list[InputSpec]:
    """The input specs with the symbolic graph's input types."""
    return [dataclasses.replace(s, type=v.type) for s, v in zip(specs, graph.inputs)]


def sizes_to_call(graph: Graph, specs: list[InputSpec], size: int) -> list[int]:
    """The traced size and the SIZES the guards admit; not below `size` where an input
    holds indices (their bound is the traced size)."""
    lowest = size if any(s.kind == "index" for s in specs) else symbols.MIN_SIZE
    return [size] + [n for n in SIZES if n != size and n >= lowest
                     and all(g.holds({"B": n}) for g in graph.guards)]


def _at(specs: list[InputSpec], n: int) -> list[InputSpec]:
    return [dataclasses.replace(s, type=TensorType(
        tuple(symbols.substitute(d, {"B": n}) for d in s.type.shape), s.type.dtype))
        for s in specs]


def check_symbolic(graph: Graph, specs: list[InputSpec], size: int, seed: int,
                   modes: tuple[str, ...] = ("plain", "blocks")) -> int:
    """Compile the symbolic `graph` once per mode and check it at every size it is
    called at (`sizes_to_call`) against the interpreter; the number of sizes checked.
    Raises MismatchError (or what the compiler raised) where one disagrees."""
    import graphc
    from graphc.check import compare, output_tolerances
    from graphc.fuzz.checking import compile_optimized, round_trip
    round_trip(graph)
    executables = {m: compile_optimized(graph, m) for m in modes}
    sizes = sizes_to_call(graph, specs, size)
    for n in sizes:
        inputs = make_inputs(_at(specs, n), seed + n)
        tolerances = output_tolerances(substitute_graph(graph, {"B": n}))
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            want = graphc.interpret(graph, *inputs)
            want = (want,) if len(graph.outputs) == 1 else want
            for mode, exe in executables.items():
                got = exe.fn(*[np.array(a) for a in inputs])
                compare(f"fuzz ({mode}, B={n})", list(got), list(want), tolerances)
    return len(sizes)
