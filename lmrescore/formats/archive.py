"""Kaldi tables of lattices: rspecifiers / wspecifiers, archives that survive bad entries.

rspecifiers: ``ark:lat.ark``, ``ark:gunzip -c lat.1.gz|``, ``ark,t:-``, ``scp:lat.scp``
(``key file[:offset]`` lines). wspecifiers: ``ark:out.ark``, ``ark,t:-``, ``ark:| gzip -c > x.gz``,
``ark,scp:out.ark,out.scp``. Files are written atomically; pipes and stdout stream.

An archive is read whole into memory. A bad entry is yielded as an :class:`InputError` naming
the utterance and byte offset or line; reading goes on with the next entry (after a corrupt
binary FST, at the next ``" \\0B"`` + FST magic).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

from kaldiio.utils import open_like_kaldi

from lmrescore.atomic import atomic_open
from lmrescore.errors import InputError
from lmrescore.formats import kaldi_binary, kaldi_text
from lmrescore.formats.batch import batches, join
from lmrescore.formats.kaldi import EntryError
from lmrescore.formats.kaldi_batch import decode_run
from lmrescore.lattice.lattice import Lattice
from lmrescore.vocab import Vocab

_BINARY_MARK = b"\0B"
_RESYNC = re.compile(rb"([\x21-\x7e]+) \0B\xd6\xfd\xb2\x7e", re.S)


@dataclass(frozen=True)
class Specifier:
    """A parsed rspecifier / wspecifier.

    Attributes:
        kind: ``"ark"``, ``"scp"`` or ``"ark,scp"``.
        text: ``t`` option (text output).
        paths: one path (or two for ``ark,scp``).
    """

    kind: str
    text: bool
    paths: tuple[str, ...]


def parse_specifier(spec: str) -> Specifier:
    """Split ``ark,t:path`` into kind, options and path(s)."""
    head, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise InputError(f"{spec!r}: expected a Kaldi specifier like ark:lat.ark or scp:lat.scp")
    opts = head.split(",")
    kinds = [o for o in opts if o in ("ark", "scp")]
    if not kinds or len(set(kinds)) != len(kinds):
        raise InputError(f"{spec!r}: the specifier must start with ark: or scp:")
    kind = ",".join(kinds)
    paths = tuple(rest.split(",", 1)) if kind == "ark,scp" else (rest,)
    if kind == "scp,ark":
        raise InputError(f"{spec!r}: write ark,scp:ARK,SCP")
    return Specifier(kind=kind, text="t" in opts, paths=paths)


def _read_all(path: str) -> bytes:
    """The whole content of a file, pipe (``cmd |``) or stdin (``-``)."""
    try:
        with open_like_kaldi(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise InputError(f"cannot read {path!r}: {e}") from e


def _parse_entry(data: bytes, pos: int, key: str, line: int,
                 symbols: Vocab | None) -> tuple[Lattice | InputError, int | None]:
    """Parse the value at ``pos`` (just after ``key ``).

    Returns:
        the lattice or the error, and where the next entry starts (None: unknown, resync).
    """
    if data.startswith(_BINARY_MARK, pos):
        try:
            return kaldi_binary.parse_binary(data, pos + 2, key, symbols)
        except EntryError as e:
            return e, e.end
    nl = data.find(b"\n", pos)
    if nl < 0 or data[pos:nl].strip():
        return InputError(f"utterance {key} (archive offset {pos}): expected '\\0B' (binary) or "
                          "a newline (text) after the key"), None
    end = data.find(b"\n\n", nl)
    end = len(data) - 1 if end < 0 else end
    block = data[nl + 1: end + 1]
    if not block.strip():
        return InputError(f"utterance {key} (line {line + 1}): empty lattice"), end + 2
    try:
        return kaldi_text.parse_text(block, key, line + 1, symbols), end + 2
    except InputError as e:
        return e, end + 2


class _Cursor:
    """A position in an archive, read one entry at a time the failure-tolerant way.

    Args:
        data: the archive bytes; symbols: words.txt or None; name: for error messages.
    """

    def __init__(self, data: bytes, symbols: Vocab | None, name: str) -> None:
        self.data, self.symbols, self.name = data, symbols, name
        self.pos, self.line, self.line_pos = 0, 1, 0

    def at_entry(self) -> bool:
        """Skip whitespace; whether an entry follows."""
        data, n = self.data, len(self.data)
        while self.pos < n and data[self.pos] in b" \t\r\n":
            self.pos += 1
        return self.pos < n

    def next_entry(self) -> tuple[str, Lattice | InputError]:
        """The entry at ``pos``, which moves past it (to the end of the data when lost)."""
        data, pos = self.data, self.pos
        space = data.find(b" ", pos)
        nl = data.find(b"\n", pos)
        if space < 0 or (0 <= nl < space) or space == pos:
            key = data[pos: nl if nl >= 0 else len(data)].decode("utf-8", "replace")
            self._resync(pos + 1)
            return "?", InputError(f"{self.name} (offset {pos}): expected 'key value', "
                                   f"got {key[:40]!r}")
        key = data[pos:space].decode("utf-8", "replace")
        self.line += data.count(b"\n", self.line_pos, space)
        self.line_pos = space
        value, end = _parse_entry(data, space + 1, key, self.line, self.symbols)
        if end is None:
            self._resync(space + 3)
        else:
            self.pos = end
        return key, value

    def _resync(self, start: int) -> None:
        """Move to the next ``key \\0B`` + FST magic after ``start``, or to the end."""
        m = _RESYNC.search(self.data, start)
        self.pos = m.start() if m else len(self.data)


def iter_archive(data: bytes, symbols: Vocab | None = None,
                 name: str = "archive") -> Iterator[tuple[str, Lattice | InputError]]:
    """Entries of a Kaldi archive of lattices, binary and text entries mixed freely.

    Args:
        data: the archive bytes; name: for error messages.
    Returns:
        an iterator of (utterance id, lattice or the error that entry raised).
    """
    cursor = _Cursor(data, symbols, name)
    while cursor.at_entry():
        yield cursor.next_entry()


def iter_archive_batches(data: bytes, symbols: Vocab | None = None, name: str = "archive",
                         batch_size: int = 100
                         ) -> Iterator[tuple[Lattice | None, list[tuple[str, InputError]]]]:
    """Batches of the lattices of an archive: ``batches(iter_archive(...))``, read faster.

    Runs of binary entries are decoded together (:mod:`lmrescore.formats.kaldi_batch`); text
    entries and entries the fast path cannot vouch for are read one by one.

    Args:
        data: the archive bytes; name: for error messages.
        batch_size: lattices per batch.
    Returns:
        an iterator of (a batch of up to ``batch_size`` lattices or None, the errors met while
        collecting it), exactly as :func:`lmrescore.formats.batch.batches` gives them.
    """
    cursor = _Cursor(data, symbols, name)
    pieces: list[Lattice] = []
    errors: list[tuple[str, InputError]] = []
    count = 0
    window = batch_size  # halved after each entry the fast path refuses, so refusals stay cheap
    while cursor.at_entry():
        run = decode_run(data, cursor.pos, min(window, batch_size - count), symbols)
        window = min(2 * window, batch_size) if run.count else max(1, window // 2)
        if run.count:
            cursor.pos = run.end
            errors += run.errors
            if run.lattices is not None:
                pieces.append(run.lattices)
                count += run.lattices.num_lattices
        else:
            utt, value = cursor.next_entry()
            if isinstance(value, InputError):
                errors.append((utt, value))
            else:
                pieces.append(value)
                count += 1
        if count == batch_size:
            yield join(pieces), errors
            pieces, errors, count = [], [], 0
    if pieces or errors:
        yield (join(pieces) if pieces else None), errors


def iter_scp(scp_path: str, symbols: Vocab | None = None
             ) -> Iterator[tuple[str, Lattice | InputError]]:
    """Lattices listed in an scp file (``key rxfilename[:offset]`` per line)."""
    cache: tuple[str, bytes] | None = None
    for lineno, raw in enumerate(_read_all(scp_path).decode("utf-8").splitlines(), 1):
        if not raw.strip():
            continue
        parts = raw.split(None, 1)
        if len(parts) != 2:
            yield "?", InputError(f"{scp_path}:{lineno}: expected 'key rxfilename'")
            continue
        key, rx = parts[0], parts[1].strip()
        m = re.fullmatch(r"(.*[^|]):(\d+)", rx)
        path, offset = (m.group(1), int(m.group(2))) if m else (rx, None)
        if cache is None or cache[0] != path:
            try:
                cache = (path, _read_all(path))
            except InputError as e:
                yield key, InputError(f"{scp_path}:{lineno}: utterance {key}: {e}")
                continue
        data = cache[1]
        if offset is None:  # a whole file holding one value, possibly with its key
            yield from ((k if k != "?" else key, v) for k, v in iter_archive(data, symbols, path))
            continue
        if offset > len(data):
            yield key, InputError(f"{scp_path}:{lineno}: utterance {key}: offset {offset} is past "
                                  f"the end of {path}")
            continue
        value, _ = _parse_entry(data, offset, key, data.count(b"\n", 0, offset), symbols)
        yield key, value


def read_kaldi(rspecifier: str, symbols: Vocab | None = None
               ) -> Iterator[tuple[str, Lattice | InputError]]:
    """(utterance id, lattice or error) for each entry of a Kaldi rspecifier."""
    spec = parse_specifier(rspecifier)
    if spec.kind == "ark":
        return iter_archive(_read_all(spec.paths[0]), symbols, spec.paths[0])
    if spec.kind == "scp":
        return iter_scp(spec.paths[0], symbols)
    raise InputError(f"{rspecifier!r}: read with ark: or scp:")


def read_kaldi_batches(rspecifier: str, symbols: Vocab | None = None, batch_size: int = 100
                       ) -> Iterator[tuple[Lattice | None, list[tuple[str, InputError]]]]:
    """Batches of the lattices of a Kaldi rspecifier and the errors met (see ``batches``)."""
    spec = parse_specifier(rspecifier)
    if spec.kind == "ark":
        return iter_archive_batches(_read_all(spec.paths[0]), symbols, spec.paths[0], batch_size)
    return batches(read_kaldi(rspecifier, symbols), batch_size)


def _is_stream(path: str) -> bool:
    return path == "-" or path.strip().startswith("|") or path.strip().endswith("|")


@contextmanager
def open_output(path: str, mode: str = "wb") -> Iterator[IO]:
    """A file written atomically, or a pipe (``| cmd``) / stdout (``-``) written as a stream."""
    if _is_stream(path):
        with open_like_kaldi(path, mode) as f:
            yield f
    else:
        with atomic_open(path, mode) as f:
            yield f


class KaldiWriter:
    """Writes lattices to a wspecifier; use as a context manager.

    Args:
        wspecifier: ``ark:``, ``ark,t:`` or ``ark,scp:`` specifier.
        compact: write CompactLattices (else Lattices).
    """

    def __init__(self, wspecifier: str, compact: bool = True) -> None:
        self.spec = parse_specifier(wspecifier)
        if self.spec.kind not in ("ark", "ark,scp"):
            raise InputError(f"{wspecifier!r}: write with ark: or ark,scp:")
        if self.spec.kind == "ark,scp" and _is_stream(self.spec.paths[0]):
            raise InputError(f"{wspecifier!r}: ark,scp needs a file for the archive")
        self.compact = compact
        self._scp: list[str] = []

    def __enter__(self) -> "KaldiWriter":
        self._cm = open_output(self.spec.paths[0])
        self._f = self._cm.__enter__()
        self._offset = 0
        return self

    def write(self, lat: Lattice) -> None:
        """Append one lattice (a batch of one)."""
        key = lat.utt_ids[0].encode() + b" "
        if self.spec.text:
            value = kaldi_text.format_text(lat, self.compact)
        else:
            value = _BINARY_MARK + kaldi_binary.format_binary(lat, self.compact)
        self._f.write(key + value)
        if self.spec.kind == "ark,scp":
            self._scp.append(f"{lat.utt_ids[0]} {self.spec.paths[0]}:{self._offset + len(key)}\n")
        self._offset += len(key) + len(value)

    def __exit__(self, *exc) -> None:
        self._cm.__exit__(*exc)
        if exc[0] is None and self.spec.kind == "ark,scp":
            with open_output(self.spec.paths[1], "w") as f:
                f.write("".join(self._scp))
