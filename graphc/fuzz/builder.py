"""The fuzzer's random graph builder: every decision comes from a `Chooser`, so that
the same code serves the hypothesis strategies of the test suite
(`tests/fuzz/generate.py`, which shrink) and `python -m graphc fuzz` (a seeded
`random.Random`).

Values made from float reductions or matmuls are not bit-exact across backends
(the kernels sum in blocks), nor are transcendental functions (native kernels call
glibc's vector math, a few ulp from numpy's), so the builder keeps track of which values
are exact and only feeds exact values to ops that amplify rounding (comparisons, argmax,
sign, casts from float to int/bool, reciprocal, division's denominator, log, ...).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

import numpy as np

from graphc.errors import GraphcError
from graphc.ir import Graph, NodeBuilder, TensorType, Value
from graphc.ops import OPS, Domain, Kind, OpDef, Rounding

DTYPES = ("float32", "float64", "int32", "int64", "bool")
FLOATS = ("float32", "float64")
NUMERIC = ("float32", "float64", "int32", "int64")
DIMS = (1, 1, 2, 2, 3, 3, 4, 5, 0)



@dataclass(frozen=True)
class OpLists:
    """The elementwise primitives the builder picks from, by what their records say
    (kind, dtypes, rounding, sample domain), in registration order. Built per graph,
    so that a primitive registered late is fuzzed too."""

    unary_any_float: tuple[str, ...]    # any float input
    unary_exact_float: tuple[str, ...]  # singular domain or a step: exact inputs only
    unary_numeric: tuple[str, ...]      # ints too
    unary_step_numeric: tuple[str, ...]  # sign: a step, ints too, exact inputs only
    binary_numeric: tuple[str, ...]
    binary_float: tuple[str, ...]       # a restricted domain: floats, exact where it is
    floored_division: tuple[str, ...]   # steps of numbers: exact inputs only
    comparisons: tuple[str, ...]        # steps of any dtype, bool results


def _elementwise(arity: int) -> list[OpDef]:
    # no attributes (round's decimals is chosen by op_unary) and one dtype in, one out
    return [op for op in OPS.values() if op.kind is Kind.ELEMENTWISE and
            op.num_inputs == arity and (not op.attrs or op.name == "round")
            and op.name != "cast"]


def op_lists() -> OpLists:
    """The op lists of today's registry (see `OpLists`)."""
    floats, ints = set(FLOATS), {"int32", "int64"}
    un, bi = _elementwise(1), _elementwise(2)
    step = Rounding.STEP

    def names(ops, pred):
        return tuple(op.name for op in ops if pred(op))

    def restricted(op):
        return any(op.domain_of(i) != Domain() for i in range(2))
    return OpLists(
        unary_any_float=names(un, lambda o: floats <= o.dtypes and o.rounding is not step
                              and not o.domain_of(0).singular),
        unary_exact_float=names(un, lambda o: floats <= o.dtypes and not ints & o.dtypes and
                                o.domain_of(0).singular) +
        names(un, lambda o: floats <= o.dtypes and not ints & o.dtypes and o.rounding is step),
        unary_numeric=names(un, lambda o: ints <= o.dtypes and o.rounding is not step),
        unary_step_numeric=names(un, lambda o: ints <= o.dtypes and o.rounding is step),
        binary_numeric=names(bi, lambda o: ints <= o.dtypes and "bool" not in o.dtypes
                             and o.rounding is not step and not restricted(o)),
        binary_float=names(bi, lambda o: floats <= o.dtypes and "bool" not in o.dtypes
                           and o.rounding is not step and restricted(o)),
        floored_division=names(bi, lambda o: ints <= o.dtypes and "bool" not in o.dtypes
                               and o.rounding is step),
        comparisons=names(bi, lambda o: "bool" in o.dtypes and o.rounding is step))


