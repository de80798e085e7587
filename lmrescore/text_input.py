"""Untrusted text files: UTF-8 errors name the file and line; a byte cap bounds decompression."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path

from lmrescore.errors import InputError


def _not_utf8(name: str | Path, data: bytes, e: UnicodeDecodeError, line: int | None = None
              ) -> InputError:
    """The error for the bad byte ``e.start`` of ``data`` (the whole file, or its line ``line``)."""
    line_start = data.rfind(b"\n", 0, e.start) + 1
    if line is None:
        line = data.count(b"\n", 0, e.start) + 1
    return InputError(f"{name}:{line}: not UTF-8 (byte {data[e.start]:#04x} at column "
                      f"{e.start - line_start + 1})")


def read_text(path: str | Path, max_bytes: int | None = None, gz: bool = False) -> str:
    """The whole text of a UTF-8 file, read at most ``max_bytes + 1`` bytes far.

    Args:
        path: the file; gz: decompress it with gzip (the cap applies to the decompressed bytes).
        max_bytes: a larger file is an error (None: no cap).
    Raises:
        InputError: unreadable, truncated or corrupt gzip, too large, or not UTF-8 (file:line).
    """
    try:
        with (gzip.open if gz else open)(path, "rb") as f:
            data = f.read(-1 if max_bytes is None else max_bytes + 1)
    except (OSError, EOFError, zlib.error) as e:
        raise InputError(f"cannot read {path}: {e}") from None
    if max_bytes is not None and len(data) > max_bytes:
        raise InputError(f"{path}: more than {max_bytes} bytes{' decompressed' if gz else ''} "
                         "(the size cap)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _not_utf8(path, data, e) from None


def read_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(line number from 1, line) of a UTF-8 text file, streamed.

    Raises:
        InputError: unreadable, or a line that is not UTF-8 (file:line).
    """
    try:
        f = open(path, "rb")
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from None
    with f:
        for lineno, raw in enumerate(f, 1):
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise _not_utf8(path, raw, e, lineno) from None
