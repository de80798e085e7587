"""Kaldi tables of lattices read: rspecifiers, archives read a chunk at a time that survive bad
entries.

rspecifiers: ``ark:lat.ark``, ``ark:gunzip -c lat.1.gz|``, ``ark,t:-``, ``scp:lat.scp``
(``key rxfilename[:offset]`` lines), parsed by :mod:`lmrescore.formats.specifier`; written
by :mod:`lmrescore.formats.kaldi_writer`. A pipe whose command fails is an error (raised once
what it gave has been read).

Entries are laid out as Kaldi's table code and lattice holders do (util/kaldi-table-inl.h,
src/lat/kaldi-lattice.cc): the key, then a space (a tab is accepted; a newline is accepted
and starts a text value); binary: the OpenFst FST right after it, no ``\\0B`` header (one is
tolerated on reading, never written); text: a newline, lines, an empty (or blank) line.

An input is read through a window (:mod:`lmrescore.formats.window`) a chunk at a time, one
entry after another, so memory is flat in the archive's length. An entry (key and value) of
more than ``max_bytes`` (:data:`~lmrescore.formats.limits.MAX_ENTRY_BYTES`) fails once that
many bytes of it have been read, or at once if its header claims more. A bad entry is yielded
as an :class:`InputError` naming the archive, the utterance and byte offset or line. Reading
goes on with the next entry: right after the bad one when its extent is known (a text value
ends at its empty line; a bad binary value where its layout says, if a binary entry whose key
is a Kaldi token follows there and none starts before), else at the next place an entry can be
found (:mod:`lmrescore.formats.resync`); the error says which bytes were skipped, or where
reading had to stop, and each FST seen in the skipped bytes counts as one more failed entry. A
text value that runs into the next entry (a ``key <FST>`` or a key line, see ``resync``) before
an empty line fails, and reading goes on at that entry. A key that is not UTF-8 fails its entry
alone (shown with ``\\xNN`` escapes). What is read does not depend on the chunk size.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from lmrescore.errors import InputError
from lmrescore.formats import kaldi_binary, kaldi_text
from lmrescore.formats.batch import batches, join, size, unbatch
from lmrescore.formats.kaldi import EntryError, Truncated, decode_key
from lmrescore.formats.kaldi_batch import Run, decode_run
from lmrescore.formats.kaldi_binary import FST_HEAD, FST_MAGIC_BYTES, NULL_B
from lmrescore.formats.limits import MAX_BATCH_ITEMS, MAX_ENTRY_BYTES
from lmrescore.formats.resync import next_entry, resync
from lmrescore.formats.specifier import parse_specifier
from lmrescore.formats.window import Window, open_input
from lmrescore.lattice.lattice import Lattice
from lmrescore.vocab import Vocab

_KEY = re.compile(rb"[^ \t\n\r\x0b\x0c]+")  # C's isspace() ends a key
_NOT_WS = re.compile(rb"[^ \t\n\r\x0b\x0c]")
_SPACES = re.compile(rb"[ \t\r\x0b\x0c]*")
# where a text value ends: an empty or blank line (Kaldi splits lines on " \t\r")
_END_OF_TEXT = re.compile(rb"\n[ \t\r]*(?:\n|\Z)")
_PEEK = len(NULL_B) + len(FST_MAGIC_BYTES)  # the bytes after a key that tell binary from text
# what may follow a bad binary value where its layout says it ends: whitespace, then a binary
# entry whose key is a Kaldi token (no whitespace or ASCII control byte: util/text-utils IsToken)
_TOKEN = rb"[ \t\n\r\x0b\x0c]*[^\x00-\x20\x7f]+"
_NEXT_BINARY = re.compile(_TOKEN + rb"[ \t](?:\0B)?" + re.escape(FST_HEAD))
_MAY_BE_NEXT = re.compile(_TOKEN + rb"(?:[ \t][\s\S]{0,%d})?\Z" % (_PEEK + len(FST_HEAD)))
T = TypeVar("T")


@dataclass(frozen=True)
class _Short:
    """The data ends before what is parsed may: read on to offset ``need`` (of the same data)
    at least, then parse again; it probably ends by ``guess`` (None: no better guess)."""

    need: int
    guess: int | None = None


def _parse_value(data: bytes, pos: int, key: str, line: int, symbols: Vocab | None, base: int,
                 eof: bool) -> tuple[Lattice | InputError, int | None] | _Short:
    """Parse the value at ``pos`` (after the key and the space or tab that follows it).

    As Kaldi's lattice holders read (src/lat/kaldi-lattice.cc ``LatticeHolder::Read``): byte
    214 (the FST magic) starts a binary value; whitespace up to and including a newline starts
    a text one. ``\\0B`` before the magic is tolerated.

    Args:
        data: a window on the archive; base: the archive offset of ``data[0]``.
        eof: whether ``data`` ends where the archive does.
    Returns:
        the lattice or the error, and where in ``data`` the next entry starts (None: unknown);
        or ``_Short`` if more data could parse otherwise.
    """
    if not eof and len(data) < pos + _PEEK:
        return _Short(pos + _PEEK)
    if data.startswith(NULL_B + FST_MAGIC_BYTES, pos):
        pos += len(NULL_B)
    if data.startswith(FST_MAGIC_BYTES[:1], pos):
        try:
            return kaldi_binary.parse_binary(data, pos, key, symbols, base)
        except Truncated as e:
            return (e, None) if eof else _Short(e.need, e.guess)
        except EntryError as e:
            return _after_bad_binary(e, data, pos, eof)
    nl = _SPACES.match(data, pos).end()
    if nl >= len(data) and not eof:
        return _Short(nl + 1)
    if nl >= len(data) or data[nl] != 10:
        got = repr(data[nl: nl + 1]) if nl < len(data) else "the end of the data"
        return InputError(f"utterance {key} (archive offset {base + pos}, line {line}): expected "
                          f"an FST (byte 214, binary) or a newline (text) after the key, got "
                          f"{got}"), None
    end = _END_OF_TEXT.search(data, nl)
    inside = next_entry(data, nl, end.start() + 1 if end else len(data), False)
    if inside is not None:  # the next entry, before an empty line ends this value
        return InputError(f"utterance {key} (archive offset {base + pos}, line {line}): the text "
                          f"value runs into the next entry (at offset {base + inside}) without "
                          f"an empty line"), inside
    if not eof and (end is None or end.end() == len(data) and not end.group().endswith(b"\n")
                    or end.group() == b"\n"):  # the value may go on past the end of data
        return _Short(len(data) + 1)
    block = data[nl + 1: end.start() + 1] if end else data[nl + 1:]
    stop = end.end() if end else len(data)
    if not block.strip():
        return InputError(f"utterance {key} (line {line + 1}): empty lattice"), stop
    try:
        return kaldi_text.parse_text(block, key, line + 1, symbols), stop
    except InputError as e:
        return e, stop


def _after_bad_binary(e: EntryError, data: bytes, pos: int, eof: bool
                      ) -> tuple[InputError, int | None] | _Short:
    """The bad binary value at ``pos`` and where the next entry starts: where its layout says it
    ends if a binary entry (or the end of the data) is there and none starts before; else
    unknown (None: the caller resyncs). A layout misread by a changed byte would otherwise
    skip or rename the next entry."""
    if e.end is None or next_entry(data, pos + 1, e.end, True) is not None:
        return e, None
    if _NEXT_BINARY.match(data, e.end) or eof and not data[e.end:].strip():
        return e, e.end
    return _Short(len(data) + 1) if not eof and _MAY_BE_NEXT.match(data, e.end) else (e, None)


def _parse_entry(data: bytes, pos: int, line: int, symbols: Vocab | None, name: str, base: int,
                 eof: bool) -> tuple[str, Lattice | InputError, int, int | None] | _Short:
    """Parse the entry whose key starts at ``pos`` (arguments as for ``_parse_value``).

    Returns:
        the key, the lattice or the error, where in ``data`` the value starts and where the
        next entry starts (None: unknown); or ``_Short``.
    """
    end = _KEY.match(data, pos).end()
    if end >= len(data) and not eof:
        return _Short(end + 1)
    key, utf8 = decode_key(data[pos:end])
    sep = data[end: end + 1]
    if sep in (b" ", b"\t", b"\n"):  # a newline is not consumed: it starts a text value
        value_pos = end + (sep != b"\n")
        got = _parse_value(data, value_pos, key, line, symbols, base, eof)
        if isinstance(got, _Short):
            return got
        value = got[0] if utf8 or isinstance(got[0], InputError) else InputError(
            f"utterance {key} (archive offset {base + pos}, line {line}): the key is not UTF-8")
        return key, value, value_pos, got[1]
    value = InputError(f"utterance {key} ({name}, archive offset {base + end}, line {line}): "
                       f"expected a space, tab or newline after the key, got {sep!r}" if sep else
                       f"utterance {key} ({name}, archive offset {base + end}): the data ends "
                       f"after the key")
    return key, value, end, None


def _bounded(win: Window, start: int, max_bytes: int,
             parse: Callable[[bytes, bool], T | _Short]) -> T | None:
    """``parse(data, eof)`` on the window's bytes, read on while it says they are short, up to
    ``max_bytes`` from archive offset ``start`` (what it sees ends there). What it needs is
    checked against the cap before the end of the input is: a claim past the cap fails as such
    whether or not the input ends first, so the answer does not depend on the chunk size.

    Returns:
        what ``parse`` gave, or None: it needs more than ``max_bytes``.
    """
    limit = start + max_bytes
    while True:
        data, eof = win.buf, win.eof
        if win.end > limit:
            data, eof = data[: limit - win.base], False
        got = parse(data, False)
        if not isinstance(got, _Short):
            return got
        if win.base + got.need > limit:
            return None
        if eof:
            return parse(data, True)
        if win.end >= limit:
            return None
        _read_on(win, start, limit, got.need, got.guess)


def _read_on(win: Window, start: int, limit: int, need: int, guess: int | None) -> None:
    """Read the window on for an entry at archive offset ``start`` that the data ends inside
    of: to where it probably ends (``guess``, else ``need``; offsets of the window's bytes), at
    least twice what is held of it, at most to ``limit``."""
    ahead = win.base + (need if guess is None else guess)
    win.fill(min(limit, max(ahead, start + 2 * (win.end - start))))


class _Cursor:
    """A position in an archive, read one entry at a time the failure-tolerant way.

    Args:
        win: the window on the archive; symbols: words.txt or None; name: for error messages;
        max_bytes: the cap on one entry.
    """

    def __init__(self, win: Window, symbols: Vocab | None, name: str, max_bytes: int) -> None:
        self.win, self.symbols, self.name, self.max_bytes = win, symbols, name, max_bytes
        self.pos = self.line_pos = win.base
        self.line = 1

    def _release(self, upto: int) -> None:
        """Count the lines up to archive offset ``upto``; the window may drop what is before."""
        self.line += self.win.buf.count(b"\n", self.line_pos - self.win.base,
                                        upto - self.win.base)
        self.line_pos = upto
        self.win.release(upto)

    def at_entry(self) -> bool:
        """Skip whitespace; whether an entry follows (its key at ``pos``)."""
        win = self.win
        while (m := _NOT_WS.search(win.buf, self.pos - win.base)) is None:
            self.pos = win.end
            self._release(self.pos)
            if not win.grow():
                return False
        self.pos = win.base + m.start()
        self._release(self.pos)
        return True

    def next_entries(self) -> list[tuple[str, Lattice | InputError]]:
        """The entry at ``pos``, which moves past it; if it is bad and its extent unknown, past
        the bytes skipped to the next entry found, with one error per FST seen in them."""
        start, win = self.pos, self.win
        got = _bounded(win, start, self.max_bytes, lambda data, eof: _parse_entry(
            data, start - win.base, self.line, self.symbols, self.name, win.base, eof))
        if got is None:
            key, value, value_pos, stop = self._too_big(start)
        else:
            key, value, value_pos, stop = got
            value_pos += win.base
            if stop is not None:
                self.pos = win.base + stop
                return [(key, named(self.name, value))]
        data, v = win.buf, value_pos - win.base
        if data.startswith(NULL_B + FST_MAGIC_BYTES, v):
            v += len(NULL_B)
        skip = win.base + v + 1
        found, heads = resync(win, skip, data.startswith(FST_MAGIC_BYTES, v), self.max_bytes,
                              self._release)
        self.pos = win.end if found is None else found
        what = (f"skipped to offset {found}" if found is not None else
                f"no later entry found: reading stopped, bytes {skip - 1} to {win.end} of "
                f"{self.name} were not read")
        lost = [("?", InputError(f"{self.name} (archive offset {h}): an FST in the skipped "
                                 "bytes whose key was not found; not read")) for h in heads]
        return [(key, named(self.name, InputError(f"{value}; {what}")))] + lost

    def _too_big(self, start: int) -> tuple[str, InputError, int, None]:
        """The entry at ``start`` needs more than ``max_bytes``: its key, the error, where its
        value starts (a key as long as the cap: where the cap ends)."""
        data, base, cap = self.win.buf, self.win.base, self.max_bytes
        end = _KEY.match(data, start - base).end()
        if end - (start - base) < cap:
            key, value_pos = decode_key(data[start - base: end])[0], base + end + 1
            why = f"the entry (from offset {start} of {self.name}) is larger than the cap of {cap}"
        else:
            key, value_pos = "?", start + cap
            why = f"a key (in {self.name}) longer than the cap of {cap}"
        return key, InputError(f"utterance {key} (archive offset {value_pos}): {why} bytes"), \
            value_pos, None


def named(name: str, value: T) -> T:
    """``value``, an error naming the archive ``name`` if it is one that does not yet."""
    if isinstance(value, InputError) and name not in str(value):
        return InputError(f"{name}: {value}")
    return value


def iter_archive(data: bytes | Window, symbols: Vocab | None = None, name: str = "archive",
                 max_bytes: int = MAX_ENTRY_BYTES
                 ) -> Iterator[tuple[str, Lattice | InputError]]:
    """Entries of a Kaldi archive of lattices, binary and text entries mixed freely.

    Args:
        data: the archive bytes, or a window on it (read on to its end); name: for error
            messages; max_bytes: the cap on one entry (key and value).
    Returns:
        an iterator of (utterance id, lattice or the error that entry raised).
    """
    win = data if isinstance(data, Window) else Window.of_bytes(data, name)
    cursor = _Cursor(win, symbols, name, max_bytes)
    while cursor.at_entry():
        yield from cursor.next_entries()


def iter_archive_batches(data: bytes | Window, symbols: Vocab | None = None,
                         name: str = "archive", batch_size: int = 100,
                         max_bytes: int = MAX_ENTRY_BYTES, max_items: int = MAX_BATCH_ITEMS
                         ) -> Iterator[tuple[Lattice | None, list[tuple[str, InputError]]]]:
    """Batches of the lattices of an archive: ``batches(iter_archive(...))``, read faster.

    Runs of binary entries are decoded together (:mod:`lmrescore.formats.kaldi_batch`); text
    entries and entries the fast path cannot vouch for are read one by one.

    Args:
        data, name, max_bytes: as for :func:`iter_archive`.
        batch_size: lattices per batch; max_items: the batch bound, as for ``batches``.
    Returns:
        an iterator of (a batch of up to ``batch_size`` lattices or None, the errors met while
        collecting it), exactly as :func:`lmrescore.formats.batch.batches` gives them.
    """
    win = data if isinstance(data, Window) else Window.of_bytes(data, name)
    cursor = _Cursor(win, symbols, name, max_bytes)
    pieces: list[Lattice] = []
    errors: list[tuple[str, InputError]] = []
    count = held = 0
    window = batch_size  # halved after each entry the fast path refuses, so refusals stay cheap
    while cursor.at_entry():
        run = _decode_run(win, cursor.pos, min(window, batch_size - count), symbols, max_bytes)
        window = min(2 * window, batch_size) if run.count else max(1, window // 2)
        if run.count:
            cursor.pos = win.base + run.end
            errors += [(utt, named(cursor.name, e)) for utt, e in run.errors]
            got = [] if run.lattices is None else [run.lattices]
            if got and held + size(got[0]) > max_items:  # the run's lattices one by one
                got = list(unbatch(got[0]))
        else:
            got = []
            for utt, value in cursor.next_entries():
                if isinstance(value, InputError):
                    errors.append((utt, value))
                else:
                    got.append(value)
        for lat in got:
            if pieces and held + size(lat) > max_items:  # the batch bound: close it first
                yield join(pieces), errors
                pieces, errors, count, held = [], [], 0, 0
            pieces.append(lat)
            count += lat.num_lattices
            held += size(lat)
        if count == batch_size:
            yield join(pieces), errors
            pieces, errors, count, held = [], [], 0, 0
    if pieces or errors:
        yield (join(pieces) if pieces else None), errors


def _decode_run(win: Window, pos: int, max_entries: int, symbols: Vocab | None,
                max_bytes: int) -> Run:
    """``decode_run`` at archive offset ``pos``, the window read on while the first entry may
    end past it (up to ``max_bytes`` from ``pos``); ``end`` is an offset of the window."""
    win.fill(pos + win.chunk)
    while True:
        run = decode_run(win.buf, pos - win.base, max_entries, symbols, win.base, max_bytes)
        if run.need is None or win.eof or win.base + run.need - pos > max_bytes:
            return run
        _read_on(win, pos, pos + max_bytes + 4, run.need, run.guess)


def _lines(win: Window) -> Iterator[bytes]:
    """The lines of an input, without their newlines."""
    pos = win.base
    while True:
        end = win.buf.find(b"\n", pos - win.base)
        if end >= 0:
            yield win.buf[pos - win.base: end]
            pos = win.base + end + 1
            win.release(pos)
        elif not win.grow():
            if pos < win.end:
                yield win.buf[pos - win.base:]
            return


def iter_scp(scp_path: str, symbols: Vocab | None = None, max_bytes: int = MAX_ENTRY_BYTES
             ) -> Iterator[tuple[str, Lattice | InputError]]:
    """Lattices listed in an scp file (``key rxfilename[:offset]`` per line).

    Each line is read on its own: one that cannot be (not UTF-8, a missing file, an offset past
    the end or not at a value, a failing pipe) fails that utterance alone, named with the scp
    file and line. A file without an offset holds one value, or an archive. Line numbers in
    text values count from the line the offset is on (1).
    """
    with open_input(scp_path) as listing:
        for lineno, raw in enumerate(_lines(listing), 1):
            parts = raw.split(None, 1)
            if not parts:
                continue
            key, utf8 = decode_key(parts[0])
            if not utf8:
                yield key, InputError(f"{scp_path}:{lineno}: the key is not UTF-8")
                continue
            if len(parts) != 2:
                yield key, InputError(f"{scp_path}:{lineno}: expected 'key rxfilename'")
                continue
            try:
                rx = parts[1].decode("utf-8").strip()
            except UnicodeDecodeError as e:
                yield key, InputError(f"{scp_path}:{lineno}: utterance {key}: not UTF-8 ({e})")
                continue
            try:
                for utt, value in _scp_entry(key, rx, symbols, max_bytes):
                    if isinstance(value, InputError):
                        value = InputError(f"{scp_path}:{lineno}: {value}")
                    yield utt, value
            except InputError as e:
                yield key, InputError(f"{scp_path}:{lineno}: utterance {key}: {e}")


def _scp_entry(key: str, rx: str, symbols: Vocab | None, max_bytes: int
               ) -> Iterator[tuple[str, Lattice | InputError]]:
    """The lattice ``rx`` (``file[:offset]``, or a pipe) points at, or those of the archive it is.

    Raises:
        InputError: ``rx`` cannot be opened, or it is a pipe that failed.
    """
    m = re.fullmatch(r"(.*[^|]):(\d+)", rx)
    path, offset = (m.group(1), int(m.group(2))) if m else (rx, None)
    with open_input(path, offset or 0) as win:
        if offset is None:
            win.fill(_PEEK)
            if win.buf and not win.buf.startswith((FST_MAGIC_BYTES, NULL_B + FST_MAGIC_BYTES)) \
                    and win.buf[0] not in b" \t\n\r\x0b\x0c":  # an archive, not a value
                yield from ((k if k != "?" else key, v)
                            for k, v in iter_archive(win, symbols, path, max_bytes))
                return
        value = _bounded(win, win.base, max_bytes, lambda data, eof: _parse_value(
            data, 0, key, 1, symbols, win.base, eof))
    yield key, (value[0] if value is not None else InputError(  # once a pipe is known good
        f"utterance {key} ({path}, offset {offset or 0}): the value is larger than the cap of "
        f"{max_bytes} bytes"))


def read_kaldi(rspecifier: str, symbols: Vocab | None = None, max_bytes: int = MAX_ENTRY_BYTES
               ) -> Iterator[tuple[str, Lattice | InputError]]:
    """(utterance id, lattice or error) for each entry of a Kaldi rspecifier."""
    spec = parse_specifier(rspecifier)
    if spec.kind == "ark":
        return _read_ark(spec.paths[0], lambda win: iter_archive(win, symbols, spec.paths[0],
                                                                 max_bytes))
    if spec.kind == "scp":
        return iter_scp(spec.paths[0], symbols, max_bytes)
    raise InputError(f"{rspecifier!r}: read with ark: or scp:")


def read_kaldi_batches(rspecifier: str, symbols: Vocab | None = None, batch_size: int = 100,
                       max_bytes: int = MAX_ENTRY_BYTES
                       ) -> Iterator[tuple[Lattice | None, list[tuple[str, InputError]]]]:
    """Batches of the lattices of a Kaldi rspecifier and the errors met (see ``batches``)."""
    spec = parse_specifier(rspecifier)
    if spec.kind == "ark":
        return _read_ark(spec.paths[0], lambda win: iter_archive_batches(
            win, symbols, spec.paths[0], batch_size, max_bytes))
    return batches(read_kaldi(rspecifier, symbols, max_bytes), batch_size)


def _read_ark(path: str, read: Callable[[Window], Iterator[T]]) -> Iterator[T]:
    """``read`` on a window on ``path``, which is closed (a pipe's exit status checked) after."""
    with open_input(path) as win:
        yield from read(win)
