"""What rescoring, FPP and evaluation need of a language model: one ``LanguageModel`` protocol.

A model's state is its own batch structure (``State``): a tensor, or a tuple of tensors, each
with a leading row dimension, row i of every tensor being the state after history i (an RNN's
layers concatenated; an n-gram's last ids, int64; a window's keys and values). Callers never
look inside a row: they make reset rows with ``start``, gather rows with ``select`` (trie
parents, best incoming arcs), write rows with ``put`` (sentence resets: ``reset``), and hand
rows back to the model. Stepping a ``start`` row by ``<s>`` starts a sentence. ``order`` is the
history length K at which the model is exact (an order-K fixed-point RNN, a K-token window, an
n-gram's n-1); None means its own recurrence over the whole history.

A model may keep ``work``, a dict of counters of the output-layer rows its scoring methods
computed (RNNLM: "softmax_rows", or "head_rows" and "tail_rows"); the rescoring methods report
how much they grew (lmrescore/rescoring/methods.py).

Methods run without dropout. ``step`` and ``logits`` keep gradients (FPP trains through them);
callers that only score wrap them in ``torch.no_grad()``.
"""

from __future__ import annotations

from typing import Callable, Protocol, Union, runtime_checkable

import torch
from torch import Tensor

# Rows per output-layer call: a block of BLOCK_ROWS x vocabulary logits (20 MB for PTB's 10k
# words) stays in cache; 4096 took 2-4x the memory and somewhat longer (bench/RESULTS.md).
BLOCK_ROWS = 512

State = Union[Tensor, tuple[Tensor, ...]]  # n states: each tensor (n, ...), on the model's device


@runtime_checkable
class LanguageModel(Protocol):
    """A next-token model over ``vocab_size`` ids whose states are ``State`` rows."""

    vocab_size: int
    order: int | None  # the history length K it is exact at; None = exact recurrence
    device: torch.device

    def start(self, n: int) -> State:
        """n reset states (before ``<s>``), on ``device``."""

    def step(self, state: State, tokens: Tensor) -> State:
        """n states after reading one token each: n states, (n,) ids (on ``device``) -> n
        states. Without gradients ``state`` may be written over (the Transformer's cache is):
        callers step rows they own (``start``, ``select``) and do not read them again."""

    def logits(self, state: State) -> Tensor:
        """n states -> (n, V) unnormalised scores; their log-softmax is the next-token
        distribution (the full distribution, for training losses)."""

    def token_log_probs(self, state: State, rows: Tensor, tokens: Tensor,
                        block_rows: int = BLOCK_ROWS) -> Tensor:
        """Exact normalised log p(tokens[q] | state row rows[q]).

        Args:
            state: n states.
            rows: (Q,) int64 row of each query (CPU).
            tokens: (Q,) int64 next token of each query (CPU).
            block_rows: at most this many rows' distributions are held at once (memory bound).
        Returns:
            (Q,) float32 log-probabilities (CPU).
        """

    def sequence_log_probs(self, inputs: Tensor, targets: Tensor, mask: Tensor,
                           starts: Tensor | None, order: int | None,
                           state: State | None = None) -> tuple[Tensor, State | None]:
        """log p(targets[b, t] | inputs[b, :t+1]) over padded sequences.

        Args:
            inputs, targets: (B, T) token ids (on ``device``).
            mask: (B, T) bool, the positions to score.
            starts: (B, T) bool, True where a sentence starts (state reset), or None.
            order: None for the exact recurrence, else the fixed-point order K.
            state: B states before position 0, or None for ``start(B)``.
        Returns:
            (B, T) float32 log-probabilities (0 outside ``mask``), and the B states after
            position T-1 (exact recurrence; None at order K).
        """


def num_rows(state: State) -> int:
    """n, the number of states."""
    return (state if isinstance(state, Tensor) else state[0]).shape[0]


def select(state: State, rows: Tensor) -> State:
    """The states at ``rows`` ((m,) int64, any device): m new rows (a copy)."""
    if isinstance(state, Tensor):
        return state.index_select(0, rows.to(state.device))
    return tuple(select(s, rows) for s in state)


def put(state: State, rows: Tensor, values: State) -> State:
    """Write ``values`` (m states) at ``rows`` ((m,) int64, any device) of ``state``, in place;
    returns ``state``."""
    if isinstance(state, Tensor):
        return state.index_copy_(0, rows.to(state.device), values)
    for s, v in zip(state, values):
        put(s, rows, v)
    return state


def reset(model: LanguageModel, state: State, rows: Tensor) -> State:
    """``state`` with ``rows`` ((m,) int64) set to the model's start state, in place."""
    return put(state, rows, model.start(rows.shape[0])) if rows.numel() else state


def log_softmax_at(layer: Callable[[Tensor], Tensor], x: Tensor, rows: Tensor,
                   cols: Tensor, block_rows: int) -> Tensor:
    """log_softmax(layer(x))[rows[q], cols[q]] for each query, ``block_rows`` rows of x per
    call; x's rows are all queried.

    Args:
        layer: (..., H) -> (..., C) scores.
        x: (n, H) inputs (on the model's device).
        rows, cols: (Q,) int64 (CPU).
    Returns:
        (Q,) float32 (CPU).
    """
    out = torch.empty(rows.shape[0], dtype=torch.float32)
    by_row = torch.argsort(rows)
    bounds = torch.searchsorted(rows[by_row], torch.arange(0, x.shape[0] + block_rows, block_rows))
    for b, c in enumerate(range(0, x.shape[0], block_rows)):
        q = by_row[bounds[b]: bounds[b + 1]]
        log_probs = torch.log_softmax(layer(x[c: c + block_rows]).float(), dim=-1)
        dev = log_probs.device
        out[q] = log_probs[(rows[q] - c).to(dev), cols[q].to(dev)].cpu()
    return out
