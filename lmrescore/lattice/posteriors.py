"""Forward-backward in the log semiring: arc and state posteriors of a batch of lattices."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lmrescore.lattice.lattice import Lattice
from lmrescore.lattice.weights import Weights
from lmrescore.lattice.semiring import backward_scores, forward_scores
from lmrescore.lattice.topsort import Levels, levels, no_path_error


@dataclass
class Posteriors:
    """Forward-backward results for a batch of L lattices with S states and A arcs.

    Attributes:
        alpha: (S,) float64 log-sum of path scores from the start to each state.
        beta: (S,) float64 log-sum of path scores from each state to the final state.
        total: (L,) float64 log-sum of the scores of all paths of each lattice.
        arc_post: (A,) float64 probability that a path goes through each arc.
        state_post: (S,) float64 probability that a path goes through each state.
    """

    alpha: Tensor
    beta: Tensor
    total: Tensor
    arc_post: Tensor
    state_post: Tensor


def forward_backward(lat: Lattice, weights: Weights = Weights(),
                     lv: Levels | None = None) -> Posteriors:
    """Forward and backward scores, totals and posteriors, path probabilities ∝ exp(score).

    Args:
        lat: a batch of L lattices with S states and A arcs.
        weights: how arc scores are weighted.
        lv: ``levels(lat)``, if already computed.
    Returns:
        The forward-backward results.
    Raises:
        InputError: a lattice has a cycle or no path from start to final state.
    """
    lv = lv if lv is not None else levels(lat)
    arc_score = weights.arc_scores(lat)
    alpha = forward_scores(lat, lv, arc_score, "log")
    beta = backward_scores(lat, lv, arc_score, "log")
    total = torch.full((lat.num_lattices,), -torch.inf, dtype=torch.float64)
    nonempty = lat.nonempty()
    total[nonempty] = alpha[lat.final_states[nonempty]]
    if torch.isinf(total).any():
        raise no_path_error(lat, torch.isinf(total))
    arc_post = torch.exp(alpha[lat.src] + arc_score + beta[lat.dst] - total[lat.arc_lattice()])
    state_post = torch.exp(alpha + beta - total[lat.state_lattice()])
    return Posteriors(alpha=alpha, beta=beta, total=total, arc_post=arc_post,
                      state_post=state_post)
