"""Forward and backward scores of a batch of lattices in the tropical (max) or log semiring."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import Tensor

from lmrescore.lattice.lattice import Lattice
from lmrescore.lattice.topsort import Levels

Semiring = Literal["tropical", "log"]


def group_reduce(values: Tensor, group: Tensor, num_groups: int, semiring: Semiring) -> Tensor:
    """Max (tropical) or log-sum-exp (log) of the values of each group.

    Args:
        values: (n,) float64 scores.
        group: (n,) int64 group of each value in ``0..G-1``.
        num_groups: G.
        semiring: "tropical" or "log".
    Returns:
        (G,) float64, -inf for empty groups.
    """
    top = torch.full((num_groups,), -torch.inf, dtype=values.dtype)
    top.scatter_reduce_(0, group, values, "amax")
    if semiring == "tropical":
        return top
    shift = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    total = torch.zeros_like(top).index_add_(0, group, torch.exp(values - shift[group]))
    return shift + torch.log(total)


def forward_scores(lat: Lattice, lv: Levels, arc_score: Tensor, semiring: Semiring) -> Tensor:
    """Score of all paths from the start state to each state, one step per level.

    Log: each state's in-arcs reduced at once (``by_dst``); tropical: see ``_max_sweep``.

    Args:
        lat: a batch of lattices with S states and A arcs.
        lv: ``levels(lat)``.
        arc_score: (A,) float64 arc scores.
        semiring: "tropical" (best path) or "log" (all paths).
    Returns:
        (S,) float64, -inf for states not reachable from the start.
    """
    alpha = torch.full((lat.num_states,), -torch.inf, dtype=torch.float64)
    nonempty = lat.nonempty()
    alpha[lat.start_states[nonempty]] = 0.0
    if semiring == "tropical":
        return _max_sweep(lv, alpha, lat.src, lat.dst, arc_score, forward=True)
    for k in range(1, lv.num_levels):
        arcs, group, states = lv.by_dst.level(k)
        into = group_reduce(alpha[lat.src[arcs]] + arc_score[arcs], group, states.shape[0],
                            semiring)
        alpha[states] = torch.logaddexp(alpha[states], into)
    return alpha


def backward_scores(lat: Lattice, lv: Levels, arc_score: Tensor, semiring: Semiring) -> Tensor:
    """Score of all paths from each state to the final state, one step per level.

    Log: each state's out-arcs reduced at once (``by_src``); tropical: see ``_max_sweep``.

    Args:
        lat: a batch of lattices with S states and A arcs.
        lv: ``levels(lat)``.
        arc_score: (A,) float64 arc scores.
        semiring: "tropical" (best path) or "log" (all paths).
    Returns:
        (S,) float64, -inf for states that do not reach the final state.
    """
    beta = torch.full((lat.num_states,), -torch.inf, dtype=torch.float64)
    nonempty = lat.nonempty()
    beta[lat.final_states[nonempty]] = 0.0
    if semiring == "tropical":
        return _max_sweep(lv, beta, lat.dst, lat.src, arc_score, forward=False)
    for k in range(lv.num_levels - 2, -1, -1):
        arcs, group, states = lv.by_src.level(k)
        out = group_reduce(beta[lat.dst[arcs]] + arc_score[arcs], group, states.shape[0],
                           semiring)
        beta[states] = torch.logaddexp(beta[states], out)
    return beta


def _max_sweep(lv: Levels, init: Tensor, near: Tensor, far: Tensor, arc_score: Tensor,
               forward: bool) -> Tensor:
    """Tropical scores: ``out[far] = max(out[far], out[near] + arc_score)`` a level at a time.

    The arcs are taken by source level (``by_src``), ascending (forward: near = src) or
    descending (backward: near = dst, on a higher level, so done). A max is exact in any
    order, so this equals the per-state group reduce; it runs in numpy, whose per-call cost
    is a fraction of torch's on a level's few arcs.

    Args:
        lv: the levels; init: (S,) float64 start values.
        near, far: (A,) the state each arc reads from and the one it writes to.
        arc_score: (A,) float64 arc scores.
        forward: ascending levels (else descending).
    Returns:
        (S,) float64.
    """
    out = init.numpy()  # updated in place
    order, splits = lv.by_src.order.numpy(), lv.by_src.arc_splits.tolist()
    near, far, score = near.numpy()[order], far.numpy()[order], arc_score.numpy()[order]
    steps = range(lv.num_levels - 1) if forward else range(lv.num_levels - 2, -1, -1)
    with np.errstate(invalid="ignore"):  # -inf + inf: NaN, as in torch, silently
        for k in steps:
            a0, a1 = splits[k], splits[k + 1]
            np.maximum.at(out, far[a0:a1], out[near[a0:a1]] + score[a0:a1])
    return torch.from_numpy(out)
