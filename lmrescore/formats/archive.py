"""Kaldi tables of lattices: rspecifiers / wspecifiers, archives that survive bad entries.

rspecifiers: ``ark:lat.ark``, ``ark:gunzip -c lat.1.gz|``, ``ark,t:-``, ``scp:lat.scp``
(``key file[:offset]`` lines). wspecifiers: ``ark:out.ark``, ``ark,t:-``, ``ark:| gzip -c > x.gz``,
``ark,scp:out.ark,out.scp``. Files are written atomically; pipes and stdout stream. A pipe
whose command fails is an error (raised once what it gave has been read).

Entries are laid out as Kaldi's table code and lattice holders do (util/kaldi-table-inl.h,
src/lat/kaldi-lattice.cc): the key, then a space (a tab is accepted; a newline is accepted
and starts a text value); binary: the OpenFst FST right after it, no ``\\0B`` header (one is
tolerated on reading, never written); text: a newline, lines, an empty (or blank) line.

An archive is read whole into memory. A bad entry is yielded as an :class:`InputError` naming
the utterance and byte offset or line. Reading goes on with the next entry: right after the bad
one when its extent is known (a text value ends at its empty line; most bad binary values have
a readable layout), else at the next place an entry can be found (``key `` + FST header, or a
key line after an empty line); the error says which bytes were skipped, or where reading had
to stop, and each FST seen in the skipped bytes counts as one more failed entry.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
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
from lmrescore.formats.kaldi_binary import FST_HEAD, FST_MAGIC_BYTES, NULL_B
from lmrescore.lattice.lattice import Lattice
from lmrescore.vocab import Vocab

_WS = b" \t\n\r\x0b\x0c"  # C's isspace(): what ends a key
_KEY = re.compile(rb"[^ \t\n\r\x0b\x0c]+")
_SPACES = re.compile(rb"[ \t\r\x0b\x0c]*")
# where a text value ends: an empty or blank line (Kaldi splits lines on " \t\r")
_END_OF_TEXT = re.compile(rb"\n[ \t\r]*(?:\n|\Z)")
# where an entry can be found again after a bad one of unknown extent
_BINARY_ENTRY = re.compile(rb"[\x21-\x7e]+[ \t](?:\0B)?" + re.escape(FST_HEAD))
_TEXT_ENTRY = re.compile(rb"\n[ \t\r]*\n(?=[\x21-\x7e]+[ \t\r]*\n)")
_FST = re.compile(re.escape(FST_HEAD))


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


def _read_all(path: str) -> tuple[bytes, InputError | None]:
    """The whole content of a file, pipe (``cmd |``) or stdin (``-``).

    Returns:
        the bytes, and for a pipe whose command failed the error to raise once they are read.
    Raises:
        InputError: a file or stdin that cannot be read.
    """
    if path.strip().endswith("|"):
        cmd = path.strip()[:-1].strip()
        proc = subprocess.run(cmd, shell=True, stdout=subprocess.PIPE)
        if proc.returncode == 0:
            return proc.stdout, None
        status = (f"exit status {proc.returncode}" if proc.returncode > 0
                  else f"killed by signal {-proc.returncode}")
        return proc.stdout, InputError(f"the input command {cmd!r} failed ({status}) after "
                                       f"giving {len(proc.stdout)} bytes")
    try:
        if path == "-":
            return sys.stdin.buffer.read(), None
        with open(path, "rb") as f:
            return f.read(), None
    except OSError as e:
        raise InputError(f"cannot read {path!r}: {e}") from e


def _then_raise(items: Iterable, error: InputError | None) -> Iterator:
    """``items``, then ``error`` raised (if any)."""
    yield from items
    if error is not None:
        raise error


def _parse_entry(data: bytes, pos: int, key: str, line: int,
                 symbols: Vocab | None) -> tuple[Lattice | InputError, int | None]:
    """Parse the value at ``pos`` (after the key and the space or tab that follows it).

    As Kaldi's lattice holders read (src/lat/kaldi-lattice.cc ``LatticeHolder::Read``): byte
    214 (the FST magic) starts a binary value; whitespace up to and including a newline starts
    a text one. ``\\0B`` before the magic is tolerated.

    Returns:
        the lattice or the error, and where the next entry starts (None: unknown).
    """
    if data.startswith(NULL_B + FST_MAGIC_BYTES, pos):
        pos += len(NULL_B)
    if data.startswith(FST_MAGIC_BYTES[:1], pos):
        try:
            return kaldi_binary.parse_binary(data, pos, key, symbols)
        except EntryError as e:
            return e, e.end
    nl = _SPACES.match(data, pos).end()
    if nl >= len(data) or data[nl] != 10:
        got = repr(data[nl: nl + 1]) if nl < len(data) else "the end of the data"
        return InputError(f"utterance {key} (archive offset {pos}, line {line}): expected an "
                          f"FST (byte 214, binary) or a newline (text) after the key, got "
                          f"{got}"), None
    end = _END_OF_TEXT.search(data, nl)
    block = data[nl + 1: end.start() + 1] if end else data[nl + 1:]
    stop = end.end() if end else len(data)
    if not block.strip():
        return InputError(f"utterance {key} (line {line + 1}): empty lattice"), stop
    try:
        return kaldi_text.parse_text(block, key, line + 1, symbols), stop
    except InputError as e:
        return e, stop


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
        while self.pos < n and data[self.pos] in _WS:
            self.pos += 1
        return self.pos < n

    def next_entries(self) -> list[tuple[str, Lattice | InputError]]:
        """The entry at ``pos``, which moves past it; if it is bad and its extent unknown, past
        the bytes skipped to the next entry found, with one error per FST seen in them."""
        data, pos = self.data, self.pos
        end = _KEY.match(data, pos).end()  # at_entry: pos is not whitespace
        key = data[pos:end].decode("utf-8", "replace")
        self.line += data.count(b"\n", self.line_pos, pos)
        self.line_pos = pos
        sep = data[end: end + 1]
        if sep in (b" ", b"\t", b"\n"):  # a newline is not consumed: it starts a text value
            value_pos = end + (sep != b"\n")
            value, stop = _parse_entry(data, value_pos, key, self.line, self.symbols)
        else:
            value_pos, stop = end, None
            value = InputError(f"utterance {key} ({self.name}, archive offset {end}, line "
                               f"{self.line}): expected a space, tab or newline after the key, "
                               f"got {sep!r}" if sep else
                               f"utterance {key} ({self.name}, archive offset {end}): the data "
                               f"ends after the key")
        if stop is not None:
            self.pos = stop
            return [(key, value)]
        if data.startswith(NULL_B + FST_MAGIC_BYTES, value_pos):
            value_pos += len(NULL_B)
        binary = data.startswith(FST_MAGIC_BYTES, value_pos)
        what, lost = self._skip(value_pos + 1, binary)
        return [(key, InputError(f"{value}; {what}"))] + lost

    def _skip(self, start: int, binary: bool) -> tuple[str, list[tuple[str, InputError]]]:
        """Move to the next entry found from ``start`` on, or to the end of the data.

        After a bad binary value: the next ``key `` + FST header; after a bad text one, that or
        the next key line after an empty line, whichever comes first.

        Returns:
            what was skipped, in words, and an error for each FST seen in the skipped bytes.
        """
        data = self.data
        found = [m.start() for m in [_BINARY_ENTRY.search(data, start)] if m]
        if not binary:
            found += [m.end() for m in [_TEXT_ENTRY.search(data, start)] if m]
        self.pos = min(found) if found else len(data)
        what = (f"skipped to offset {self.pos}" if found else
                f"no later entry found: reading stopped, bytes {start - 1} to {len(data)} of "
                f"{self.name} were not read")
        lost = [("?", InputError(f"{self.name} (archive offset {m.start()}): an FST in the "
                                 "skipped bytes whose key was not found; not read"))
                for m in _FST.finditer(data, start, self.pos)]
        return what, lost


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
        yield from cursor.next_entries()


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
            for utt, value in cursor.next_entries():
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
    listing, failed = _read_all(scp_path)
    if failed is not None:
        raise failed
    for lineno, raw in enumerate(listing.decode("utf-8").splitlines(), 1):
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
                data, failed = _read_all(path)
                if failed is not None:
                    raise failed
                cache = (path, data)
            except InputError as e:
                yield key, InputError(f"{scp_path}:{lineno}: utterance {key}: {e}")
                continue
        data = cache[1]
        if offset is None:
            offset = 0
            if not data.startswith((FST_MAGIC_BYTES, NULL_B + FST_MAGIC_BYTES)) and \
                    data[:1] not in tuple(bytes([c]) for c in _WS):  # an archive, not a value
                yield from ((k if k != "?" else key, v) for k, v in iter_archive(data, symbols,
                                                                                path))
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
        data, failed = _read_all(spec.paths[0])
        return _then_raise(iter_archive(data, symbols, spec.paths[0]), failed)
    if spec.kind == "scp":
        return iter_scp(spec.paths[0], symbols)
    raise InputError(f"{rspecifier!r}: read with ark: or scp:")


def read_kaldi_batches(rspecifier: str, symbols: Vocab | None = None, batch_size: int = 100
                       ) -> Iterator[tuple[Lattice | None, list[tuple[str, InputError]]]]:
    """Batches of the lattices of a Kaldi rspecifier and the errors met (see ``batches``)."""
    spec = parse_specifier(rspecifier)
    if spec.kind == "ark":
        data, failed = _read_all(spec.paths[0])
        return _then_raise(iter_archive_batches(data, symbols, spec.paths[0], batch_size), failed)
    return batches(read_kaldi(rspecifier, symbols), batch_size)


def _is_stream(path: str) -> bool:
    return path == "-" or path.strip().startswith("|") or path.strip().endswith("|")


@contextmanager
def open_output(path: str, mode: str = "wb") -> Iterator[IO]:
    """A file written atomically, or a pipe (``| cmd``) / stdout (``-``) written as a stream.

    Raises:
        InputError: the pipe's command failed.
    """
    if path.strip().startswith("|"):
        cmd = path.strip()[1:].strip()
        proc = subprocess.Popen(cmd, shell=True, stdin=subprocess.PIPE)
        try:
            with proc.stdin if "b" in mode else io.TextIOWrapper(proc.stdin, "utf-8") as f:
                yield f
        except BrokenPipeError:  # the command ended early: its exit status says why
            pass
        finally:
            status = proc.wait()
        if status != 0:
            raise InputError(f"the output command {cmd!r} failed (exit status {status})")
    elif _is_stream(path):
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
        index: keep ``index`` for any specifier (``ark,scp`` always keeps it, for the scp).

    Attributes:
        index: (key, byte offset of its value, value length in bytes) of each entry written,
            or None.
    """

    def __init__(self, wspecifier: str, compact: bool = True, index: bool = False) -> None:
        self.spec = parse_specifier(wspecifier)
        if self.spec.kind not in ("ark", "ark,scp"):
            raise InputError(f"{wspecifier!r}: write with ark: or ark,scp:")
        if self.spec.kind == "ark,scp" and _is_stream(self.spec.paths[0]):
            raise InputError(f"{wspecifier!r}: ark,scp needs a file for the archive")
        self.compact = compact
        self.index: list[tuple[str, int, int]] | None = (
            [] if index or self.spec.kind == "ark,scp" else None)

    def __enter__(self) -> "KaldiWriter":
        self._cm = open_output(self.spec.paths[0])
        self._f = self._cm.__enter__()
        self._offset = 0
        return self

    def write(self, lat: Lattice) -> None:
        """Append one lattice (a batch of one).

        Raises:
            InputError: its utterance id is not a Kaldi key (empty, or with whitespace or a
                non-printable character); nothing is written for it.
        """
        utt = lat.utt_ids[0]
        if not utt or not utt.isprintable() or any(c.isspace() for c in utt):
            raise InputError(f"utterance {utt!r}: not a Kaldi table key (empty, or whitespace "
                             f"or a non-printable character in it); not written")
        if self.spec.text:
            value = kaldi_text.format_text(lat, self.compact)
        else:
            value = kaldi_binary.format_binary(lat, self.compact)
        self.write_entry(utt, value)

    def write_entry(self, key: str, value: bytes) -> None:
        """Append ``key``, a space and ``value``: an entry already formatted (as ``write``
        formats it, e.g. copied from another archive this class wrote)."""
        head = key.encode() + b" "
        self._f.write(head + value)
        if self.index is not None:
            self.index.append((key, self._offset + len(head), len(value)))
        self._offset += len(head) + len(value)

    def __exit__(self, *exc) -> None:
        self._cm.__exit__(*exc)
        if exc[0] is None and self.spec.kind == "ark,scp":
            with open_output(self.spec.paths[1], "w") as f:
                f.write("".join(f"{key} {self.spec.paths[0]}:{offset}\n"
                                for key, offset, _ in self.index))
