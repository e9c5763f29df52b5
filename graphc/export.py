"""`graphc.export` and `graphc.load`: a traced function as one text file that runs elsewhere.

The file is the graph as traced (before passes, so that loading optimizes it for the
machine it runs on), headed by three lines that say how to call it:

    # graphc export format 1, graphc 0.1.0
    # inputs: {"args": [["w", {"array": "f32[3,2]"}], ["x", {"array": "f32[4,3]"}]], ...
    # outputs: {"tuple": [{"output": 0}]}
    graph predict(%w: f32[3,2], %x: f32[4,3]) -> (f32[4,2]) {
      %0: f32[4,2] = matmul %x, %w                      # model.py:7
      return %0
    }

The two signature lines are JSON (never pickle, never evaluated): `inputs` names each
positional argument and keyword, with the pytree of each, an array leaf by its IR type
and a static leaf by its value; `outputs` is the result's pytree, a leaf either a graph
output's index or a static value. A loaded file is data: every line is parsed strictly,
the graph through `graphc.ir.parse` and `Graph.verify`, and the signature is checked
against the graph's own inputs and outputs before anything runs.
"""
from __future__ import annotations

import inspect
import json
import math
import os
import re
import threading
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from graphc import dtypes
from graphc.errors import ArgumentError, GraphcError, IRParseError
from graphc.frontend.pytree import describe, flatten, unflatten
from graphc.frontend.trace import Traced, flat_call, trace_function
from graphc.ir import Graph, TensorType, parse, print_graph

FORMAT = 1  # bump when a reader of this format could not read the new one

_HEADER = re.compile(r"# graphc export format (\d+), graphc ([0-9A-Za-z.+_-]{1,40})\Z")
_TYPE = re.compile(r"([a-z0-9]+)\[((?:0|[1-9]\d*)(?:,(?:0|[1-9]\d*))*)?\]\Z")
_ARG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*(?:\[\d+\])?\Z")
_MAX_DEPTH = 64  # pytrees nest a few levels; a deeper one in a file is an attack
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


@dataclass(frozen=True)
class Static:
    """A static leaf of a signature: a value baked into the graph."""

    value: Any


class _Bad(ValueError):
    """A signature line that is not what the format says (caught and given its line)."""


