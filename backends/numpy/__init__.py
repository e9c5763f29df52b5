"""The numpy (CPU) backend: generated Python functions over numpy."""
from backends.numpy.codegen import LOWERINGS, Executable, compile_graph, generate

__all__ = ["LOWERINGS", "Executable", "compile_graph", "generate"]
