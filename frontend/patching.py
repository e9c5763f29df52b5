"""Module attributes that graphc replaces while any thread traces.

Some calls never reach the Tracer's numpy protocols: `np.asarray(t)` asks for real data
through `__array__`, and `np.random.rand(3)` takes no traced value at all. For those,
each frontend module that needs it registers patches (module, attribute, a function
that wraps the original), and `installed()` puts every wrapper in place around a
trace. A wrapper must behave exactly as the original for a caller that is not tracing:
other threads run while it stands in the module.

    >>> import numpy as np
    >>> from graphc.frontend import patching
    >>> with patching.installed():
    ...     np.asarray is not patching.original(np, "asarray")
    True
    >>> np.asarray is patching.original(np, "asarray")
    True
"""
from __future__ import annotations

import threading
from typing import Any, Callable

Patch = tuple[Any, str, Callable[[Callable], Callable]]  # module, name, make_wrapper

_factories: list[Callable[[], list[Patch]]] = []


def register(factory: Callable[[], list[Patch]]) -> None:
    """Add the patches `factory()` lists (called once, at the first trace)."""
    with _INSTALLED.lock:
        _factories.append(factory)
        _INSTALLED.patches = None


def original(module: Any, name: str) -> Any:
    """`module.name` as it is outside any trace."""
    with _INSTALLED.lock:
        for mod, attr, real in _INSTALLED.saved:
            if mod is module and attr == name:
                return real
    return getattr(module, name)


class _Installed:
    """The wrappers stand in their modules while any thread traces (counted, so that two
    threads tracing at once share them; the last one out puts the originals back). A
    wrapper is made again only when its original was replaced meanwhile."""

    def __init__(self):
        self.lock = threading.Lock()
        self.tracing = 0
        self.patches: list[Patch] | None = None
        self.wrappers: dict[tuple[int, str], tuple[Any, Callable]] = {}
        self.saved: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> None:
        with self.lock:
            if self.tracing == 0:
                if self.patches is None:
                    self.patches = [p for factory in _factories for p in factory()]
                self.saved = []
                for module, name, make in self.patches:
                    real = getattr(module, name)
                    key = (id(module), name)
                    cached = self.wrappers.get(key)
                    if cached is None or cached[0] is not real:
                        cached = self.wrappers[key] = (real, make(real))
                    self.saved.append((module, name, real))
                    setattr(module, name, cached[1])
            self.tracing += 1

    def __exit__(self, *exc) -> None:
        with self.lock:
            self.tracing -= 1
            if self.tracing == 0:
                for module, name, real in self.saved:
                    setattr(module, name, real)
                self.saved = []


_INSTALLED = _Installed()


def installed() -> _Installed:
    """A context manager: every registered wrapper in place while it is active."""
    return _INSTALLED