class Exported:
    """A traced function ready to save and to call: what `graphc.export` and
    `graphc.load` return.

    `graph` is the graph as traced; `args` the positional parameters as (name, spec)
    pairs and `kwargs` the keywords as a dict, a spec being the argument's pytree with
    a `TensorType` or a `Static` at each leaf; `outputs` the result's pytree with a
    graph output's index or a `Static` at each leaf. Calling it compiles the graph on
    the first call, for `backend`, and checks every call against the signature.

    >>> import graphc, numpy as np
    >>> exp = graphc.export(lambda x, k=2.0: np.tanh(x) * k, np.zeros(3, np.float32))
    >>> str(exp).splitlines()[0].startswith("# graphc export format 1")
    True
    >>> graphc.load(str(exp))(np.zeros(3, np.float32))
    array([0., 0., 0.], dtype=float32)
    """

    def __init__(self, graph: Graph, args: tuple, kwargs: dict, outputs: Any,
                 backend: str = "numpy", version: str | None = None):
        self.graph, self.args, self.kwargs, self.outputs = graph, tuple(args), kwargs, outputs
        self.backend = backend
        self.version = version or _graphc_version()
        self._run: Callable | None = None
        self._lock = threading.Lock()

    @property
    def in_tree(self) -> tuple:
        """The pytree structure of (args, kwargs), as `frontend.pytree.flatten` gives it."""
        return flatten((tuple(s for _, s in self.args), self.kwargs))[1]

    @property
    def out_tree(self) -> tuple:
        return flatten(self.outputs)[1]

    @property
    def statics(self) -> dict[str, Any]:
        """The static values baked into the graph, by argument path."""
        return {p: leaf.value for p, leaf in self._leaves() if isinstance(leaf, Static)}

    def signature(self) -> str:
        """One line, as a reader would write the call: `name(x: f32[4,3], *, k=2.0) ->
        f32[4,3]`."""
        params = [f"{n}: {_show(s, self.graph)}" for n, s in self.args]
        if self.kwargs:
            params.append("*")
            params += [f"{k}={_show(s, self.graph)}" for k, s in self.kwargs.items()]
        return f"{self.graph.name}({', '.join(params)}) -> {_show(self.outputs, self.graph)}"

    def __str__(self) -> str:
        inputs = {"args": [[n, _encode(s, n)] for n, s in self.args],
                  "kwargs": [[k, _encode(s, k)] for k, s in self.kwargs.items()]}
        outputs = _encode(self.outputs, "output")
        return "\n".join([f"# graphc export format {FORMAT}, graphc {self.version}",
                          "# inputs: " + json.dumps(inputs, allow_nan=False),
                          "# outputs: " + json.dumps(outputs, allow_nan=False),
                          print_graph(self.graph)]) + "\n"

    def __repr__(self) -> str:
        return f"<graphc.Exported {self.signature()}>"

    def save(self, path: str | os.PathLike) -> None:
        """Write the file (`str(self)`); `graphc.load(path)` reads it back."""
        with open(path, "w", encoding="utf-8") as f:
            f.write(str(self))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            flat = self._flat_inputs(args, kwargs)
            outputs = (self._run or self._compile())(*flat)
            leaves, treedef, _ = flatten(self.outputs)
            return unflatten(treedef, [x.value if isinstance(x, Static) else outputs[x]
                                       for x in leaves])
        except GraphcError as exc:
            raise exc.with_traceback(None) from exc.__cause__

    def _compile(self) -> Callable:
        from graphc.api import lower_graph
        from graphc.backends import get
        with self._lock:
            if self._run is None:
                n = len(self.graph.outputs)
                traced = Traced(self.graph, flatten(tuple(range(n)))[1], list(range(n)),
                                [p for p, _ in self._leaves()])
                self._run = lower_graph(traced, None, get(self.backend)).executable.fn
        return self._run

    def _leaves(self) -> list[tuple[str, Any]]:
        """(path, spec leaf) for every leaf of the inputs, in the graph's order."""
        pairs = []
        for name, spec in [*self.args, *self.kwargs.items()]:
            leaves, _, paths = flatten(spec, name)
            pairs += zip(paths, leaves)
        return pairs

    def _flat_inputs(self, args: tuple, kwargs: dict) -> list:
        """The array leaves of a call, checked against the signature: its structure,
        each array's shape and dtype, each static value."""
        if len(args) != len(self.args):
            names = ", ".join(n for n, _ in self.args)
            raise ArgumentError(f"{self.graph.name} takes {len(self.args)} positional "
                                f"arguments ({names}), given {len(args)}",
                                hint=f"call it as {self.signature()}")
        unknown = sorted(set(kwargs) - set(self.kwargs))
        if unknown:
            raise ArgumentError(f"{self.graph.name} has no keyword argument {unknown[0]!r}; "
                                f"it takes {', '.join(self.kwargs) or 'none'}",
                                hint=f"call it as {self.signature()}")
        given = [(n, s, a) for (n, s), a in zip(self.args, args)]
        for name, spec in self.kwargs.items():
            if name in kwargs:
                given.append((name, spec, kwargs[name]))
            elif any(not isinstance(x, Static) for x in flatten(spec)[0]):
                raise ArgumentError(f"{self.graph.name} needs keyword argument {name}: "
                                    f"{_show(spec, self.graph)}",
                                    hint=f"call it as {self.signature()}")
        flat = []
        for name, spec, value in given:
            flat += _check_argument(name, spec, value)
        return flat


