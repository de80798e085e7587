"""Lattice files: Kaldi archives, HTK SLF files, k2 ``.pt`` files, read and written the same way.

Inputs and outputs per format:

- ``kaldi``: a Kaldi rspecifier / wspecifier (``ark:lat.ark``, ``ark:gunzip -c lat.1.gz|``,
  ``scp:lat.scp``, ``ark,t:-``, ``ark,scp:out.ark,out.scp``).
- ``slf``: one file per utterance. Input: a directory (``*.slf``, ``*.lat``, with optional
  ``.gz``), or a list file (one path per line) or an scp (``utt_id path`` per line).
  Output: a directory; ``<utt_id>.slf`` per utterance (see
  :func:`lmrescore.formats.slf.slf_file_name` for the ids that can name a file).
- ``k2``: one ``.pt`` file (see :mod:`lmrescore.formats.k2`).

Readers also take ``auto`` (:func:`input_format`): ``k2`` for a path ending in ``.pt``, else
``kaldi``; SLF is never guessed.

Reading yields ``(utt_id, Lattice | InputError)`` so one bad lattice does not stop the rest;
:func:`read_lattice_batches` yields batches and the errors met while reading them (Kaldi
archives: many binary lattices decoded per numpy pass). Writing returns the lattices it could
not write, each as a :class:`~lmrescore.errors.Failure`, and goes on with the others.
Readers check every count a file claims against the caps of :mod:`lmrescore.formats.limits`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from lmrescore.errors import Failure, InputError
from lmrescore.formats.archive import read_kaldi, read_kaldi_batches
from lmrescore.formats.batch import (ReadStats, batches, join, skip_bad, skip_bad_batches,
                                     unbatch, write_each)
from lmrescore.formats.k2 import read_k2, write_k2
from lmrescore.formats.kaldi_writer import KaldiWriter
from lmrescore.formats.slf import read_slf, slf_file_name, write_slf
from lmrescore.lattice.lattice import Lattice
from lmrescore.text_input import read_lines
from lmrescore.vocab import Vocab

FORMATS = ("kaldi", "slf", "k2")
AUTO = "auto"
_RSPECIFIER = re.compile(r"(ark|scp)(,[a-z]+)*:")
_SLF_SUFFIXES = (".slf", ".lat", ".htk", ".slf.gz", ".lat.gz", ".htk.gz")

__all__ = ["AUTO", "FORMATS", "ReadStats", "batches", "input_format", "read_lattice_batches",
           "read_lattices", "skip_bad", "skip_bad_batches", "slf_inputs", "unbatch", "write_each",
           "write_lattices"]


def input_format(source: str, fmt: str = AUTO) -> str:
    """The format of a lattice input: ``fmt``, or for ``"auto"`` ``"k2"`` when ``source`` is a
    path ending in ``.pt`` (not an rspecifier such as ``ark:x.pt``), else ``"kaldi"``."""
    if fmt != AUTO:
        return fmt
    return "k2" if source.endswith(".pt") and not _RSPECIFIER.match(source) else "kaldi"


def slf_inputs(source: str | Path) -> list[tuple[str | None, Path]]:
    """(utt_id or None, path) of each SLF file of a directory, list file or scp.

    Args:
        source: a directory, or a file with one ``path`` or ``utt_id path`` per line.
    """
    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.name.endswith(_SLF_SUFFIXES))
        return [(None, p) for p in files]
    out: list[tuple[str | None, Path]] = []
    for lineno, line in read_lines(source):
        parts = line.split()
        if len(parts) == 1:
            out.append((None, source.parent / parts[0]))
        elif len(parts) == 2:
            out.append((parts[0], source.parent / parts[1]))
        elif parts:
            raise InputError(f"{source}:{lineno}: expected 'path' or 'utt_id path'")
    return out


def _read_slf_files(source: str, symbols: Vocab, oov: str
                    ) -> Iterator[tuple[str, Lattice | InputError]]:
    for utt_id, path in slf_inputs(source):
        try:
            lat = read_slf(path, symbols, utt_id, oov)
            yield lat.utt_ids[0], lat
        except InputError as e:
            yield utt_id or path.name, e


def read_lattices(source: str, fmt: str, symbols: Vocab | None = None, oov: str = "error"
                  ) -> Iterator[tuple[str, Lattice | InputError]]:
    """Each lattice of ``source`` as a batch of one, or the error reading it.

    Args:
        source: a Kaldi rspecifier, an SLF directory / list / scp, or a k2 ``.pt`` file.
        fmt: ``"kaldi"``, ``"slf"``, ``"k2"`` or ``"auto"`` (:func:`input_format`).
        symbols: words.txt (required for SLF, whose words are strings).
        oov: SLF words missing from ``symbols``: ``"error"`` or ``"unk"``.
    Returns:
        an iterator of (utterance id, lattice or :class:`InputError`).
    """
    fmt = input_format(source, fmt)
    if fmt == "kaldi":
        return read_kaldi(source, symbols)
    if fmt == "slf":
        if symbols is None:
            raise InputError("reading SLF needs a symbol table (--words)")
        return _read_slf_files(source, symbols, oov)
    if fmt == "k2":
        return read_k2(source, symbols)
    raise InputError(f"unknown lattice format {fmt!r}; expected one of {', '.join(FORMATS)}")


def read_lattice_batches(source: str, fmt: str, symbols: Vocab | None = None,
                         batch_size: int = 100, oov: str = "error"
                         ) -> Iterator[tuple[Lattice | None, list[tuple[str, InputError]]]]:
    """Batches of the lattices of ``source``: ``batches(read_lattices(...), batch_size)``.

    Args:
        source, fmt, symbols, oov: as for :func:`read_lattices`.
        batch_size: lattices per batch.
    Returns:
        an iterator of (a batch of up to ``batch_size`` lattices or None, the (utterance id,
        error) pairs met while collecting it).
    """
    fmt = input_format(source, fmt)
    if fmt == "kaldi":
        return read_kaldi_batches(source, symbols, batch_size)
    return batches(read_lattices(source, fmt, symbols, oov), batch_size)


def write_lattices(target: str, lattices: Iterable[Lattice], fmt: str,
                   kaldi_compact: bool = True) -> tuple[int, list[Failure]]:
    """Write batches of lattices; files appear atomically.

    A lattice that cannot be written (SLF: an id that cannot name a file, or met twice, or a
    link, folder or other non-regular file in the way of its file) fails alone: it is logged and
    returned, and the others are written.

    Args:
        target: a Kaldi wspecifier, an SLF output directory, or a k2 ``.pt`` path.
        lattices: batches.
        fmt: ``"kaldi"``, ``"slf"`` or ``"k2"``.
        kaldi_compact: Kaldi CompactLattice (else Lattice).
    Returns:
        the number of lattices written, and the failures.
    """
    if fmt == "kaldi":
        with KaldiWriter(target, kaldi_compact) as writer:
            return write_each(lattices, writer.write)
    if fmt == "slf":
        out, written = Path(target), set()
        out.mkdir(exist_ok=True)  # the folder, not its parents: a typo fails

        def write_one(lat: Lattice) -> None:
            utt = lat.utt_ids[0]
            if utt in written:
                raise InputError(f"utterance {utt!r}: met twice; its second lattice would "
                                 "replace the first")
            write_slf(out / slf_file_name(utt), lat, follow_links=False)
            written.add(utt)
        return write_each(lattices, write_one)
    if fmt == "k2":
        batches = list(lattices)
        if batches:
            write_k2(target, join(batches))
        return sum(b.num_lattices for b in batches), []
    raise InputError(f"unknown lattice format {fmt!r}; expected one of {', '.join(FORMATS)}")
