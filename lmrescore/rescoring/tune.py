"""Choose the score weights by WER on held-out lattices, the way Kaldi's ``score.sh`` does.

A rescored lattice carries acoustic and LM scores; its best path depends on how they are
weighted. As in Kaldi, the LM weight LMWT is the inverse acoustic scale, and the word
insertion penalty is subtracted per word:
``score(path) = am / LMWT + lm_scale * lm - word_ins_penalty * words`` (``Weights``). :func:`sweep` decodes every
lattice at each point of a grid; :func:`best_point` picks the lowest WER (ties: the first).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from lmrescore.errors import Failure, InputError
from lmrescore.lattice.lattice import Lattice
from lmrescore.lattice.topsort import require_paths
from lmrescore.rescoring.metrics import WordErrors, corpus_word_errors
from lmrescore.lattice.shortest_path import best_path
from lmrescore.lattice.weights import Weights
from lmrescore.vocab import Vocab


@dataclass(frozen=True)
class GridPoint:
    """The word errors of all lattices decoded with one pair of weights."""

    lmwt: float
    word_ins_penalty: float
    errors: WordErrors


def decode(batches: Sequence[Lattice], symbols: Vocab, weights: Weights) -> dict[str, list[str]]:
    """utt_id -> words of each lattice's best path under ``weights``."""
    hyps: dict[str, list[str]] = {}
    for lat in batches:
        best = best_path(lat, weights)
        hyps.update((u, symbols.decode(w)) for u, w in zip(lat.utt_ids, best.word_lists()))
    return hyps


def decodable(batches: Iterable[Lattice]) -> tuple[list[Lattice], list[Failure]]:
    """The lattices that have a best path (acyclic, with a path to the final state), in
    batches, and a failure for each of the others, so that one bad lattice costs only itself."""
    good, failed = [], []
    for lat in batches:
        try:
            require_paths(lat)
            good.append(lat)
            continue
        except InputError:
            pass
        keep = []
        for i in range(lat.num_lattices):
            try:
                require_paths(lat[i])
                keep.append(i)
            except InputError as e:
                failed.append(Failure(lat.utt_ids[i], str(e)))
        if keep:
            good.append(lat.select(keep))
    return good, failed


def sweep(batches: Sequence[Lattice], symbols: Vocab, refs: dict[str, list[str]],
          lmwts: Sequence[float], word_ins_penalties: Sequence[float],
          lm_scale: float = 1.0,
          on_point: Callable[[float, float, dict[str, list[str]]], None] | None = None
          ) -> list[GridPoint]:
    """Word errors at every (LMWT, word insertion penalty) pair.

    Args:
        batches: the lattices, with "am" and "lm" scores (log-likelihoods).
        symbols: their words.txt.
        refs: utt_id -> reference words; lattices without one are not counted.
        lmwts, word_ins_penalties: the grid (LMWT = 1 / acoustic scale).
        lm_scale: the weight of the lattices' LM scores.
        on_point: called with (LMWT, penalty, utt_id -> best path words of every lattice)
            at each point, e.g. to write the hypotheses.
    Returns:
        One point per pair, LMWT-major.
    """
    utts = [u for lat in batches for u in lat.utt_ids if u in refs]
    points = []
    for lmwt in lmwts:
        for wip in word_ins_penalties:
            hyps = decode(batches, symbols, Weights(1.0 / lmwt, lm_scale, wip))
            if on_point:
                on_point(lmwt, wip, hyps)
            errors = corpus_word_errors([refs[u] for u in utts], [hyps[u] for u in utts])
            points.append(GridPoint(lmwt, wip, errors))
    return points


def best_point(points: Sequence[GridPoint]) -> GridPoint:
    """The point with the fewest errors (the first of equals)."""
    return min(points, key=lambda p: p.errors.errors)
