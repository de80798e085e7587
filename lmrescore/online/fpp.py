"""Fixed Point Propagation (FPP): online RNN training from a replay buffer of explicit states.

Nath, Liu, Chan, Li, White & White, "Training Recurrent Neural Networks Online by Learning
Explicit State Variables", ICLR 2020. The states an RNN visits are kept as variables in a buffer
of the last N transitions; training asks the cell to map each stored state to the next stored
one (state loss) while the readout predicts the target (target loss). Nothing is backpropagated
further than the two cell steps inside one transition.

Each online step t (``FPPLearner.observe``):
  1. s[t] = f(s[t-1], o[t]); predict y[t] from g(s[t]); store s[t], o[t], y[t].
  2. n times: sample a minibatch of transitions (s[T-1], o[T], o[T+1], s[T+1], y[T]); recompute
     s[T] = f(s[T-1], o[T]), y' = g(s[T]), s'[T+1] = f(s[T], o[T+1]); loss = target loss
     CE(y', y[T]) + lam * MSE(s'[T+1], s[T+1]) with the stored s[T+1] a constant; one optimizer
     step on the total loss. The readout gets only the target loss's gradient (the state loss
     does not depend on it), the cell gets both.
  3. Write back: s[T-1] <- s[T-1] - state_lr * dloss/ds[T-1] (the explicit-state update of the
     authors' code; state_lr = 0 turns it off), then s[T+1] <- s'[T+1] recomputed with the new
     weights from the updated s[T-1].

The buffer holds ONE state per time step, so a transition's next state s[T+1] is also the start
state of transition T+2: a write is seen by both (what the authors' ``replace`` does by hand).
The n updates of a step are n sequential minibatch updates of ``batch`` transitions each, as in
the authors' code (num_update loops of sample_batch); every run samples its own transitions.
Optional: ``refresh`` random entries per step get s[t] <- f(s[t-1], o[t]) with the current
weights; ``target_only`` (lam = 0) is the no-state-loss ablation.

``window`` W > 1 samples windows instead of one-step transitions, as the authors' code does (its
"T"): s[T] is recomputed from the stored s[T-W] through o[T-W+1..T], so the target loss at T
reaches W steps back; the state loss, the write-backs (s[T-W] by its gradient, s[T+1] recomputed)
are as above. W = 1 is the method as described above.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import torch
from torch import Tensor, nn

from lmrescore.lm.config import FPPConfig
from lmrescore.online.ensemble import predict, run_cross_entropy, run_mse


class StateModel(Protocol):
    """What FPP needs of a model of R runs; ``Ensemble`` and ``StreamsLM`` provide it."""

    runs: int
    state_size: int  # S per run
    obs_shape: tuple[int, ...]
    obs_dtype: torch.dtype

    def step(self, state: Tensor, obs: Tensor) -> Tensor:
        """(..., R * S), (..., R, *obs_shape) -> (..., R * S)."""

    def logits(self, state: Tensor) -> Tensor:
        """(..., R * S) -> (..., R, C)."""

    def split(self, state: Tensor) -> Tensor:
        """(..., R * S) -> (..., R, S)."""

    def join(self, state: Tensor) -> Tensor:
        """(..., R, S) -> (..., R * S)."""

    def zero_state(self, *batch: int) -> Tensor:
        """Zeros (*batch, R * S)."""

    def parameters(self) -> Iterator[nn.Parameter]:
        """The trained weights."""




class ReplayBuffer:
    """A ring of the last ``capacity`` time steps for R runs: state after t, o[t], y[t], start[t].

    Args:
        capacity: time steps kept (N + W + 1 hold N windows of W steps; N + 2 hold N transitions).
        runs: R (seeds of an ``Ensemble``, or parallel streams of one language model).
        state_size: S per run.
        obs_shape, obs_dtype: one run's observation (features (E,) float, or a token id ()).
    """

    def __init__(self, capacity: int, runs: int, state_size: int,
                 obs_shape: tuple[int, ...] = (), obs_dtype: torch.dtype = torch.float32) -> None:
        self.capacity, self.runs = capacity, runs
        self.states = torch.zeros(capacity, runs, state_size)  # s[t], per run
        self.obs = torch.zeros(capacity, runs, *obs_shape, dtype=obs_dtype)  # o[t]
        self.targets = torch.full((capacity, runs), -1, dtype=torch.long)  # y[t], -1: none
        self.starts = torch.zeros(capacity, dtype=torch.bool)  # state before t is zero
        self.now = -1  # the newest time step stored
        self._runs = torch.arange(runs)

    def add(self, state: Tensor, obs: Tensor, target: Tensor, start: bool) -> None:
        """Store time step now+1: state (R, S) after it, obs (R, ...), target (R,), start flag."""
        self.now += 1
        k = self.now % self.capacity
        self.states[k], self.obs[k], self.targets[k], self.starts[k] = state, obs, target, start

    def num_transitions(self, window: int = 1) -> int:
        """Times t whose s[t-window] (or a start) and s[t+1] are both still stored."""
        return max(0, min(self.now - window + 1, self.capacity - 1 - window))

    def sample(self, batch: int, generator: torch.Generator | None = None,
               window: int = 1) -> Tensor:
        """Uniform times (batch, R), each run its own, among those ``num_transitions`` counts."""
        n = self.num_transitions(window)
        offset = torch.randint(0, n, (batch, self.runs), generator=generator)
        return self.now - n + offset  # times now-n .. now-1

    def gather(self, t: Tensor, window: int = 1) -> dict[str, Tensor]:
        """The windows ending at times t (B, R): s_prev = s[t-W], s_next = s[t+1], y = y[t]
        (B, R, ...); obs o[t-W+1 .. t+1] and their start flags, (W + 1, B, R, ...)."""
        k = (t + torch.arange(-window, 2)[:, None, None]) % self.capacity  # times t-W .. t+1
        return {"s_prev": self.states[k[0], self._runs], "s_next": self.states[k[-1], self._runs],
                "obs": self.obs[k[1:], self._runs], "starts": self.starts[k[1:]],
                "y": self.targets[k[-2], self._runs]}

    def write(self, t: Tensor, states: Tensor) -> None:
        """Set s[t] (B, R) to states (B, R, S)."""
        self.states[t % self.capacity, self._runs] = states


def _zero_where(states: Tensor, mask: Tensor) -> Tensor:
    """states (B, R, S) with rows zeroed where mask (B, R) is True."""
    return states.masked_fill(mask[..., None], 0.0)


def start_states(tr: dict[str, Tensor]) -> Tensor:
    """The gathered start states s[T-W] (B, R, S), zeroed where the window's first step is a start
    (the state before it is reset, not the stored one)."""
    return _zero_where(tr["s_prev"], tr["starts"][0])


def propagate(model: StateModel, tr: dict[str, Tensor], s_prev: Tensor) -> tuple[Tensor, Tensor]:
    """Recompute sampled transitions with the current weights.

    Args:
        model: the R runs.
        tr: ``ReplayBuffer.gather`` output for times (B, R).
        s_prev: (B, R, S) start states s[T-W], zeroed at starts (may require grad).

    Returns:
        logits (B, R, C) of y' = g(s[T]), and s'[T+1] (B, R, S).
    """
    obs, starts = tr["obs"], tr["starts"]
    s_t = model.step(model.join(s_prev), obs[0])
    for j in range(1, len(obs) - 1):  # the rest of the window (W > 1)
        s_t = model.step(model.join(_zero_where(model.split(s_t), starts[j])), obs[j])
    logits = model.logits(s_t)
    s_t = model.join(_zero_where(model.split(s_t), starts[-1]))
    return logits, model.split(model.step(s_t, obs[-1]))


def fpp_losses(model: StateModel, tr: dict[str, Tensor], s_prev: Tensor) -> tuple[Tensor, Tensor]:
    """Target loss CE(g(s[T]), y[T]) and state loss MSE(s'[T+1], stored s[T+1]) (a constant).

    Args, shapes: as ``propagate``.

    Returns:
        two scalars, each summed over runs and averaged over the B samples.
    """
    logits, s_next = propagate(model, tr, s_prev)
    state_loss = run_mse(model.join(s_next), model.join(tr["s_next"]), model.state_size)
    return run_cross_entropy(logits, tr["y"]), state_loss


class FPPLearner:
    """Online FPP: ``observe`` one step, get the prediction, then learn.

    Args:
        model: R runs (an ``Ensemble``, or ``StreamsLM``: parallel streams of one model).
        optimizer: over ``model.parameters()``.
        config: FPP settings.
        seed: seeds the transition sampling.
        clip: gradient-norm clipping (0 = off; it would couple an ensemble's runs).
    """

    def __init__(self, model: StateModel, optimizer: torch.optim.Optimizer, config: FPPConfig,
                 seed: int = 0, clip: float = 0.0) -> None:
        self.model, self.optimizer, self.config, self.clip = model, optimizer, config, clip
        self.buffer = ReplayBuffer(config.buffer + config.window + 1, model.runs, model.state_size,
                                   model.obs_shape, model.obs_dtype)
        self.state = model.zero_state()
        self.generator = torch.Generator().manual_seed(seed)
        self.weight = 0.0 if config.target_only else config.state_weight

    def observe(self, obs: Tensor, target: Tensor, start: bool) -> Tensor:
        """One online step: predict, store, then ``updates`` FPP updates.

        Args:
            obs: (R, ...) observation o[t] of each run.
            target: (R,) y[t] (-1: none).
            start: the state before t is reset to zero.

        Returns:
            (R, C) logits predicting y[t], made before learning from it.
        """
        m = self.model
        self.state, logits = predict(m, self.state, obs, start)
        self.buffer.add(m.split(self.state), obs, target, start)
        if self.buffer.num_transitions(self.config.window) > 0:
            for _ in range(self.config.updates):
                self.update()
            for _ in range(self.config.refresh):
                self.refresh()
        return logits

    def update(self) -> None:
        """One FPP minibatch update, then the buffer write-back."""
        c, buf = self.config, self.buffer
        t = buf.sample(c.batch, self.generator, c.window)
        tr = buf.gather(t, c.window)
        s_prev = start_states(tr).requires_grad_(c.state_lr > 0)
        target_loss, state_loss = fpp_losses(self.model, tr, s_prev)
        loss = target_loss + self.weight * state_loss if self.weight else target_loss
        self.optimizer.zero_grad()
        loss.backward()
        if self.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.optimizer.step()
        with torch.no_grad():
            if c.state_lr > 0:  # a reset start state is the constant zero, not a variable
                s_prev = s_prev - c.state_lr * s_prev.grad
                buf.write(t - c.window,
                          torch.where(tr["starts"][0, ..., None], tr["s_prev"], s_prev))
            buf.write(t + 1, propagate(self.model, tr, s_prev)[1])

    @torch.no_grad()
    def refresh(self) -> None:
        """Re-propagate one random stored step per run: s[t] <- f(s[t-1], o[t]), current weights."""
        m, buf = self.model, self.buffer
        t = buf.sample(1, self.generator)
        tr = buf.gather(t)
        buf.write(t, m.split(m.step(m.join(start_states(tr)), tr["obs"][0])))
