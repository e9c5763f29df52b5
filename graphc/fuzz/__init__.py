"""Differential graph fuzzing: random IR graphs, compiled vs. the reference interpreter.

`python -m graphc fuzz --examples N [--seed S]` builds N random graphs over the
primitives (random shapes with broadcasting, size-1 and size-0 axes, every dtype the
ops accept, reductions, shape ops, gather, matmul, where, cast, ...), runs each
through the full pass pipeline and the numpy backend in each of its modes (MODES, as
backend options: plain numpy calls; every fused group forced through tiny numpy block
kernels; every fused group forced through native C kernels where a C compiler exists),
and compares each result with `graphc.interpret` on the unoptimized graph
(`graphc.check.compare`). It also round-trips the text IR.

The builder (`builder.py`) takes its decisions from a `Chooser`, so that the same code
serves the hypothesis strategies of the test suite and this runner; `checking.py`
compiles and compares.
"""
from graphc.fuzz.builder import (DTYPES, FLOATS, NUMERIC, Case, Chooser, OpLists, inexact_ops,
                                 op_lists, InputSpec, build, make_inputs)
from graphc.fuzz.checking import (MODES, check_graph, compile_optimized, mode_options,
                                  native_available, round_trip, run)

__all__ = ["DTYPES", "FLOATS", "NUMERIC", "Case", "Chooser", "InputSpec", "OpLists",
           "inexact_ops", "op_lists",
           "build", "make_inputs", "MODES", "check_graph", "compile_optimized",
           "mode_options", "native_available", "round_trip", "run"]
