"""The fuzzer's checks: a graph through the pipeline and the numpy backend in each of
its modes (MODES), against `graphc.interpret` on the unoptimized graph, and the
stand-alone runner behind `python -m graphc fuzz`."""
from __future__ import annotations

import random
import sys
import traceback
import warnings

import numpy as np

from graphc.backends.options import Options, resolve
from graphc.fuzz.builder import Chooser, build, make_inputs
from graphc.ir import Graph

# The backend's modes, as backend options (the fields left out keep the environment's
# defaults, read when a mode is compiled): plain numpy calls; every fused group forced
# through numpy block kernels of tiny blocks, so that block edges meet every graph;
# every fused group forced through native kernels.
MODES: dict[str, dict] = {
    "plain": {"native": False},
    "blocks": {"small_group": 0, "block_elements": 7, "native": False},
    "native": {"small_group": 0, "native": True},
    # the Triton backend (its own fusion policy; under TRITON_INTERPRET=1 on a CPU)
    "triton": {},
}


def mode_options(mode: str, **more) -> Options:
    """The backend options of fuzzing mode `mode` (see MODES), with `more` on top.

    >>> mode_options("blocks").block_elements
    7
    """
    return resolve({**MODES[mode], **more})


def round_trip(graph: Graph) -> None:
    from graphc.ir import parse
    text = str(graph)
    again = parse(text)
    assert str(again) == text, f"text IR round trip changed the graph:\n{text}\n---\n{again}"
    again.verify()


def compile_optimized(graph: Graph, mode: str = "plain"):
    from graphc import backends
    from graphc.passes import pipeline
    backend = backends.get("triton" if mode == "triton" else "numpy")
    stages = pipeline.run(graph, policy=backend.FUSION_POLICY)
    return backend.compile_graph(stages[-1].graph, mode_options(mode))


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


def _check_symbolic(graph: Graph, specs, seed: int, modes: tuple[str, ...]) -> int:
    """The graph again with one input size symbolic (graphc/fuzz/symbolic.py), checked
    at several sizes; how many calls (0: no size could be symbolic)."""
    from graphc.fuzz.symbolic import check_symbolic, pick_size, symbolic_specs, symbolize
    size = pick_size(graph, seed)
    symbolic = symbolize(graph, size) if size is not None else None
    if symbolic is None:
        return 0
    return check_symbolic(symbolic, symbolic_specs(specs, symbolic), size, seed, modes)


def run(examples: int, seed: int = 0, max_nodes: int = 8, out=sys.stdout,
        stop_after: int = 10, backend: str = "numpy") -> int:
    """Fuzz `examples` graphs; print failures; return the number of failures.
    `backend="triton"`: the Triton backend's mode alone."""
    rnd = random.Random(seed)
    modes = ("triton",) if backend == "triton" else \
        tuple(m for m in MODES if m not in ("triton", "native") or
              (m == "native" and native_available()))
    failures = checked_at = 0
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
            checked_at += _check_symbolic(graph, specs, case_seed, modes)
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
          f"{len(ops_seen)} primitives; {checked_at} calls of them with a symbolic size) "
          f"with seed {seed}: {failures} mismatches", file=out)
    return failures
