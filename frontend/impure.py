"""Calls whose result changes from one call to the next, refused while a function traces.

Tracing runs the user's Python once, and whatever a call returns then is frozen into
the graph as a constant: for random numbers and the clock that is silently wrong (a
compiled dropout would reuse one mask on every call). So while a thread traces, calls
made from the user's own source files are checked:

* np.random's module functions (`np.random.rand`, `normal`, `choice`, `shuffle`,
  `seed`, ...), Python's `random.random` & co., and `np.random.default_rng()` without
  a seed raise UnsupportedError at the line of the call;
* a `np.random.Generator` or `RandomState` that the traced function reaches by name (a
  global, a closed-over variable, a default, an attribute of those or of a bound
  method's object) and draws from: its methods cannot be wrapped (numpy's classes are
  immutable), so its state is compared when a constant enters the graph (the error
  names that line) and when the trace ends (it names the function);
* `time.time()`, `time.perf_counter()` and the other clocks: a value of theirs that
  enters the graph is refused at that line; printing or logging one is left alone.

A generator created in the trace with a seed (`np.random.default_rng(0)`) is allowed:
its numbers are the same on every call, as eagerly. Calls from the standard library,
installed packages, numpy and graphc itself, and calls from threads that are not
tracing, behave as usual.

>>> import graphc, numpy as np
>>> @graphc.compile
... def dropout(x):
...     return x * (np.random.rand(*x.shape) < 0.5)
>>> try:
...     dropout(np.ones(3))
... except graphc.UnsupportedError as e:
...     print(e.message.split(":")[0])
np.random.rand draws new numbers on every call
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import os
import random
import sys
import sysconfig
import time
import types
from typing import Any, Callable, Iterator

import numpy as np

from graphc.errors import SourceLoc, UnsupportedError, is_compiler_file
from graphc.frontend import patching
from graphc.frontend.tracer import TraceContext, current

HINT = ("use graphc.random with a key passed in as an argument (f(x, key) with "
        "keep = graphc.random.bernoulli(key, p, x.shape) inside; a new "
        "graphc.random.key(seed) or split key per call), or draw the numbers outside "
        "and pass them in (f(x, mask)): graphc runs this call once, while tracing, and "
        "would reuse its result on every call")
_CLOCK_HINT = ("read the clock outside the compiled function and pass the value in as an "
               "argument: graphc runs this call once, while tracing")

_CLOCKS = ("time", "time_ns", "perf_counter", "perf_counter_ns", "monotonic", "monotonic_ns",
           "process_time", "process_time_ns", "thread_time", "thread_time_ns")
# np.random names that are neither draws nor state: classes, modules, the test runner,
# and the global bit generator's getter and setter
_NOT_DRAWS = {"test", "get_bit_generator", "set_bit_generator", "default_rng"}
_STDLIB = tuple(os.path.abspath(p) + os.sep for p in
                {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]})
_NUMPY_DIR = os.path.dirname(os.path.abspath(np.__file__)) + os.sep


def _from_user_code(frame: types.FrameType) -> bool:
    """Whether `frame` runs the user's own code: not graphc, numpy, the standard library
    or an installed package (logging and threading read the clock, for instance)."""
    name = frame.f_code.co_filename
    if name.startswith("<"):
        return not name.startswith(("<frozen", "<graphc"))
    if is_compiler_file(name):
        return False
    name = os.path.abspath(name)
    if name.startswith(_NUMPY_DIR) or "site-packages" in name or "dist-packages" in name:
        return False
    return not name.startswith(_STDLIB)


def _tracing_caller() -> TraceContext | None:
    """The trace of this thread when the wrapper's caller is the user's code."""
    ctx = current()
    if ctx is None or not _from_user_code(sys._getframe(2)):
        return None
    return ctx


# what a refused call does, where it is not a draw of new numbers
_STATE = {"seed": "sets", "set_state": "sets", "get_state": "reads", "getstate": "reads",
          "setstate": "sets"}


def _refuse(what: str) -> None:
    verb = _STATE.get(what.rsplit(".", 1)[-1])
    does = f"{verb} the global random state" if verb else "draws new numbers on every call"
    raise UnsupportedError(f"{what} {does}: traced, it would run once and its result "
                           "would be frozen into the compiled function", hint=HINT)


def _draw(fn: Callable, what: str) -> Callable:
    """`fn`, refusing calls from the user's code in a tracing thread."""
    @functools.wraps(fn)
    def refusing(*args, **kwargs):
        if _tracing_caller() is not None:
            _refuse(what)
        return fn(*args, **kwargs)
    return refusing


