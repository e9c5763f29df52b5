"""Errors a user of graphc can meet, and where in the user's code they happened.

Every error raised because of the user's code is a `GraphcError` subclass whose
message starts with the user's own `file:line`, shows that source line, and ends
with a hint saying what to do. The location is found by walking the Python stack
up to the first frame that is not inside graphc itself or inside numpy.
"""
from __future__ import annotations

import linecache
import os
import sys
from dataclasses import dataclass

# Frames inside these directories belong to the compiler (or to numpy, which calls
# back into the tracer through its array protocols), never to the user.
_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
# Installed, graphc.frontend, .passes and .backends lie inside graphc/; from the repo
# (an editable install) they are its folders beside graphc/. Only there: elsewhere
# (site-packages) a sibling named `passes` is someone else's package.
_FROM_REPO = os.path.exists(os.path.join(_ROOT, "pyproject.toml"))
_INTERNAL_DIRS = tuple(
    os.path.join(_ROOT, d) + os.sep
    for d in (("graphc", "frontend", "passes", "backends") if _FROM_REPO else ("graphc",))
)
_NUMPY_MARK = os.sep + "numpy" + os.sep


@dataclass(frozen=True)
class SourceLoc:
    """A place in the user's source: file and line (function name for dumps)."""

    file: str
    line: int
    func: str = ""

    def __str__(self) -> str:
        return f"{os.path.basename(self.file)}:{self.line}"

    def source_line(self) -> str:
        return linecache.getline(self.file, self.line).strip()


def _is_internal(filename: str) -> bool:
    return filename.startswith(_INTERNAL_DIRS) or _NUMPY_MARK in filename


def is_compiler_file(filename: str) -> bool:
    """Whether code in `filename` is graphc's own: its packages or its generated code
    ("<graphc-numpy:...>"); numpy and the user's files are not."""
    if filename.startswith("<"):
        return filename.startswith("<graphc")
    return os.path.abspath(filename).startswith(_INTERNAL_DIRS)


def user_location(skip: int = 1) -> SourceLoc | None:
    """The innermost stack frame that belongs to the user's code."""
    frame = sys._getframe(skip)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith("<"):
            internal = filename.startswith(("<frozen", "<graphc"))
        else:
            internal = _is_internal(os.path.abspath(filename))
        if not internal:
            return SourceLoc(filename, frame.f_lineno, frame.f_code.co_name)
        frame = frame.f_back
    return None


class GraphcError(Exception):
    """Base class of every error graphc raises about the user's code.

    The message names the user's `file:line`, quotes that line, and gives a hint.

    >>> import graphc, numpy as np
    >>> @graphc.compile
    ... def f(x):
    ...     return x + np.ones(3)
    >>> try:
    ...     f(np.ones(4))
    ... except graphc.ShapeError as e:
    ...     print(type(e).__name__)
    ShapeError
    """

    default_hint = ""
    details = ""  # more lines, after the quoted source line (GraphcInternalError's file)

    def __init__(self, message: str, *, hint: str | None = None,
                 loc: SourceLoc | None | bool = None):
        """`loc` defaults to the user's innermost frame; False means no location."""
        self.message = message
        self.hint = self.default_hint if hint is None else hint
        self.loc = user_location(2) if loc is None else (loc or None)
        super().__init__(self._format())

    def with_loc(self, loc: SourceLoc | None) -> "GraphcError":
        """Re-point the error at `loc` (used when a rule fails below the frontend)."""
        if loc is not None:
            self.loc = loc
            self.args = (self._format(),)
        return self

    def _format(self) -> str:
        text = self.message
        if self.loc is not None:
            text = f"{self.loc.file}:{self.loc.line}: {text}"
            src = self.loc.source_line()
            if src:
                text += f"\n    {src}"
        if self.details:
            text += "\n" + self.details
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def __str__(self) -> str:
        return self.args[0] if self.args else self._format()


class ShapeError(GraphcError, ValueError):
    """Shapes that an op cannot accept (they do not broadcast, inner dims differ, ...)."""

    default_hint = "check the shapes printed above; graphc follows numpy's rules"


class DtypeError(GraphcError, TypeError):
    """A dtype that an op or a backend does not support."""

    default_hint = "cast with .astype(np.float32) (or another supported dtype) first"


