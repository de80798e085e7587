"""An input read a chunk at a time, for readers that parse it one entry after another.

:func:`open_input` opens a file (optionally from a byte offset), a pipe (``cmd |``) or stdin
(``-``). A :class:`Window` holds the input's bytes from offset ``base`` on: a reader parses
inside ``buf``, asks for more with :meth:`Window.fill` when what it parses runs past the end,
and says which bytes it is done with (:meth:`Window.release`), which are dropped at the next
read. Memory is the largest entry plus a chunk, not the length of the input.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from lmrescore.errors import InputError

CHUNK = 4 << 20
"""Bytes read at a time (at least)."""


class Window:
    """The bytes ``buf`` of an input from offset ``base`` on.

    Args:
        f: a binary stream, read from where it is; None: ``buf`` is all there is.
        name: the input, for error messages.
        base: the input offset ``f`` is at.
        chunk: bytes read at a time (at least).
    """

    def __init__(self, f: IO[bytes] | None, name: str, base: int = 0,
                 chunk: int = CHUNK) -> None:
        self.f, self.name, self.chunk = f, name, chunk
        self.buf, self.base, self.eof = b"", base, f is None
        self._free = base  # bytes before this offset are no longer needed

    @classmethod
    def of_bytes(cls, data: bytes, name: str = "archive") -> "Window":
        """A window holding all of ``data``."""
        win = cls(None, name)
        win.buf = data
        return win

    @property
    def end(self) -> int:
        """The input offset just past ``buf``."""
        return self.base + len(self.buf)

    def release(self, upto: int) -> None:
        """The bytes before offset ``upto`` are not needed any more."""
        self._free = max(self._free, upto)

    def fill(self, upto: int) -> bool:
        """Read until ``buf`` reaches offset ``upto`` or the input ends; released bytes are dropped.

        Returns:
            whether ``buf`` reaches ``upto``.
        Raises:
            InputError: the input cannot be read.
        """
        if upto <= self.end or self.eof:
            return upto <= self.end
        want, parts = max(upto - self.end, self.chunk), []
        try:
            while want > 0:
                piece = self.f.read(want)
                if not piece:
                    self.eof = True
                    break
                parts.append(piece)
                want -= len(piece)
        except OSError as e:
            raise InputError(f"cannot read {self.name!r}: {e}") from e
        drop = min(self._free, self.end) - self.base
        self.buf = b"".join([self.buf[drop:], *parts])
        self.base += drop
        return upto <= self.end

    def grow(self) -> bool:
        """Read as much again as the window holds (at least a chunk); whether anything came."""
        end = self.end
        self.fill(end + max(self.chunk, end - self._free))
        return self.end > end


@contextmanager
def open_input(path: str, offset: int = 0, chunk: int = CHUNK) -> Iterator[Window]:
    """A window on a file (from byte ``offset``), a pipe ``cmd |`` or stdin ``-``.

    Raises:
        InputError: the file cannot be opened or ``offset`` is past its end; a pipe whose
            command failed, on leaving the block having read all it gave (if the block stops
            early, the command is not waited for an answer: it may have been stopped by it).
    """
    if path.strip().endswith("|"):
        cmd = path.strip()[:-1].strip()
        proc = subprocess.Popen(cmd, shell=True, stdout=subprocess.PIPE)
        win = Window(proc.stdout, path, 0, chunk)
        try:
            yield win
        finally:
            proc.stdout.close()
            status = proc.wait()
        if win.eof and status != 0:
            why = f"exit status {status}" if status > 0 else f"killed by signal {-status}"
            raise InputError(f"the input command {cmd!r} failed ({why}) after giving "
                             f"{win.end} bytes")
        return
    if path == "-":
        yield Window(sys.stdin.buffer, path, 0, chunk)
        return
    try:
        f = open(path, "rb")
    except OSError as e:
        raise InputError(f"cannot read {path!r}: {e}") from e
    with f:
        if offset:
            size = os.fstat(f.fileno()).st_size
            if offset > size:
                raise InputError(f"offset {offset} is past the end of {path} ({size} bytes)")
            f.seek(offset)
        yield Window(f, path, offset, chunk)
