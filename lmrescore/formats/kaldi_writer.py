"""Kaldi tables of lattices written: ``ark:``, ``ark,t:``, ``ark,scp:`` wspecifiers.

``ark:out.ark``, ``ark,t:-``, ``ark:| gzip -c > x.gz``, ``ark,scp:out.ark,out.scp``. Files are
written atomically; pipes and stdout stream. Entries are laid out as Kaldi's table code and
lattice holders write them (see :mod:`lmrescore.formats.archive`): the key, a space, then the
value; binary values with no ``\\0B`` header.
"""

from __future__ import annotations

import io
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from kaldiio.utils import open_like_kaldi

from lmrescore.atomic import atomic_open
from lmrescore.errors import InputError
from lmrescore.formats import kaldi_binary, kaldi_text
from lmrescore.formats.specifier import parse_specifier
from lmrescore.lattice.lattice import Lattice


def is_stream(path: str) -> bool:
    """Whether a wspecifier's path is stdout (``-``) or a pipe (``| cmd``), not a file."""
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
    elif is_stream(path):
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
        if self.spec.kind == "ark,scp" and is_stream(self.spec.paths[0]):
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
