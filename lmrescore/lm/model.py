"""RNNLM: embedding -> stack of recurrent cells (sequential or order-K fixed point) -> softmax.

Training calls ``nll`` (dropout, gradients); everything else goes through the ``LanguageModel``
methods (lmrescore/lm/interface.py), whose state row is every layer's state concatenated.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmrescore.lm.cells import CELLS
from lmrescore.lm.fixed_point import fixed_point, sequential
from lmrescore.lm.interface import BLOCK_ROWS


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
        out, final = self._solve(x, starts, state, order, masks)
        mask = self._mask(out)
        return (out if mask is None else out * mask), final

    def _solve(self, x: Tensor, starts: Tensor | None, state: list[Tensor] | None,
               order: int | None, masks: list[Tensor | None] | None,
               ) -> tuple[Tensor, list[Tensor] | None]:
        """Top-layer outputs (B, T, H) for embeddings (B, T, H), and the final per-layer states
        (exact recurrence only, else None)."""
        if order is None:
            return sequential(self.cells, x, starts, state, masks)
        return fixed_point(self.cells, x, order, starts, state, masks), None

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

    # The LanguageModel interface (lmrescore/lm/interface.py): no dropout.

    @property
    def vocab_size(self) -> int:
        return self.config.vocab_size

    @property
    def order(self) -> int | None:
        return self.config.order

    @property
    def state_size(self) -> int:
        return sum(c.state_size for c in self.cells)

    @property
    def device(self) -> torch.device:
        return self.embedding.weight.device

    def layer_states(self, state: Tensor) -> list[Tensor]:
        """(..., S) -> per layer (..., state_size of that layer)."""
        return list(state.split([c.state_size for c in self.cells], dim=-1))

    def top(self, state: Tensor) -> Tensor:
        """(..., S) -> (..., H): the top layer's output, what the output layer reads."""
        return self.cells[-1].output(self.layer_states(state)[-1])

    def zero_state(self, n: int) -> Tensor:
        """(n, S) zeros: the state before ``<s>``."""
        w = self.embedding.weight
        return torch.zeros(n, self.state_size, device=w.device, dtype=w.dtype)

    def step(self, state: Tensor, tokens: Tensor) -> Tensor:
        """All layers one token: (..., S), (...,) ids -> (..., S); one cell call per layer."""
        below, new = self.embedding(tokens), []
        for cell, layer_state in zip(self.cells, self.layer_states(state)):
            layer_state = cell.step(layer_state, cell.input_proj(below))
            below = cell.output(layer_state)
            new.append(layer_state)
        return torch.cat(new, dim=-1)

    def logits(self, state: Tensor) -> Tensor:
        """(..., S) -> (..., V) output-layer scores."""
        return self.output(self.top(state))

    def token_log_probs(self, state: Tensor, rows: Tensor, tokens: Tensor,
                        block_rows: int = BLOCK_ROWS) -> Tensor:
        """log p(tokens[q] | state[rows[q]]): one softmax per row of ``state``, in blocks of
        ``block_rows`` rows (blocks no query asks for are skipped).

        Args:
            state: (n, S) states (on the model's device).
            rows: (Q,) int64 row of each query (CPU).
            tokens: (Q,) int64 next token of each query (CPU).
        Returns:
            (Q,) float32 log-probabilities (CPU).
        """
        out = torch.empty(rows.shape[0], dtype=torch.float32)
        if not rows.numel():
            return out
        top = self.top(state)
        by_row = torch.argsort(rows)
        bounds = torch.searchsorted(rows[by_row],
                                    torch.arange(0, top.shape[0] + block_rows, block_rows))
        for c in range(0, top.shape[0], block_rows):
            q = by_row[bounds[c // block_rows]: bounds[c // block_rows + 1]]
            if not q.numel():
                continue
            log_probs = torch.log_softmax(self.output(top[c: c + block_rows]).float(), dim=-1)
            dev = log_probs.device
            out[q] = log_probs[(rows[q] - c).to(dev), tokens[q].to(dev)].cpu()
        return out

    def sequence_log_probs(self, inputs: Tensor, targets: Tensor, mask: Tensor,
                           starts: Tensor | None, order: int | None,
                           state: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """(B, T) float32 log p(targets | inputs so far) where ``mask`` (0 elsewhere), and the
        (B, S) final state (exact recurrence; None at order K). Only masked positions go through
        the output layer."""
        init = None if state is None else self.layer_states(state)
        top, final = self._solve(self.embedding(inputs), starts, init, order, None)
        log_probs = torch.log_softmax(self.output(top[mask]).float(), dim=-1)
        out = torch.zeros(inputs.shape, dtype=torch.float32, device=inputs.device)
        out[mask] = log_probs.gather(1, targets[mask][:, None]).squeeze(1)
        return out, None if final is None else torch.cat(final, dim=-1)
