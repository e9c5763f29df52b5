"""Max error in ulp of each float32 math function, against float64: `python -m graphc ulp`.

For float32 inputs spread over the whole float32 range, each function is computed three
ways (numpy's own float32 function, graphc's native C kernel built for this machine,
and the same built for another target such as GRAPHC_MARCH=x86-64-v3, AVX2) and
compared with the float64 function of the same input rounded to float32's grid: the
error of one result is |got - exact| in units of the float32 spacing at |exact|.

Inputs: by default a dense sweep, for both signs and each of the 255 finite exponents
(subnormals included), of `per_binade` significands evenly spaced from the binade's
first to its last float (`--per-binade`); `--every` takes every finite float32
instead (2**32 - 2**24 values: hours on a laptop's few cores).

    python -m graphc ulp                          the table for the README
    python -m graphc ulp --only tanh,exp --march native,x86-64-v3,x86-64-v4

>>> row = measure("tanh", sweep(16), marches=())
>>> row.errors["numpy"] < 8
True
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np

from graphc.fuzz import mode_options

# name -> (the function as a user writes it, the same in float64: the exact reference).
# A composite (sigmoid, rsqrt) is written as graphc's own reference writes it.
FUNCTIONS: dict[str, tuple[Callable, Callable]] = {}


def _function(name: str, fn: Callable, exact: Callable | None = None) -> None:
    FUNCTIONS[name] = (fn, exact or fn)


def _sigmoid(x):
    from graphc import nn
    return nn.sigmoid(x)


def _erf(x):
    from graphc import nn
    return nn.erf(x)


_function("exp", np.exp)
_function("expm1", np.expm1)
_function("log", np.log)
_function("log1p", np.log1p)
_function("tanh", np.tanh)
_function("sigmoid", _sigmoid)
_function("erf", _erf, np.frompyfunc(math.erf, 1, 1))
_function("sin", np.sin)
_function("cos", np.cos)
_function("sqrt", np.sqrt)
_function("rsqrt", lambda x: 1.0 / np.sqrt(x))
_function("pow", lambda x: x ** 2.5)  # pow(x, 2.5): a fixed exponent, one input to sweep

CHUNK = 1 << 20  # elements per native call: one compiled signature for every chunk


@dataclass
class Row:
    """One function's max error (ulp) per way of computing it, and where it occurs."""
    name: str
    errors: dict[str, float] = field(default_factory=dict)
    worst_input: dict[str, float] = field(default_factory=dict)
    mismatched_specials: dict[str, int] = field(default_factory=dict)


def sweep(per_binade: int) -> np.ndarray:
    """Finite float32 values of both signs: `per_binade` significands per exponent.

    >>> s = sweep(4); s.dtype, s.size, bool(np.isfinite(s).all())
    (dtype('float32'), 2550, True)
    """
    # the binade's first two floats too: next to 0 (the smallest subnormal) and to 1
    mantissas = np.unique(np.concatenate([
        np.linspace(0, (1 << 23) - 1, per_binade).astype(np.uint32), [1]]).astype(np.uint32))
    exponents = np.arange(255, dtype=np.uint32) << 23
    bits = (exponents[:, None] | mantissas[None, :]).ravel()
    return np.concatenate([bits, bits | np.uint32(1 << 31)]).view(np.float32)


def every_float() -> Iterator[np.ndarray]:
    """Every finite float32, in chunks of `CHUNK` (for --every)."""
    for start in range(0, 1 << 32, CHUNK):
        x = np.arange(start, start + CHUNK, dtype=np.uint64).astype(np.uint32).view(np.float32)
        yield x[np.isfinite(x)]


def ulp_errors(got: np.ndarray, exact: np.ndarray) -> tuple[np.ndarray, int]:
    """|got - exact| in float32 ulp at |exact|, and how many results disagree in kind
    (NaN, an infinity or a finite value where the exact result is another kind)."""
    with np.errstate(over="ignore"):  # where exact overflows float32, inf is right
        exact32 = exact.astype(np.float32)
    special = ~np.isfinite(exact32) | ~np.isfinite(got)
    same = special & ((got == exact32) | (np.isnan(got) & np.isnan(exact32)))
    spacing = np.spacing(np.abs(exact32).astype(np.float32)).astype(np.float64)
    with np.errstate(invalid="ignore"):
        err = np.abs(got.astype(np.float64) - exact) / spacing
    return np.where(special, 0.0, err), int((special & ~same).sum())


