"""Finding the next entry of a Kaldi archive after a bad one whose extent is unknown.

An entry is found again by ``key `` + FST header (an optional ``\\0B`` between them) or, after
a bad text value, by a key line: a line of one field after an empty line, or a line of one
field that is not an integer anywhere (no line of a text lattice is that), whichever comes
first. The same rule ends a text value that runs into the next entry without its empty line
(:func:`next_entry`). The search reads
the window on and lets go of the bytes where no entry can begin any more, so skipping a long
stretch of garbage costs its length in time, not in memory. It finds what the regular
expression ``[\\x21-\\x7e]+[ \\t](?:\\0B)?<FST header>`` would on the whole archive, by the FST
headers (``bytes.find``) and the key before each, in time linear in the bytes skipped.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from lmrescore.formats.kaldi_binary import FST_HEAD, NULL_B
from lmrescore.formats.window import Window

_ONE_FIELD = rb"[\x21-\x7e]+[ \t\r]*\n"
# the newline before a key line: after an empty line, or one that is not a state id
_TEXT_ENTRY = re.compile(rb"\n(?:[ \t\r]*\n(?=" + _ONE_FIELD + rb")|(?![+-]?[0-9]+[ \t\r]*\n)(?="
                         + _ONE_FIELD + rb"))")
_FST = re.compile(re.escape(FST_HEAD))
# the last byte that cannot be in a key, before a run of key bytes up to the end
_BEFORE_KEY = re.compile(rb"[^\x21-\x7e][\x21-\x7e]*\Z")
_TAIL = len(NULL_B) + 1 + len(FST_HEAD)  # what follows a key: separator, "\0B", FST header


def _run_start(data: bytes, lo: int, end: int) -> int:
    """Where the run of key bytes (``\\x21``..``\\x7e``) ending at ``end`` starts, not before
    ``lo`` (``end`` itself when ``data[end - 1]`` is not a key byte)."""
    near = max(lo, end - 64)
    m = _BEFORE_KEY.search(data, near, end)
    if m is None and near > lo:
        m = _BEFORE_KEY.search(data, lo, end)
    return m.start() + 1 if m else lo


def find_binary_entry(data: bytes, start: int, end: int | None = None) -> int | None:
    """Where the first ``key `` + FST header in ``data[start:end]`` begins (None: not there)."""
    head = data.find(FST_HEAD, start, end)
    while head >= 0:
        sep = head - 3 if head >= 2 and data[head - 2: head] == NULL_B else head - 1
        if sep > start and data[sep] in b" \t" and 0x21 <= data[sep - 1] <= 0x7e:
            return _run_start(data, start, sep)
        head = data.find(FST_HEAD, head + 1, end)
    return None


def next_entry(data: bytes, start: int, end: int, binary: bool) -> int | None:
    """Where the first entry in ``data[start:end]`` begins: ``key `` + FST header or (unless
    ``binary``) a key line (None: none found)."""
    found = find_binary_entry(data, start, end)
    if not binary:
        m = _TEXT_ENTRY.search(data, start, end)
        if m and (found is None or m.end() < found):
            found = m.end()
    return found


def _keep(data: bytes, start: int, binary: bool, max_key: int) -> int:
    """The first offset of ``data`` where an entry not found in it could begin (its bytes
    would run past the end of ``data``): a key of at most ``max_key`` bytes before the last
    ``_TAIL`` bytes, or a blank line around the last two newlines."""
    end = max(start, len(data) - _TAIL)
    keep = max(_run_start(data, start, end), end - max_key)
    if not binary:
        last = data.rfind(b"\n", start)
        before = data.rfind(b"\n", start, last) if last >= 0 else -1
        line = before if before >= 0 else last if last >= 0 else len(data)
        keep = min(keep, max(line, len(data) - max_key))
    return max(start, keep)


def resync(win: Window, start: int, binary: bool, max_key: int,
           release: Callable[[int], None]) -> tuple[int | None, list[int]]:
    """Read on from archive offset ``start`` to the next entry found.

    Args:
        win: the window, holding ``start``.
        binary: after a bad binary value, look for binary entries only.
        max_key: a key (or key line) longer than this is not looked for.
        release: told each offset before which the search is done.
    Returns:
        the archive offset of the entry found (None: none before the end of the input), and
        the offsets of the FST headers in the bytes skipped.
    """
    heads: list[int] = []
    while True:
        data, base = win.buf, win.base
        s = start - base
        found = next_entry(data, s, len(data), binary)
        if found is not None or win.eof:
            stop = base + found if found is not None else win.end
            heads = [h for h in heads if h + len(FST_HEAD) <= stop]
            heads += [base + m.start() for m in _FST.finditer(data, s, stop - base)]
            return (stop if found is not None else None), heads
        keep = _keep(data, s, binary, max_key)
        heads += [base + m.start() for m in _FST.finditer(data, s, keep + len(FST_HEAD) - 1)]
        start = base + keep
        release(start)
        win.grow()
