"""Two solvers for a stack of recurrent cells over a batch of sequences.

Stack the states of a sequence: H = F(H), where row t is f(H[t-1], x[t]). ``sequential`` solves
it exactly, one position after another. ``fixed_point`` runs K Jacobi sweeps from H = 0: each
sweep is ONE batched cell call per layer over all positions. After k sweeps the state at t
depends on exactly the inputs t-k+1..t (a Markov model of order k); for k >= T it is the exact
recurrence. Layers are swept jointly (layer l+1 reads layer l's output of the same sweep), so the
whole stack has order k, which is what makes lattice histories of k words exact.

Shapes: x (B, T, E); starts (B, T) bool, True where a sentence starts (the state before it is
reset to zero); init: per layer (B, S) state before position 0, or None for zeros; masks: per
layer above the first, a dropout mask (B, T, H) for its input, or None.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lmrescore.lm.cells import Cell


def _layer_input(cells: Sequence[Cell], layer: int, below: Tensor,
                 masks: Sequence[Tensor | None] | None) -> Tensor:
    """Input projection of ``layer`` from the output of the layer below (or the embeddings)."""
    if layer > 0 and masks is not None and masks[layer - 1] is not None:
        below = below * masks[layer - 1]
    return cells[layer].input_proj(below)


def sequential(cells: Sequence[Cell], x: Tensor, starts: Tensor | None = None,
               init: Sequence[Tensor] | None = None,
               masks: Sequence[Tensor | None] | None = None) -> tuple[Tensor, list[Tensor]]:
    """The exact recurrence, position by position.

    Returns:
        top-layer outputs (B, T, H) and the final state of each layer (B, S).
    """
    batch, length = x.shape[:2]
    below, finals = x, []
    for layer, cell in enumerate(cells):
        xp = _layer_input(cells, layer, below, masks)
        state = x.new_zeros(batch, cell.state_size) if init is None else init[layer]
        states = []
        for t in range(length):
            if starts is not None:
                state = state.masked_fill(starts[:, t, None], 0.0)
            state = cell.step(state, xp[:, t])
            states.append(state)
        below = cell.output(torch.stack(states, dim=1))
        finals.append(state)
    return below, finals


def fixed_point(cells: Sequence[Cell], x: Tensor, order: int, starts: Tensor | None = None,
                init: Sequence[Tensor] | None = None,
                masks: Sequence[Tensor | None] | None = None) -> Tensor:
    """``order`` Jacobi sweeps from zero states: the order-K approximation of the recurrence.

    Returns:
        top-layer outputs (B, T, H).
    """
    if order < 1:
        raise ValueError(f"fixed-point order must be >= 1, got {order}")
    batch, length = x.shape[:2]
    first_proj = cells[0].input_proj(x)  # the only input that does not change between sweeps
    states = [x.new_zeros(batch, length, c.state_size) for c in cells]
    for _ in range(order):
        xp = first_proj
        for layer, cell in enumerate(cells):
            boundary = (x.new_zeros(batch, 1, cell.state_size) if init is None
                        else init[layer][:, None])
            prev = torch.cat([boundary, states[layer][:, :-1]], dim=1)
            if starts is not None:
                prev = prev.masked_fill(starts[..., None], 0.0)
            states[layer] = cell.step(prev, xp)
            if layer + 1 < len(cells):
                xp = _layer_input(cells, layer + 1, cell.output(states[layer]), masks)
    return cells[-1].output(states[-1])
