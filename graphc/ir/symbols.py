"""Symbolic dimensions: a size that is not fixed when a function is traced.

A dimension of a `TensorType` is an int or a `Sym`, a polynomial with int coefficients
in named sizes (`B`, `2*B`, `B*S`, `S-1`). Shape rules do arithmetic on them as on ints:
sums (concat), products (reshape), exact quotients (a reshape's -1).

Every symbol stands for a size of at least 2: sizes 0 and 1 stay specialized, as in
torch.compile (a 1 broadcasts, a 0 empties the array, so code may behave differently
there), and so `B == 1` is known to be false and a broadcast against B is unambiguous.

A comparison whose answer depends on the sizes (`B == 64`, `S < 128`) is answered from
the sizes of the call being traced (the `ShapeEnv`'s hints), and the answer is kept as
a guard: the compiled entry is used only for calls where every guard holds; a guard
that makes a symbol equal to another or to an int replaces it in the traced graph.
Outside a trace `==` is structural (the same polynomial) and an order comparison that
depends on the sizes raises `SymbolicError`, as does any use of a symbol's value
(`int(B)`) anywhere; a dynamic trace that meets one specializes instead.

>>> B, S = Sym.var("B"), Sym.var("S")
>>> print(B * S * 64 // 64 + 1, B * 2 - B)
B*S+1 B
>>> B >= 2, B == 1
(True, False)
>>> env = ShapeEnv({"B": 32, "S": 32})
>>> with env.tracing():
...     B == S, S < 128
(True, True)
>>> [str(g) for g in env.guards]
['B == S', 'S < 128']
>>> env.holds({"B": 8, "S": 8}), env.holds({"B": 8, "S": 9})
(True, False)
"""
from __future__ import annotations

import contextlib
import contextvars
import math
import re
from dataclasses import dataclass
from typing import Iterator, Union

from graphc.errors import ShapeError

MIN_SIZE = 2  # every symbol's least value (0 and 1 stay specialized)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

Monomial = tuple  # the sorted names of a term's factors, with repeats: ("B", "S")
Dim = Union[int, "Sym"]


class SymbolicError(ShapeError):
    """A size was needed as a number where it is symbolic: the trace specializes it."""


