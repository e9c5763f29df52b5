"""When a dimension becomes dynamic, and which calls a symbolic entry serves.

The first call of a compiled function specializes every size. When a later call misses
the cache only because some array sizes changed (same structure, dtypes, ranks and
static values), those dimensions become symbolic (`s0`, `s1`, ...) and the function is
traced once for all their sizes, as torch.compile's automatic dynamic shapes do; sizes
0 and 1 stay specialized (a 1 broadcasts, a 0 empties). Dimensions that changed
together, from one size to one size, get one symbol: a batch axis shared by several
arguments stays one size. `graphc.compile(f, dynamic=True)` makes every dimension of
size 2 or more symbolic from the first call; `dynamic=False` never does.

>>> old = (("leaf",), (("array", (32, 784), "float32"),))
>>> new = (("leaf",), (("array", (17, 784), "float32"),))
>>> shapes, why = generalize(old, new, ["x"])
>>> shapes, why
({0: (Sym('s0'), 784)}, ['x: axis 0 is dynamic now (s0): its size changed from 32 to 17'])
>>> sizes_for(shapes, (), new)
{'s0': 17}
"""
from __future__ import annotations

from graphc.ir.symbols import MIN_SIZE, Sym


def generalize(old: tuple, new: tuple, paths: list[str]) -> tuple[dict[int, tuple], list[str]]:
    """The symbolic shapes (by leaf index) that serve both keys, and one line per
    dimension that became dynamic; ({}, []) where they differ otherwise."""
    (tree_a, leaves_a), (tree_b, leaves_b) = old, new
    if tree_a != tree_b or len(leaves_a) != len(leaves_b):
        return {}, []
    symbol_of: dict[tuple[int, int], Sym] = {}  # (old size, new size) -> its symbol
    shapes: dict[int, tuple] = {}
    why: list[str] = []
    for i, (a, b) in enumerate(zip(leaves_a, leaves_b)):
        if a == b:
            continue
        if a[0] != "array" or b[0] != "array" or a[2] != b[2] or len(a[1]) != len(b[1]):
            return {}, []
        dims = []
        for k, (m, n) in enumerate(zip(a[1], b[1])):
            if m == n or min(m, n) < MIN_SIZE:
                if m != n:  # 0 or 1 on one side: a specialization of its own
                    return {}, []
                dims.append(n)
                continue
            if (m, n) not in symbol_of:
                symbol_of[(m, n)] = Sym.var(f"s{len(symbol_of)}")
                why.append(f"{paths[i]}: axis {k} is dynamic now ({symbol_of[(m, n)]}): "
                           f"its size changed from {m} to {n}")
            dims.append(symbol_of[(m, n)])
        shapes[i] = tuple(dims)
    return shapes, why


def every_dimension(key: tuple) -> dict[int, tuple]:
    """dynamic=True: every dimension of size MIN_SIZE or more symbolic, one symbol per
    distinct size (equal sizes are taken to be one size, as a batch axis is)."""
    symbol_of: dict[int, Sym] = {}
    shapes = {}
    for i, leaf in enumerate(key[1]):
        if leaf[0] == "array" and any(n >= MIN_SIZE for n in leaf[1]):
            shapes[i] = tuple(symbol_of.setdefault(n, Sym.var(f"s{len(symbol_of)}"))
                              if n >= MIN_SIZE else n for n in leaf[1])
    return shapes


def sizes_for(shapes: dict[int, tuple], guards, key: tuple) -> dict[str, int] | None:
    """The symbols' sizes where `key` is a call that the entry traced with `shapes`
    (and guards) serves, else None: the same leaves except the symbolic dimensions,
    each symbol one size of at least MIN_SIZE, every guard holding."""
    sizes: dict[str, int] = {}
    for i, dims in shapes.items():
        leaf = key[1][i]
        if leaf[0] != "array" or len(leaf[1]) != len(dims):
            return None
        for d, n in zip(dims, leaf[1]):
            if type(d) is int:
                if d != n:
                    return None
            elif d.name is not None:
                if n < MIN_SIZE or sizes.setdefault(d.name, n) != n:
                    return None
    for i, dims in shapes.items():  # compound sizes (a guard made one): their values
        for d, n in zip(dims, key[1][i][1]):
            if type(d) is Sym and d.name is None and d.evaluate(sizes) != n:
                return None
    if not all(g.holds(sizes) for g in guards):
        return None
    return sizes


def same_elsewhere(shapes: dict[int, tuple], traced_key: tuple, key: tuple) -> bool:
    """Whether `key` equals the traced call's key in everything `shapes` leaves fixed:
    the structure, the static leaves, and each array leaf's dtype."""
    (tree_a, leaves_a), (tree_b, leaves_b) = traced_key, key
    if tree_a != tree_b or len(leaves_a) != len(leaves_b):
        return False
    for i, (a, b) in enumerate(zip(leaves_a, leaves_b)):
        if i in shapes:
            if b[0] != "array" or a[2] != b[2]:
                return False
        elif a != b:
            return False
    return True


def serving(symbolic: list, cache: dict, key: tuple):
    """The symbolic entry among `symbolic` ((entry, shapes, guards, traced key) each)
    that serves `key` (its sizes fit and its guards hold), or None; an entry the cache
    evicted (its buffers let go) is dropped from the list and serves no more."""
    symbolic[:] = [s for s in symbolic if cache.get(s[3]) is s[0]]
    for entry, shapes, guards, traced_key in symbolic:
        if same_elsewhere(shapes, traced_key, key) and sizes_for(shapes, guards, key) is not None:
            return entry
    return None


def policy_shapes(dynamic: bool | None, entries, symbolic: list, key: tuple,
                  paths: list[str]) -> tuple[dict[int, tuple], list[str]]:
    """The symbolic shapes (by leaf) a cache miss `key` is traced with, and one line per
    dimension made dynamic: with dynamic=True every dimension; else the generalization
    of the first cached, specialized entry (`entries`, less those in `symbolic`) that
    differs from `key` in sizes alone; ({}, []) where none does."""
    if dynamic:
        return every_dimension(key), ["dynamic=True: every size"]
    for old in entries:
        if all(old is not e for e, *_ in symbolic):
            shapes, why = generalize(old.keys, key, paths)
            if shapes:
                return shapes, why
    return {}, []
