"""RNNLM: embedding -> stack of recurrent cells (sequential or order-K fixed point) -> softmax."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmrescore.lm.cells import CELLS
from lmrescore.lm.fixed_point import fixed_point, sequential


@dataclass
class ModelConfig:
    """Architecture of an RNN language model.

    Attributes:
        cell: "rnn" (Elman tanh), "gru" or "lstm".
        vocab_size: output classes; set from the vocabulary when training starts.
        hidden_dim: units per layer (also the embedding size).
        num_layers: stacked cells.
        dropout: on embeddings, between layers and before the output layer.
        tie_weights: share the input embedding and the output projection.
        order: the fixed-point order K the model is trained and used with; None = exact recurrence.
    """

    cell: str = "lstm"
    vocab_size: int = 0
    hidden_dim: int = 256
    num_layers: int = 1
    dropout: float = 0.0
    tie_weights: bool = True
    order: int | None = None

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {self.cell!r}")
        if self.order is not None and self.order < 1:
            raise ValueError(f"order must be >= 1 or null, got {self.order}")


class RNNLM(nn.Module):
    """An RNN language model whose recurrence is solved exactly or as an order-K fixed point."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.vocab_size < 1:
            raise ValueError("ModelConfig.vocab_size is not set")
        self.config = config
        h = config.hidden_dim
        self.embedding = nn.Embedding(config.vocab_size, h)
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        self.cells = nn.ModuleList(CELLS[config.cell](h, h) for _ in range(config.num_layers))
        self.output = nn.Linear(h, config.vocab_size)
        nn.init.zeros_(self.output.bias)
        if config.tie_weights:
            self.output.weight = self.embedding.weight
        else:
            nn.init.uniform_(self.output.weight, -0.1, 0.1)

    def _mask(self, like: Tensor) -> Tensor | None:
        """An inverted-dropout mask shaped like ``like``, or None when not dropping."""
        p = self.config.dropout
        if not self.training or p == 0.0:
            return None
        return like.new_empty(like.shape).bernoulli_(1 - p) / (1 - p)

    def hidden(self, inputs: Tensor, starts: Tensor | None = None,
               state: list[Tensor] | None = None, order: int | None | str = "model",
               ) -> tuple[Tensor, list[Tensor] | None]:
        """Top-layer outputs for input ids.

        Args:
            inputs: (B, T) token ids.
            starts: (B, T) bool, True where a sentence starts (state reset), or None.
            state: per layer (B, S) state before position 0 (carried), or None for zeros.
            order: "model" for the model's own order, None for the exact recurrence, or K.

        Returns:
            (B, T, H) outputs, and the final states (exact recurrence only, else None).
        """
        if order == "model":
            order = self.config.order
        x = self.embedding(inputs)
        mask = self._mask(x)
        if mask is not None:
            x = x * mask
        masks = [self._mask(x) for _ in self.cells[1:]]
        if order is None:
            out, final = sequential(self.cells, x, starts, state, masks)
        else:
            out, final = fixed_point(self.cells, x, order, starts, state, masks), None
        mask = self._mask(out)
        return (out if mask is None else out * mask), final

    def forward(self, inputs: Tensor, starts: Tensor | None = None,
                state: list[Tensor] | None = None, order: int | None | str = "model",
                ) -> tuple[Tensor, list[Tensor] | None]:
        """Logits (B, T, V) and final states; arguments as in ``hidden``."""
        out, final = self.hidden(inputs, starts, state, order)
        return self.output(out), final

    def nll(self, inputs: Tensor, targets: Tensor, mask: Tensor, starts: Tensor | None = None,
            state: list[Tensor] | None = None, order: int | None | str = "model",
            ) -> tuple[Tensor, list[Tensor] | None]:
        """Summed negative log-likelihood of ``targets`` (B, T) where ``mask`` (B, T) is True."""
        logits, final = self(inputs, starts, state, order)
        loss = F.cross_entropy(logits[mask], targets[mask], reduction="sum")
        return loss, final

    def log_probs(self, inputs: Tensor, starts: Tensor | None = None,
                  order: int | None | str = "model") -> Tensor:
        """Log-softmax (B, T, V) of the next token after each position."""
        return torch.log_softmax(self(inputs, starts, None, order)[0], dim=-1)