class Sym:
    """A polynomial in named sizes with int coefficients; immutable and hashable.

    Build one with `Sym.var(name)` and int arithmetic; a result without symbols is an
    int (`B - B` is 0), so a dimension is always an int or a Sym that has symbols.
    """

    __slots__ = ("terms", "_hash")

    def __init__(self, terms: dict[Monomial, int]):
        self.terms = tuple(sorted((m, c) for m, c in terms.items() if c))
        self._hash = hash(self.terms)

    @staticmethod
    def var(name: str) -> "Sym":
        if not isinstance(name, str) or not _NAME.match(name):
            raise ShapeError(f"a symbolic dimension is named by an identifier, not {name!r}")
        return Sym({(name,): 1})

    # ---- what it holds ---------------------------------------------------------------

    @property
    def symbols(self) -> frozenset[str]:
        return frozenset(name for m, _ in self.terms for name in m)

    @property
    def name(self) -> str | None:
        """The symbol's name where it is one symbol alone (`B`), else None (`2*B`)."""
        if len(self.terms) == 1 and len(self.terms[0][0]) == 1 and self.terms[0][1] == 1:
            return self.terms[0][0][0]
        return None

    def constant(self) -> int:
        return dict(self.terms).get((), 0)

    def evaluate(self, sizes: dict[str, int]) -> int:
        """Its value where each symbol has the size `sizes` gives (KeyError if not)."""
        return sum(c * math.prod(sizes[n] for n in m) for m, c in self.terms)

    def bounds(self) -> tuple[int | None, int | None]:
        """(least, greatest) value over all sizes >= MIN_SIZE, None where unbounded or
        not known. Each symbol x is written MIN_SIZE + t with t >= 0: where every
        non-constant coefficient in t has one sign, the polynomial is monotone in each
        t and its bound is the value at MIN_SIZE (B*S - B is 2 + b + 2s + bs: >= 2)."""
        shifted = substitute(self, {n: Sym.var(n) + MIN_SIZE for n in self.symbols})
        at_least = shifted if type(shifted) is int else shifted.constant()
        signs = {c > 0 for m, c in _terms(shifted) if m}
        if signs <= {True}:
            return at_least, None if signs else at_least
        if signs == {False}:
            return None, at_least
        return None, None

    # ---- arithmetic --------------------------------------------------------------------

    def __add__(self, other: Dim) -> Dim:
        terms = dict(self.terms)
        for m, c in _terms(other):
            terms[m] = terms.get(m, 0) + c
        return _make(terms)

    __radd__ = __add__

    def __neg__(self) -> Dim:
        return _make({m: -c for m, c in self.terms})

    def __sub__(self, other: Dim) -> Dim:
        return self + (-_as_sym(other))

    def __rsub__(self, other: Dim) -> Dim:
        return (-self) + other

    def __mul__(self, other: Dim) -> Dim:
        if not isinstance(other, (int, Sym)):
            return NotImplemented
        terms: dict[Monomial, int] = {}
        for m1, c1 in self.terms:
            for m2, c2 in _terms(other):
                m = tuple(sorted(m1 + m2))
                terms[m] = terms.get(m, 0) + c1 * c2
        return _make(terms)

    __rmul__ = __mul__

    def __floordiv__(self, other: Dim) -> Dim:
        quotient = exact_quotient(self, other)
        if quotient is None:
            raise SymbolicError(f"{self} // {other} is not a whole polynomial: it needs "
                                "the sizes' values")
        return quotient

    def __rfloordiv__(self, other: Dim) -> Dim:
        return _as_sym(other) // self

    def __mod__(self, other: Dim) -> Dim:
        if exact_quotient(self, other) is not None:
            return 0
        raise SymbolicError(f"{self} % {other} needs the sizes' values")

    # ---- comparisons -------------------------------------------------------------------

    def __eq__(self, other) -> bool:
        if not isinstance(other, (int, Sym)) or isinstance(other, bool):
            return NotImplemented
        d = self - other
        if _ACTIVE.get() is None:  # outside a trace (passes, backends): the same
            return _proved(d, "==") is True  # polynomial, or not known to be equal
        return _decide(d, "==")

    def __ne__(self, other) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __lt__(self, other: Dim) -> bool:
        return _decide(self - other, "<")

    def __le__(self, other: Dim) -> bool:
        return _decide(self - other, "<=")

    def __gt__(self, other: Dim) -> bool:
        return _decide(_as_sym(other) - self, "<")

    def __ge__(self, other: Dim) -> bool:
        return _decide(_as_sym(other) - self, "<=")

    def __hash__(self) -> int:
        return self._hash

    # ---- where a number is needed ------------------------------------------------------

    def __index__(self) -> int:
        raise SymbolicError(f"the size {self} is symbolic here, and this needs its value",
                            hint="keep that size fixed: leave it out of the symbolic shapes")

    __int__ = __index__

    def _needs_value(self, *args, **kwargs):
        # true division, powers, floats and numpy's math of a size: its value, so the
        # trace specializes it (a SymbolicError), not a bare TypeError from Python
        raise SymbolicError(f"arithmetic on the size {self} other than + - * // % is "
                            "symbolic here, and this needs its value",
                            hint="keep that size fixed: leave it out of the symbolic shapes")

    def __pow__(self, k):
        if type(k) is int and k >= 0:  # a product: still a polynomial
            return math.prod([self] * k)
        return self._needs_value()

    __float__ = __truediv__ = __rtruediv__ = __rpow__ = __rmod__ = _needs_value
    __array_ufunc__ = _needs_value

    def __bool__(self) -> bool:
        return True  # a symbol is at least MIN_SIZE: a Sym is never 0

    def __str__(self) -> str:
        text = ""
        for m, c in sorted(self.terms, key=lambda t: (-len(t[0]), t[0])):
            factors = "*".join(m)
            if not m:
                body = str(abs(c))
            elif abs(c) == 1:
                body = factors
            else:
                body = f"{abs(c)}*{factors}"
            sign = "-" if c < 0 else ("+" if text else "")
            text += sign + body
        return text

    def __repr__(self) -> str:
        return f"Sym({str(self)!r})"