def _native(fn: Callable, march: str) -> Callable[[np.ndarray], np.ndarray]:
    """`fn` compiled into one native kernel built for `march`, run chunk by chunk."""
    import graphc
    compiled = graphc.compile(fn, check=False, options=mode_options("native", march=march))
    if "_runc(" not in compiled.lower(np.ones(CHUNK, np.float32)).source:
        raise RuntimeError("no native kernel (is a C compiler installed?)")

    def run(x: np.ndarray) -> np.ndarray:
        out = np.empty_like(x)
        for lo in range(0, x.size, CHUNK):
            part = np.ones(CHUNK, np.float32)
            part[:min(CHUNK, x.size - lo)] = x[lo:lo + CHUNK]
            out[lo:lo + CHUNK] = compiled(part)[:min(CHUNK, x.size - lo)]
        return out
    return run


def measure(name: str, inputs: np.ndarray | Iterator[np.ndarray],
            marches: Sequence[str] = ("native", "x86-64-v3")) -> Row:
    """The max ulp error of function `name` over `inputs` (an array or chunks of one),
    for numpy's float32 function and for a native kernel per -march target."""
    fn, exact_fn = FUNCTIONS[name]
    ways: dict[str, Callable] = {"numpy": fn}
    for march in marches:
        ways[f"native -march={march}"] = _native(fn, march)
    row = Row(name, {w: 0.0 for w in ways}, {w: math.nan for w in ways},
              {w: 0 for w in ways})
    for x in ([inputs] if isinstance(inputs, np.ndarray) else inputs):
        with np.errstate(all="ignore"):
            exact = np.asarray(exact_fn(x.astype(np.float64)), np.float64)
            for way, run in ways.items():
                err, bad = ulp_errors(np.asarray(run(x), np.float32), exact)
                i = int(np.argmax(err))
                if err[i] > row.errors[way]:
                    row.errors[way], row.worst_input[way] = float(err[i]), float(x[i])
                row.mismatched_specials[way] += bad
    return row


def format_table(rows: Sequence[Row]) -> str:
    """A markdown table: one row per function, the max ulp of each way and the input
    where it occurs."""
    ways = list(rows[0].errors)
    lines = ["| function | " + " | ".join(ways) + " |",
             "| --- |" + " --- |" * len(ways)]
    for r in rows:
        cells = []
        for w in ways:
            cell = f"{r.errors[w]:.2f} (x={r.worst_input[w]:.6g})"
            if r.mismatched_specials[w]:
                cell += f", {r.mismatched_specials[w]} special-value mismatches"
            cells.append(cell)
        lines.append(f"| {r.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def command(only: str | None, marches: str, per_binade: int, every: bool,
            error: Callable[[str], None]) -> int:
    """`python -m graphc ulp`: print the table; 0, or 2 (through `error`) for bad names."""
    import platform
    from graphc.backends import toolchain
    names = [n.strip() for n in (only or ",".join(FUNCTIONS)).split(",") if n.strip()]
    unknown = [n for n in names if n not in FUNCTIONS]
    targets = [] if marches.strip() == "none" else [m.strip() for m in marches.split(",")]
    bad = [m for m in targets if m not in toolchain.MARCHES]
    if unknown or bad or not names:
        error(f"unknown function {', '.join(unknown)} (choose from {', '.join(FUNCTIONS)})"
              if unknown or not names else
              f"unknown target {', '.join(bad)} (choose from {', '.join(toolchain.MARCHES)})")
    from graphc.backends.toolchain import runnable
    skipped = [m for m in targets if not runnable(m)]
    if toolchain.compiler() is None:
        skipped = targets
    targets = [m for m in targets if m not in skipped]
    inputs = "every finite float32" if every else (
        f"{sweep(per_binade).size:,} float32 values ({per_binade} evenly spaced significands "
        f"per exponent and sign, subnormals included)")
    cpu = _cpu_name() or platform.processor() or platform.machine()
    print(f"graphc ulp: max error in float32 ulp against float64, over {inputs}; {cpu}")
    if skipped:
        print(f"(skipped: native {', '.join(skipped)}: no C compiler, or this CPU cannot run "
              f"that code)")
    rows = [measure(n, every_float() if every else sweep(per_binade), targets)
            for n in names]
    print(format_table(rows))
    return 0


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            return next((line.split(":", 1)[1].strip() for line in fh
                         if line.startswith("model name")), "")
    except OSError:
        return ""
