"""A lattice output written in parts, one per process (``lmrescore score`` under ``torchrun``),
and joined by rank 0 into the bytes one process writes.

- ``kaldi``: each process writes its entries to ``lat.<rank>.ark`` in a part folder beside the
  archive (:func:`part_folder`) and keeps their index; rank 0 copies the entries into the
  wspecifier in input order, so an scp's offsets, a pipe and stdout are as from one process.
- ``slf``: one file per utterance, so each process writes its own files into the output folder.
- ``k2``: one ``torch.save`` of all batches: each process keeps its batches in memory (as one
  process keeps them all) and rank 0 joins them in input order.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from lmrescore.errors import Failure
from lmrescore.formats import write_lattices
from lmrescore.formats.kaldi_writer import KaldiWriter
from lmrescore.formats.specifier import parse_specifier
from lmrescore.formats.batch import write_each
from lmrescore.lattice.lattice import Lattice


@dataclass
class Part:
    """One process's share of a lattice output.

    Attributes:
        failed: its lattices that could not be written.
        archive: ``kaldi``: its part archive, and (key, value offset, value length) of each
            entry in it.
        batches: ``k2``: its batches.
    """

    failed: list[Failure]
    archive: tuple[str, list[tuple[str, int, int]]] | None = None
    batches: list[Lattice] = field(default_factory=list)


def part_folder(wspecifier: str) -> Path:
    """Where the processes write their parts of a Kaldi wspecifier's archive.

    ``.<archive name>.parts`` beside an archive file; for a stream (``-``, ``| cmd``) or a
    device, ``.lmrescore-<hash of the wspecifier>.parts`` in the current folder. Named after the
    output, so that a rerun after a kill writes over what was left, and removes it when done.
    """
    archive = parse_specifier(wspecifier).paths[0].strip()
    if archive == "-" or archive.startswith("|") or archive.endswith("|") or (
            os.path.exists(archive) and not os.path.isfile(archive)):
        return Path(f".lmrescore-{hashlib.sha1(wspecifier.encode()).hexdigest()[:12]}.parts")
    path = Path(archive)
    return path.parent / f".{path.name}.parts"


def write_part(target: str, fmt: str, lattices: Iterable[Lattice], rank: int) -> Part:
    """Write (or keep) this process's batches of the output ``target`` (see the module doc).

    Args:
        target: a Kaldi wspecifier, an SLF folder or a k2 ``.pt`` path, as for
            :func:`lmrescore.formats.write_lattices`.
        fmt: ``"kaldi"``, ``"slf"`` or ``"k2"``.
        lattices: this process's batches, in input order.
        rank: this process's rank.
    """
    if fmt == "kaldi":
        KaldiWriter(target)  # a bad wspecifier fails here, before anything is rescored
        path = part_folder(target) / f"lat.{rank}.ark"
        path.parent.mkdir(exist_ok=True)  # beside the archive, whose folder exists
        text = ",t" if parse_specifier(target).text else ""
        with KaldiWriter(f"ark{text}:{path}", index=True) as writer:
            _, failed = write_each(lattices, writer.write)
        return Part(failed, archive=(str(path), writer.index))
    if fmt == "k2":
        return Part([], batches=list(lattices))
    return Part(write_lattices(target, lattices, fmt)[1])


def join_parts(target: str, fmt: str, parts: list[Part], order: list[str]) -> None:
    """Write the output ``target`` from every process's part (in rank 0), as one process would
    have written it; remove the part folder.

    Args:
        target, fmt: as for :func:`write_part`.
        parts: each process's :class:`Part`, in rank order.
        order: the utterance ids rescored, in input order.
    """
    if fmt == "kaldi":
        where = {key: (p, offset, size) for p, part in enumerate(parts)
                 for key, offset, size in part.archive[1]}
        with KaldiWriter(target) as writer, ExitStack() as files:
            ins = [files.enter_context(open(part.archive[0], "rb")) for part in parts]
            for key in order:
                if key in where:  # else it could not be written
                    p, offset, size = where[key]
                    ins[p].seek(offset)
                    writer.write_entry(key, ins[p].read(size))
        shutil.rmtree(part_folder(target))
    elif fmt == "k2":
        position = {utt: i for i, utt in enumerate(order)}
        batches = [b for part in parts for b in part.batches]
        write_lattices(target, sorted(batches, key=lambda b: position[b.utt_ids[0]]), "k2")
