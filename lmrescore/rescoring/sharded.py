"""``lmrescore score`` in several processes (``torchrun``): each process rescores its share of the
batches, and rank 0 merges every output in input order into what one process writes.

Batch ``i`` of the input (``--batch-size`` lattices) is rescored by process ``i mod world``
(:func:`lmrescore.rescoring.pipeline.rescored_batches`), so the shares depend on the input
alone, never on timing, and every batch is the batch one process rescores. Every process reads
the whole input, to see each batch's utterance ids: a repeated id fails wherever its first
lattice fell, as in one process. The lattice output is written in parts
(:mod:`lmrescore.formats.parts`); the 1-best, n-best lists and totals go to rank 0 in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from lmrescore.distributed import Dist
from lmrescore.formats.parts import Part, join_parts
from lmrescore.rescoring.pipeline import RunSummary


@dataclass
class Share:
    """What one process rescored and wrote.

    Attributes:
        summary: its totals and 1-best (its lattice write failures included).
        batches: (index in the input, utterance ids rescored) of each of its batches that had
            a rescored lattice, in input order.
        nbest: utterance id -> its n-best lines.
        lattices: its part of the lattice output, or None (no ``--write-lattice``).
    """

    summary: RunSummary
    batches: list[tuple[int, list[str]]]
    nbest: dict[str, str]
    lattices: Part | None


def merge_shares(job: Dist, share: Share, target: str | None, fmt: str
                 ) -> tuple[RunSummary, dict[str, str]] | None:
    """Gather every process's share in rank 0 and write the lattice output there.

    Args:
        job: this process's place in the job.
        share: this process's share.
        target, fmt: the lattice output (None: none) and its format.
    Returns:
        in rank 0, the job's totals with the 1-best in input order, and the n-best lines of
        each utterance in input order; None in the others.
    """
    shares = job.collect(share)
    if shares is None:
        return None
    batches = sorted((b for s in shares for b in s.batches), key=lambda b: b[0])
    order = [utt for _, utts in batches for utt in utts]
    run = RunSummary()
    for s in shares:
        run.merge(s.summary)
    run.one_best = {utt: run.one_best[utt] for utt in order}
    nbest = {utt: lines for s in shares for utt, lines in s.nbest.items()}
    if target is not None:
        join_parts(target, fmt, [s.lattices for s in shares], order)
    return run, {utt: nbest[utt] for utt in order if utt in nbest}
