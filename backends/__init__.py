"""Backends: turn an optimized graph into something that runs.

`get(name)` returns the backend module, imported lazily so that `import graphc`
needs neither torch nor triton. A backend module provides `compile_graph(graph,
options)` (options: a `backends.options.Options`, or None for the environment's
defaults) returning an object with `.fn(*flat_inputs) -> tuple` and `.source`, and
`FUSION_POLICY`, the `graphc.passes.fusion.FusionPolicy` its kernels follow (the face
hands it to the pass pipeline).

For the persistent compile cache (graphc/compile_cache.py) a backend also provides
`bind(rendered, options)` (an Executable from what an Executable's `.rendered` held:
the code as plain data; `.rendered` is None where the build fell back from what the
options ask, which the cache does not keep), `Rendered` (with `record()` and
`Rendered.from_record(meta, arrays)`) and `cache_stamp(options)` (what decides the
code besides the graph, the options and graphc's own source). A backend without them
is compiled every time.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from graphc.errors import GraphcError

AVAILABLE = {"numpy": "graphc.backends.numpy", "triton": "graphc.backends.triton"}


def get(name: str) -> ModuleType:
    if name not in AVAILABLE:
        raise GraphcError(f"unknown backend {name!r}",
                          hint="available backends: " + ", ".join(sorted(AVAILABLE)))
    return importlib.import_module(AVAILABLE[name])
