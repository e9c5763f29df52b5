"""Pytrees: nested tuples, lists and dicts (and None) with arrays or values at the leaves.

`flatten(tree)` returns the leaves, a hashable `treedef` describing the nesting, and
each leaf's path (`params['w1']`, `xs[0]`), used for naming graph inputs and for
explaining retraces. Dict keys keep the user's order, as Python does.
"""
from __future__ import annotations

from typing import Any, Callable


def flatten(tree: Any, prefix: str = "", with_paths: bool = True
            ) -> tuple[list[Any], tuple, list[str]]:
    """(leaves, treedef, paths); paths are only built when asked for (they cost string
    formatting on every call of a compiled function)."""
    leaves: list[Any] = []
    paths: list[str] | None = [] if with_paths else None
    treedef = _flatten(tree, prefix, leaves, paths)
    return leaves, treedef, paths if paths is not None else []


def _flatten(tree, path, leaves, paths):
    if type(tree) is tuple:
        return ("tuple", tuple(_flatten(x, _sub(path, paths, i), leaves, paths)
                               for i, x in enumerate(tree)))
    if isinstance(tree, list):
        return ("list", tuple(_flatten(x, _sub(path, paths, i), leaves, paths)
                              for i, x in enumerate(tree)))
    if isinstance(tree, dict):
        keys = tuple(tree)
        return ("dict", keys, tuple(_flatten(tree[k], _sub(path, paths, repr(k)), leaves,
                                             paths) for k in keys))
    if tree is None:
        return ("none",)
    leaves.append(tree)
    if paths is not None:
        paths.append(path)
    return ("leaf",)


def _sub(path: str, paths, key) -> str:
    return f"{path}[{key}]" if paths is not None else ""


def leaves(tree: Any) -> list[Any]:
    """Just the leaves, in order."""
    return flatten(tree, with_paths=False)[0]


def unflatten(treedef: tuple, leaves: list[Any]) -> Any:
    it = iter(leaves)
    out = _unflatten(treedef, it)
    return out


def _unflatten(td, it):
    kind = td[0]
    if kind == "leaf":
        return next(it)
    if kind == "none":
        return None
    if kind == "dict":
        return {k: _unflatten(sub, it) for k, sub in zip(td[1], td[2])}
    items = [_unflatten(sub, it) for sub in td[1]]
    return tuple(items) if kind == "tuple" else items


def tree_map(fn: Callable[[Any], Any], tree: Any) -> Any:
    leaves, treedef, _ = flatten(tree)
    return unflatten(treedef, [fn(x) for x in leaves])


def describe(treedef: tuple) -> str:
    """A short human reading of a treedef, for error messages."""
    kind = treedef[0]
    if kind == "leaf":
        return "*"
    if kind == "none":
        return "None"
    if kind == "dict":
        items = (f"{k!r}: {describe(s)}" for k, s in zip(treedef[1], treedef[2]))
        return "{" + ", ".join(items) + "}"
    inner = ", ".join(describe(s) for s in treedef[1])
    return f"({inner})" if kind == "tuple" else f"[{inner}]"