def inexact_ops() -> frozenset[str]:
    """Primitives whose float results differ by a few ulp between implementations
    (numpy and glibc's vector math, sums in blocks): their results are not exact."""
    return frozenset(name for name, op in OPS.items()
                     if op.rounding in (Rounding.TRANSCENDENTAL, Rounding.ACCUMULATES))


class Chooser:
    """Where the builder's decisions come from: `integer(lo, hi)` (inclusive)."""

    def __init__(self, integer: Callable[[int, int], int]):
        self.integer = integer

    def choice(self, seq):
        seq = list(seq)
        return seq[self.integer(0, len(seq) - 1)]

    def chance(self, percent: int) -> bool:
        return self.integer(0, 99) < percent

    @classmethod
    def from_random(cls, rnd: random.Random) -> "Chooser":
        return cls(rnd.randint)


@dataclass
class InputSpec:
    """How to fill one graph input: "data" (any value), "positive", or "index" (ints
    in [-bound, bound - 1], for gather and scatter_add)."""

    type: TensorType
    kind: str = "data"
    bound: int = 0


@dataclass
class Case:
    graph: Graph
    specs: list[InputSpec]
    seed: int

    def inputs(self) -> list[np.ndarray]:
        return make_inputs(self.specs, self.seed)


def make_inputs(specs: list[InputSpec], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for s in specs:
        shape, dt = s.type.shape, s.type.dtype
        if s.kind == "index":
            arr = rng.integers(-s.bound, s.bound, size=shape) if s.bound else \
                np.zeros(shape, np.int64)
            out.append(np.asarray(arr, dtype=dt))
        elif dt == "bool":
            out.append(np.asarray(rng.random(shape) < 0.5))
        elif dt in ("int32", "int64"):
            lo = 0 if s.kind == "positive" else -4
            out.append(np.asarray(rng.integers(lo, 5, size=shape), dtype=dt))
        elif s.kind == "positive":
            out.append(np.asarray(rng.uniform(0.1, 3.0, size=shape), dtype=dt))
        else:
            x = rng.uniform(-3.0, 3.0, size=shape)
            # a few exact small integers: comparisons and max/argmax meet ties
            x = np.where(rng.random(shape) < 0.2, np.round(x), x)
            out.append(np.asarray(x, dtype=dt))
    return out


class _Builder:
    def __init__(self, ch: Chooser, max_nodes: int):
        self.ch = ch
        self.max_nodes = max_nodes
        self.graph = NodeBuilder("fuzz")
        self.inputs = self.graph.inputs  # the builder's lists, read often below
        self.nodes = self.graph.nodes
        self.specs: list[InputSpec] = []
        self.values: list[Value] = []
        self.exact: dict[int, bool] = {}
        self.lists = op_lists()
        self.inexact = inexact_ops()

    # -------------------------------------------------------------- values
    def shape(self, ndim: int | None = None) -> tuple[int, ...]:
        if ndim is None:
            ndim = self.ch.choice((0, 1, 1, 2, 2, 2, 3, 3, 4))
        return tuple(self.ch.choice(DIMS) for _ in range(ndim))

    def new_input(self, ttype: TensorType, kind: str | None = None, bound: int = 0) -> Value:
        if kind is None:
            kind = "positive" if self.ch.chance(25) else "data"
        v = self.graph.input(f"x{len(self.inputs)}", ttype)
        self.specs.append(InputSpec(ttype, kind, bound))
        self.values.append(v)
        self.exact[id(v)] = True
        return v

    def pick(self, pred=lambda v: True, exact: bool = False, make: TensorType | None = None,
             fresh: int = 15) -> Value | None:
        """An existing value satisfying pred (exact if asked), or a new input of type
        `make` (also sometimes when candidates exist, to keep graphs branching)."""
        cands = [v for v in self.values if pred(v) and (self.exact[id(v)] or not exact)]
        if make is not None and (not cands or self.ch.chance(fresh)):
            return self.new_input(make)
        if not cands:
            return None
        # prefer recent values, so that chains grow deep
        if self.ch.chance(60):
            return cands[-1 - self.ch.integer(0, min(2, len(cands) - 1))]
        return self.ch.choice(cands)

    def partner_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """A shape that broadcasts with `shape`."""
        keep = self.ch.integer(0, len(shape))
        tail = [1 if self.ch.chance(30) else d for d in shape[len(shape) - keep:]]
        lead = [self.ch.choice(DIMS) for _ in range(self.ch.choice((0, 0, 0, 1)))]
        if len(lead) + len(tail) > 4:
            lead = []
        return tuple(lead + tail)

    def partner(self, a: Value, dtype: str | None = None, exact: bool = False) -> Value:
        dt = dtype or a.dtype

        def ok(v):
            if v.dtype != dt:
                return False
            try:
                np.broadcast_shapes(v.shape, a.shape)
            except ValueError:
                return False
            return True
        return self.pick(ok, exact, TensorType(self.partner_shape(a.shape), dt), fresh=35)

    # -------------------------------------------------------------- nodes
    def add(self, op: str, inputs, attrs: dict) -> bool:
        """Add `op` unless its rule refuses these inputs or its result is too big."""
        try:
            node = self.graph.add(op, inputs, attrs, admit=_small)
        except GraphcError:
            return False
        if node is None:
            return False
        exact = all(self.exact[id(v)] for v in inputs)
        if op in self.inexact and node.outputs[0].dtype in FLOATS:
            exact = False
        for v in node.outputs:
            self.values.append(v)
            self.exact[id(v)] = exact
        return True

    def step(self) -> bool:
        ch = self.ch
        family = ch.choice(("unary", "unary", "binary", "binary", "binary", "compare",
                            "logic", "where", "cast", "reduce", "reduce", "argmax",
                            "reduce_back", "reduce_back",
                            "reshape", "transpose", "broadcast", "slice", "slice",
                            "concat", "pad", "cumsum", "gather", "scatter", "matmul", "matmul",
                            "source", "pool"))
        return getattr(self, "op_" + family)()

    def any_type(self, dtypes=DTYPES) -> TensorType:
        return TensorType(self.shape(), self.ch.choice(dtypes))

    def op_unary(self) -> bool:
        ch = self.ch
        kind = ch.choice(("float", "float", "float", "exactfloat", "numeric", "sign"))
        if kind == "float":
            op = ch.choice(self.lists.unary_any_float)
            x = self.pick(lambda v: v.dtype in FLOATS, make=self.any_type(FLOATS))
        elif kind == "exactfloat":
            op = ch.choice(self.lists.unary_exact_float)
            x = self.pick(lambda v: v.dtype in FLOATS, exact=True, make=self.any_type(FLOATS))
            if op == "round":
                return self.add(op, [x], {"decimals": ch.choice((0, 0, 1, -1))})
        elif kind == "numeric":
            op = ch.choice(self.lists.unary_numeric)
            x = self.pick(lambda v: v.dtype in NUMERIC, make=self.any_type(NUMERIC))
        else:
            op = ch.choice(self.lists.unary_step_numeric)
            x = self.pick(lambda v: v.dtype in NUMERIC, exact=True,
                          make=self.any_type(NUMERIC))
        return self.add(op, [x], {})

    def op_binary(self) -> bool:
        ch = self.ch
        lists = self.lists
        op = ch.choice(lists.binary_numeric + lists.binary_float + lists.floored_division)
        if op in lists.floored_division:
            a = self.pick(lambda v: v.dtype in NUMERIC, exact=True, make=self.any_type(NUMERIC))
            b = self.partner(a, exact=True)
        elif op in lists.binary_float:  # exact where the domain is restricted (div's b)
            a = self.pick(lambda v: v.dtype in FLOATS, exact=OPS[op].domain_of(0) != Domain(),
                          make=self.any_type(FLOATS))
            b = self.partner(a, exact=OPS[op].domain_of(1) != Domain())
        else:
            a = self.pick(lambda v: v.dtype in NUMERIC, make=self.any_type(NUMERIC))
            b = self.partner(a)
        if ch.chance(50):
            a, b = (b, a) if op not in lists.binary_float else (a, b)
        return self.add(op, [a, b], {})

    def op_compare(self) -> bool:
        a = self.pick(exact=True, make=self.any_type())
        b = self.partner(a, exact=True)
        return self.add(self.ch.choice(self.lists.comparisons), [a, b], {})

    def op_logic(self) -> bool:
        a = self.pick(lambda v: v.dtype == "bool", make=self.any_type(("bool",)))
        if self.ch.chance(30):
            return self.add("logical_not", [a], {})
        b = self.partner(a)
        return self.add(self.ch.choice(("logical_and", "logical_or")), [a, b], {})

    def op_where(self) -> bool:
        c = self.pick(lambda v: v.dtype == "bool", make=self.any_type(("bool",)))
        a = self.pick(make=self.any_type())
        b = self.partner(a)
        c2 = c
        try:
            np.broadcast_shapes(c.shape, a.shape, b.shape)
        except ValueError:
            c2 = self.new_input(TensorType(self.partner_shape(a.shape), "bool"))
        return self.add("where", [c2, a, b], {})

    def op_cast(self) -> bool:
        x = self.pick(make=self.any_type())
        dt = self.ch.choice(DTYPES)
        if x.dtype in FLOATS and dt not in FLOATS and not self.exact[id(x)]:
            dt = self.ch.choice(FLOATS)
        if x.dtype == "float32" and dt == "float64" and not self.exact[id(x)]:
            dt = "float32"  # float32 rounding differences, judged by float64's tolerance
        return self.add("cast", [x], {"dtype": dt})

    def axes(self, ndim: int) -> tuple[int, ...]:
        return tuple(a for a in range(ndim) if self.ch.chance(50))

    def op_reduce(self) -> bool:
        op = self.ch.choice(("sum", "sum", "max", "min"))
        x = self.pick(lambda v: len(v.shape) > 0 or self.ch.chance(20), make=self.any_type(NUMERIC))
        return self.add(op, [x], {"axes": self.axes(len(x.shape)), "keepdims": self.ch.chance(40)})

    def op_reduce_back(self) -> bool:
        """x - max(x) and its kin: a reduction (keepdims or not, often over size-1 axes)
        whose result broadcasts back into an elementwise op of its own input's chain,
        maybe beside a mask from another kernel, and a second reduction over that. Each
        merge of fusion's groups looks safe here; only the whole group graph shows the
        cycle (tests/fuzz/test_regressions.py)."""
        ch = self.ch
        ones = tuple(1 if ch.chance(40) else ch.choice((2, 3, 4, 7)) for _ in
                     range(ch.integer(1, 3)))
        x = self.pick(lambda v: v.dtype in FLOATS and v.shape, exact=True,
                      make=TensorType(ones, ch.choice(FLOATS)))
        for _ in range(ch.choice((0, 1, 1, 2))):  # a kernel, not a graph input, feeds it
            self.add(ch.choice(("neg", "abs")), [x], {})
            x = self.values[-1]
        # across axis 0 (often of size 1) it is a kernel of its own, as a mean over
        # leading axes is; over the other axes it may take x's chain as its prologue
        axes = self.axes(len(x.shape))
        axes = tuple(sorted({0, *axes})) if ch.chance(60) else axes
        if not self.add(ch.choice(("max", "min", "sum")), [x],
                        {"axes": axes, "keepdims": ch.chance(50)}):
            return False
        r = self.values[-1]
        if ch.chance(30):  # the input's chain goes on before it meets the reduction
            self.add(ch.choice(("neg", "abs")), [x], {})
            x = self.values[-1]
        if ch.chance(50):
            mask = self.partner(x, exact=True)
            pair = [mask, self.partner(mask, exact=True)]
            if not self.add(ch.choice(self.lists.comparisons), pair, {}):
                return True
            operands, op = [self.values[-1], x, r], "where"
        else:
            operands, op = [x, r], ch.choice(("sub", "add", "maximum", "mul"))
        if ch.chance(50):
            operands[-2:] = operands[-1:-3:-1]
        if self.add(op, operands, {}) and ch.chance(70):
            y = self.values[-1]
            self.add(ch.choice(("max", "sum")), [y], {"axes": self.axes(len(y.shape)),
                                                      "keepdims": ch.chance(30)})
        return True

    def op_cumsum(self) -> bool:
        x = self.pick(lambda v: len(v.shape) > 0 and v.dtype in NUMERIC,
                      make=TensorType(self.shape(self.ch.integer(1, 3)), self.ch.choice(NUMERIC)))
        return self.add("cumsum", [x], {"axis": self.ch.integer(0, len(x.shape) - 1)})

    def op_argmax(self) -> bool:
        x = self.pick(lambda v: len(v.shape) > 0 and v.dtype != "bool", exact=True,
                      make=TensorType(self.shape(self.ch.integer(1, 3)),
                                      self.ch.choice(NUMERIC)))
        if len(x.shape) == 0:
            return False
        return self.add("argmax", [x], {"axis": self.ch.integer(0, len(x.shape) - 1),
                                        "keepdims": self.ch.chance(40)})

    def op_reshape(self) -> bool:
        x = self.pick(make=self.any_type())
        dims = [d for d in x.shape]
        how = self.ch.choice(("flat", "insert1", "drop1", "merge", "split", "zero"))
        if how == "flat":
            dims = [x.type.size] if self.ch.chance(80) or x.type.size != 1 else []
        elif how == "insert1":
            dims.insert(self.ch.integer(0, len(dims)), 1)
        elif how == "drop1" and 1 in dims:
            dims.remove(1)
        elif how == "merge" and len(dims) >= 2:
            i = self.ch.integer(0, len(dims) - 2)
            dims[i:i + 2] = [dims[i] * dims[i + 1]]
        elif how == "split":
            cands = [i for i, d in enumerate(dims) if d in (4, 6, 9, 10, 12, 15)]
            if cands:
                i = self.ch.choice(cands)
                d = dims[i]
                f = next(k for k in (2, 3, 5) if d % k == 0)
                dims[i:i + 1] = [f, d // f]
        elif how == "zero" and x.type.size == 0:
            dims = [0, self.ch.choice((1, 3))]
        if how != "flat" and dims == list(x.shape):
            dims = dims[::-1]  # still a valid reshape (same size)
        return self.add("reshape", [x], {"shape": tuple(dims)})

    def op_transpose(self) -> bool:
        x = self.pick(lambda v: len(v.shape) >= 2, make=TensorType(self.shape(self.ch.integer(2, 4)),
                                                              self.ch.choice(DTYPES)))
        perm = list(range(len(x.shape)))
        for i in range(len(perm) - 1, 0, -1):
            j = self.ch.integer(0, i)
            perm[i], perm[j] = perm[j], perm[i]
        return self.add("transpose", [x], {"perm": tuple(perm)})

    def op_broadcast(self) -> bool:
        x = self.pick(lambda v: len(v.shape) <= 3, make=self.any_type())
        lead = [self.ch.choice(DIMS) for _ in range(self.ch.integer(0, 4 - len(x.shape)))]
        tail = [self.ch.choice((2, 3)) if d == 1 and self.ch.chance(60) else d
                for d in x.shape]
        return self.add("broadcast_to", [x], {"shape": tuple(lead + tail)})

    def op_slice(self) -> bool:
        x = self.pick(lambda v: len(v.shape) > 0, make=self.any_type())
        starts, stops, steps = [], [], []
        for n in x.shape:
            s = self.ch.choice((1, 1, 1, 2, 3, -1, -1, -2))
            if n == 0 and s < 0:
                s = 1
            if s > 0:
                a, b = self.ch.integer(0, n), self.ch.integer(0, n)
                if self.ch.chance(40):
                    a, b = 0, n
                elif b < a and self.ch.chance(70):
                    a, b = b, a
            else:
                a, b = self.ch.integer(0, n - 1), self.ch.integer(-1, n - 1)
                if self.ch.chance(40):
                    a, b = n - 1, -1
                elif b > a and self.ch.chance(70):
                    a, b = b, a
            starts.append(a)
            stops.append(b)
            steps.append(s)
        return self.add("slice", [x], {"starts": tuple(starts), "stops": tuple(stops),
                                       "steps": tuple(steps)})

    def op_concat(self) -> bool:
        x = self.pick(lambda v: len(v.shape) > 0, make=TensorType(self.shape(self.ch.integer(1, 3)),
                                                             self.ch.choice(DTYPES)))
        axis = self.ch.integer(0, len(x.shape) - 1)
        parts = [x]
        for _ in range(self.ch.integer(0, 2)):
            def ok(v, x=x):
                return v.dtype == x.dtype and len(v.shape) == len(x.shape) and all(
                    a == b for i, (a, b) in enumerate(zip(v.shape, x.shape)) if i != axis)
            shape = list(x.shape)
            shape[axis] = self.ch.choice((0, 1, 2, 3))
            parts.append(self.pick(ok, make=TensorType(tuple(shape), x.dtype), fresh=50))
        if self.ch.chance(30):
            parts.reverse()
        return self.add("concat", parts, {"axis": axis})

    def op_pad(self) -> bool:
        x = self.pick(make=self.any_type())
        widths = tuple((self.ch.choice((0, 0, 1, 2)), self.ch.choice((0, 0, 1, 2)))
                       for _ in range(len(x.shape)))
        if x.dtype == "bool":
            value = self.ch.chance(50)
        elif x.dtype in FLOATS:
            value = self.ch.choice((0.0, 0.0, 1.5, -2.0))
        else:
            value = self.ch.choice((0, 0, 1, -3))
        return self.add("pad", [x], {"widths": widths, "value": value})

    def index_input(self, bound: int) -> Value:
        shape = self.shape(self.ch.choice((0, 1, 1, 2)))
        if bound == 0:
            shape = (0,)
        dt = self.ch.choice(("int32", "int64"))
        return self.new_input(TensorType(shape, dt), "index", bound)

    def op_gather(self) -> bool:
        x = self.pick(lambda v: len(v.shape) > 0, make=TensorType(self.shape(self.ch.integer(1, 3)),
                                                             self.ch.choice(DTYPES)))
        axis = self.ch.integer(0, len(x.shape) - 1)
        idx = self.index_input(x.shape[axis])
        return self.add("gather", [x, idx], {"axis": axis})

    def op_scatter(self) -> bool:
        x = self.pick(lambda v: len(v.shape) > 0 and v.dtype in NUMERIC,
                      make=TensorType(self.shape(self.ch.integer(1, 3)),
                                      self.ch.choice(NUMERIC)))
        axis = self.ch.integer(0, len(x.shape) - 1)
        idx = self.index_input(x.shape[axis])
        want = x.shape[:axis] + idx.shape + x.shape[axis + 1:]
        upd = self.pick(lambda v: v.type == TensorType(want, x.dtype),
                        make=TensorType(want, x.dtype), fresh=50)
        return self.add("scatter_add", [x, idx, upd], {"axis": axis})

    def op_matmul(self) -> bool:
        a = self.pick(lambda v: len(v.shape) >= 2 and v.dtype in NUMERIC,
                      make=TensorType(self.shape(self.ch.choice((2, 2, 3))),
                                      self.ch.choice(NUMERIC)))
        k = a.shape[-1]
        batch = self.partner_shape(a.shape[:-2])

        def ok(v):
            if len(v.shape) < 2 or v.dtype != a.dtype or v.shape[-2] != k:
                return False
            try:
                np.broadcast_shapes(v.shape[:-2], a.shape[:-2])
            except ValueError:
                return False
            return True
        b = self.pick(ok, make=TensorType(batch + (k, self.ch.choice(DIMS)), a.dtype),
                      fresh=50)
        return self.add("matmul", [a, b], {})

    def op_source(self) -> bool:
        if self.ch.chance(50):
            shape = self.shape(self.ch.integer(1, 3))
            return self.add("iota", [], {"shape": shape, "axis": self.ch.integer(0, len(shape) - 1),
                                         "dtype": self.ch.choice(DTYPES[:4])})
        t = self.any_type()
        (arr,) = make_inputs([InputSpec(t)], self.ch.integer(0, 2**31))
        return self.add("const", [], {"value": arr})

    def op_pool(self) -> bool:
        def four(dts):
            return TensorType((self.ch.choice((1, 2)), self.ch.choice((1, 2, 3)),
                               self.ch.integer(2, 5), self.ch.integer(2, 5)),
                              self.ch.choice(dts))
        op = self.ch.choice(("conv2d", "max_pool2d", "avg_pool2d"))
        if op == "conv2d":
            x = self.pick(lambda v: len(v.shape) == 4 and v.dtype in FLOATS, make=four(FLOATS))
            groups = self.ch.choice((1, 1, max(1, x.shape[1])))
            w = self.new_input(TensorType((groups * self.ch.integer(1, 2), x.shape[1] // groups,
                                           self.ch.integer(1, 3), self.ch.integer(1, 3)),
                                          x.dtype))
            pair = lambda lo, hi: (self.ch.integer(lo, hi), self.ch.integer(lo, hi))  # noqa
            return self.add("conv2d", [x, w], {"stride": pair(1, 2), "padding": pair(0, 1),
                                               "dilation": pair(1, 2), "groups": groups})
        x = self.pick(lambda v: len(v.shape) == 4 and v.dtype in (FLOATS if op == "avg_pool2d"
                                                            else NUMERIC),
                      make=four(FLOATS if op == "avg_pool2d" else NUMERIC))
        kernel = (self.ch.integer(1, 3), self.ch.integer(1, 3))
        return self.add(op, [x], {"kernel": kernel,
                                  "stride": (self.ch.integer(1, 2), self.ch.integer(1, 2)),
                                  "padding": tuple(self.ch.integer(0, k // 2) for k in kernel)})

    def finish(self) -> tuple[Graph, list[InputSpec]]:
        produced = [v for n in self.nodes for v in n.outputs]
        if not produced:
            produced = list(self.inputs)
        outs = [produced[-1]]
        for _ in range(self.ch.integer(0, 2)):
            pool = produced if self.ch.chance(90) or not self.inputs else self.inputs
            outs.append(self.ch.choice(pool))
        return self.graph.finish(outs), self.specs


def _small(out_types: tuple[TensorType, ...]) -> bool:
    """Whether a fuzzed node's results are small enough to check quickly."""
    return all(t.size <= 4096 and t.ndim <= 5 for t in out_types)


def build(ch: Chooser, max_nodes: int = 8) -> tuple[Graph, list[InputSpec]]:
    """A random verified graph of 1 to `max_nodes` nodes and its input specs."""
    b = _Builder(ch, max_nodes)
    target = ch.integer(1, max_nodes)
    tries = 0
    while len(b.nodes) < target and tries < 6 * max_nodes:
        tries += 1
        b.step()
    if not b.nodes:
        b.new_input(TensorType((2,), "float32"))
        b.add("exp", [b.inputs[-1]], {})
    graph, specs = b.finish()
    graph.verify()
    return graph, specs
