"""Atomic writes: every file and folder hrm-mlx writes goes through here.

A file is written to a temporary sibling, flushed to disk and renamed over its destination; a folder is filled as a
temporary sibling folder and renamed into place. A reader therefore sees the old content or the complete new one,
never half of it, even when the writer is killed. Modes follow the umask, as for files created directly.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TextIO


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync(path: Path) -> None:
    """Flush a file or a folder's entries to disk (where the platform allows opening a folder)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def _replacing(path: Path, keep_on_error: bool, mode: int = 0o666) -> Iterator[tuple[int, Path]]:
    """A temporary sibling of ``path`` (descriptor and path) that becomes ``path`` when the block ends: flushed to
    disk, with ``mode`` less the umask; when it ends by an exception, only with ``keep_on_error``."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    tmp = Path(name)

    def finish() -> None:
        os.chmod(tmp, mode & ~_umask())
        _fsync(tmp)
        os.replace(tmp, path)

    try:
        try:
            yield fd, tmp
        except BaseException:
            if keep_on_error:
                finish()
            raise
        finish()
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync(path.parent)


def write_file(path: str | os.PathLike, content: str | bytes | Callable[[Path], object], *,
               executable: bool = False) -> Path:
    """Write ``content`` (text, bytes, or a function that writes the file at the path it is given, e.g. a
    figure's savefig) to ``path`` atomically; ``executable`` files (scripts) may be run by whom may read them.
    Returns the path."""
    path = Path(path)
    with _replacing(path, keep_on_error=False, mode=0o777 if executable else 0o666) as (fd, tmp):
        if callable(content):
            os.close(fd)
            content(tmp)
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def write_json(path: str | os.PathLike, value, *, indent: int | None = 2) -> Path:
    """``value`` as JSON (newline-terminated) at ``path``, atomically."""
    return write_file(path, json.dumps(value, indent=indent) + "\n")


@contextmanager
def lines(path: str | os.PathLike) -> Iterator[TextIO]:
    """A text file written as results come: ``with lines(path) as handle:`` write (and flush) lines to a temporary
    sibling, which becomes ``path`` when the block ends, also by an exception (Ctrl-C keeps what was written).
    Until then ``path`` keeps its old content."""
    with _replacing(Path(path), keep_on_error=True) as (fd, _):
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yield handle


@contextmanager
def folder(path: str | os.PathLike, *, replace: bool = True) -> Iterator[Path]:
    """Fill a folder atomically: ``with folder(path) as tmp:`` write into ``tmp``; when the block ends without an
    exception, every file in it is flushed and ``tmp`` becomes ``path``. An existing ``path`` is replaced
    (``replace``; restored if the swap fails) or kept (``replace=False``: another writer finished first, e.g. a
    concurrent rank building the same data, and its folder stands). On an exception nothing changes at ``path``
    and the temporary folder is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
        for file in tmp.rglob("*"):
            if file.is_file():
                _fsync(file)
        os.chmod(tmp, 0o777 & ~_umask())
        if not path.exists():
            try:
                os.rename(tmp, path)
            except OSError:
                if replace or not path.exists():
                    raise
        elif replace:
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.replace(path, old / path.name)
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(old / path.name, path)
                raise
            finally:
                shutil.rmtree(old, ignore_errors=True)
        _fsync(path.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
