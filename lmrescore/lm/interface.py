"""What rescoring, FPP and evaluation need of a language model: one ``LanguageModel`` protocol.

A model's state after a history is ONE tensor row of ``state_size`` floats (an RNN's layers
concatenated), so callers index, mask and gather states as plain tensors (trie parents, sentence
resets, best incoming arcs). The zero row is the reset state; stepping it by ``<s>`` starts a
sentence. ``order`` is the history length K at which the model is exact (an order-K fixed-point
RNN, a K-token window); None means its own recurrence over the whole history.

A model may keep ``work``, a dict of counters of the output-layer rows its scoring methods
computed (RNNLM: "softmax_rows", or "head_rows" and "tail_rows"); the rescoring methods report
how much they grew (lmrescore/rescoring/methods.py).

Methods run without dropout. ``step`` and ``logits`` keep gradients (FPP trains through them);
callers that only score wrap them in ``torch.no_grad()``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

# Rows per output-layer call: a block of BLOCK_ROWS x vocabulary logits (20 MB for PTB's 10k
# words) stays in cache; 4096 took 2-4x the memory and somewhat longer (bench/RESULTS.md).
BLOCK_ROWS = 512


@runtime_checkable
class LanguageModel(Protocol):
    """A next-token model over ``vocab_size`` ids whose state is one ``(state_size,)`` row."""

    vocab_size: int
    order: int | None  # trained fixed-point order K; None = exact recurrence
    state_size: int  # S
    device: torch.device

    def zero_state(self, n: int) -> Tensor:
        """(n, S) reset states (before ``<s>``), on ``device`` in the model's dtype."""

    def step(self, state: Tensor, tokens: Tensor) -> Tensor:
        """States after reading one token each: (..., S), (...,) ids -> (..., S)."""

    def logits(self, state: Tensor) -> Tensor:
        """(..., S) -> (..., V) unnormalised scores; their log-softmax is the next-token
        distribution (the full distribution, for training losses)."""

    def token_log_probs(self, state: Tensor, rows: Tensor, tokens: Tensor,
                        block_rows: int = BLOCK_ROWS) -> Tensor:
        """Exact normalised log p(tokens[q] | state[rows[q]]).

        Args:
            state: (n, S) states (on ``device``).
            rows: (Q,) int64 row of each query (CPU).
            tokens: (Q,) int64 next token of each query (CPU).
            block_rows: at most this many rows' distributions are held at once (memory bound).
        Returns:
            (Q,) float32 log-probabilities (CPU).
        """

    def sequence_log_probs(self, inputs: Tensor, targets: Tensor, mask: Tensor,
                           starts: Tensor | None, order: int | None,
                           state: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """log p(targets[b, t] | inputs[b, :t+1]) over padded sequences.

        Args:
            inputs, targets: (B, T) token ids (on ``device``).
            mask: (B, T) bool, the positions to score.
            starts: (B, T) bool, True where a sentence starts (state reset), or None.
            order: None for the exact recurrence, else the fixed-point order K.
            state: (B, S) state before position 0, or None for zeros.
        Returns:
            (B, T) float32 log-probabilities (0 outside ``mask``), and the (B, S) state after
            position T-1 (exact recurrence; None at order K).
        """
