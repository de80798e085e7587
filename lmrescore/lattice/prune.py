"""Pruning of a batch of lattices: by beam around the best path, or by arc posterior."""

from __future__ import annotations

import torch
from torch import Tensor

from lmrescore.lattice.lattice import Lattice
from lmrescore.lattice.weights import Weights
from lmrescore.lattice.posteriors import forward_backward
from lmrescore.lattice.shortest_path import viterbi_scores
from lmrescore.lattice.topsort import Levels, connect, levels, require_paths

# Slack for float64 rounding when comparing a path's score computed in two orders.
_ROUNDING = 1e-9


def _best_through(lat: Lattice, lv: Levels, weights: Weights) -> tuple[Tensor, Tensor]:
    """(A,) best score of a path through each arc, and (L,) best path score of each lattice."""
    arc_score, alpha, beta = viterbi_scores(lat, weights, lv)
    through = alpha[lat.src] + arc_score + beta[lat.dst]
    best = torch.full((lat.num_lattices,), -torch.inf, dtype=torch.float64)
    best.scatter_reduce_(0, lat.arc_lattice(), through, "amax")
    return through, best


def _on_best_path(through: Tensor, best: Tensor, arc_lattice: Tensor, beam: float) -> Tensor:
    """(A,) bool: arcs on some path within ``beam`` of the best."""
    best = best[arc_lattice]
    return through >= best - beam - _ROUNDING * (1.0 + best.abs())


def prune_beam(lat: Lattice, beam: float, weights: Weights = Weights()) -> tuple[Lattice, Tensor]:
    """Keep the arcs on some path scoring within ``beam`` of the best path (like lattice-prune).

    Args:
        lat: a batch of L lattices with A arcs.
        beam: >= 0, in weighted-score units.
        weights: how arc scores are weighted.
    Returns:
        The pruned, connected batch and its (A',) map to arcs of ``lat``.
    Raises:
        InputError: a lattice has a cycle or no path from start to final state.
    """
    lv = levels(lat)
    require_paths(lat, lv)
    through, best = _best_through(lat, lv, weights)
    return connect(lat, _on_best_path(through, best, lat.arc_lattice(), beam))


def prune_posterior(lat: Lattice, threshold: float, weights: Weights = Weights()
                    ) -> tuple[Lattice, Tensor]:
    """Drop arcs with posterior below ``threshold``, except arcs on a best path, then connect.

    Keeping the best path's arcs means no lattice loses all its paths.

    Args:
        lat: a batch of L lattices with A arcs.
        threshold: arcs with a lower posterior probability are dropped.
        weights: how arc scores are weighted.
    Returns:
        The pruned, connected batch and its (A',) map to arcs of ``lat``.
    Raises:
        InputError: a lattice has a cycle or no path from start to final state.
    """
    lv = levels(lat)
    post = forward_backward(lat, weights, lv)
    through, best = _best_through(lat, lv, weights)
    keep = (post.arc_post >= threshold) | _on_best_path(through, best, lat.arc_lattice(), 0.0)
    return connect(lat, keep)