def _terms(d: Dim) -> tuple:
    if isinstance(d, Sym):
        return d.terms
    if isinstance(d, int) and not isinstance(d, bool):
        return (((), d),) if d else ()
    raise TypeError(f"a dimension is an int or a Sym, not {type(d).__name__}")


def _as_sym(d: Dim) -> "Sym":
    return d if isinstance(d, Sym) else Sym(dict(_terms(d)))


def _make(terms: dict[Monomial, int]) -> Dim:
    """The normal form: an int when no symbol is left."""
    if all(not m for m, c in terms.items() if c):
        return terms.get((), 0)
    return Sym(terms)


def exact_quotient(a: Dim, b: Dim) -> Dim | None:
    """a / b when it is a polynomial with int coefficients (a monomial divisor, or a
    divisor that a is an int multiple of), else None."""
    a, b = _as_sym(a), _as_sym(b)
    if not b.terms:
        return None
    if len(b.terms) == 1:
        (mb, cb), = b.terms
        out = {}
        for m, c in a.terms:
            rest = list(m)
            for name in mb:
                if name not in rest:
                    return None
                rest.remove(name)
            if c % cb:
                return None
            out[tuple(rest)] = c // cb
        return _make(out)
    (m0, c0) = b.terms[0]
    ratio = dict(a.terms).get(m0, 0)
    if ratio % c0 == 0 and _as_sym((ratio // c0) * b).terms == a.terms:
        return ratio // c0
    return None


def as_dim(d) -> Dim:
    """A size as the IR holds it: a Sym as it is, anything else through int()."""
    return d if type(d) is Sym else int(d)


def slice_indices(start, stop, step, n: Dim) -> tuple[Dim, Dim, int]:
    """slice(start, stop, step).indices(n) for a size, or bounds, that may be symbolic
    (the comparisons with n then answer from the trace's sizes, as guards)."""
    if type(n) is int and type(start) is not Sym and type(stop) is not Sym:
        return slice(start, stop, step).indices(n)
    step = 1 if step is None else int(step)
    if step == 0:
        raise ValueError("slice step cannot be zero")
    lower, upper = (0, n) if step > 0 else (-1, n - 1)

    def clamp(i, default):
        if i is None:
            return default
        i = as_dim(i)
        if i < 0:
            i = i + n
            return lower if i < lower else i
        return upper if i > upper else i

    return (clamp(start, lower if step > 0 else upper),
            clamp(stop, upper if step > 0 else lower), step)


TYPICAL_SIZE = 1024  # what a symbol is taken to be where only an order is wanted


def typical(d: Dim) -> int:
    """d's value with every symbol at TYPICAL_SIZE: a sort key and a heuristic's size
    (how large a kernel is likely to be), never a correctness decision."""
    return d if type(d) is int else d.evaluate(dict.fromkeys(d.symbols, TYPICAL_SIZE))


def covers(a: Dim, b: Dim) -> bool:
    """Whether a >= b for every size (proved, not answered from a trace)."""
    lo = dim_bounds(a - b)[0]
    return lo is not None and lo >= 0


def larger(a: Dim, b: Dim) -> Dim:
    """A size at least a and at least b: the larger where that is known, else a + b."""
    return a if covers(a, b) else b if covers(b, a) else a + b


def dim_bounds(d: Dim) -> tuple[int | None, int | None]:
    return (d, d) if isinstance(d, int) else d.bounds()


def is_static(shape: tuple) -> bool:
    """Whether every dimension is an int."""
    return all(type(d) is int for d in shape)


def shape_symbols(shape: tuple) -> frozenset[str]:
    return frozenset().union(*(d.symbols for d in shape if isinstance(d, Sym)))


# ---- comparisons: proved from MIN_SIZE, or answered from the trace's sizes ------------

_RELATIONS = {"==": lambda v: v == 0, "!=": lambda v: v != 0, "<": lambda v: v < 0,
              "<=": lambda v: v <= 0}


@dataclass(frozen=True, eq=False)
class Guard:
    """`expr <relation> 0`, learned while tracing; the entry holds only where it does."""

    expr: Sym
    relation: str

    @property
    def key(self) -> tuple:  # structural (a Sym's == may itself ask the ShapeEnv)
        return self.expr.terms, self.relation

    def holds(self, sizes: dict[str, int]) -> bool:
        return _RELATIONS[self.relation](self.expr.evaluate(sizes))

    def __str__(self) -> str:
        """As a person writes it: `D >= 4`, `B != S`."""
        expr, relation = self.expr, self.relation
        if sorted(expr.terms, key=lambda t: (-len(t[0]), t[0]))[0][1] < 0:
            expr = -expr
            relation = {"<": ">", "<=": ">="}.get(relation, relation)
        c = expr.constant()
        lhs = expr - c
        rhs: Dim = -c
        negative = [(m, k) for m, k in lhs.terms if k < 0] if type(lhs) is Sym else []
        if negative and len(negative) < len(lhs.terms):  # B-S == 0 as B == S
            moved = Sym(dict(negative))
            lhs, rhs = lhs - moved, rhs - moved
        return f"{lhs} {relation} {rhs}"


def _proved(d: Dim, relation: str) -> bool | None:
    lo, hi = dim_bounds(d)
    zero_out = (lo is not None and lo > 0) or (hi is not None and hi < 0)
    if relation == "==":
        return False if zero_out else (True if lo == hi == 0 else None)
    if relation == "<":
        return True if hi is not None and hi < 0 else (False if lo is not None and lo >= 0 else None)
    return True if hi is not None and hi <= 0 else (False if lo is not None and lo > 0 else None)


def _decide(d: Dim, relation: str) -> bool:
    known = _proved(d, relation)
    if known is not None:
        return known
    env = _ACTIVE.get()
    if env is None:
        raise SymbolicError(f"whether {d} {relation} 0 depends on the sizes",
                            hint="keep that size fixed: leave it out of the symbolic shapes")
    return env.answer(d, relation)


class ShapeEnv:
    """The sizes of the call being traced (`hints`) and the guards learned from them;
    or, with `ShapeEnv.assuming(guards)`, a graph's guards alone (the verifier's and
    the passes' view: what the guards imply is known, an order they leave open raises
    SymbolicError, an equality they leave open is false, as outside any env)."""

    def __init__(self, hints: dict[str, int] | None, guards=()):
        self.hints = dict(hints) if hints is not None else None
        self.guards: list[Guard] = list(guards)

    @classmethod
    def assuming(cls, guards) -> "ShapeEnv":
        return cls(None, guards)

    def answer(self, d: Sym, relation: str) -> bool:
        known = self.implied(d, relation)
        if known is not None:
            return known
        if self.hints is None:
            if relation in ("==", "!="):
                return relation == "!="
            raise SymbolicError(f"whether {d} {relation} 0 depends on the sizes, and the "
                                "graph's guards do not say")
        result = _RELATIONS[relation](d.evaluate(self.hints))
        # kept as the guard that holds: `B == 64` answered False keeps `B-64 != 0`
        flipped = {"==": "!=", "!=": "==", "<": "<=", "<=": "<"}
        guard = Guard(d, relation) if result else \
            Guard(-d if relation in "<<=" else d, flipped[relation])
        if isinstance(guard.expr, Sym) and all(g.key != guard.key for g in self.guards):
            self.guards.append(guard)
        return result

    def implied(self, d: Sym, relation: str) -> bool | None:
        """What the guards alone say of `d <relation> 0` (None: nothing)."""
        if relation == "!=":
            same = self.implied(d, "==")
            return None if same is None else not same
        if relation == "==":
            if self._follows(d, "==") or self._follows(-d, "=="):
                return True
            if self._follows(d, "!=") or self._follows(-d, "!=") or \
                    self._follows(d, "<") or self._follows(-d, "<"):
                return False
            return None
        if self._follows(d, relation):
            return True
        return False if self._follows(-d, "<=" if relation == "<" else "<") else None

    def _follows(self, d: Sym, relation: str) -> bool:
        """Whether one guard gives `d <relation> 0` directly: the same expression, or
        one that differs from d by a constant in the right direction."""
        for g in self.guards:
            k = d - g.expr
            if type(k) is not int:
                continue
            if relation in ("==", "!="):
                if k == 0 and g.relation == relation:
                    return True
            elif g.relation in ("<", "<=") and (k < 0 or (k == 0 and (
                    relation == "<=" or g.relation == "<"))):
                return True
        return False
    def holds(self, sizes: dict[str, int]) -> bool:
        return all(v >= MIN_SIZE for v in sizes.values()) and \
            all(g.holds(sizes) for g in self.guards)

    @contextlib.contextmanager
    def tracing(self) -> Iterator["ShapeEnv"]:
        token = _ACTIVE.set(self)
        try:
            yield self
        finally:
            _ACTIVE.reset(token)


_ACTIVE: contextvars.ContextVar[ShapeEnv | None] = contextvars.ContextVar(
    "graphc_shape_env", default=None)


@contextlib.contextmanager
def as_a_pass() -> Iterator[None]:
    """Inside a trace, the view of sizes a pass has (a pass that runs while tracing, as
    autodiff does under graphc.grad): what the trace's guards imply, and no new guard
    from the traced call's sizes. A pass's structural questions (`(s0, 16) == (16,)`,
    which Python asks element by element) must not pin the sizes they mention."""
    env = _ACTIVE.get()
    if env is None or env.hints is None:
        yield
        return
    with ShapeEnv.assuming(env.guards).tracing():
        yield


# ---- text: `2*B+S-1` ------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(?P<num>\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[-+*]))")
MAX_TEXT = 200  # characters of one dimension's text


def parse_dim(text: str) -> Dim:
    """A dimension's text (`1024`, `B`, `2*B*S+1`) back to an int or Sym. Only that
    grammar is read (sums of products of names and ints); anything else is a
    ShapeError."""
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
        raise ShapeError(f"a dimension's text is at most {MAX_TEXT} characters of "
                         f"names, ints, + - and *: {text!r:.60}")
    pos, total, sign, term = 0, 0, 1, None
    expect_operand = True
    while pos < len(text.rstrip()):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ShapeError(f"cannot read the dimension {text!r:.60} at {text[pos:]!r:.20}")
        pos = m.end()
        kind = m.lastgroup
        if expect_operand:
            if kind == "op" and not (m["op"] == "-" and term is None and total == 0
                                     and sign == 1 and m.start() == 0):
                raise ShapeError(f"cannot read the dimension {text!r:.60}: {m['op']} "
                                 "where a name or an int belongs")
            if kind == "op":  # a leading minus: -B+3
                sign = -1
                continue
            value = int(m["num"]) if kind == "num" else Sym.var(m["name"])
            term = value if term is None else term * value
            expect_operand = False
        elif m["op"] == "*":
            expect_operand = True
        elif kind == "op":
            total, sign, term = total + sign * term, (1 if m["op"] == "+" else -1), None
            expect_operand = True
        else:
            raise ShapeError(f"cannot read the dimension {text!r:.60}: an operator is "
                             "missing between two operands")
    if expect_operand:
        raise ShapeError(f"the dimension {text!r:.60} ends with an operator")
    result = total + sign * term
    hi = dim_bounds(result)[1]
    if hi is not None and hi < 0:
        raise ShapeError(f"a dimension is non-negative, not {result}")
    return result



def replacements(guards: list[Guard]) -> dict[str, Dim]:
    """The sizes that equality guards give symbols: `B-S == 0` makes S into B,
    `B-64 == 0` makes B into 64 (each guard solved for a lone symbol of coefficient
    +-1 that appears nowhere else in it; earlier solutions substituted first)."""
    out: dict[str, Dim] = {}
    for g in guards:
        if g.relation != "==":
            continue
        expr = substitute(g.expr, out)
        if type(expr) is int:
            continue
        for (m, c) in sorted(expr.terms, reverse=True):
            if len(m) == 1 and abs(c) == 1 and sum(m[0] in mm for mm, _ in expr.terms) == 1:
                rest = expr - c * Sym.var(m[0])
                value = -rest if c == 1 else rest
                out = {k: substitute(v, {m[0]: value}) for k, v in out.items()}
                out[m[0]] = value
                break
    return out


def substitute(d: Dim, values: dict[str, Dim]) -> Dim:
    """d with each symbol that `values` names replaced by its value there."""
    if type(d) is int or not (d.symbols & values.keys()):
        return d
    total: Dim = 0
    for m, c in d.terms:
        term: Dim = c
        for name in m:
            term = term * values.get(name, Sym.var(name))
        total = total + term
    return total