def _check_argument(name: str, spec: Any, value: Any) -> list:
    want_leaves, want_tree, paths = flatten(spec, name)
    got_leaves, got_tree, _ = flatten(value)
    if got_tree != want_tree:
        raise ArgumentError(f"argument {name} has structure {describe(got_tree)}; the "
                            f"exported function takes {describe(want_tree)}",
                            hint="pass the same nesting of tuples, lists and dicts (with "
                                 "the same keys) as at export")
    arrays = []
    for path, want, got in zip(paths, want_leaves, got_leaves):
        if isinstance(want, Static):
            if not _same_static(want.value, got):
                raise ArgumentError(f"argument {path} is static: it was exported as "
                                    f"{want.value!r}, given {got!r}",
                                    hint="export again with this value, or pass the "
                                         "exported one")
            continue
        if not isinstance(got, (np.ndarray, np.generic)):
            raise ArgumentError(f"argument {path} must be a numpy array {want}, given a "
                                f"{type(got).__name__}",
                                hint=f"pass np.asarray(..., dtype=np.{want.dtype})")
        try:
            got_dtype = dtypes.canonical(got.dtype)
        except Exception:
            got_dtype = str(got.dtype)
        if tuple(got.shape) != want.shape or got_dtype != want.dtype:
            given = str(TensorType(got.shape, got_dtype)) if got_dtype in dtypes.DTYPES \
                else f"{got_dtype}[{','.join(map(str, got.shape))}]"
            raise ArgumentError(f"argument {path} was exported as {want}, given {given}",
                                hint="an exported graph has fixed shapes and dtypes: export "
                                     "again with arrays like these, or cast/reshape them")
        arrays.append(got)
    return arrays


def _same_static(want: Any, got: Any) -> bool:
    if type(want) is not type(got):
        return False
    return want == got or (want != want and got != got)  # nan is nan


def _graphc_version() -> str:
    import graphc  # the face: loaded by now, whoever called
    return graphc.__version__


# ---- export ---------------------------------------------------------------------------

def export(f: Callable, *example_args: Any, **kwargs: Any) -> Exported:
    """Trace `f` on example arguments into an `Exported`: `.graph`, `str(exp)` (the
    file's text), `exp.save(path)`; `graphc.load` reads it back, in any process.

    `f` is a numpy function, a `graphc.compile`d one, or what `graphc.grad` /
    `graphc.value_and_grad` return. Array leaves of the arguments are the inputs (their
    shapes and dtypes fixed); other leaves are static and must be JSON values: int,
    float, bool, str (None and tuples, lists, dicts of them are pytree structure).

    >>> import graphc, numpy as np
    >>> exp = graphc.export(lambda p, x: x @ p["w"], {"w": np.ones((3, 2))}, np.ones((4, 3)))
    >>> exp.signature()
    "lambda(p: {'w': f64[3,2]}, x: f64[4,3]) -> f64[4,2]"
    """
    from graphc.api import CompiledFunction
    from graphc.transforms import GradFunction
    target, name = f, None
    if isinstance(f, CompiledFunction):
        target = f.fn
    elif isinstance(f, GradFunction):
        name = f._compiled.fn.__name__  # value_and_grad_loss, as its compiled form says
    try:
        flat = flat_call(target, example_args, kwargs)
        traced = trace_function(target, example_args, kwargs, name=name, flat=flat)
    except GraphcError as exc:
        raise exc.with_traceback(None) from exc.__cause__
    specs = [_input_spec(leaf, key, path)
             for leaf, key, path in zip(flat.leaves, flat.key[1], flat.paths)]
    args_spec, kwargs_spec = unflatten(flat.key[0], specs)
    names = _positional_names(target, len(example_args))
    outputs = unflatten(traced.out_treedef,
                        [s if isinstance(s, int) else Static(_static(s[1], f"output {i}"))
                         for i, s in enumerate(traced.out_slots)])
    return Exported(traced.graph, tuple(zip(names, args_spec)), dict(kwargs_spec), outputs)


def _input_spec(leaf: Any, key: tuple, path: str) -> Any:
    if key[0] == "array":
        return TensorType(key[1], key[2])
    return Static(_static(leaf, f"argument {path}"))


def _static(value: Any, what: str) -> Any:
    """`value` if a file can hold it exactly (a JSON value), else a GraphcError."""
    if type(value) in (bool, int, float, str):
        return value
    raise GraphcError(f"{what} is a static {type(value).__name__} ({value!r:.60}), which "
                      "an exported file cannot hold",
                      hint="static values in an export must be int, float, bool, str or "
                           "None (or tuples, lists, dicts of them); pass an array, or "
                           "close over the value in the function you export")


