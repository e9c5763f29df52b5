"""Failures inside graphc: each compiler stage turns a library exception into a
`GraphcInternalError` that names the stage, the user's function and line, and the file
holding the IR that reproduces it.

The stages are "trace", "pass NAME", "codegen", "build" (the C compiler, or Python
compiling the generated module) and "run" (the generated code's first call on a
signature). Only exceptions raised by graphc's own code count: an exception the user's
function raises while it is traced is the user's and goes through unchanged, and at
call time an IndexError (a traced index out of range) or a MemoryError (inputs too big)
stays what it is.

>>> import graphc, numpy as np
>>> def boom(graph):
...     raise KeyError("a bug in a pass")
>>> f = graphc.compile(lambda x: x + 1.0, passes=[("boom", boom)])
>>> try:
...     f(np.ones(2))
... except graphc.GraphcInternalError as e:
...     print(e.stage, type(e.__cause__).__name__)
pass boom KeyError
"""
from __future__ import annotations

import contextlib
import inspect
import linecache
import shlex
import sys
from typing import Callable, Iterator, Sequence

from graphc.errors import GraphcError, GraphcInternalError, SourceLoc, is_compiler_file
from graphc.ir import Graph

# At call time these are the user's (item 6 reports index errors like numpy does).
_USER_AT_RUN = (IndexError, MemoryError)
# numpy's refusals of the user's run-time data that graphc passes on unchanged, as eager
# numpy raises them: a traced integer exponent that is negative (see frontend.prims)
_NUMPY_AT_RUN = ("Integers to negative integer powers are not allowed.",)


def _users_at_run(exc: BaseException) -> bool:
    return isinstance(exc, _USER_AT_RUN) or (isinstance(exc, ValueError) and
                                             str(exc) in _NUMPY_AT_RUN)


def def_location(fn: Callable) -> SourceLoc | None:
    """Where the user's function is defined (through functools.wraps layers): its `def`
    line, past any decorators (which is where co_firstlineno points)."""
    code = getattr(inspect.unwrap(fn), "__code__", None)
    if code is None:
        return None
    line = code.co_firstlineno
    for ahead in range(line, line + 20):
        text = linecache.getline(code.co_filename, ahead).lstrip()
        if text.startswith(("def ", "async def ")):
            line = ahead
            break
        if not text.startswith("@") and ahead > line:
            break  # a lambda, or a decorator spread over lines: keep the first line
    return SourceLoc(code.co_filename, line, code.co_name)


@contextlib.contextmanager
def stage(name: str, fn: Callable, graph: Graph | None = None,
          pipeline: Sequence[tuple[str, Callable]] = ()) -> Iterator[None]:
    """Run one compiler stage on `graph` (the IR as it enters the stage) for the user's
    `fn`; `pipeline` is the resolved pass list, for stage "passes"."""
    from graphc import progress
    progress.stage(name)  # the status line of a long compile (graphc/progress.py)
    try:
        yield
    except GraphcInternalError as exc:
        if exc.function:  # a nested compiled function already said everything
            raise
        raise _completed(exc, fn, pipeline) from exc.__cause__
    except GraphcError:
        raise
    except Exception as exc:
        if name == "run" and _users_at_run(exc):
            raise
        if name == "trace" and not _raised_by_compiler(exc):
            raise  # the user's own code failed: their exception, their traceback
        err = GraphcInternalError(_refine(name, exc), exc, graph=graph)
        raise _completed(err, fn, pipeline, user_line=_user_frame(exc)) from exc


def run_failure(fn: Callable, lowered, exc: Exception) -> GraphcInternalError | None:
    """The GraphcInternalError for generated code that raised `exc` on its first call
    with a signature, or None when `exc` is the user's (see the module docstring)."""
    if _users_at_run(exc):
        return None
    err = GraphcInternalError("run", exc, graph=lowered.optimized)
    return _completed(err, fn, ())


def _frames(exc: BaseException) -> list[str]:
    files, tb = [], exc.__traceback__
    while tb is not None:
        files.append(tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
    return files


def _raised_by_compiler(exc: BaseException) -> bool:
    """The innermost frame outside numpy is graphc's (the tracer, a shape rule), and not
    a Python protocol method answering as Python does (`x.typo` is an AttributeError
    from Tracer.__getattr__, `len()` of a 0-d array a TypeError: the user's, as with
    numpy)."""
    tb, frames = exc.__traceback__, []
    while tb is not None:
        frames.append(tb.tb_frame.f_code)
        tb = tb.tb_next
    from graphc.frontend.numpy_more import PASSTHROUGH
    for code in reversed(frames):
        if code in PASSTHROUGH:  # np.asarray & co. on untraced data: numpy's own error
            continue
        if is_compiler_file(code.co_filename):
            protocol = code.co_name.startswith("__") and code.co_name.endswith("__")
            return not (protocol and isinstance(exc, (AttributeError, TypeError)))
        if "numpy" not in code.co_filename:
            return False
    return False


def _user_frame(exc: BaseException) -> SourceLoc | None:
    """The innermost user frame of the traceback (the line being traced), if any."""
    tb, found = exc.__traceback__, None
    while tb is not None:
        code = tb.tb_frame.f_code
        if not is_compiler_file(code.co_filename) and "numpy" not in code.co_filename \
                and not code.co_filename.startswith("<"):
            found = SourceLoc(code.co_filename, tb.tb_lineno, code.co_name)
        tb = tb.tb_next
    return found


def _refine(name: str, exc: BaseException) -> str:
    """"codegen" becomes "build" when the failure is in compiling what was generated."""
    if name != "codegen":
        return name
    if isinstance(exc, SyntaxError) and str(exc.filename).startswith("<graphc"):
        return "build"
    if any(f.endswith(("toolchain.py", "native.py")) or f.startswith("<graphc")
           for f in _frames(exc)):
        return "build"
    return name


def _completed(err: GraphcInternalError, fn: Callable, pipeline, user_line=None):
    from graphc import dump
    name = getattr(fn, "__name__", "fn")
    loc = user_line if err.stage == "trace" and user_line else def_location(fn)
    repro = command = None
    if err.graph is not None:
        rest = _passes_from(err.stage, pipeline)
        repro = dump.write_repro(err.graph, err.stage, name, err.cause_text,
                                 [n for n, _ in rest], loc)
        command = replay_command(repro, rest, err.stage)
    return err.completed(name, loc, repro, command)


def _passes_from(stage_name: str, pipeline) -> list[tuple[str, Callable]]:
    """The passes still to run on the graph that entered the failing stage."""
    if not stage_name.startswith("pass "):
        return []
    names = [n for n, _ in pipeline]
    failed = stage_name[len("pass "):]
    return list(pipeline)[names.index(failed):] if failed in names else []


def replay_command(path: str, rest: Sequence[tuple[str, Callable]], stage_name: str) -> str:
    """`python -m graphc replay FILE` with what the file cannot say: the import path of
    each pass that is not a default one, and random inputs for a failure at run time."""
    from graphc.passes.pipeline import DEFAULT_PIPELINE
    default = dict(DEFAULT_PIPELINE)
    words = [sys.executable or "python", "-m", "graphc", "replay", path]
    for pass_name, fn in rest:
        if default.get(pass_name) is fn:
            continue
        module, qual = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
        if module and module != "__main__" and "<" not in qual:
            words += ["--pass", f"{pass_name}={module}:{qual}"]
    if stage_name == "run":
        words += ["--inputs", "random"]
    return " ".join(shlex.quote(w) for w in words)
