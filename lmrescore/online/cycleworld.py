"""p-CycleWorld: the observation is 1 every p-th step, else 0; predict the next observation.

Observations are one-hot bits (2 features); the target y[t] = o[t+1]. Always predicting 0 is
right (p-1)/p of the time (83.3% for p = 6); being right on the 1s needs a memory of p-1 steps.
Accuracy is that of the online prediction of y[t], made before learning from it, averaged over
windows of ``window`` steps, as the authors' code logs it; their code summarises a run by the mean
over all windows (online performance, the report's "whole run" column).
"""

from __future__ import annotations

import time
from typing import Any

import torch
from tqdm import tqdm

from lmrescore.online.runs import Learner, OnlineConfig, make_learner


def cycleworld(period: int, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The stream: observation bits (steps,) and next-bit targets (steps,), int64."""
    if period < 2:
        raise ValueError(f"CycleWorld period must be >= 2, got {period}")
    bits = (torch.arange(steps + 1) % period == period - 1).long()
    return bits[:-1], bits[1:]


def naive_accuracy(period: int) -> float:
    """Accuracy of always predicting 0."""
    return (period - 1) / period


def run_cycleworld(config: OnlineConfig, period: int, window: int = 100,
                   learner: Learner | None = None) -> dict[str, Any]:
    """Train ``config.runs`` seeds online on p-CycleWorld for ``config.steps`` steps.

    Args:
        learner: a learner of ``config.runs`` runs to train instead of ``make_learner(config)``
            (e.g. one with some weights frozen).

    Returns:
        {"period", "naive", "window", "curve": per run a list of window accuracies,
         "final": per run the mean accuracy over the last 10% of windows,
         "seconds", "steps_per_s"}.
    """
    bits, targets = cycleworld(period, config.steps)
    obs = torch.eye(2)[:, None].expand(2, config.runs, 2)  # bit -> (R, 2) one-hot, every run
    if learner is None:
        learner = make_learner(config, input_size=2, classes=2)[1]
    correct = torch.zeros(config.runs)
    curve: list[torch.Tensor] = []
    tic = time.perf_counter()
    for t in tqdm(range(config.steps), desc=config.name, unit="step", mininterval=30):
        target = targets[t].expand(config.runs)
        logits = learner.observe(obs[bits[t]], target, t == 0)
        correct += logits.argmax(-1) == target
        if (t + 1) % window == 0:
            curve.append(correct / window)
            correct = torch.zeros(config.runs)
    seconds = time.perf_counter() - tic
    acc = torch.stack(curve, dim=1) if curve else torch.zeros(config.runs, 0)
    tail = max(1, acc.shape[1] // 10)
    return {"period": period, "naive": naive_accuracy(period), "window": window,
            "curve": acc.tolist(), "final": acc[:, -tail:].mean(1).tolist(),
            "seconds": seconds, "steps_per_s": config.steps / seconds}
