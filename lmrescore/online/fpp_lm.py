"""FPP for the RNN language model in stream batching: the Trainer's "fpp" method.

``StreamsLM`` presents one ``RNNLM`` as R = batch_size parallel text streams sharing its weights
(the ``StateModel`` FPP trains); a run's state is every layer's state concatenated. ``FPPStreams``
feeds a stream batch position by position to an ``FPPLearner``: one online step for all streams,
then n updates of one sampled transition per stream (a minibatch of B transitions). Dropout is
not applied in FPP steps. The buffer is part of the checkpoint, so a killed run resumes exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmrescore.lm.config import FPPConfig
from lmrescore.online.fpp import FPPLearner
from lmrescore.lm.model import RNNLM


class StreamsLM:
    """A ``LanguageModel`` as R parallel streams: state (..., R * S), token ids (..., R)."""

    obs_shape: tuple[int, ...] = ()
    obs_dtype = torch.long

    def __init__(self, model: RNNLM, streams: int) -> None:
        self.model, self.runs = model, streams
        self.state_size = model.state_size

    def parameters(self) -> Iterator[nn.Parameter]:
        return self.model.parameters()

    def zero_state(self, *batch: int) -> Tensor:
        return torch.zeros(*batch, self.runs * self.state_size)

    def split(self, state: Tensor) -> Tensor:
        return state.unflatten(-1, (self.runs, self.state_size))

    def join(self, state: Tensor) -> Tensor:
        return state.flatten(-2)

    def step(self, state: Tensor, obs: Tensor) -> Tensor:
        """All layers one step: (..., R * S), token ids (..., R) -> (..., R * S)."""
        return self.join(self.model.step(self.split(state), obs))

    def logits(self, state: Tensor) -> Tensor:
        """(..., R * S) -> (..., R, V)."""
        return self.model.logits(self.split(state))


class FPPStreams:
    """Trains an ``RNNLM`` with FPP on stream batches of ``streams`` rows.

    Args:
        model: the language model.
        optimizer: over its parameters.
        config: FPP settings.
        streams: rows of a stream batch (R).
        seed: seeds the transition sampling.
        clip: gradient-norm clipping (0 = off).
    """

    def __init__(self, model: RNNLM, optimizer: torch.optim.Optimizer, config: FPPConfig,
                 streams: int, seed: int, clip: float) -> None:
        self.learner = FPPLearner(StreamsLM(model, streams), optimizer, config, seed, clip)

    def train_batch(self, inputs: Tensor, targets: Tensor, start: bool) -> float:
        """Feed a (B, T) chunk position by position; returns the online predictions' summed NLL.

        Args:
            inputs, targets: (B, T) token ids of the B streams.
            start: the streams start here (state reset).
        """
        nll = 0.0
        for t in range(inputs.shape[1]):
            logits = self.learner.observe(inputs[:, t], targets[:, t], start and t == 0)
            nll += float(F.cross_entropy(logits, targets[:, t], reduction="sum"))
        return nll

    def state_dict(self) -> dict[str, Any]:
        """Online state, buffer and sampler: everything needed to resume exactly."""
        buf = self.learner.buffer
        return {"state": self.learner.state, "generator": self.learner.generator.get_state(),
                "buffer": {"states": buf.states, "obs": buf.obs, "targets": buf.targets,
                           "starts": buf.starts, "now": buf.now}}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.learner.state = d["state"]
        self.learner.generator.set_state(d["generator"])
        buf = self.learner.buffer
        buf.states, buf.obs, buf.targets, buf.starts, buf.now = (
            d["buffer"][k] for k in ("states", "obs", "targets", "starts", "now"))
