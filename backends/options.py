"""Backend options: one object, resolved at the compile call, that travels down to the
code generator and the runtime instead of environment variables read deep inside.

Each field's default is its `GRAPHC_*` setting (backends/settings.py), read when the
`Options` is made; a field given explicitly wins. `graphc.compile(f, options=...)`
takes an `Options` or a plain dict of fields, and keeps what it resolved: the options
are part of the compiled function, not read again from the environment on a later
cache miss.

>>> from graphc.backends.options import Options, resolve
>>> opts = resolve({"native": False, "block_elements": 4096})
>>> opts.native, opts.block_elements
(False, 4096)
>>> opts.replace(threads=2).threads
2
>>> try:
...     resolve({"natve": False})
... except OptionError as exc:
...     print(exc.message)  # doctest: +NORMALIZE_WHITESPACE
unknown option 'natve'; the options are native, small_group, block_elements, threads,
march, cuda_graphs, profile, donate
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from typing import Any, Mapping

from graphc.backends import settings
from graphc.errors import OptionError, SourceLoc, is_compiler_file

_THREADS_MAX = settings.SETTINGS["GRAPHC_NUM_THREADS"].high


def _setting(name: str):
    """A field default read from setting `name` when an Options is made."""
    return field(default_factory=lambda: settings.get(name))


@dataclass(frozen=True)
class Options:
    """How a backend builds and runs one compiled function.

    native: native (C) kernels where a C compiler is found (GRAPHC_NATIVE).
    small_group: groups of at most this many elements run as plain numpy calls
        (GRAPHC_SMALL_GROUP; 0: every fused group becomes a kernel).
    block_elements: elements of the widest value in one block of a numpy block kernel
        (GRAPHC_BLOCK_ELEMENTS).
    threads: threads that run one kernel's blocks; None: the runtime's count at call
        time (`set_num_threads`, whose default is GRAPHC_NUM_THREADS or the core count).
    march: the -march target native kernels are built for (GRAPHC_MARCH).
    cuda_graphs: the triton backend captures the whole program into a CUDA graph per
        input signature and replays it (backends/triton/cudagraph.py); off by default.
    profile: the numpy backend times each kernel of every call (`graphc.profile` turns
        it on; the times are in the Executable's `kernel_seconds`); off by default.
    donate: the graph inputs (by position among the array inputs) whose buffers the
        numpy backend may write its outputs into, as jax.jit's donated buffers
        (`graphc.compile`'s `donate_argnums` sets it per signature); a donated array
        that is not a writeable, aligned, C-contiguous array of its own at call time
        is left alone. Other backends ignore it.

    >>> Options(native=False, small_group=0).small_group
    0
    """

    native: bool = _setting("GRAPHC_NATIVE")
    small_group: int = _setting("GRAPHC_SMALL_GROUP")
    block_elements: int = _setting("GRAPHC_BLOCK_ELEMENTS")
    threads: int | None = None
    march: str = _setting("GRAPHC_MARCH")
    cuda_graphs: bool = False
    profile: bool = False
    donate: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if type(self.native) is not bool:
            _bad("native", self.native, "True or False")
        if type(self.cuda_graphs) is not bool:
            _bad("cuda_graphs", self.cuda_graphs, "True or False")
        if type(self.profile) is not bool:
            _bad("profile", self.profile, "True or False")
        _check_int("small_group", self.small_group, 0)
        _check_int("block_elements", self.block_elements, 1)
        if self.threads is not None:
            _check_int("threads", self.threads, 1, _THREADS_MAX, "or None (the runtime's "
                       "count, see set_num_threads)")
        _check_donate(self.donate)
        object.__setattr__(self, "donate", tuple(sorted(self.donate)))
        marches = settings.SETTINGS["GRAPHC_MARCH"].choices
        if self.march not in marches:
            _bad("march", self.march, "one of " + ", ".join(marches))

    @classmethod
    def from_env(cls) -> Options:
        """Every field from its GRAPHC_* setting, as it is now."""
        return cls()

    def replace(self, **changes: Any) -> Options:
        """A copy with `changes` (checked like the constructor's arguments)."""
        return resolve({**self.as_dict(), **changes})

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELDS = tuple(f.name for f in dataclasses.fields(Options))


def resolve(options: Options | Mapping[str, Any] | None = None) -> Options:
    """`options` as an Options: None gives the environment's defaults, a dict its fields
    over those defaults (an unknown key is an OptionError naming the known ones)."""
    if options is None:
        return Options()
    if isinstance(options, Options):
        return options
    if not isinstance(options, Mapping):
        raise OptionError(f"options={options!r} is neither an Options nor a dict",
                          hint="pass graphc.Options(...) or a dict such as "
                               "{'native': False}")
    for key in options:
        if key not in FIELDS:
            raise OptionError(f"unknown option {key!r}; the options are "
                              + ", ".join(FIELDS))
    return Options(**options)


def _check_donate(donate: Any) -> None:
    ok = isinstance(donate, (tuple, list)) and \
        all(type(i) is int and i >= 0 for i in donate) and len(set(donate)) == len(donate)
    if not ok:
        _bad("donate", donate, "a tuple of distinct input positions (ints >= 0)")


def _check_int(name: str, value: Any, low: int, high: int | None = None,
               more: str = "") -> None:
    if type(value) is not int or value < low or (high is not None and value > high):
        upper = "" if high is None else f" and at most {high}"
        _bad(name, value, f"an int at least {low}{upper}" + (f", {more}" if more else ""))


def _bad(name: str, value: Any, accepted: str) -> None:
    raise OptionError(f"option {name}={value!r} is not accepted: {accepted}",
                      loc=_caller())


def _caller() -> SourceLoc | None:
    """The user's line that made the Options: past graphc's frames and the __init__
    that dataclasses generates (its file is "<string>", which would pass for the user's)."""
    frame = sys._getframe(1)
    while frame is not None and (frame.f_code is Options.__init__.__code__ or
                                 is_compiler_file(frame.f_code.co_filename)):
        frame = frame.f_back
    return None if frame is None else SourceLoc(frame.f_code.co_filename, frame.f_lineno,
                                                frame.f_code.co_name)
