"""The numpy (CPU) backend: generated Python functions over numpy, fused groups run
block by block on threads (see codegen, kernels, runtime)."""
from graphc.backends.numpy.codegen import Executable, compile_graph, generate
from graphc.backends.numpy.loading import Rendered, bind, cache_stamp
from graphc.backends.numpy.lowering import LOWERINGS
from graphc.backends.numpy.policy import FUSION_POLICY
from graphc.backends.numpy.runtime import (get_num_threads, get_pool_bytes, pool_bytes,
                                    set_num_threads, set_pool_bytes)

__all__ = ["FUSION_POLICY", "LOWERINGS", "Executable", "Rendered", "bind", "cache_stamp",
           "compile_graph", "generate",
           "get_num_threads", "get_pool_bytes", "pool_bytes", "set_num_threads", "set_pool_bytes"]
