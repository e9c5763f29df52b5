"""`python -m graphc replay FILE.ir`: run the compiler again on a saved graph.

A GraphcInternalError writes the IR as it entered the failing stage, headed by the
passes still to run (`# passes: fusion, ...`). Replay parses the file, runs those
passes (by name: the default ones, or `--pass NAME=MODULE:FUNCTION` for others; a
file names passes, it never says what code to import), then the backend's codegen,
and with `--inputs random` runs the generated code on random inputs against
`graphc.interpret`. It exits 1 when a stage fails (and prints that failure with its
traceback), 0 when every stage ran cleanly, 2 when the file or a pass name is bad.

>>> import graphc, numpy as np, tempfile, os
>>> g = graphc.trace(lambda x: np.tanh(x) + 1.0, np.ones(3, np.float32))
>>> path = os.path.join(tempfile.mkdtemp(), "f.ir")
>>> _ = open(path, "w").write("# passes: simplify, fusion\\n" + str(g))
>>> replay(path, inputs="random", out=open(os.devnull, "w"))
0
"""
from __future__ import annotations

import importlib
import sys
import traceback
from typing import Callable, Sequence, TextIO

import numpy as np

from graphc import dtypes
from graphc.errors import GraphcError
from graphc.ir import Graph, parse


def _load_pass(spec: str) -> tuple[str, Callable]:
    name, sep, target = spec.partition("=")
    module, colon, attr = target.partition(":")
    if not (sep and colon and name and module and attr):
        raise ValueError(f"--pass {spec!r}: expected NAME=MODULE:FUNCTION")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return name, obj


def _pipeline(names: Sequence[str], extra: dict[str, Callable]) -> list[tuple[str, Callable]]:
    from graphc.passes.pipeline import DEFAULT_PIPELINE
    known = {**dict(DEFAULT_PIPELINE), **extra}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"the file names passes {', '.join(unknown)}, which are not "
                         "default passes: give each as --pass NAME=MODULE:FUNCTION")
    return [(n, known[n]) for n in names]


def random_inputs(graph: Graph, seed: int = 0) -> list[np.ndarray]:
    """One random array per graph input: normal floats, small non-negative ints (they
    may be indices), random bools."""
    rng = np.random.default_rng(seed)
    out = []
    for v in graph.inputs:
        shape, dt = v.type.shape, np.dtype(dtypes.to_numpy(v.type.dtype))
        if dt.kind == "f":
            out.append(rng.standard_normal(shape).astype(dt))
        elif dt.kind == "b":
            out.append(rng.random(shape) < 0.5)
        else:
            out.append(rng.integers(0, 3, size=shape).astype(dt))
    return out


def replay(path: str, passes: Sequence[str] = (), inputs: str = "none",
           backend: str = "numpy", out: TextIO = sys.stdout) -> int:
    """Replay one file (see the module docstring); returns the exit status."""
    from graphc.backends import get
    from graphc.dump import read_header
    from graphc.passes.pipeline import run
    try:
        with open(path) as fh:
            text = fh.read()
        graph = parse(text)
        header = read_header(text)
        names = [n.strip() for n in header.get("passes", "").split(",") if n.strip()]
        pipeline = _pipeline(names, dict(_load_pass(p) for p in passes))
    except (OSError, ValueError, ImportError, AttributeError, GraphcError) as exc:
        print(f"graphc replay: {exc}", file=out)
        return 2
    try:
        stage = "passes " + ", ".join(names) if names else "verify"
        final = run(graph, pipeline, policy=get(backend).FUSION_POLICY)[-1].graph
        stage = "codegen"
        executable = get(backend).compile_graph(final)
        if inputs == "random":
            from graphc.check import compare, output_tolerances
            from graphc.interpreter import interpret
            stage = "run"
            args = random_inputs(graph)
            got = list(executable.fn(*args))
            want = interpret(graph, *args)
            compare(graph.name, got, [want] if len(graph.outputs) == 1 else list(want),
                    output_tolerances(graph))
    except Exception:
        print(f"graphc replay: reproduced, {graph.name} fails in {stage}:", file=out)
        traceback.print_exc(file=out)
        return 1
    ran = f"{', '.join(names)} then codegen" if names else "codegen"
    checked = " and a run on random inputs vs graphc.interpret" if inputs == "random" else ""
    print(f"graphc replay: {graph.name}: {ran}{checked} ran cleanly (not reproduced)",
          file=out)
    return 0
