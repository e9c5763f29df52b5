"""Hypothesis strategies for the differential fuzzer.

`graphs()` draws a random, verified IR graph over the primitives with matching
inputs (the builder lives in `graphc.fuzz`, shared with `python -m graphc fuzz`; here
every decision is a hypothesis draw, so failures shrink to small graphs).
`numpy_programs()` draws the source text of a small numpy function for the
frontend, and `grad_programs()` a smooth float64 scalar function for `graphc.grad`.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from graphc.fuzz import Case, Chooser, build

SEEDS = st.integers(0, 2**32 - 1)


@st.composite
def graphs(draw, max_nodes: int = 8) -> Case:
    ch = Chooser(lambda lo, hi: draw(st.integers(lo, hi)))
    graph, specs = build(ch, max_nodes)
    return Case(graph, specs, draw(SEEDS))


# ------------------------------------------------------------------ frontend programs

@dataclass
class Program:
    source: str                 # "def f(x, y):\n    t0 = ...\n    return ..."
    args: list[np.ndarray]

    def function(self):
        namespace = {"np": np}
        exec(compile(self.source, "<fuzz-program>", "exec"), namespace)
        return namespace["f"]


ARG_SHAPES = [(3, 4), (4,), (3, 1), (2, 3, 4), (), (1, 4), (0, 4)]
ARG_DTYPES = ["float32", "float64", "int32", "int64", "bool"]

UNARY = ["np.exp({a})", "np.tanh({a})", "np.sin({a})", "np.cos({a})", "np.abs({a})",
         "-{a}", "np.sqrt(np.abs({a}))", "np.log(np.abs({a}) + 1)", "np.negative({a})",
         "{a} * 2.0", "{a} + 1", "{a} ** 2", "{a} / 3", "np.square({a})",
         "np.maximum({a}, 0)", "np.float32(0.5) * {a}", "{a}.astype(np.float32)",
         "{a}.astype(np.int64)", "{a}[::-1]", "{a}[1:]", "{a}[..., None]", "{a}[None]",
         "{a}[0]", "{a}[:, ::2]", "{a}[..., -1]", "{a}.T", "{a}.reshape(-1)",
         "np.transpose({a})", "np.expand_dims({a}, 0)", "np.sign({a})", "{a} > 0",
         "{a} >= 1", "np.logical_not({a} < 0)", "np.where({a} > 0, {a}, 0.0)",
         "np.clip({a}, -1, 1)", "np.abs({a}) + 0.5",
         "np.exp({a} - np.max({a}, axis=-1, keepdims=True))",
         "{a} - np.mean({a}, axis=-1, keepdims=True)"]
REDUCE = ["np.sum({a}, axis={ax}, keepdims={k})", "np.mean({a}, axis={ax}, keepdims={k})",
          "np.max({a}, axis={ax}, keepdims={k})", "np.min({a}, axis={ax}, keepdims={k})",
          "np.argmax({a}, axis={ax1})", "{a}.sum(axis={ax})", "np.sum({a})",
          "np.amax({a}, axis={ax1})"]
BINARY = ["{a} + {b}", "{a} - {b}", "{a} * {b}", "{a} / ({b} * {b} + 1)",
          "np.maximum({a}, {b})", "np.minimum({a}, {b})", "{a} < {b}", "{a} == {b}",
          "np.where({a} > {b}, {a}, {b})", "{a} @ {b}", "np.matmul({a}, {b})",
          "np.concatenate([{a}, {b}], axis=0)", "np.concatenate([{a}, {b}], axis=-1)",
          "np.stack([{a}, {b}])", "({a} > 0) & ({b} < 1)", "({a} > 1) | ~({b} > 0)", "np.logical_and({a}, {b})",
          "np.dot({a}, {b})", "np.add({a}, {b})", "np.power(np.abs({a}) + 1, {b} * 0.5)"]


def _array(rng, shape, dtype):
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype.startswith("int"):
        return rng.integers(-4, 5, size=shape).astype(dtype)
    return rng.uniform(-2, 2, size=shape).astype(dtype)


@st.composite
def numpy_programs(draw, max_lines: int = 5) -> Program:
    """A numpy function of 1 to 3 arguments whose every line runs eagerly without
    error on the drawn arguments (lines that raise are drawn again)."""
    rng = np.random.default_rng(draw(SEEDS))
    nargs = draw(st.integers(1, 3))
    names = [f"a{i}" for i in range(nargs)]
    args = [_array(rng, draw(st.sampled_from(ARG_SHAPES)), draw(st.sampled_from(ARG_DTYPES)))
            for _ in range(nargs)]
    env = dict(zip(names, args), np=np)
    lines = []
    for _ in range(draw(st.integers(1, max_lines))):
        for _attempt in range(6):
            a = draw(st.sampled_from(names))
            b = draw(st.sampled_from(names))
            nd = np.ndim(env[a])
            kind = draw(st.sampled_from(["unary", "unary", "binary", "binary", "reduce"]))
            template = draw(st.sampled_from({"unary": UNARY, "binary": BINARY,
                                             "reduce": REDUCE}[kind]))
            if "axis" in template and nd == 0:
                continue  # numpy's axis=0/-1 on a 0-d array: graphc rejects it on purpose
            axes = [None] + list(range(-nd, nd)) + ([(0, nd - 1)] if nd >= 2 else [])
            expr = template.format(a=a, b=b, ax=draw(st.sampled_from(axes)),
                                   ax1=draw(st.sampled_from(list(range(-nd, nd)) or [0])),
                                   k=draw(st.booleans()))
            try:
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    value = eval(expr, env)
            except Exception:  # noqa: BLE001 - not a valid line for these types
                continue
            value = np.asarray(value)
            if value.dtype.name not in ARG_DTYPES or value.size > 2000:
                continue
            name = f"t{len(lines)}"
            env[name] = value
            names.append(name)
            lines.append(f"    {name} = {expr}")
            break
    if not lines:
        lines.append(f"    t0 = {names[0]} + {names[0]}")
        names.append("t0")
    ret = [names[-1]]
    if draw(st.booleans()) and len(names) > 2:
        ret.append(draw(st.sampled_from(names[:-1])))
    source = (f"def f({', '.join(f'a{i}' for i in range(nargs))}):\n" + "\n".join(lines)
              + f"\n    return {', '.join(ret)}\n")
    return Program(source, args)


# ------------------------------------------------------------------ gradient programs

SMOOTH_UNARY = ["np.sin({a})", "np.tanh({a})", "np.exp(0.3 * {a})", "{a} * {a}",
                "np.cos({a}) * 0.5", "{a} / (1 + {a} * {a})", "np.sqrt({a} * {a} + 1)",
                "np.log({a} * {a} + 1)", "-{a}", "{a} * 1.5 - 0.25", "{a} ** 3",
                "1 / (1 + np.exp(-{a}))", "{a}.T", "{a}[::-1]", "{a}[..., 1:]",
                "np.exp({a} - np.max({a}, axis=-1, keepdims=True))",
                "{a} - np.mean({a}, axis=0)", "np.sum({a}, axis=-1, keepdims=True)",
                "np.sum({a}, axis=0)", "np.mean({a})", "np.max({a}, axis=-1)",
                "np.maximum({a}, 0.1)", "np.abs({a})", "{a}.reshape(-1)",
                "np.concatenate([{a}, {a} * 2], axis=-1)", "np.broadcast_to({a}, (2,) + {a}.shape)"]
SMOOTH_BINARY = ["{a} + {b}", "{a} * {b}", "{a} - {b}", "{a} / (1 + {b} * {b})",
                 "{a} @ {b}", "{a} @ {b}.T", "np.maximum({a}, {b})",
                 "np.where({a} > {b}, {a} * 2, {b})"]


@st.composite
def grad_programs(draw, max_lines: int = 5) -> Program:
    """A scalar float64 function of two arrays, every line eager-checked; the last
    line reduces to a scalar."""
    rng = np.random.default_rng(draw(SEEDS))
    shapes = draw(st.sampled_from([((3, 4), (4,)), ((3, 4), (4, 3)), ((2, 3), (3, 1)),
                                   ((4,), (4,)), ((2, 3, 4), (4, 4)), ((3, 3), ())]))
    args = [rng.uniform(-1.5, 1.5, size=s) for s in shapes]
    names = ["a0", "a1"]
    env = {"a0": args[0], "a1": args[1], "np": np}
    lines = []
    for _ in range(draw(st.integers(1, max_lines))):
        for _attempt in range(6):
            a, b = draw(st.sampled_from(names)), draw(st.sampled_from(names))
            template = draw(st.sampled_from(SMOOTH_UNARY + SMOOTH_BINARY))
            if "axis" in template and np.ndim(env[a]) == 0:
                continue  # numpy's axis=0/-1 on a 0-d array: graphc rejects it on purpose
            expr = template.format(a=a, b=b)
            try:
                value = np.asarray(eval(expr, env))
            except Exception:  # noqa: BLE001
                continue
            if value.size > 500 or not np.all(np.isfinite(value)) or \
                    np.max(np.abs(value), initial=0) > 1e3:
                continue
            name = f"t{len(lines)}"
            env[name], lines = value, lines + [f"    {name} = {expr}"]
            names.append(name)
            break
    last = names[-1]
    weights = rng.uniform(-1, 1, size=np.shape(env[last])).round(3)
    source = ("def f(a0, a1):\n" + "\n".join(lines) +
              f"\n    return np.sum({last} * np.array({weights.tolist()!r}))\n")
    return Program(source, args)