def _positional_names(fn: Callable, n: int) -> list[str]:
    """Names for the positional arguments, as retrace messages name them."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    named = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    var = next((p.name for p in params if p.kind == p.VAR_POSITIONAL), "arg")
    return [named[i] if i < len(named) else f"{var}[{i}]" for i in range(n)]


def _encode(spec: Any, path: str) -> Any:
    """A spec pytree as JSON: one single-key object a node, null for None."""
    if spec is None:
        return None
    if isinstance(spec, TensorType):
        return {"array": str(spec)}
    if isinstance(spec, Static):
        v = spec.value
        return {"static": {"float": repr(v)} if type(v) is float and not math.isfinite(v)
                else v}
    if isinstance(spec, int):
        return {"output": spec}
    if isinstance(spec, dict):
        for k in spec:
            if type(k) not in (str, int, bool):
                raise GraphcError(f"{path} has a dict key {k!r} of type {type(k).__name__}, "
                                  "which an exported file cannot hold",
                                  hint="use str or int keys in the pytrees you export")
        return {"dict": [[k, _encode(v, f"{path}[{k!r}]")] for k, v in spec.items()]}
    kind = "tuple" if type(spec) is tuple else "list"
    return {kind: [_encode(v, f"{path}[{i}]") for i, v in enumerate(spec)]}


def _show(spec: Any, graph: Graph) -> str:
    """A spec pytree as a reader writes it: `{'w': f32[3,2]}`, `(f32[], 2.0)`."""
    if spec is None:
        return "None"
    if isinstance(spec, TensorType):
        return str(spec)
    if isinstance(spec, Static):
        return repr(spec.value)
    if isinstance(spec, int):
        return str(graph.outputs[spec].type)
    if isinstance(spec, dict):
        return "{" + ", ".join(f"{k!r}: {_show(v, graph)}" for k, v in spec.items()) + "}"
    inner = ", ".join(_show(v, graph) for v in spec)
    if type(spec) is tuple:
        return f"({inner},)" if len(spec) == 1 else f"({inner})"
    return f"[{inner}]"


# ---- load -----------------------------------------------------------------------------

def load(source: str | os.PathLike, backend: str | None = None) -> Exported:
    """An exported function from a file (a path) or its text; a bare graph text (as
    `print(graph)` shows it) loads too, taking its inputs positionally and returning a
    tuple of its outputs. It compiles on the first call, for `backend` (default numpy).

    The file is data: it is parsed and verified, never run as Python. A file of a newer
    format, a malformed line, or a graph that does not verify is a GraphcError.

    >>> import graphc, numpy as np
    >>> g = graphc.load("graph f(%x: f64[2]) -> (f64[2]) {\\n  %0: f64[2] = neg %x\\n"
    ...                 "  return %0\\n}")
    >>> g(np.array([1.0, 2.0]))
    (array([-1., -2.]),)
    """
    from graphc.backends import get
    backend = backend or "numpy"
    get(backend)  # an unknown backend fails here, not at the first call
    text, origin = _read_source(source)
    try:
        return _from_text(text, origin, backend)
    except GraphcError as exc:
        raise exc.with_traceback(None) from exc.__cause__


def _read_source(source: Any) -> tuple[str, str]:
    if isinstance(source, str) and source.lstrip().startswith(("# graphc export", "graph ")):
        return source, "the text"
    if not isinstance(source, (str, os.PathLike)):
        raise ArgumentError(f"graphc.load takes a path or a graph text, not a "
                            f"{type(source).__name__}",
                            hint="pass the path graphc.Exported.save wrote, or its text")
    try:
        with open(source, encoding="utf-8") as f:
            return f.read(), os.fspath(source)
    except (OSError, UnicodeDecodeError) as exc:
        raise GraphcError(f"cannot read {os.fspath(source)!r}: {exc}",
                          hint="pass the path of a file graphc.Exported.save wrote, or a "
                               "text that starts with '# graphc export' or 'graph '",
                          loc=False) from None


def _from_text(text: str, origin: str, backend: str) -> Exported:
    lines = text.splitlines()  # as ir.parse counts them, so line numbers agree
    if lines and lines[0].startswith("# graphc export"):
        version = _header(lines[0], origin)
        args, kwargs = _inputs(_signature_line(lines, 2, "inputs", origin), origin)
        outputs = _json_tree(_signature_line(lines, 3, "outputs", origin), origin, 3, True)
    else:
        version, args, kwargs, outputs = None, None, {}, None
    graph = _parse_graph(text, origin)
    if args is None:  # a bare graph: positional arrays in, a tuple out
        args = tuple((v.name if _ARG_NAME.match(v.name) else f"arg{i}", v.type)
                     for i, v in enumerate(graph.inputs))
        outputs = tuple(range(len(graph.outputs)))
    exp = Exported(graph, args, kwargs, outputs, backend, version)
    _check_against_graph(exp, origin)
    return exp


def _fail(origin: str, lineno: int, message: str, hint: str | None = None) -> IRParseError:
    return IRParseError(f"{origin}, line {lineno}: {message}",
                        hint=hint or "this line is written by graphc.export; export again, "
                                     "or restore the line as it was", loc=False)


def _header(line: str, origin: str) -> str:
    m = _HEADER.match(line)
    if m is None:
        raise _fail(origin, 1, f"expected '# graphc export format N, graphc VERSION', "
                               f"found {line[:80]!r}")
    number, version = int(m.group(1)), m.group(2)
    if number > FORMAT:
        raise GraphcError(f"{origin} is export format {number} (written by graphc "
                          f"{version}); this graphc ({_graphc_version()}) reads format "
                          f"{FORMAT} and older",
                          hint=f"upgrade graphc to {version} or later to load it, or "
                               "export it again with this version", loc=False)
    if number < 1:
        raise _fail(origin, 1, f"there is no export format {number}")
    return version


def _signature_line(lines: list[str], lineno: int, key: str, origin: str) -> Any:
    prefix = f"# {key}: "
    line = lines[lineno - 1] if len(lines) >= lineno else ""
    if not line.startswith(prefix):
        raise _fail(origin, lineno, f"expected '{prefix}<JSON>', found {line[:80]!r}")
    try:
        return json.loads(line[len(prefix):], parse_constant=_no_constant,
                          object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as exc:
        raise _fail(origin, lineno, f"the {key} are not valid JSON: {exc}") from None


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs: list) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"a key appears twice in {keys}")
    return dict(pairs)


def _inputs(obj: Any, origin: str) -> tuple[tuple, dict]:
    try:
        if not isinstance(obj, dict) or set(obj) != {"args", "kwargs"}:
            raise _Bad('expected {"args": [...], "kwargs": [...]}')
        args = tuple((_name(n), _decode(s, False, 0)) for n, s in _pairs(obj["args"]))
        kwargs = {_name(k): _decode(s, False, 0) for k, s in _pairs(obj["kwargs"])}
        if len(kwargs) != len(obj["kwargs"]):
            raise _Bad("a keyword argument is named twice")
    except _Bad as exc:
        raise _fail(origin, 2, f"bad inputs: {exc}") from None
    return args, kwargs


def _json_tree(obj: Any, origin: str, lineno: int, outputs: bool) -> Any:
    try:
        return _decode(obj, outputs, 0)
    except _Bad as exc:
        raise _fail(origin, lineno, f"bad outputs: {exc}") from None


def _pairs(obj: Any) -> list:
    if not isinstance(obj, list) or not all(isinstance(p, list) and len(p) == 2 for p in obj):
        raise _Bad(f"expected a list of [name, tree] pairs, found {_brief(obj)}")
    return obj


def _name(obj: Any) -> str:
    if not isinstance(obj, str) or not _ARG_NAME.match(obj):
        raise _Bad(f"{_brief(obj)} is not an argument name")
    return obj


def _decode(obj: Any, outputs: bool, depth: int) -> Any:
    """A spec pytree from its JSON (see `_encode`); _Bad for anything else."""
    if depth > _MAX_DEPTH:
        raise _Bad(f"pytrees nested deeper than {_MAX_DEPTH}")
    if obj is None:
        return None
    if not isinstance(obj, dict) or len(obj) != 1:
        raise _Bad(f"expected a one-key object or null, found {_brief(obj)}")
    (kind, body), = obj.items()
    if kind == "static":
        return Static(_decode_static(body))
    if kind == "array" and not outputs:
        return _decode_type(body)
    if kind == "output" and outputs:
        if type(body) is not int or body < 0:
            raise _Bad(f"an output index must be an int >= 0, found {_brief(body)}")
        return body
    if kind in ("tuple", "list") and isinstance(body, list):
        items = [_decode(x, outputs, depth + 1) for x in body]
        return tuple(items) if kind == "tuple" else items
    if kind == "dict":
        pairs = _pairs(body)
        keys = [k for k, _ in pairs]
        if not all(type(k) in (str, int, bool) for k in keys) or len(set(keys)) != len(keys):
            raise _Bad(f"dict keys must be distinct strs, ints or bools, found {_brief(keys)}")
        return {k: _decode(v, outputs, depth + 1) for k, v in pairs}
    raise _Bad(f"unexpected {_brief(obj)}")


def _decode_static(body: Any) -> Any:
    if type(body) in (bool, int, float, str):
        return body
    if isinstance(body, dict) and list(body) == ["float"] and body["float"] in _NONFINITE:
        return _NONFINITE[body["float"]]
    raise _Bad(f"a static value must be an int, float, bool or str, found {_brief(body)}")


def _decode_type(body: Any) -> TensorType:
    m = _TYPE.match(body) if isinstance(body, str) else None
    if m is None or m.group(1) not in dtypes.SHORT_TO_DTYPE:
        raise _Bad(f"expected an array type such as \"f32[4,3]\", found {_brief(body)}")
    dims = tuple(int(d) for d in m.group(2).split(",")) if m.group(2) else ()
    return TensorType(dims, dtypes.SHORT_TO_DTYPE[m.group(1)])


def _brief(obj: Any) -> str:
    text = json.dumps(obj) if not isinstance(obj, _Bad) else str(obj)
    return text if len(text) <= 60 else text[:57] + "..."


def _parse_graph(text: str, origin: str) -> Graph:
    """The graph of the text (ir.parse skips the header lines, keeping line numbers)."""
    try:
        graph = parse(text)
        graph.verify()
    except GraphcError as exc:
        if origin == "the text":
            raise
        raise type(exc)(f"{origin}: {exc.message}", hint=exc.hint, loc=False) from None
    except Exception as exc:  # a parser bug must not let a file past unread
        raise IRParseError(f"{origin}: the graph does not parse "
                           f"({type(exc).__name__}: {exc})", loc=False) from None
    if graph.groups is not None:
        raise IRParseError(f"{origin}: the graph is fused; load takes a graph as traced",
                           hint="export the function (graphc.export), or print "
                                "lowered.graph rather than lowered.optimized", loc=False)
    return graph


def _check_against_graph(exp: Exported, origin: str) -> None:
    """The signature must describe exactly the graph's inputs and outputs."""
    arrays = [(p, s) for p, s in exp._leaves() if isinstance(s, TensorType)]
    inputs = [v.type for v in exp.graph.inputs]
    if [s for _, s in arrays] != inputs:
        raise _fail(origin, 2, "the inputs line says the arrays are "
                               f"({', '.join(str(s) for _, s in arrays)}) but the graph "
                               f"takes ({', '.join(map(str, inputs))})")
    indices = [x for x in flatten(exp.outputs)[0] if not isinstance(x, Static)]
    if indices != list(range(len(exp.graph.outputs))):
        raise _fail(origin, 3, f"the outputs line refers to graph outputs {indices}, but "
                               f"the graph returns {len(exp.graph.outputs)}, used once each "
                               "in order")


def show(path: str) -> int:
    """`python -m graphc show FILE`: the signature and the graph; 2 for a bad file."""
    import sys
    try:
        exp = load(path)
    except GraphcError as exc:
        print(f"graphc show: {exc}", file=sys.stderr)
        return 2
    print(f"# export format {FORMAT}, written by graphc {exp.version}")
    print(f"# {exp.signature()}")
    print(print_graph(exp.graph))
    return 0
