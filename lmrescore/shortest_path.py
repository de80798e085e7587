"""Best path of each lattice in a batch: level-synchronous Viterbi with back-pointers."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lmrescore.lattice import Lattice, ragged_lists
from lmrescore.semiring import backward_scores, forward_scores
from lmrescore.topsort import Levels, levels, no_path_error


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


def viterbi_scores(lat: Lattice, acoustic_scale: float = 1.0, lm_scale: float = 1.0,
                   word_ins_penalty: float = 0.0,
                   lv: Levels | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Best-path forward and backward scores of every state.

    Args:
        lat: a batch of lattices with S states and A arcs.
        acoustic_scale, lm_scale, word_ins_penalty: see ``Lattice.weighted_score``.
        lv: ``levels(lat)``, if already computed.
    Returns:
        (A,) float64 arc scores; (S,) best score from the start to each state; (S,) best score
        from each state to the final state (-inf where there is no such path).
    """
    lv = lv if lv is not None else levels(lat)
    arc_score = lat.weighted_score(acoustic_scale, lm_scale, word_ins_penalty)
    return (arc_score, forward_scores(lat, lv, arc_score, "tropical"),
            backward_scores(lat, lv, arc_score, "tropical"))


def best_path(lat: Lattice, acoustic_scale: float = 1.0, lm_scale: float = 1.0,
              word_ins_penalty: float = 0.0) -> BestPath:
    """The highest-scoring path of each lattice (tropical semiring).

    Ties go to the arc with the highest id.

    Args:
        lat: a batch of L lattices with S states and A arcs.
        acoustic_scale, lm_scale, word_ins_penalty: see ``Lattice.weighted_score``.
    Returns:
        Score, arcs and words of each lattice's best path.
    Raises:
        InputError: a lattice has a cycle or no path from start to final state.
    """
    lv = levels(lat)
    arc_score = lat.weighted_score(acoustic_scale, lm_scale, word_ins_penalty)
    alpha = forward_scores(lat, lv, arc_score, "tropical")
    score = torch.full((lat.num_lattices,), -torch.inf, dtype=torch.float64)
    nonempty = lat.nonempty()
    score[nonempty] = alpha[lat.final_states[nonempty]]
    if torch.isinf(score).any():
        raise no_path_error(lat, torch.isinf(score))
    best_in = alpha[lat.src] + arc_score
    wins = (best_in == alpha[lat.dst]) & torch.isfinite(best_in)
    back = torch.full((lat.num_states,), -1, dtype=torch.int64)
    back.scatter_reduce_(0, lat.dst[wins], wins.nonzero().squeeze(1), "amax")
    steps = []
    state = lat.final_states
    arc = back[state]
    while bool((arc >= 0).any()):
        steps.append(arc)
        state = torch.where(arc >= 0, lat.src[arc.clamp(min=0)], state)
        arc = torch.where(arc >= 0, back[state], arc)
    path = torch.stack(steps, 1).flip(1) if steps else torch.zeros(lat.num_lattices, 0,
                                                                    dtype=torch.int64)
    on_path = path >= 0
    arcs = path[on_path]
    is_word = lat.label[arcs] > 0
    zero = torch.zeros(1, dtype=torch.int64)
    lattice_of = torch.arange(lat.num_lattices).unsqueeze(1).expand_as(path)[on_path]
    word_counts = torch.bincount(lattice_of[is_word], minlength=lat.num_lattices)
    return BestPath(score=score, arcs=arcs,
                    arc_splits=torch.cat([zero, on_path.sum(1).cumsum(0)]),
                    words=lat.label[arcs[is_word]],
                    word_splits=torch.cat([zero, word_counts.cumsum(0)]))
