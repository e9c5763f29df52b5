"""`graphc.compile` for PyTorch: an nn.Module, or a function called with torch tensors.

A call is keyed on the module's mode (`training`), each tensor argument's shape and
dtype, and the non-tensor arguments (static: baked into the graph). A miss captures the
call to ATen and into graphc IR (frontend/torch_capture.py), saying why it retraced as
the numpy path does (graphc/retrace.py). Sizes follow graphc.compile's dynamic policy
(graphc/dynamic.py): a miss caused by sizes alone captures with those dimensions
symbolic, and that entry serves every size its guards admit. Each captured entry then compiles one
`Program` (graphc/torch_autograd.py) per pattern of inputs needing a gradient: none
(inference, torch.no_grad) compiles the forward alone; otherwise autodiff, the
rematerialization split and both halves through the pipeline and the backend
(`graphc.transforms.lower_split`). Freezing a parameter or switching grad mode compiles
another pattern of the same capture, without capturing again.

Parameters and buffers are read from the module on every call, never copied: an
optimizer stepping `model.parameters()` changes what the next call computes. Buffers
the forward updates (BatchNorm's running statistics in train mode) are written back.

>>> import torch, graphc
>>> lin = torch.nn.Linear(3, 2)
>>> model = graphc.compile(lin)
>>> x = torch.ones(4, 3)
>>> torch.allclose(model(x), lin(x))
True
>>> model.module is lin
True
"""
from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
import torch.utils._pytree as pytree

from graphc import dtypes
from graphc.api import Lowered, checked, lower_graph
from graphc.backends import settings
from graphc.backends.options import Options, resolve as resolve_options
from graphc.cache import SignatureCache
from graphc.errors import ArgumentError, GraphcError, is_compiler_file
from graphc.frontend.trace import leaf_key
from graphc.retrace import explain_retrace, report_retrace
from graphc.torch_autograd import Program, run_program
from graphc.transforms import _as_traced, lower_split

_TORCH_DIR = torch.__file__.rsplit("/", 1)[0]
_TRAINING_HINT = ("train() and eval() compile apart, once each: switch modes between "
                  "epochs, not between calls")


class _Refused(Exception):
    """A leaf a torch call cannot take; `error(path)` raises or returns its error."""

    def __init__(self, index: int, error: Callable[[str], Any]):
        self.index, self.error = index, error


def _numpy_leaf(path: str) -> ArgumentError:
    return ArgumentError(f"argument {path} is a numpy array in a call with torch tensors",
                         hint="pass torch tensors only (torch.from_numpy(a) shares the "
                              "array's memory), or only numpy arrays")


@dataclass
class TorchEntry:
    """One captured signature and its Programs, one per pattern of needed gradients."""

    captured: Any  # frontend.torch_capture.Captured
    paths: list[str]
    keys: tuple
    used: int = 0
    programs: dict[tuple[bool, ...], Program] = field(default_factory=dict)
    lowered: list[Lowered] = field(default_factory=list)  # every half compiled for it
    run: None = None  # what the C fast path calls for a numpy entry: none here

    def release(self) -> None:
        """Let every compiled half's buffer pools go (the cache evicted this entry)."""
        for low in self.lowered:
            release = getattr(low.executable, "release", None)
            if release is not None:
                release()


