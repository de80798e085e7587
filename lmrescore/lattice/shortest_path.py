"""Best path of each lattice in a batch: level-synchronous Viterbi with back-pointers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from lmrescore.errors import InputError
from lmrescore.lattice.lattice import Lattice
from lmrescore.lattice.weights import Weights
from lmrescore.lattice.ragged import ragged_lists
from lmrescore.lattice.semiring import backward_scores, forward_scores
from lmrescore.lattice.topsort import Levels, levels, no_path_error


@dataclass
class BestPath:
    """The best path of each of L lattices.

    Attributes:
        score: (L,) float64 total weighted score of the path.
        arcs: (N,) int64 arc ids of the paths, lattice by lattice, start to final: [lattice][arc].
        arc_splits: (L+1,) row splits of ``arcs``.
        words: (W,) int64 word ids of the paths (labels > 0): [lattice][word].
        word_splits: (L+1,) row splits of ``words``.
    """

    score: Tensor
    arcs: Tensor
    arc_splits: Tensor
    words: Tensor
    word_splits: Tensor

    def word_lists(self) -> list[list[int]]:
        """The word ids of each lattice's path as Python lists."""
        return ragged_lists(self.words, self.word_splits)


def viterbi_scores(lat: Lattice, weights: Weights = Weights(),
                   lv: Levels | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Best-path forward and backward scores of every state.

    Args:
        lat: a batch of lattices with S states and A arcs.
        weights: how arc scores are weighted.
        lv: ``levels(lat)``, if already computed.
    Returns:
        (A,) float64 arc scores; (S,) best score from the start to each state; (S,) best score
        from each state to the final state (-inf where there is no such path).
    """
    lv = lv if lv is not None else levels(lat)
    arc_score = weights.arc_scores(lat)
    return (arc_score, forward_scores(lat, lv, arc_score, "tropical"),
            backward_scores(lat, lv, arc_score, "tropical"))


def best_path(lat: Lattice, weights: Weights = Weights()) -> BestPath:
    """The highest-scoring path of each lattice (tropical semiring).

    Ties go to the arc with the highest id.

    Args:
        lat: a batch of L lattices with S states and A arcs.
        weights: how arc scores are weighted.
    Returns:
        Score, arcs and words of each lattice's best path.
    Raises:
        InputError: a lattice has a cycle, no path from start to final state, or a best score
            that is NaN (a NaN score on an arc).
    """
    lv = levels(lat)
    arc_score = weights.arc_scores(lat)
    alpha = forward_scores(lat, lv, arc_score, "tropical")
    score = torch.full((lat.num_lattices,), -torch.inf, dtype=torch.float64)
    nonempty = lat.nonempty()
    score[nonempty] = alpha[lat.final_states[nonempty]]
    if torch.isinf(score).any():
        raise no_path_error(lat, torch.isinf(score))
    if torch.isnan(score).any():
        utt = lat.utt_ids[int(torch.isnan(score).nonzero()[0])]
        raise InputError(f"utterance {utt}: the best path's score is NaN (an arc's score is NaN)")
    # back-pointers and trace back in numpy: a step is a few ops on (L,) arrays
    src, dst = lat.src.numpy(), lat.dst.numpy()
    a = alpha.numpy()
    with np.errstate(invalid="ignore"):  # -inf + inf: NaN, as in torch, silently
        best_in = a[src] + arc_score.numpy()
    wins = np.flatnonzero((best_in == a[dst]) & np.isfinite(best_in))
    # back[s]: the best arc into s (highest id on ties); -1 at the extra state S, where
    # prev (the source of each arc, S for "no arc" = -1) leaves a finished lattice
    back = np.full(lat.num_states + 1, -1, dtype=np.int64)
    np.maximum.at(back, dst[wins], wins)
    prev = np.append(src, lat.num_states)
    steps = []
    arc = back[lat.final_states.numpy()]
    while (arc >= 0).any():
        steps.append(arc)
        arc = back[prev[arc]]
    path = (np.stack(steps, 1)[:, ::-1] if steps
            else np.zeros((lat.num_lattices, 0), dtype=np.int64))
    on_path = path >= 0
    arcs = path[on_path]
    label = lat.label.numpy()[arcs]
    is_word = label > 0
    lattice_of = np.nonzero(on_path)[0]
    return BestPath(score=score, arcs=torch.from_numpy(arcs),
                    arc_splits=_row_splits(on_path.sum(1)), words=torch.from_numpy(label[is_word]),
                    word_splits=_row_splits(np.bincount(lattice_of[is_word],
                                                        minlength=lat.num_lattices)))


def _row_splits(counts: np.ndarray) -> Tensor:
    """(R+1,) int64 row splits of R rows with the given (R,) lengths."""
    return torch.from_numpy(np.concatenate([np.zeros(1, np.int64), np.cumsum(counts)]))
