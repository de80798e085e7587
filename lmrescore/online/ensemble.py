"""R independent small recurrent predictors packed into one wide cell, so one loop trains them all.

Online experiments (CycleWorld, sequential MNIST) repeat a run over several seeds; at 300k steps
the per-step Python overhead dominates, so the seeds run as one batch. ``Ensemble`` builds a
``Cell`` of width ``R * H`` and replaces its input and recurrent projections with block-diagonal
ones (``GroupedLinear``): run r only ever reads its own units, so the R runs are independent
models computed by the unchanged ``Cell.step``. Element-wise optimizers (Adam, Adagrad, SGD)
update each run exactly as if it were alone, provided losses are summed (not averaged) over runs.

Layouts: a packed state is ``(..., R * S)`` in the cell's own layout (for an LSTM ``[h, c]``, each
``R * H`` long); ``split`` gives the per-run view ``(..., R, S)`` and ``join`` undoes it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmrescore.lm.cells import CELLS


class GroupedLinear(nn.Module):
    """R independent linear maps, one per run, laid out gate-major as a ``Cell`` expects.

    Input ``(..., R * in)`` (run-major); output ``(..., gates * R * out)`` ordered
    ``[gate][run][unit]``, so ``chunk(gates, -1)`` yields per-gate blocks of ``R * out``.
    The weight is stored (R, in, gates * out) so that one ``bmm`` applies all runs.
    """

    def __init__(self, runs: int, in_features: int, out_features: int, gates: int = 1,
                 bias: bool = True) -> None:
        super().__init__()
        self.runs, self.in_features, self.out_features, self.gates = (
            runs, in_features, out_features, gates)
        self.weight = nn.Parameter(torch.empty(runs, in_features, gates * out_features))
        self.bias = nn.Parameter(torch.empty(gates * runs * out_features)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        """(..., R * in) -> (..., gates * R * out)."""
        lead = x.shape[:-1]
        xb = x.reshape(-1, self.runs, self.in_features).transpose(0, 1)  # (R, N, in)
        out = torch.bmm(xb, self.weight)  # (R, N, gates * out)
        out = out.unflatten(-1, (self.gates, self.out_features)).permute(1, 2, 0, 3)
        out = out.reshape(*lead, -1)
        return out if self.bias is None else out + self.bias


class Ensemble(nn.Module):
    """R independent ``cell -> linear readout`` predictors run as one packed cell.

    Args:
        cell: "rnn", "gru" or "lstm".
        runs: R, the number of independent models (seeds).
        input_size: E, features per run.
        hidden_size: H, units per run.
        classes: C, readout classes per run.
        seed: seeds the initial weights.
    """

    def __init__(self, cell: str, runs: int, input_size: int, hidden_size: int, classes: int,
                 seed: int = 0) -> None:
        super().__init__()
        self.runs, self.input_size, self.hidden_size, self.classes = (
            runs, input_size, hidden_size, classes)
        self.cell = CELLS[cell](input_size, runs * hidden_size)
        gates = self.cell.gates
        self.cell.input = GroupedLinear(runs, input_size, hidden_size, gates)
        self.cell.recurrent = GroupedLinear(runs, hidden_size, hidden_size, gates, bias=False)
        self.readout = GroupedLinear(runs, hidden_size, classes)
        bound = 1.0 / math.sqrt(hidden_size)  # the init of a lone cell of width H
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.rand(p.shape, generator=g) * 2 * bound - bound)

    @property
    def state_size(self) -> int:
        """S, the state size of one run (H, or 2H for an LSTM)."""
        return self.cell.state_size // self.runs

    def zero_state(self, *batch: int) -> Tensor:
        """Zeros (*batch, R * S)."""
        return torch.zeros(*batch, self.cell.state_size)

    @property
    def obs_shape(self) -> tuple[int, ...]:
        """Shape of one run's observation: (E,)."""
        return (self.input_size,)

    obs_dtype = torch.float32

    def step(self, state: Tensor, x: Tensor) -> Tensor:
        """One step of every run: state (..., R * S), x (..., R, E) -> (..., R * S)."""
        return self.cell.step(state, self.cell.input_proj(x.flatten(-2)))

    def logits(self, state: Tensor) -> Tensor:
        """Readout (..., R * S) -> (..., R, C)."""
        return self.readout(self.cell.output(state)).unflatten(-1, (self.runs, self.classes))

    def split(self, state: Tensor) -> Tensor:
        """Packed (..., R * S) -> per run (..., R, S)."""
        parts = state.unflatten(-1, (-1, self.runs, self.hidden_size))  # (..., P, R, H)
        return parts.transpose(-3, -2).flatten(-2)

    def join(self, state: Tensor) -> Tensor:
        """Per run (..., R, S) -> packed (..., R * S)."""
        parts = state.unflatten(-1, (-1, self.hidden_size))  # (..., R, P, H)
        return parts.transpose(-3, -2).flatten(-3)


def run_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Cross-entropy summed over runs, averaged over samples; target -1 means none.

    Args:
        logits: (B, R, C).
        targets: (B, R) class ids, -1 where a position has no target.

    Returns:
        scalar: sum_r mean_b CE (each run's gradient is its own loss's gradient).
    """
    ce = F.cross_entropy(logits.transpose(1, 2), targets.clamp(min=0), reduction="none")
    mask = (targets >= 0).float()
    return (ce * mask).sum() / logits.shape[0]


def run_mse(pred: Tensor, target: Tensor, state_size: int) -> Tensor:
    """Squared state error, mean over a run's S units, summed over runs, mean over samples.

    Args:
        pred, target: (B, R * S) packed states.
        state_size: S.

    Returns:
        scalar.
    """
    return (pred - target).pow(2).sum() / (state_size * pred.shape[0])


@torch.no_grad()
def predict(model: "Ensemble", state: Tensor, obs: Tensor, start: bool) -> tuple[Tensor, Tensor]:
    """The online prelude of FPP and T-BPTT: reset at a start, step, predict (no gradients).

    Args:
        model: anything with ``step(state, obs)`` and ``logits(state)`` (an Ensemble, StreamsLM).
    Returns:
        the new state and the logits predicting y[t].
    """
    if start:
        state = torch.zeros_like(state)
    state = model.step(state, obs)
    return state, model.logits(state)
