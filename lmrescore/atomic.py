"""Atomic writes: a file is either the old one or the whole new one, never half.

Only regular files (and new paths) are replaced: a temporary file is written beside the target
(after following symbolic links) and renamed over it. Anything else, ``-`` (stdout), a device
such as /dev/null, a named pipe, is written to directly: replacing it would break it.
A file inside an output folder whose name comes from the input (``follow_links=False``) is
different: a link, folder, pipe or device planted under its name is refused, never followed.
Temporary files are named ``.<name>.<pid>.tmp``; one left by a killed process is removed the
next time a process writes into its folder. A missing folder is an error, never made: a typo in
an output path fails (before any work, with :func:`unwritable`) instead of making folders.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from lmrescore.errors import InputError


def _umask() -> int:
    """The process umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _is_special(path: Path) -> bool:
    """Whether ``path`` exists and is not a regular file (a device, a pipe, a socket)."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False


_CLEANED: set[Path] = set()  # folders this process has already cleaned


def _remove_stale(folder: Path) -> None:
    """Remove the temporary files in ``folder`` left by processes that no longer run; once per
    folder and process, so that writing N files into one folder reads it once, not N times."""
    if folder in _CLEANED:
        return
    for tmp in folder.glob(".*.tmp"):
        pid = tmp.name[: -len(".tmp")].rpartition(".")[2]
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)
    _CLEANED.add(folder)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def unwritable(path: str | Path, folder: bool = False) -> str | None:
    """Why :func:`atomic_open` could not write ``path``, checked before any work; None if it can.

    ``-`` can be written; a device or pipe must be writable; a regular file or new path needs
    its folder to exist and take new files (the temporary file is made beside it).

    Args:
        folder: ``path`` is a folder of output files (SLF lattices): an existing folder that
            takes new files, or a new one to be made (one level) in an existing folder.
    """
    if str(path) == "-" and not folder:
        return None
    real = Path(os.path.realpath(path))
    if folder and real.is_dir():
        return None if os.access(real, os.W_OK | os.X_OK) else f"cannot create files in {real}"
    if real.is_dir():
        return "is a folder, not a file"
    if folder and real.exists():
        return "is not a folder"
    if _is_special(real):
        return None if os.access(real, os.W_OK) else "not writable"
    parent = real.parent
    if not parent.exists():
        return f"no such folder {parent}"
    if not parent.is_dir():
        return f"{parent} is not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot create files in {parent}"
    return None


def _require_regular(path: Path) -> None:
    """Refuse ``path`` unless it is absent or a regular file (never a link: it is not followed)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        kind = "a symbolic link" if stat.S_ISLNK(mode) else \
            "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise InputError(f"{path}: {kind} is in the way; an output inside a folder replaces "
                         "only a regular file")


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", follow_links: bool = True, **kwargs
                ) -> Iterator[IO]:
    """Open ``path`` for writing so that it is never seen half written.

    A regular file or new path: a temporary file beside it, renamed over it on success and
    removed on an exception (``path`` untouched); its folder must exist. ``-``: stdout. A device
    or pipe: itself.

    Args:
        follow_links: False for a file named by the input inside an output folder: ``path``
            must be absent or a regular file (a link is not followed), else ``InputError``.
    """
    if str(path) == "-":
        stream = sys.stdout.buffer if "b" in mode else sys.stdout
        yield stream
        stream.flush()
        return
    if follow_links:
        path = Path(os.path.realpath(path))  # follow links: replace the file, keep the link
        if _is_special(path):
            with open(path, mode, **kwargs) as f:
                yield f
            return
    else:
        path = Path(path)
        _require_regular(path)
    if not path.parent.is_dir():  # else the error would name the temporary file
        raise FileNotFoundError(errno.ENOENT, "no such folder", str(path.parent))
    _remove_stale(path.parent)
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)  # a link planted under this name goes, not its target
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666 & ~_umask())
    try:
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str, follow_links: bool = True) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8); ``follow_links`` as for ``atomic_open``."""
    with atomic_open(path, "w", follow_links, encoding="utf-8") as f:
        f.write(text)


def atomic_save(path: str | Path, write: Callable[[IO], None]) -> None:
    """Call ``write(binary_file)`` and publish the result at ``path`` atomically."""
    with atomic_open(path, "wb") as f:
        write(f)
