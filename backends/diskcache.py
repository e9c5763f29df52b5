"""What every disk cache of graphc shares: where the caches live, who may write there,
how an entry is sealed and checked before it is used, and the size cap.

A cache entry is input from someone else (a crash, a full disk or another user can
have written it), and a shared library in it is loaded into the process, so:

- The caches live in `root()`: GRAPHC_CACHE_DIR as given (a shared team cache is a
  deliberate choice), else ~/.cache/graphc, else (a home with no writable cache)
  graphc-<uid> in the temporary directory. A default folder that is not owned by this
  user, or that group or others can write, is not used at all: graphc warns once,
  naming it, and keeps its caches in a fresh private folder for the process.
- Folders graphc creates are 0700; entries are written to a temporary file and renamed
  (`write`), so a reader never sees half of one, and carry a seal (a SHA-256 of their
  bytes) that `intact` checks before anything loads them: a truncated library would
  otherwise be mapped and die of SIGBUS.
- `touch` marks an entry used; `evict` drops the least recently used entries past
  GRAPHC_CACHE_MAX_MB when a build adds one.

>>> import os, tempfile
>>> os.environ["GRAPHC_CACHE_DIR"] = tempfile.mkdtemp()
>>> entry = folder("native") / "example"
>>> write(entry, b"kernel bytes")
>>> intact(entry), oct(entry.stat().st_mode & 0o777)
(True, '0o600')
>>> [(name, n) for name, _, n, _ in summary()], clear()
([('compile', 0), ('native', 1), ('triton_tune', 0)], 1)
>>> del os.environ["GRAPHC_CACHE_DIR"]
"""
from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import stat
import tempfile
import threading
import warnings
from pathlib import Path

from graphc.backends import settings

# Every disk cache graphc keeps: its folder under root(), and what it holds (for
# `python -m graphc cache`). A new cache (the Triton autotune results) is one row here.
CACHES = {
    "compile": "optimized graphs and generated code, one sealed entry per compiled graph "
               "and its key (graphc/compile_cache.py)",
    "native": "shared libraries and extension modules built from C (backends/toolchain.py)",
    "triton_tune": "the fastest launch config of each Triton kernel and problem, one JSON "
                   "file each (backends/triton/autotune.py)",
}

_SEAL = b"\0graphc-sha256:"
_SEAL_SIZE = len(_SEAL) + 64
_MIB = 1 << 20

_private: list[Path] = []  # the process's own folder, once a default was refused
_warned: set[str] = set()


class CacheWarning(RuntimeWarning):
    """A disk cache was not used as it stood: a default folder others could write was
    refused, or an entry that did not load was deleted and built again."""


def warn(message: str) -> None:
    """Warn once per message (each names its folder or entry)."""
    if message not in _warned:
        _warned.add(message)
        warnings.warn(f"graphc: {message}", CacheWarning, stacklevel=3)


def root() -> Path:
    """The folder all caches live in (see the module docstring); raises OSError where
    GRAPHC_CACHE_DIR cannot be created."""
    chosen = settings.get("GRAPHC_CACHE_DIR")
    if chosen:
        return _private_folder(Path(chosen))
    home = Path(os.path.expanduser("~")) / ".cache" / "graphc"
    temp = Path(tempfile.gettempdir()) / f"graphc-{_uid()}"
    for candidate in (home, temp):
        try:
            folder_ = _private_folder(candidate)
        except OSError:  # cannot be created (a read-only home, a file in the way)
            continue
        why = distrust(folder_)
        if why is not None:
            warn(f"not using the cache folder {folder_}: {why}; this process keeps its "
                 "caches in a fresh private folder (fix the folder's owner and mode, or "
                 "set GRAPHC_CACHE_DIR)")
            return _process_folder()
        if os.access(folder_, os.W_OK | os.X_OK):
            return folder_
    return _process_folder()


def folder(name: str) -> Path:
    """The folder of cache `name` (a key of CACHES), created owner-only if missing."""
    return _private_folder(root() / name)


def distrust(path: Path) -> str | None:
    """Why folder `path` must not hold a default cache (another user owns it, or group
    or others can write it, or it is not a folder), or None where only this user can
    change what is in it."""
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):  # the link and what it names must both be ours
        if _foreign(info.st_uid):
            return f"it is a link owned by user id {info.st_uid}"
        info = os.stat(path)
    if not stat.S_ISDIR(info.st_mode):
        return "it is not a folder"
    if _foreign(info.st_uid):
        return f"it is owned by user id {info.st_uid}, not by you (user id {_uid()})"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"group or others can write it (mode {stat.S_IMODE(info.st_mode):04o})"
    return None


def _uid() -> int | None:
    """This process's user id (None where the system has none: no owner check)."""
    return os.getuid() if hasattr(os, "getuid") else None


def _foreign(owner: int) -> bool:
    uid = _uid()
    return uid is not None and owner != uid


def _private_folder(path: Path) -> Path:
    # only the last folder is graphc's own; parents such as ~/.cache are the system's
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        if not path.is_dir():
            raise
    else:
        os.chmod(path, 0o700)  # whatever the umask
    return path


