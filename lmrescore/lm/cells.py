"""Recurrent cells as pure steps ``state' = cell.step(state, input_proj)``.

A state is one tensor ``(..., state_size)``: ``h`` for Elman and GRU, ``[h, c]`` for LSTM. Input
projections ``W_x x + b`` are split off (``input_proj``) so a solver computes them once for all
positions; ``step`` then adds the recurrent part. Both solvers (sequential and fixed-point) call
the same ``step``, batched over any leading axes.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class Cell(nn.Module):
    """Base: input projection (G = gates * H) and recurrent weights (G, H)."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.input = nn.Linear(input_size, self.gates * hidden_size)
        self.recurrent = nn.Linear(hidden_size, self.gates * hidden_size, bias=False)
        bound = 1.0 / math.sqrt(hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    @property
    def state_size(self) -> int:
        return self.hidden_size

    def input_proj(self, x: Tensor) -> Tensor:
        """(..., E) -> (..., G)."""
        return self.input(x)

    def output(self, state: Tensor) -> Tensor:
        """(..., state_size) -> (..., H): the part of the state the next layer sees."""
        return state[..., : self.hidden_size]

    def step(self, state: Tensor, xp: Tensor) -> Tensor:
        """One step: (..., state_size), (..., G) -> (..., state_size)."""
        raise NotImplementedError

    def step_(self, state: Tensor, xp: Tensor) -> Tensor:
        """``step`` for scoring: (N, state_size), (N, G) -> (N, state_size), free to overwrite
        ``xp``; no autograd. Cells that override it make fewer passes over memory, which is
        what a rescoring trie level of tens of thousands of rows is bound by."""
        return self.step(state, xp)


class ElmanCell(Cell):
    """h' = tanh(W_x x + b + W_h h)."""

    def step(self, state: Tensor, xp: Tensor) -> Tensor:
        return torch.tanh(xp + self.recurrent(state))

    def step_(self, state: Tensor, xp: Tensor) -> Tensor:
        return xp.addmm_(state, self.recurrent.weight.t()).tanh_()


class GRUCell(Cell):
    """Gated recurrent unit (Cho et al. 2014), gates ordered r, z, n as in torch.nn.GRU."""

    gates = 3

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.recurrent_bias = nn.Parameter(torch.zeros(3 * hidden_size))

    def step(self, state: Tensor, xp: Tensor) -> Tensor:
        hr, hz, hn = (self.recurrent(state) + self.recurrent_bias).chunk(3, dim=-1)
        xr, xz, xn = xp.chunk(3, dim=-1)
        r = torch.sigmoid(xr + hr)
        z = torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        return (1 - z) * n + z * state


class LSTMCell(Cell):
    """Long short-term memory; state is [h, c], gates ordered i, f, g, o as in torch.nn.LSTM."""

    gates = 4

    @property
    def state_size(self) -> int:
        return 2 * self.hidden_size

    def step(self, state: Tensor, xp: Tensor) -> Tensor:
        h, c = state.chunk(2, dim=-1)
        i, f, g, o = (xp + self.recurrent(h)).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return torch.cat([h, c], dim=-1)

    def step_(self, state: Tensor, xp: Tensor) -> Tensor:
        size = self.hidden_size
        h, c = state[:, :size], state[:, size:]
        gates = xp.addmm_(h, self.recurrent.weight.t())  # in place: no copy of the (N, 4H) gates
        gates[:, : 2 * size].sigmoid_()
        gates[:, 2 * size: 3 * size].tanh_()
        gates[:, 3 * size:].sigmoid_()
        i, f, g, o = gates.chunk(4, dim=-1)
        new = torch.empty_like(state)
        h_new, c_new = new[:, :size], new[:, size:]  # written in place: no concatenation
        torch.mul(f, c, out=c_new).addcmul_(i, g)
        torch.tanh(c_new, out=h_new).mul_(o)
        return new


CELLS: dict[str, type[Cell]] = {"rnn": ElmanCell, "gru": GRUCell, "lstm": LSTMCell}
