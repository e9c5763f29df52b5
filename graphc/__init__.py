"""graphc: a hackable graph compiler for numpy (and PyTorch) model code.

>>> import graphc, numpy as np
>>> @graphc.compile
... def f(x):
...     return np.tanh(x) * 2.0
>>> f(np.zeros(3, np.float32))
array([0., 0., 0.], dtype=float32)
"""
# The core first: frontends, passes and backends import it while graphc loads.
from graphc import dtypes, errors, ir, ops
from graphc.errors import (ArgumentError, DtypeError, GraphcError, GraphcInternalError,
                           IndexingError, IRParseError,
                           MismatchError, OptionError,
                           ShapeError,
                           TracerBoolError, TracerLeakError, UnsupportedError, VerifyError)
from graphc.interpreter import interpret
from graphc.backends.settings import SettingWarning
from graphc.backends.options import Options
from graphc.api import CompiledFunction, Lowered, RecompileWarning, compile, trace
from graphc.benchmark import BenchmarkResult, benchmark
from graphc.profile import KernelTime, ProfileResult, profile
from graphc.transforms import grad, value_and_grad, vjp
from graphc.export import Exported, export, load
from graphc import nn
from graphc import random
from graphc import debug

__version__ = "0.1.0"

__all__ = [
    "ArgumentError", "BenchmarkResult", "CompiledFunction", "DtypeError", "Exported",
    "GraphcError",
    "GraphcInternalError",
    "IndexingError", "IRParseError", "Lowered", "MismatchError", "OptionError", "Options",
    "RecompileWarning",
    "SettingWarning",
    "ShapeError",
    "TracerBoolError", "TracerLeakError", "UnsupportedError", "VerifyError", "benchmark",
    "profile", "ProfileResult", "KernelTime",
    "compile", "debug", "dtypes", "errors", "export", "grad", "interpret", "ir", "load", "nn",
    "ops", "random",
    "trace", "value_and_grad", "vjp",
]