def _process_folder() -> Path:
    if not _private:
        made = Path(tempfile.mkdtemp(prefix="graphc-cache-"))  # 0700, a fresh name
        atexit.register(shutil.rmtree, made, ignore_errors=True)
        _private.append(made)
    return _private[0]


def write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write entry `path` sealed, atomically (a temporary file in its folder, renamed)
    with permission bits `mode` (0o700 for a library the loader maps)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data + _SEAL + hashlib.sha256(data).hexdigest().encode())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def intact(path: Path) -> bool | None:
    """Whether entry `path` holds what `write` wrote, seal and all (None: there is no
    such entry, as after another process evicted it). A library keeps working with the
    seal after it: loaders read only the parts their headers name."""
    body = read(path)
    return body if body is None else body is not False


def read(path: Path) -> bytes | bool | None:
    """What `write` wrote to entry `path`, without its seal; False where the seal does
    not match (truncated, overwritten), None where there is no such entry."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError:
        return False
    body, seal = data[:-_SEAL_SIZE], data[-_SEAL_SIZE:]
    if len(data) < _SEAL_SIZE or seal != _SEAL + hashlib.sha256(body).hexdigest().encode():
        return False
    return body


def touch(path: Path) -> None:
    """Mark entry `path` used now (eviction drops the least recently used first)."""
    try:
        os.utime(path)
    except OSError:  # a shared cache's entry another user wrote: its age stays
        pass


def discard(path: Path, why: str) -> None:
    """Delete the bad entry `path` (it is built again), warning once."""
    warn(f"the cache entry {path} {why}; deleted it, building it again")
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


# The caches' total size as this process last counted it, plus what it added since
# (None: not counted yet). Counting stats every entry: a cache of 41,000 kernels took
# ~0.1 s a build to count, so a process counts once, and again only when its running
# total passes the cap (what other processes add meanwhile is counted then).
_total: dict[Path, int] = {}


def evict(keep: Path) -> None:
    """Delete the least recently used entries of all caches until they hold at most
    GRAPHC_CACHE_MAX_MB (0: no cap), never `keep` (the entry just added)."""
    cap = settings.get("GRAPHC_CACHE_MAX_MB") * _MIB
    if cap == 0:
        return
    base = root()
    added = info.st_size if (info := _stat(keep)) is not None else 0
    if base in _total and _total[base] + added <= cap:
        _total[base] += added
        return
    found = [(info.st_mtime, info.st_size, p) for p in _all_entries()
             if (info := _stat(p)) is not None]
    total = sum(size for _, size, _ in found)
    for _, size, path in sorted(found, key=lambda e: e[0]):
        if total <= cap:
            break
        if path != keep:
            try:
                path.unlink(missing_ok=True)
            except OSError:  # a shared cache's entry this user may not delete
                continue
            total -= size
    _total[base] = total


_soon = threading.Lock()
_soon_keep: list[Path] = []  # entries added since the evicting thread last looked
_soon_thread: list[threading.Thread] = []  # the thread while it has work, else empty


def evict_soon(keep: Path) -> None:
    """`evict(keep)` on a thread of its own, off the caller's path: counting a cache of
    80,000 entries takes about half a second, which a compile should not wait for.
    Requests made while it runs are served by one more round."""
    with _soon:
        _soon_keep.append(keep)
        if not _soon_thread:  # (emptied, under the lock, by a thread that stops)
            # a daemon: exiting does not wait for a count, and a deletion cut short
            # leaves only an entry that a later count finds again
            thread = threading.Thread(target=_evict_rounds, name="graphc-cache-evict",
                                      daemon=True)
            _soon_thread[:] = [thread]
            thread.start()


def wait_for_eviction(timeout: float | None = None) -> None:
    """Block until the evicting thread (if any) has finished its rounds: for a caller
    that measures this process's memory or files and must not see the thread's."""
    with _soon:
        threads = list(_soon_thread)
    for thread in threads:
        thread.join(timeout)


def _evict_rounds() -> None:
    while True:
        with _soon:
            if not _soon_keep:
                _soon_thread.clear()
                return
            batch = list(_soon_keep)
            _soon_keep.clear()
        for keep in batch:  # each, in order: the running total counts every one's size
            try:
                evict(keep)
            except OSError:
                pass  # a cache folder gone meanwhile: nothing to evict


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except OSError:  # evicted or cleared meanwhile by another process
        return None


def _all_entries() -> list[Path]:
    base = root()
    return [p for name in CACHES for p in _entries(base / name)]


def _entries(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return [p for p in directory.iterdir() if p.is_file() and not p.name.startswith(".tmp")]


def summary() -> list[tuple[str, Path, int, int]]:
    """(name, folder, entries, bytes) of every cache, for `python -m graphc cache`."""
    rows = []
    for name in CACHES:
        entries = [info for p in _entries(folder(name)) if (info := _stat(p)) is not None]
        rows.append((name, folder(name), len(entries), sum(e.st_size for e in entries)))
    return rows


def clear() -> int:
    """Empty every cache (entries and what interrupted builds left); the entries removed."""
    _total.clear()
    removed = 0
    for name in CACHES:
        for path in folder(name).iterdir():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
                removed += not path.name.startswith(".tmp")
    return removed