def _default_rng(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def refusing(seed=None, *args, **kwargs):
        if seed is None and _tracing_caller() is not None:
            _refuse("np.random.default_rng() without a seed")
        return fn(seed, *args, **kwargs)
    return refusing


def _clock(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def remembered(*args, **kwargs):
        value = fn(*args, **kwargs)
        ctx = _tracing_caller()
        if ctx is not None and isinstance(ctx.watch, _Watch):
            ctx.watch.clock_values.append((value, f"time.{fn.__name__}()"))
        return value
    return remembered


def _patches() -> list[tuple[Any, str, Callable[[Callable], Callable]]]:
    """(module, name, make_wrapper) for every call refused or watched while tracing."""
    out = []
    for name in dir(np.random):
        obj = getattr(np.random, name)
        if name.startswith("_") or name in _NOT_DRAWS or not callable(obj) or \
                isinstance(obj, (type, types.ModuleType)):
            continue
        out.append((np.random, name, functools.partial(_draw, what=f"np.random.{name}")))
    out.append((np.random, "default_rng", _default_rng))
    for name in random.__all__:
        obj = getattr(random, name, None)
        if isinstance(getattr(obj, "__self__", None), random.Random):  # the hidden instance
            out.append((random, name, functools.partial(_draw, what=f"random.{name}")))
    out += [(time, name, _clock) for name in _CLOCKS if hasattr(time, name)]
    return out


patching.register(_patches)


# ---- generators the traced function can reach ----------------------------------------

def _state(g) -> bytes:
    """A fingerprint of a Generator's or RandomState's state (changes with each draw)."""
    state = g.bit_generator.state if isinstance(g, np.random.Generator) else \
        g.get_state(legacy=False)
    return repr(_flat(state)).encode()


def _flat(state):
    if isinstance(state, dict):
        return tuple((k, _flat(v)) for k, v in sorted(state.items()))
    if isinstance(state, np.ndarray):
        return state.tobytes()
    return state


def _names(code: types.CodeType) -> set[str]:
    names = set(code.co_names) | set(code.co_freevars)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):  # lambdas and comprehensions inside
            names |= _names(c)
    return names


def _python_function(fn: Callable) -> tuple[Any, Callable]:
    """(the object of a bound method or callable object, or None; the plain function)."""
    fn = inspect.unwrap(fn)
    if not hasattr(fn, "__code__") and hasattr(type(fn), "__call__"):
        fn = fn.__call__  # a callable object: its method, and its attributes as `self.`
    return getattr(fn, "__self__", None), getattr(fn, "__func__", fn)


def _reachable_generators(fn: Callable) -> dict[str, Any]:
    """Generators `fn` reaches by name: its globals, closure, defaults, a bound method's
    object, and one attribute deep into each of those (`model.rng`)."""
    owner, fn = _python_function(fn)
    code = getattr(fn, "__code__", None)
    if code is None:
        return {}
    names = _names(code)
    found: dict[str, Any] = {}
    places: list[tuple[str, Any]] = []
    g = getattr(fn, "__globals__", {})
    places += [(n, g[n]) for n in names if n in g]
    for n, cell in zip(code.co_freevars, fn.__closure__ or ()):
        with contextlib.suppress(ValueError):  # an empty cell
            places.append((n, cell.cell_contents))
    places += [("a default", d) for d in (*(fn.__defaults__ or ()),
                                          *(fn.__kwdefaults__ or {}).values())]
    places += [(f"self.{k}", v) for k, v in _attrs(owner)]
    for name, obj in list(places):
        places += [(f"{name}.{k}", v) for k, v in _attrs(obj) if k in names]
    for name, obj in places:
        if isinstance(obj, (np.random.Generator, np.random.RandomState)):
            found.setdefault(name, obj)
    return found


def _attrs(obj) -> list[tuple[str, Any]]:
    if obj is None or isinstance(obj, (type, types.ModuleType, types.FunctionType)):
        return []
    try:  # a proxy object may raise anything from a lookup: it holds no generator then
        return list(vars(obj).items())
    except Exception:  # noqa: BLE001
        return []


class _Watch:
    """Called with each constant entering the graph (TraceContext.watch): refuses one
    drawn from a reachable generator or read from the clock since the trace began."""

    def __init__(self, fn: Callable):
        self.code = getattr(_python_function(fn)[1], "__code__", None)
        self.name = self.code.co_name if self.code else type(fn).__name__
        self.generators = _reachable_generators(fn)
        self.states = {n: _state(g) for n, g in self.generators.items()}
        self.clock_values: list[tuple[Any, str]] = []

    def __call__(self, value: Any) -> None:
        for v, what in self.clock_values:
            if value is v:
                raise UnsupportedError(f"the value of {what} enters the graph: traced, it "
                                       "would be frozen into the compiled function",
                                       hint=_CLOCK_HINT)
        # the draw happened since the last constant: most often it is this one
        self.check(" (noticed here, as a constant entered the graph)")

    def check(self, where: str, loc: SourceLoc | None = None) -> None:
        for name, g in self.generators.items():
            if _state(g) != self.states[name]:
                raise UnsupportedError(
                    f"the random generator `{name}` ({type(g).__name__}) was drawn from "
                    f"while {self.name} was traced{where}: its numbers would be frozen "
                    "into the compiled function", hint=HINT, loc=loc)

    def at_end(self) -> None:
        code = self.code
        loc = SourceLoc(code.co_filename, code.co_firstlineno, code.co_name) if code \
            else False
        self.check(" (the numbers never entered the graph as such, but they shaped it)",
                   loc)


@contextlib.contextmanager
def refusing(fn: Callable, ctx: TraceContext) -> Iterator[None]:
    """Around the traced call of `fn` in `ctx`: refuse what would be frozen (above)."""
    watch = _Watch(fn)
    ctx.watch = watch
    yield  # the wrappers (patching) stand in the modules meanwhile
    watch.at_end()
