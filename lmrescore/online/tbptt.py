"""Online truncated BPTT, the baseline FPP is compared with (same ``observe`` interface).

Every ``every`` steps, the last T steps are recomputed from the stored state s[t-T] (a constant)
with gradients, and the targets of the last ``every`` of them are scored. With every = 1 this is
the authors' "overlap" T-BPTT (one T-step backward pass per step, scoring y[t]); with
T = every = sequence length and aligned sequences it is full BPTT, one update per sequence.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lmrescore.online.ensemble import Ensemble, predict, run_cross_entropy


class TBPTTLearner:
    """Online T-BPTT for an ``Ensemble``.

    Args:
        model: R runs trained together (independently).
        optimizer: over ``model.parameters()``.
        truncation: T, steps back-propagated through.
        every: update every this many steps, scoring that many last targets (1 <= every <= T).
    """

    def __init__(self, model: Ensemble, optimizer: torch.optim.Optimizer, truncation: int,
                 every: int = 1) -> None:
        if truncation < 1 or not 1 <= every <= truncation:
            raise ValueError(f"need T >= 1 and 1 <= every <= T, got T={truncation} every={every}")
        self.model, self.optimizer, self.T, self.every = model, optimizer, truncation, every
        self.state = model.zero_state()
        # the last T+1 steps: states after each (oldest first), observations, targets, starts
        self.states: list[Tensor] = [self.state]
        self.obs: list[Tensor] = []
        self.targets: list[Tensor] = []
        self.starts: list[bool] = []
        self.step_count = 0

    def observe(self, obs: Tensor, target: Tensor, start: bool) -> Tensor:
        """One online step: predict y[t], remember it, and every ``every`` steps update.

        Args:
            obs: (R, E) observation o[t] of each run.
            target: (R,) y[t] (-1: none).
            start: the state before t is reset to zero.

        Returns:
            (R, C) logits predicting y[t], made before learning from it.
        """
        m = self.model
        self.state, logits = predict(m, self.state, obs, start)
        self.states.append(self.state)
        self.obs.append(obs)
        self.targets.append(target)
        self.starts.append(start)
        if len(self.obs) > self.T:
            del self.states[0], self.obs[0], self.targets[0], self.starts[0]
        self.step_count += 1
        if self.step_count % self.every == 0:
            self.update()
        return logits

    def update(self) -> None:
        """Backpropagate through the stored window; score its last ``every`` targets."""
        m = self.model
        state, first, outputs = self.states[0], len(self.obs) - self.every, []
        for i, (x, start) in enumerate(zip(self.obs, self.starts)):
            if start:
                state = torch.zeros_like(state)
            state = m.step(state, x)
            if i >= first:
                outputs.append(state)
        targets = torch.stack(self.targets[first:])  # (every, R)
        if bool((targets < 0).all()):
            return
        loss = run_cross_entropy(m.logits(torch.stack(outputs)), targets)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