class TorchCompiled(SignatureCache):
    """A function of torch tensors, compiled per signature (see the module docstring).

    `capture(args, kwargs)` returns a `Captured`; `fn` is what errors and dumps name.
    """

    def __init__(self, fn: Callable, capture: Callable, backend: str = "numpy", passes=None,
                 check: bool | None = None, cache_size: int | None = None,
                 options: Options | dict | None = None, dump: str | None = None,
                 dynamic: bool | None = None):
        from graphc.backends import get
        from graphc.passes.pipeline import resolve
        resolve(passes)  # an unknown pass name is an error at the compile call
        if cache_size is not None and (type(cache_size) is not int or cache_size < 0):
            raise ArgumentError(f"cache_size={cache_size!r} is not a number of entries",
                                hint="pass an int >= 0 (0: no limit), or leave it out "
                                     "for GRAPHC_CACHE_ENTRIES (default 64)")
        self.fn, self._capture_fn = fn, capture
        self.options = resolve_options(options)
        self.backend_name, self.backend, self.passes = backend, get(backend), passes
        self.check, self.dump = check, dump  # dump: a folder, over GRAPHC_DUMP
        self._init_cache(cache_size)
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)
        # captures with symbolic sizes (graphc/dynamic.py's policy, as graphc.compile's):
        # (entry, symbolic shapes by key leaf, guards, the key it was captured for)
        self._symbolic: list[tuple[TorchEntry, dict[int, tuple], tuple, tuple]] = []
        self.dynamic = dynamic  # graphc.compile's: None automatic, True, False
        self._static_only = dynamic is False  # (or a symbolic capture failed once)

    def __call__(self, *args, **kwargs):
        try:
            return self._call(args, kwargs)
        except GraphcError as exc:
            raise exc.with_traceback(None) from exc.__cause__  # kept: internal errors

    # ---- one call -----------------------------------------------------------------

    def _call(self, args: tuple, kwargs: dict) -> Any:
        # the fast path: positional tensors only, looked up by shapes and dtypes
        fast_key = None if kwargs else self._fast_key(args)
        entry = self._fast.get(fast_key) if fast_key is not None else None
        if entry is not None:
            entry.used = self._stats.hit()
            tensors = leaves = list(args)
        else:
            leaves, spec = pytree.tree_flatten((args, kwargs))
            try:
                key, tensors = self._key(leaves, spec)
            except _Refused as refused:  # named here: paths cost a walk a hit never pays
                raise refused.error(self._paths(args, kwargs)[refused.index]) from None
            entry = self._cache.get(key) or self._symbolic_entry(key)
            if entry is None:
                entry = self._capture(args, kwargs, key)
            else:
                entry.used = self._stats.hit()
            if fast_key is not None:
                self._fast[fast_key] = entry
        captured = entry.captured
        inputs = self._inputs(captured, tensors, leaves)
        grad_mode = torch.is_grad_enabled()
        pattern = tuple(grad_mode and t.requires_grad for t in inputs)
        program = entry.programs.get(pattern) or self._compile(entry, pattern)
        outs = run_program(program, inputs)
        n = captured.n_outputs
        self._write_back(captured, outs[n:], leaves)
        return captured.output_spec.rebuild(outs[:n])

    def _mode(self) -> tuple[list[str], list[tuple]]:
        """Paths and keys of what besides the arguments selects a capture."""
        return [], []

    def _fast_key(self, args: tuple) -> tuple | None:
        """The fast path's key (shapes and dtypes), or None: not all plain tensors."""
        key: tuple = ()
        for a in args:
            if type(a) is not torch.Tensor and type(a) is not torch.nn.Parameter:
                return None
            key += (a.shape, a.dtype)
        return key

    def _key(self, leaves: list, spec) -> tuple[tuple, list[torch.Tensor]]:
        """The cache key of a call, and its tensor leaves in pytree order."""
        tensors, keys = [], list(self._mode()[1])
        for i, leaf in enumerate(leaves):
            if isinstance(leaf, torch.Tensor):
                tensors.append(leaf)
                keys.append(("array", tuple(leaf.shape), _dtype_name(leaf.dtype)))
            elif isinstance(leaf, np.ndarray):  # its key would not hold its values
                raise _Refused(i, _numpy_leaf)
            else:
                try:
                    keys.append(leaf_key(leaf.item() if isinstance(leaf, np.generic)
                                         else leaf, ""))
                except ArgumentError:
                    raise _Refused(i, lambda path: leaf_key(leaf, path)) from None
        return (("torch", spec), tuple(keys)), tensors

    def _inputs(self, captured, tensors: list[torch.Tensor], leaves: list) -> list[torch.Tensor]:
        """The graph's inputs, in its order, for this call."""
        out = []
        for kind, ref in captured.input_kinds:
            if kind == "arg":
                out.append(self._arg(ref, tensors, leaves))
            elif kind == "seed":  # drawn from torch's generator: manual_seed repeats it
                out.append(torch.randint(0, 2**62, (), dtype=torch.int64))
            else:
                out.append(self._state(kind, ref))
        return out

    def _arg(self, k: int, tensors: list[torch.Tensor], leaves: list) -> torch.Tensor:
        return tensors[k]  # the k-th tensor leaf (Dynamo's graphs count every input)

    def _state(self, kind: str, name: str) -> torch.Tensor:
        raise GraphcError(f"{self.__name__}: a captured function has no {kind} {name!r}",
                          loc=False)

    def _write_back(self, captured, new_values, leaves: list) -> None:
        """Buffers the forward updated (BatchNorm's running statistics)."""

    # ---- misses -------------------------------------------------------------------

    def _capture(self, args: tuple, kwargs: dict, key: tuple) -> TorchEntry:
        from graphc.internal import stage
        with self._stats.lock:
            entry = self._cache.get(key)
            if entry is not None:  # another thread captured it meanwhile
                self._stats.hit()
                return entry
            paths = self._mode()[0] + self._paths(args, kwargs)
            seen = list(self._cache.values())
            with stage("trace", self.fn):
                captured, shapes, dynamic = self._capture_sized(args, kwargs, key, paths)
            if seen:
                text = explain_retrace(self.__name__, seen, paths, key, dynamic)
                self._stats.warned = report_retrace(
                    self.__name__, seen, paths, key, self._stats.misses,
                    self._stats.warned, stacklevel=_user_stacklevel(), text=text)
            entry = TorchEntry(captured, paths, key)
            self._insert(key, entry)
            if shapes:
                self._symbolic.append((entry, shapes, captured.graph.guards, key))
            return entry

    def _capture_sized(self, args: tuple, kwargs: dict, key: tuple, paths: list[str]
                       ) -> tuple[Any, dict[int, tuple], list[str]]:
        """The capture of this call: with symbolic sizes where the dynamic policy makes
        some (a retrace caused by sizes alone), else fixed; its symbolic input shapes
        by key leaf ({}: none); and what became dynamic, or why nothing did."""
        from graphc.dynamic import policy_shapes
        shapes, why = ({}, []) if self._static_only else policy_shapes(
            self.dynamic, self._cache.values(), self._symbolic, key, paths)
        if shapes:
            arrays = [i for i, leaf in enumerate(key[1]) if leaf[0] == "array"]
            dynamic = {arrays.index(i): tuple(k for k, d in enumerate(dims) if type(d) is not int)
                       for i, dims in shapes.items()}
            try:
                captured = self._capture_fn(args, kwargs, dynamic=dynamic)
                _rename_symbols(captured, shapes, arrays)
                symbolic = self._symbolic_shapes(captured, key)  # ({}: torch fixed them)
                return captured, symbolic, why if symbolic else []
            except GraphcError as exc:  # sizes it cannot take symbolically: fixed
                self._static_only = True
                return self._capture_fn(args, kwargs), {}, [
                    f"the sizes stay specialized: {exc.message}"]
        return self._capture_fn(args, kwargs), {}, []

    def _symbolic_shapes(self, captured, key: tuple) -> dict[int, tuple]:
        """The capture's symbolic argument shapes, by key leaf."""
        arrays = [i for i, leaf in enumerate(key[1]) if leaf[0] == "array"]
        return {self._leaf_of(k, arrays): v.type.shape
                for v, (kind, k) in zip(captured.graph.inputs, captured.input_kinds)
                if kind == "arg" and not v.type.static}

    def _leaf_of(self, k: int, arrays: list[int]) -> int:
        """The key leaf of the capture's argument k (the k-th tensor leaf)."""
        return arrays[k]

    def _symbolic_entry(self, key: tuple) -> TorchEntry | None:
        """The symbolic capture that serves this call's sizes, if one does."""
        from graphc.dynamic import serving
        return serving(self._symbolic, self._cache, key)

    def _paths(self, args: tuple, kwargs: dict) -> list[str]:
        """Readable paths of the leaves of (args, kwargs), named for fn's parameters."""
        try:
            params = [p.name for p in inspect.signature(self.fn).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        except (TypeError, ValueError):
            params = []
        paths = []
        for keypath, _ in pytree.tree_flatten_with_path((args, kwargs))[0]:
            where, first, rest = keypath[0], keypath[1], keypath[2:]
            if where.idx == 0:
                i = first.idx
                name = params[i] if i < len(params) else f"args[{i}]"
            else:
                name = str(first.key)
            paths.append(name + pytree.keystr(rest))
        return paths

    def _compile(self, entry: TorchEntry, pattern: tuple[bool, ...]) -> Program:
        """The Program for one pattern of inputs needing a gradient."""
        with self._stats.lock:
            program = entry.programs.get(pattern)
            if program is not None:
                return program
            captured = entry.captured
            graph = captured.graph
            wrt = [i for i, need in enumerate(pattern)
                   if need and dtypes.is_float(graph.inputs[i].type.dtype)]
            if not wrt:
                halves = [lower_graph(_as_traced(graph), self.fn, self.backend, self.passes,
                                      self.options)]
                takes: list[int] = []
            else:
                split = lower_split(graph, wrt, self.backend, self.options, self.passes,
                                    n_seeded=captured.n_outputs, fn=self.fn)
                halves, takes = [split.forward, split.backward], split.takes
            check = self.check if self.check is not None else settings.get("GRAPHC_CHECK")
            runs = [checked(self.__name__, h) if check else h.executable.fn for h in halves]
            for low in halves:
                _dump(self.fn, low, self.dump)
            entry.lowered += halves
            n = captured.n_outputs
            program = Program(
                self.__name__, runs[0], runs[1] if wrt else None,
                [np.dtype(_numpy_dtype(v.type.dtype)) for v in graph.inputs],
                [(v.type.shape, np.dtype(_numpy_dtype(v.type.dtype)))
                 for v in graph.outputs[:n]],
                n, len(captured.mutated_buffers), wrt, takes,
                tensors=not check and all(getattr(h.executable, "takes_tensors", False)
                                          for h in halves))
            entry.programs[pattern] = program
            return program


class CompiledModule(TorchCompiled, torch.nn.Module):
    """What `graphc.compile(module)` returns: an nn.Module used like `module` (same
    arguments, torch tensors and ModelOutputs out), whose parameters and buffers are
    `module`'s own (`.module`; state_dict keys gain the prefix `module.`, as DDP's do).
    """

    def __init__(self, module: torch.nn.Module, **kwargs):
        from graphc.frontend.torch_capture import capture_module
        torch.nn.Module.__init__(self)
        self.module = module

        def capture(args, kwargs, dynamic=None):
            return capture_module(self.module, args, kwargs, dynamic)
        TorchCompiled.__init__(self, module.forward, capture, **kwargs)
        self.__name__ = type(module).__name__
        self._owners: dict[tuple[str, str], tuple[dict, str]] = {}

    def forward(self, *args, **kwargs):
        try:
            return self._call(args, kwargs)
        except GraphcError as exc:
            raise exc.with_traceback(None) from exc.__cause__  # kept: internal errors

    __call__ = torch.nn.Module.__call__  # hooks, DDP: an nn.Module's call

    def _mode(self) -> tuple[list[str], list[tuple]]:
        return [f"{self.__name__}.training"], [("mode", _TRAINING_HINT, self.module.training)]

    def _fast_key(self, args: tuple) -> tuple | None:
        key = TorchCompiled._fast_key(self, args)
        return None if key is None else (self.module.training, *key)

    def _state(self, kind: str, name: str) -> torch.Tensor:
        # looked up on each call, in the submodule's own table: a parameter the user
        # replaced is the one used (a replaced submodule is not: compile the new model)
        owner = self._owners.get((kind, name))
        if owner is None:
            path, _, attr = name.rpartition(".")
            sub = self.module.get_submodule(path)
            owner = self._owners[kind, name] = (
                sub._parameters if kind == "param" else sub._buffers, attr)
        table, attr = owner
        return table[attr]

    def _write_back(self, captured, new_values, leaves: list) -> None:
        if not new_values:
            return
        with torch.no_grad():
            for name, value in zip(captured.mutated_buffers, new_values):
                self._state("buffer", name).copy_(value)


def compile_module(module: torch.nn.Module, **kwargs) -> CompiledModule:
    """`graphc.compile(module)`: see CompiledModule."""
    return CompiledModule(module, **kwargs)


def compile_function(fn: Callable, **kwargs) -> TorchCompiled:
    """`graphc.compile(fn)` called with torch tensors: fn captured through torch."""
    from graphc.frontend.torch_capture import capture_function
    return TorchCompiled(fn, lambda args, kw, dynamic=None: capture_function(fn, args, kw, dynamic),
                         **kwargs)


_DTYPE_NAMES: dict[torch.dtype, str] = {}


def _rename_symbols(captured, shapes: dict[int, tuple], arrays: list[int]) -> None:
    """torch's names for the symbolic sizes (`s26`) as the dynamic policy named them
    (`s0`, as the retrace explanation says), where an input axis shows which is which."""
    from graphc.ir.sizes import rename_in_place
    from graphc.ir.symbols import Sym
    names: dict[str, Sym] = {}
    for v, (kind, k) in zip(captured.graph.inputs, captured.input_kinds):
        want = shapes.get(arrays[k]) if kind == "arg" else None
        for d, w in zip(v.type.shape, want or ()):
            if type(d) is Sym and d.name is not None and type(w) is Sym:
                names.setdefault(d.name, w)
    if names and len(set(map(str, names.values()))) == len(names):  # one to one
        rename_in_place(captured.graph, names)


def _dtype_name(dtype: torch.dtype) -> str:
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = str(dtype).removeprefix("torch.")
    return name


def _numpy_dtype(name: str) -> np.dtype:
    # bfloat16 runs in float32 on the numpy backend (torch_autograd widens it)
    return np.dtype("float32") if name == "bfloat16" else dtypes.to_numpy(name)


def _dump(fn: Callable, lowered: Lowered, directory: str | None) -> None:
    from graphc.dump import write_lowered
    write_lowered(fn, lowered, directory)


def _user_stacklevel() -> int:
    """warnings.warn's stacklevel, counted from our caller, that names the user's line:
    past graphc's frames and torch's (nn.Module.__call__, Dynamo)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and (is_compiler_file(frame.f_code.co_filename) or
                                 frame.f_code.co_filename.startswith(_TORCH_DIR)):
        frame, level = frame.f_back, level + 1
    return level
