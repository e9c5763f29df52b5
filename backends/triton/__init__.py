"""The Triton (GPU) backend: one generated Triton kernel per kernel plan.

`graphc.compile(f, backend="triton")` runs here. Elementwise groups become pointwise
kernels (pointwise.py), reduction groups persistent or looped reduction kernels
(reduction.py), a matmul and its epilogue one tiled `tl.dot` kernel (matmul.py); shape
ops, convolutions, pooling and gathers run as torch calls on the device (extern.py).
Block sizes are tuned by graphc's own autotuner, cached on disk (autotune.py). On a
machine without a GPU, `TRITON_INTERPRET=1` runs the same kernels in Triton's
interpreter on CPU tensors, which is how the tests run them.

torch and triton are imported when a graph is compiled for this backend, never by
`import graphc`.
"""
from graphc.backends.triton.policy import FUSION_POLICY


def compile_graph(graph, options=None):
    """Generate, load and return the Executable for `graph` (see codegen.py)."""
    from graphc.backends.triton.codegen import compile_graph as build
    return build(graph, options)


def bind(rendered, options=None):
    """Load a `Rendered` (an Executable's `.rendered`, kept by the compile cache) on the
    device."""
    from graphc.backends.triton.codegen import bind as load
    return load(rendered, options)


def cache_stamp(options) -> str:
    """What decides the module besides graph, options and graphc: triton's and torch's
    versions, and whether the kernels run in the interpreter."""
    from graphc.backends.triton import runtime
    torch, triton = runtime.require_triton()
    return f"triton {triton.__version__}, torch {torch.__version__}, " \
           f"interpreted {runtime.interpreting()}"


def __getattr__(name):
    if name == "LOWERINGS":
        from graphc.backends.triton.lowering import LOWERINGS
        return LOWERINGS
    if name == "Rendered":
        from graphc.backends.triton.codegen import Rendered
        return Rendered
    raise AttributeError(name)


__all__ = ["FUSION_POLICY", "LOWERINGS", "Rendered", "bind", "cache_stamp", "compile_graph"]
