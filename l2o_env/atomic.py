"""Atomic file writes: a file is either the old one or the complete new one, never a partial write.

Every write goes to a temporary file in the destination's own folder (so that the final rename stays on
one file system), which is flushed and ``fsync``-ed, then renamed over the destination with
:func:`os.replace` (atomic on POSIX and Windows). An exception (or ``KeyboardInterrupt``) while writing
removes the temporary file and leaves the destination as it was: an interrupted save never corrupts an
existing good file and never leaves a half-written one or a stray temporary file behind. The folder is
``fsync``-ed after the rename where the platform allows, so the new name survives a power loss too.

Three forms, from the most to the least convenient:

>>> atomic_write("runs/table.json", json.dumps(data))              # doctest: +SKIP  (str or bytes)
>>> atomic_write("runs/model.pt", lambda f: torch.save(obj, f), "wb")  # doctest: +SKIP  (a writer of a file object)
>>> with atomic_open("runs/table.csv", "w", newline="") as f:      # doctest: +SKIP
...     csv.writer(f).writerow(["a", "b"])
>>> with atomic_path("runs/plot.png") as tmp:                      # doctest: +SKIP  (libraries that take a file name)
...     fig.savefig(tmp)

The temporary file is ``.<stem>.<random>.tmp<suffix>`` beside the destination: hidden, and with the
destination's suffix, so that writers that pick a format from the name (matplotlib's ``savefig``,
stable-baselines3's ``save``, which appends ``.zip`` to a name without it) write the right thing to it.
A new file gets the permissions a plain ``open(path, "w")`` would give it (``0o666`` less the umask); a
replaced file keeps its permission bits. A symbolic link at the destination is followed (the file it
points to is replaced, the link stays), as ``open`` does.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from glob import escape as glob_escape
from pathlib import Path
from typing import IO, Any, Callable, Iterator

__all__ = ["atomic_path", "atomic_open", "atomic_write"]

_WRITE_MODES = ("w", "wb", "wt")


def _destination(path: str | os.PathLike) -> Path:
    """The file that will be replaced: ``path`` with a symbolic link followed (``open`` writes through links)."""
    path = Path(os.fspath(path))
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _temporary_name(dest: Path) -> Path:
    stem = dest.stem if dest.suffix else dest.name
    return dest.with_name(f".{stem}.{secrets.token_hex(4)}.tmp{dest.suffix}")


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable; silently skipped where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _keep_mode(tmp: Path, dest: Path) -> None:
    """Give ``tmp`` the permission bits of the file it replaces (a new file keeps the umask's)."""
    try:
        mode = stat.S_IMODE(dest.stat().st_mode)
    except FileNotFoundError:
        return
    os.chmod(tmp, mode)


def _discard(tmp: Path) -> None:
    """Remove the temporary file, and any file a writer made by adding a suffix to its name (random, so
    nobody else's)."""
    for leftover in (tmp, *tmp.parent.glob(glob_escape(tmp.name) + ".*")):
        with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
            leftover.unlink()


def _commit(tmp: Path, dest: Path) -> None:
    """fsync ``tmp``'s data, then rename it over ``dest`` and fsync the folder."""
    fd = os.open(tmp, os.O_RDWR)  # read-write: Windows refuses to flush a read-only handle
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    _keep_mode(tmp, dest)
    os.replace(tmp, dest)
    _fsync_folder(dest.parent)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to, for writers that take a file name.

    On a normal exit the file written there is fsync-ed and renamed over ``path``; on an exception it is
    removed and ``path`` is untouched. The writer must create the temporary file itself (a writer that
    wrote somewhere else, e.g. under another suffix, raises ``FileNotFoundError`` naming both paths, and
    ``path`` is left alone). The folder must exist and be writable (the temporary file is created there,
    also when ``path`` itself exists and is writable).
    """
    dest = _destination(path)
    if not dest.parent.is_dir():
        raise FileNotFoundError(f"atomic write of {dest}: the folder {dest.parent} does not exist")
    tmp = _temporary_name(dest)
    try:
        yield tmp
        if not tmp.is_file():
            raise FileNotFoundError(f"atomic write of {dest}: the writer did not create the temporary file {tmp} "
                                    f"(did it write to another name?); {dest} was left unchanged")
        _commit(tmp, dest)
    except BaseException:
        _discard(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **open_kwargs: Any) -> Iterator[IO]:
    """``open(path, mode, **open_kwargs)`` for writing, made atomic: the file object writes to a temporary
    file that replaces ``path`` when the ``with`` block ends normally and is removed when it raises.

    ``mode``: ``"w"``/``"wt"`` (text; ``encoding``, ``newline``, ``errors`` pass through) or ``"wb"``. The
    folder must exist.
    """
    if mode not in _WRITE_MODES:
        raise ValueError(f"atomic_open: mode must be one of {list(_WRITE_MODES)} (a whole new file), got {mode!r}")
    with atomic_path(path) as tmp:
        # O_EXCL: never write into a file someone else created; 0o666: the umask applies, as for open()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        try:
            f = os.fdopen(fd, mode, **open_kwargs)
        except BaseException:
            os.close(fd)
            raise
        with f:
            yield f
            f.flush()


def atomic_write(path: str | os.PathLike, data: str | bytes | Callable[[IO], Any], mode: str | None = None,
                 **open_kwargs: Any) -> Path:
    """Write ``path`` atomically and return it as a :class:`~pathlib.Path`.

    ``data``: the whole content (``str``, written in text mode, or ``bytes``), or a callable ``write(f)``
    that writes to the open file object (``lambda f: torch.save(obj, f)``). ``mode``: ``"w"`` or ``"wb"``;
    by default ``"wb"`` for bytes and callables, ``"w"`` for text. ``open_kwargs`` go to ``open``
    (``encoding``, ``newline``).
    """
    if mode is None:
        mode = "w" if isinstance(data, str) else "wb"
    if isinstance(data, (bytes, bytearray, memoryview)) and "b" not in mode:
        raise TypeError(f"atomic_write: bytes need mode 'wb', got mode {mode!r}")
    if isinstance(data, str) and "b" in mode:
        raise TypeError(f"atomic_write: a str needs a text mode ('w'), got mode {mode!r}")
    if not isinstance(data, (str, bytes, bytearray, memoryview)) and not callable(data):
        raise TypeError(f"atomic_write: data must be str, bytes or a callable write(f), got {type(data).__name__}")
    with atomic_open(path, mode, **open_kwargs) as f:
        if callable(data):
            data(f)
        else:
            f.write(data)
    return Path(os.fspath(path))
