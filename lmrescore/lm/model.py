"""RNNLM: embedding -> stack of recurrent cells (sequential or order-K fixed point) -> output layer
(a full or adaptive softmax: lmrescore/lm/output.py).

Training calls ``nll`` (dropout, gradients); everything else goes through the ``LanguageModel``
methods (lmrescore/lm/interface.py), whose ``State`` is one (n, S) float tensor, a row being every
layer's state concatenated (FPP trains on it as a vector).
``token_log_probs`` and ``sequence_log_probs`` add the output-layer rows they compute to
``work``: "softmax_rows" (full softmax), or "head_rows" and "tail_rows" (one per (row, tail
cluster) pair).
"""

from __future__ import annotations

from dataclasses import dataclass
import torch
from torch import Tensor, nn

from lmrescore.formats.limits import MAX_ORDER
from lmrescore.lm.cells import CELLS
from lmrescore.lm.fixed_point import fixed_point, sequential
from lmrescore.lm.interface import BLOCK_ROWS
from lmrescore.lm.output import check_output, make_output


@dataclass
class ModelConfig:
    """Architecture of an RNN language model.

    Attributes:
        cell: "rnn" (Elman tanh), "gru" or "lstm".
        vocab_size: output classes; set from the vocabulary when training starts.
        hidden_dim: units per layer (also the embedding size).
        num_layers: stacked cells.
        dropout: on embeddings, between layers and before the output layer.
        tie_weights: share the input embedding and the output projection (adaptive: the head's
            shortlist rows, and each tail's output matrix as the embedding through the tail's
            projection; lmrescore/lm/adaptive.py).
        order: the fixed-point order K the model is trained and used with; None = exact recurrence.
        output: "softmax" (full) or "adaptive" (head + tail clusters; needs ``cutoffs``).
        cutoffs: adaptive only: increasing ids where the shortlist and each tail cluster end
            (the last cluster ends at ``vocab_size``), e.g. [2000, 10000].
        div_value: adaptive only: tail cluster i projects to ``hidden_dim // div_value**(i+1)``.
    """

    cell: str = "lstm"
    vocab_size: int = 0
    hidden_dim: int = 256
    num_layers: int = 1
    dropout: float = 0.0
    tie_weights: bool = True
    order: int | None = None
    output: str = "softmax"
    cutoffs: list[int] | None = None
    div_value: float = 4.0

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {self.cell!r}")
        if self.order is not None and not 1 <= self.order <= MAX_ORDER:
            raise ValueError(f"order must be 1..{MAX_ORDER} or null, got {self.order}")
        check_output(self.output, self.cutoffs, self.div_value, self.hidden_dim, self.vocab_size)


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
        self.output = make_output(config.output, h, config.vocab_size, config.cutoffs,
                                  config.div_value,
                                  self.embedding.weight if config.tie_weights else None)
        self.work: dict[str, int] = {}  # output-layer rows computed by the scoring methods

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

    def scores(self, top: Tensor) -> Tensor:
        """(..., H) -> (..., V) next-token scores whose log-softmax is the distribution: the
        softmax's logits, or the adaptive layer's log-probabilities (already normalised)."""
        return self.output.scores(top)

    def forward(self, inputs: Tensor, starts: Tensor | None = None,
                state: list[Tensor] | None = None, order: int | None | str = "model",
                ) -> tuple[Tensor, list[Tensor] | None]:
        """Scores (B, T, V) (``scores``) and final states; arguments as in ``hidden``."""
        out, final = self.hidden(inputs, starts, state, order)
        return self.scores(out), final

    def nll(self, inputs: Tensor, targets: Tensor, mask: Tensor, starts: Tensor | None = None,
            state: list[Tensor] | None = None, order: int | None | str = "model",
            ) -> tuple[Tensor, list[Tensor] | None]:
        """Summed negative log-likelihood of ``targets`` (B, T) where ``mask`` (B, T) is True;
        only those positions go through the output layer."""
        out, final = self.hidden(inputs, starts, state, order)
        return self.output.nll(out[mask], targets[mask]), final

    def log_probs(self, inputs: Tensor, starts: Tensor | None = None,
                  order: int | None | str = "model") -> Tensor:
        """Log-probabilities (B, T, V) of the next token after each position."""
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

    def start(self, n: int) -> Tensor:
        """(n, S) zeros: the state before ``<s>``."""
        w = self.embedding.weight
        return torch.zeros(n, self.state_size, device=w.device, dtype=w.dtype)

    def step(self, state: Tensor, tokens: Tensor) -> Tensor:
        """All layers one token: (..., S), (...,) ids -> (..., S); one cell call per layer.

        The first layer's input projection is computed once per distinct token: a level of a
        rescoring trie has tens of thousands of nodes but a few hundred distinct tokens. Without
        gradients the cells step in place (``Cell.step_``): same numbers to float rounding,
        ``history_states`` in 0.7-0.85x the CPU time (bench/RESULTS.md).
        """
        distinct, inverse = torch.unique(tokens.reshape(-1), return_inverse=True)
        rows = state.reshape(-1, state.shape[-1])
        in_place = not torch.is_grad_enabled()
        below: Tensor | None = None
        new = []
        for cell, layer_state in zip(self.cells, self.layer_states(rows)):
            projected = (cell.input_proj(self.embedding(distinct)).index_select(0, inverse)
                         if below is None else cell.input_proj(below))
            layer_state = (cell.step_ if in_place else cell.step)(layer_state, projected)
            below = cell.output(layer_state)
            new.append(layer_state)
        return (new[0] if len(new) == 1 else torch.cat(new, dim=-1)).reshape(state.shape)

    def logits(self, state: Tensor) -> Tensor:
        """(..., S) -> (..., V) output-layer scores (``scores``: for the adaptive layer the full
        log-probabilities, whose log-softmax, hence cross-entropy, is the same)."""
        return self.scores(self.top(state))

    def token_log_probs(self, state: Tensor, rows: Tensor, tokens: Tensor,
                        block_rows: int = BLOCK_ROWS) -> Tensor:
        """log p(tokens[q] | state[rows[q]]), each distinct queried row through the output layer
        once, ``block_rows`` rows at a time (lmrescore/lm/output.py).

        Args:
            state: (n, S) states (on the model's device).
            rows: (Q,) int64 row of each query (CPU).
            tokens: (Q,) int64 next token of each query (CPU).
        Returns:
            (Q,) float32 log-probabilities (CPU).
        """
        if not rows.numel():
            return torch.empty(0, dtype=torch.float32)
        distinct, row = torch.unique(rows, return_inverse=True)
        top = self.top(state[distinct.to(state.device)])
        return self.output.token_log_probs(top, row, tokens, block_rows, self.work)

    def sequence_log_probs(self, inputs: Tensor, targets: Tensor, mask: Tensor,
                           starts: Tensor | None, order: int | None,
                           state: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """(B, T) float32 log p(targets | inputs so far) where ``mask`` (0 elsewhere), and the
        (B, S) final state (exact recurrence; None at order K). Only masked positions go through
        the output layer."""
        init = None if state is None else self.layer_states(state)
        top, final = self._solve(self.embedding(inputs), starts, init, order, None)
        out = torch.zeros(inputs.shape, dtype=torch.float32, device=inputs.device)
        out[mask] = self.output.target_log_probs(top[mask], targets[mask], self.work)
        return out, None if final is None else torch.cat(final, dim=-1)
