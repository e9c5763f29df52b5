"""graphc as a torch.compile backend: `torch.compile(model, backend="graphc")`.

torch finds `graphc_backend` through the `torch_dynamo_backends` entry point in
pyproject.toml, so the user's script need not import graphc. Dynamo hands it each graph
it captured (an FX GraphModule over ATen-level torch calls, with fake or SymInt-shaped
example inputs: a SymInt-shaped graph, from dynamic=True or Dynamo's automatic dynamic,
is captured with graphc symbols and serves every size); graphc captures it again to
functional ATen (`capture_fx`) and
compiles it as `graphc.compile` does a function, through the same autograd.Function:
training runs graphc's own backward. A graph with an op graphc cannot translate runs
eagerly instead, with one warning naming the op and the user's line: what torch.compile
users expect of a backend.

Options come through `torch.compile(..., options={...})`: "backend" (graphc's, default
"numpy"), "check" (compare every call against the interpreter), "dump" (a folder for
the IR, fusion report and source of each graph), "passes", "cache_size", and any field
of `graphc.Options` (e.g. "native": False).

>>> import torch
>>> model = torch.compile(torch.nn.Linear(3, 2), backend="graphc")
>>> model(torch.ones(1, 3)).shape
torch.Size([1, 2])
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Callable

import torch

from graphc.errors import GraphcError, GraphcInternalError, OptionError
from graphc.torch_compile import TorchCompiled, _user_stacklevel

# what options={...} may hold besides graphc.Options' fields, and the keyword of
# graphc.compile each one is
_COMPILE_KEYS = ("backend", "check", "passes", "cache_size", "dump")


class FallbackWarning(UserWarning):
    """A Dynamo graph runs in eager torch: graphc cannot compile it (the message says
    which op, and where)."""


_warned: set[str] = set()


def graphc_backend(gm: torch.fx.GraphModule, example_inputs: list, *,
                   options: dict[str, Any] | None = None, mode: str | None = None) -> Callable:
    """The compiled form of one Dynamo graph: a callable over its flat inputs.

    `mode` (torch.compile's "max-autotune" and the like) is Inductor's and ignored.
    """
    from graphc.frontend.torch_capture import capture_fx
    kwargs = _compile_kwargs(options)
    try:
        captured = capture_fx(gm, example_inputs)
    except GraphcInternalError:
        raise
    except GraphcError as exc:
        _fallback_warning(exc)
        return gm.forward
    compiled = _DynamoGraph(gm, lambda args, _, dynamic=None: capture_fx(gm, list(args)),
                            **kwargs)
    compiled.seed(gm, example_inputs, captured)
    return compiled


class _DynamoGraph(TorchCompiled):
    """One Dynamo graph: called with its flat inputs (tensors, and ints for SymInts),
    returning what the GraphModule returns."""

    def _arg(self, k: int, tensors: list[torch.Tensor], leaves: list) -> torch.Tensor:
        return leaves[k]  # capture_fx counts every input, ints too

    def _leaf_of(self, k: int, arrays: list[int]) -> int:
        return k  # capture_fx counts every input, ints too: k is the leaf

    def _write_back(self, captured, new_values, leaves: list) -> None:
        # Dynamo passes a module's buffers as inputs: an updated one (BatchNorm's
        # running statistics) is named by its input position
        with torch.no_grad():
            for k, value in zip(captured.mutated_buffers, new_values):
                leaves[k].copy_(value)

    # Dynamo's SymInt inputs (a dynamic graph's sizes, passed as ints): their values
    # are sizes of the tensor inputs, so a symbolic capture's key leaves them out
    _size_args: frozenset[int] = frozenset()

    def _key(self, leaves: list, spec) -> tuple[tuple, list[torch.Tensor]]:
        key, tensors = super()._key(leaves, spec)
        if self._size_args:
            tree, keys = key
            key = (tree, tuple(("size",) if i in self._size_args else k
                               for i, k in enumerate(keys)))
        return key, tensors

    def seed(self, gm: torch.fx.GraphModule, example_inputs: list, captured) -> None:
        """Enter the capture made on the example inputs, so that the first real call
        with their shapes does not capture again; a symbolic one (Dynamo's SymInts) as
        the entry that serves every size its guards admit."""
        import torch.utils._pytree as pytree
        from graphc.frontend.torch_capture import _concrete, symbolic_positions
        from graphc.torch_compile import TorchEntry
        ints, _ = symbolic_positions(gm)
        self._size_args = frozenset(ints)
        args = tuple(map(_concrete, example_inputs))  # (a key reads shapes and dtypes)
        key, _ = self._key(*pytree.tree_flatten((args, {})))
        entry = TorchEntry(captured, self._paths(args, {}), key)
        self._insert(key, entry)
        shapes = self._symbolic_shapes(captured, key)
        if shapes:
            self._symbolic.append((entry, shapes, captured.graph.guards, key))


def _compile_kwargs(options: dict[str, Any] | None) -> dict[str, Any]:
    """graphc.compile's keywords from torch.compile's options dict; the keys left are
    graphc.Options fields (an unknown one is an OptionError, here, at compile time)."""
    from graphc.backends.options import resolve
    rest = dict(options or {})
    kwargs = {k: rest.pop(k) for k in _COMPILE_KEYS if k in rest}
    if kwargs.get("dump"):
        os.makedirs(kwargs["dump"], mode=0o700, exist_ok=True)
    try:
        kwargs["options"] = resolve(rest)
    except OptionError as exc:
        exc.loc = None  # the line found would be inside torch: the options dict is the user's
        raise
    return kwargs


def _fallback_warning(exc: GraphcError) -> None:
    """Say once per op (or per message) that a graph runs eagerly, and why."""
    what = getattr(exc, "op", None) or exc.message
    if what in _warned:
        return
    _warned.add(what)
    warnings.warn(f"graphc cannot compile this graph, so torch.compile runs it eagerly: "
                  f"{exc}", FallbackWarning, stacklevel=_user_stacklevel())
