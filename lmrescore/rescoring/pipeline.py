"""Rescore a stream of lattice batches and sum up the run: the one loop behind ``lmrescore
score``, ``bench/rescore.py`` and the recipes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from tqdm import tqdm

from lmrescore.errors import Failure, InputError
from lmrescore.lattice.lattice import Lattice
from lmrescore.rescoring.metrics import WordErrors, corpus_word_errors
from lmrescore.rescoring.rescorer import LatticeRescorer, RescoredBatch

log = logging.getLogger(__name__)

# What a reader yields: a batch of the lattices it could read (or None) and those it could not.
ReadBatch = tuple[Lattice | None, list[tuple[str, InputError]]]


@dataclass
class RunSummary:
    """Totals of a rescoring run.

    Attributes:
        lattices: lattices met (read or not).
        one_best: utt_id -> words of the rescored 1-best, in input order.
        failed: every lattice that could not be read or rescored.
        arcs_in, arcs_pruned, arcs_expanded: arcs read, left after pruning, rescored.
        oov_words, words: OOV and all words on the 1-best paths.
        counts: the method's work summed over batches (``RescoredBatch.counts``).
        seconds, cpu_seconds: wall and CPU time inside ``LatticeRescorer.rescore`` only.
    """

    lattices: int = 0
    one_best: dict[str, list[str]] = field(default_factory=dict)
    failed: list[Failure] = field(default_factory=list)
    arcs_in: int = 0
    arcs_pruned: int = 0
    arcs_expanded: int = 0
    oov_words: int = 0
    words: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    def add(self, result: RescoredBatch, words: list[list[str]]) -> None:
        """Count one batch's result; ``words`` are its 1-best word sequences."""
        if result.lattice is not None:
            self.one_best.update(zip(result.lattice.utt_ids, words))
            self.arcs_expanded += result.lattice.num_arcs
        self.arcs_in += result.arcs_in
        self.arcs_pruned += result.arcs_pruned
        self.oov_words += result.oov_words
        self.words += result.words
        for key, value in result.counts.items():
            self.counts[key] = self.counts.get(key, 0) + value

    def merge(self, other: "RunSummary") -> None:
        """Add the totals of another process's run; its 1-best go after these."""
        self.one_best.update(other.one_best)
        self.failed += other.failed
        for key in ("lattices", "arcs_in", "arcs_pruned", "arcs_expanded", "oov_words", "words",
                    "seconds", "cpu_seconds"):
            setattr(self, key, getattr(self, key) + getattr(other, key))
        for key, value in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + value

    def word_errors(self, refs: dict[str, list[str]]) -> tuple[WordErrors, int]:
        """Errors of the 1-best against ``refs`` over the rescored utterances that have one, and
        how many those are."""
        scored = [u for u in self.one_best if u in refs]
        return corpus_word_errors([refs[u] for u in scored],
                                  [self.one_best[u] for u in scored]), len(scored)

    def to_dict(self) -> dict:
        """The JSON summary ``lmrescore score --summary`` writes."""
        return {"lattices": self.lattices, "rescored": len(self.one_best),
                "failed": len(self.failed), "arcs_in": self.arcs_in,
                "arcs_pruned": self.arcs_pruned, "arcs_expanded": self.arcs_expanded,
                "oov_words": self.oov_words, "words": self.words, **self.counts,
                "oov_rate": self.oov_words / max(1, self.words),
                "rescore_seconds": self.seconds, "rescore_cpu_seconds": self.cpu_seconds}


def rescore_stream(rescorer: LatticeRescorer, batches: Iterable[ReadBatch],
                   on_batch: Callable[[RescoredBatch], None] | None = None,
                   progress: bool = True) -> RunSummary:
    """Rescore every batch (see :func:`rescored_batches`) and return the run's totals.

    Args:
        on_batch: called with each batch's result, e.g. to write its n-best lists.
        progress: show a progress bar on stderr.
    """
    summary = RunSummary()
    for _, result in rescored_batches(rescorer, batches, summary, progress):
        if on_batch is not None:
            on_batch(result)
    return summary


def rescored_batches(rescorer: LatticeRescorer, batches: Iterable[ReadBatch],
                     summary: RunSummary, progress: bool = True, share: tuple[int, int] = (0, 1)
                     ) -> Iterator[tuple[int, RescoredBatch]]:
    """Rescore batch after batch, counting into ``summary``; failures are logged and counted,
    the other lattices go on. Nothing is kept but the 1-best, so memory is flat in the number
    of batches.

    An utterance id met a second time fails (the first one's result stands).

    Args:
        rescorer: the model, symbols and options.
        batches: (a batch of lattices or None, the (utt_id, error) of lattices that could not be
            read), e.g. from :func:`lmrescore.formats.read_lattice_batches`.
        summary: the run's totals and 1-best, updated as each batch is done.
        progress: show a progress bar on stderr.
        share: (rank, world): rescore and count only the batches ``i`` with
            ``i % world == rank`` (one process of several); the ids of the others are checked
            all the same, so that a repeated id fails in whichever share it falls.
    Returns:
        an iterator of (the batch's index in ``batches``, its result).
    """
    decode = rescorer.symbols.decode
    rank, world = share
    seen: set[str] = set()
    with tqdm(desc="rescoring", unit="lat", mininterval=5, disable=not progress) as bar:
        for i, (lat, errors) in enumerate(batches):
            repeated: list[Failure] = []
            if lat is not None:
                lat, repeated = _first_of_each_id(lat, seen)
            if i % world != rank:
                continue
            summary.lattices += len(errors) + len(repeated)
            failed = [Failure(utt, str(e)) for utt, e in errors] + repeated
            result = None
            if lat is not None:
                wall, cpu = time.perf_counter(), time.process_time()
                result = rescorer.rescore(lat)
                summary.seconds += time.perf_counter() - wall
                summary.cpu_seconds += time.process_time() - cpu
                summary.lattices += lat.num_lattices
                words = ([] if result.best is None
                         else [decode(w) for w in result.best.word_lists()])
                summary.add(result, words)
                failed += result.failed
                bar.update(lat.num_lattices)
            for f in failed:
                log.warning("skipping %s: %s", f.utt_id, f.message)
            summary.failed += failed
            if result is not None:
                yield i, result


def _first_of_each_id(lat: Lattice, seen: set[str]) -> tuple[Lattice | None, list[Failure]]:
    """The lattices of ``lat`` whose utterance id is usable (no whitespace) and not in ``seen``
    (adding them), and a failure for each of the others."""
    keep, failed = [], []
    for i, utt in enumerate(lat.utt_ids):
        if not utt or any(c.isspace() for c in utt):
            failed.append(Failure(utt, f"utterance {utt!r}: an id with whitespace (or none) "
                                       f"cannot be written as 'utt w1 w2 ...' or a Kaldi key"))
        elif utt in seen:
            failed.append(Failure(utt, f"utterance {utt}: a second lattice with this id (the "
                                       f"first one is kept)"))
        else:
            seen.add(utt)
            keep.append(i)
    if len(keep) == lat.num_lattices:
        return lat, []
    return (lat.select(keep) if keep else None), failed