class IndexingError(GraphcError, IndexError):
    """An index numpy would refuse (out of range, too many, of the wrong type), with
    numpy's words; for a traced index, raised when the compiled function runs."""

    default_hint = ("indices are checked against the shape while tracing: an axis of "
                    "size n takes indices -n..n-1; print x.shape to see it")
    run_hint = ("a traced index array held this value when the function ran; eager "
                "numpy refuses it too: an axis of size n takes indices -n..n-1 (use "
                "np.clip, or np.take(..., mode='clip' or 'wrap'), to allow others)")

    @classmethod
    def at_run(cls, exc: IndexError, loc: SourceLoc | None) -> "IndexingError":
        """numpy's IndexError `exc` from the op traced at `loc`, as the user's error."""
        return cls(str(exc), hint=cls.run_hint, loc=loc or False)


class TracerBoolError(GraphcError, TypeError):
    """Python control flow, or a conversion to a Python number, on a traced value."""

    default_hint = ("a traced value has no concrete value while tracing: use "
                    "np.where(cond, a, b) instead of `if`, or pass the value as a "
                    "Python number so that it is static")


class UnsupportedError(GraphcError, NotImplementedError):
    """A numpy function, method, or indexing form that graphc cannot trace."""

    default_hint = "rewrite it with supported numpy functions (see README: what traces)"


class ArgumentError(GraphcError, TypeError):
    """An argument of a type graphc cannot take as an array or a static value."""

    default_hint = ("pass numpy arrays (or nested tuples/lists/dicts of them); other "
                    "arguments must be hashable Python values, which become static")


class OptionError(GraphcError, ValueError):
    """A value that a graphc function does not take for one of its options (a mode name)."""

    default_hint = "the message lists the values this option accepts"


class TracerLeakError(GraphcError, RuntimeError):
    """A traced value used after the trace that made it ended."""

    default_hint = ("a traced value escaped its function (stored in a global, a "
                    "closure or an attribute); return it from the function instead")


class MismatchError(GraphcError, AssertionError):
    """check mode: the compiled result differs from the reference interpreter's."""

    default_hint = ("run graphc.debug.bisect(fn, *args) to find the pass that changed "
                    "the result, and please report it")


class IRParseError(GraphcError, ValueError):
    """Text that is not valid graphc IR."""

    default_hint = "the text form is what str(graph) prints; compare against it"


class VerifyError(GraphcError, AssertionError):
    """A graph that breaks an IR invariant (a compiler bug, or hand-written IR)."""

    default_hint = "this is a bug in a pass or in hand-written IR; please report it"


class GraphcInternalError(GraphcError, RuntimeError):
    """A failure inside graphc itself, not in the user's code: a bug to report.

    Any exception that is not a GraphcError and is raised inside a compiler stage
    (`stage`: "trace", "pass NAME", "codegen", "build", or "run" for the first call of
    the generated code) becomes one. The original exception is its `__cause__`;
    `graph` is the IR as it entered the failing stage, and `repro` the file that the
    face wrote it to (`python -m graphc replay FILE` runs the pipeline on it again).

    >>> err = GraphcInternalError("pass fusion", ValueError("boom"), loc=False)
    >>> print(err.message)
    graphc failed in pass fusion: ValueError: boom
    """

    default_hint = ("this is a bug in graphc, not in your code: please report it with "
                    "this message and its traceback")
    _file_hint = ("this is a bug in graphc, not in your code: please report it with the "
                  "file named above (it holds the IR: shapes, dtypes and constants)")

    def __init__(self, stage: str, cause: BaseException, *, graph=None, function: str = "",
                 repro: str | None = None, command: str | None = None,
                 loc: SourceLoc | None | bool = False):
        self.stage, self.graph, self.function = stage, graph, function
        self.cause_text = f"{type(cause).__name__}: {cause}".rstrip(": ")
        self.repro, self.command = repro, command
        super().__init__(self._describe(), loc=loc)

    def completed(self, function: str, loc: SourceLoc | None, repro: str | None,
                  command: str | None) -> "GraphcInternalError":
        """The same error, naming the user's function and line and the repro file."""
        self.function, self.repro, self.command = function, repro, command
        self.message = self._describe()
        self.hint = self._file_hint if repro else self.default_hint
        self.loc = loc
        self.args = (self._format(),)
        return self

    def _describe(self) -> str:
        where = f" while compiling {self.function}" if self.function else ""
        if self.repro:
            self.details = (f"  the IR as it entered {self.stage} is in {self.repro}\n"
                            f"  reproduce it with: {self.command}")
        return f"graphc failed in {self.stage}{where}: {self.cause_text}"
