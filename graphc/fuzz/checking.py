"""The fuzzer's checks: a graph through the pipeline and the numpy backend in each of
its modes (MODES), against `graphc.interpret` on the unoptimized graph, and the
stand-alone runner behind `python -m graphc fuzz`."""
from __future__ import annotations

import contextlib
import os
import random
import sys
import traceback
import warnings

import numpy as np

from graphc.fuzz.builder import Chooser, build, make_inputs
from graphc.ir import Graph

KERNEL_ENV = {"GRAPHC_SMALL_GROUP": "0", "GRAPHC_BLOCK_ELEMENTS": "7", "GRAPHC_NATIVE": "0"}
NATIVE_ENV = {"GRAPHC_SMALL_GROUP": "0", "GRAPHC_NATIVE": "1"}
# the backend's modes: plain numpy calls, numpy block kernels, native kernels
MODES = {"plain": {"GRAPHC_NATIVE": "0"}, "blocks": KERNEL_ENV, "native": NATIVE_ENV}


@contextlib.contextmanager
def environ(values: dict[str, str]):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def round_trip(graph: Graph) -> None:
    from graphc.ir import parse
    text = str(graph)
    again = parse(text)
    assert str(again) == text, f"text IR round trip changed the graph:\n{text}\n---\n{again}"
    again.verify()


def compile_optimized(graph: Graph, mode: str = "plain"):
    from graphc import backends
    from graphc.passes import pipeline
    numpy_backend = backends.get("numpy")
    with environ(MODES[mode]):
        stages = pipeline.run(graph, policy=numpy_backend.FUSION_POLICY)
        return numpy_backend.compile_graph(stages[-1].graph)


def native_available() -> bool:
    from graphc.backends.toolchain import compiler
    return compiler() is not None


def check_graph(graph: Graph, inputs: list[np.ndarray],
                modes: tuple[str, ...] = ("plain", "blocks")) -> None:
    """Raise (MismatchError or whatever the compiler raised) unless the optimized,
    compiled graph agrees with the interpreter in every mode."""
    import graphc
    from graphc.check import compare, output_tolerances
    round_trip(graph)
    tolerances = output_tolerances(graph)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = graphc.interpret(graph, *inputs)
        if len(graph.outputs) == 1:
            want = (want,)
        for mode in modes:
            exe = compile_optimized(graph, mode)
            got = exe.fn(*[np.array(a) for a in inputs])
            compare(f"fuzz ({mode})", list(got), list(want), tolerances)


def run(examples: int, seed: int = 0, max_nodes: int = 8, out=sys.stdout,
        stop_after: int = 10) -> int:
    """Fuzz `examples` graphs; print failures; return the number of failures."""
    rnd = random.Random(seed)
    modes = tuple(m for m in MODES if m != "native" or native_available())
    failures = 0
    ops_seen: dict[str, int] = {}
    for i in range(examples):
        case_seed = rnd.randrange(2**32)
        ch = Chooser.from_random(random.Random(case_seed))
        graph, specs = build(ch, max_nodes)
        for n in graph.nodes:
            ops_seen[n.op] = ops_seen.get(n.op, 0) + 1
        inputs = make_inputs(specs, case_seed)
        try:
            check_graph(graph, inputs, modes)
        except Exception as e:  # noqa: BLE001 - report anything the compiler raised
            failures += 1
            print(f"--- mismatch in example {i} (case seed {case_seed}):", file=out)
            where = traceback.extract_tb(e.__traceback__)[-1]
            print("".join(traceback.format_exception_only(type(e), e)).rstrip()
                  + f"  (raised at {where.filename}:{where.lineno})", file=out)
            print(str(graph), file=out)
            if failures >= stop_after:
                print(f"stopping after {failures} failures", file=out)
                examples = i + 1
                break
    print(f"graphc fuzz: checked {examples} graphs ({sum(ops_seen.values())} nodes, "
          f"{len(ops_seen)} primitives) with seed {seed}: {failures} mismatches", file=out)
    return failures
