"""A windowed causal Transformer LM: every prediction reads exactly the last K tokens.

The model at position t encodes the window of the last K = ``order`` tokens (fewer after a
sentence start) as a sequence of its own, causally, every layer attending only inside it, with
ALiBi relative positions (Press et al. 2022: no position embeddings; head h adds
``-slope_h * distance`` to its attention scores). Its score therefore depends on exactly the
last K tokens, as an order-K fixed-point RNN's does, and it is exact on the order-K expansion.

Training and ``sequence_log_probs`` encode every scored position's window at once ((B, T) ->
(M, K) windows of the M scored positions). Rescoring steps the windows token by token down the
prefix trie: a ``State`` is the window's key/value cache, the flat tuple ``(count, top, keys_1,
values_1, ..., keys_L, values_L)`` with count (n,) the tokens read, top (n, D) the newest
position's output and each layer's keys and values (n, heads, K, head_dim), a ring: token i of a
history sits in slot i mod K, so a step writes one slot, over the position that leaves the
window, and attends to the K slots with ALiBi distances taken round the ring. Past K tokens that
is the model's recurrence over a whole history (a rolling cache, as sliding-window attention
does; ``order`` None), used by ngram-approx. The output layer is a full or adaptive softmax
(lmrescore/lm/output.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmrescore.formats.limits import MAX_ORDER
from lmrescore.lm.interface import BLOCK_ROWS, reset
from lmrescore.lm.output import check_output, make_output

State = tuple[Tensor, ...]  # count (n,), top (n, D), then per layer keys, values (n, heads, K, hd)


@dataclass
class TransformerConfig:
    """Architecture of a windowed Transformer LM.

    Attributes:
        vocab_size: output classes; set from the vocabulary when training starts.
        order: K, the window: each prediction reads the last K tokens (itself included).
        dim: model width D (also the embedding size).
        num_layers: L blocks (pre-norm self-attention + feed-forward).
        num_heads: attention heads; ``dim`` must be a multiple.
        ff_dim: feed-forward hidden units.
        dropout: on attention outputs, feed-forward outputs and embeddings (training only).
        tie_weights: share the input embedding and the output projection.
        output: "softmax" (full) or "adaptive" (head + tail clusters; lmrescore/lm/output.py).
        cutoffs: adaptive only: increasing ids where the shortlist and each tail cluster end.
        div_value: adaptive only: tail cluster i projects to ``dim // div_value**(i+1)``.
    """

    vocab_size: int = 0
    order: int = 8
    dim: int = 128
    num_layers: int = 2
    num_heads: int = 4
    ff_dim: int = 512
    dropout: float = 0.0
    tie_weights: bool = True
    output: str = "softmax"
    cutoffs: list[int] | None = None
    div_value: float = 4.0

    def __post_init__(self) -> None:
        if not isinstance(self.order, int) or not 1 <= self.order <= MAX_ORDER:
            raise ValueError(f"order must be 1..{MAX_ORDER}, got {self.order}")
        for name in ("dim", "num_layers", "num_heads", "ff_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.dim % self.num_heads:
            raise ValueError(f"dim {self.dim} is not a multiple of num_heads {self.num_heads}")
        check_output(self.output, self.cutoffs, self.div_value, self.dim, self.vocab_size)


class Block(nn.Module):
    """Pre-norm block: x + attention(norm(x)), then x + feed-forward(norm(x))."""

    def __init__(self, c: TransformerConfig) -> None:
        super().__init__()
        self.heads = c.num_heads
        self.norm1, self.norm2 = nn.LayerNorm(c.dim), nn.LayerNorm(c.dim)
        self.qkv = nn.Linear(c.dim, 3 * c.dim)
        self.proj = nn.Linear(c.dim, c.dim)
        self.ff = nn.Sequential(nn.Linear(c.dim, c.ff_dim), nn.GELU(), nn.Linear(c.ff_dim, c.dim))
        self.dropout = c.dropout

    def qkv_heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(N, T, D) -> queries, keys, values, each (N, heads, T, head_dim)."""
        return tuple(t.unflatten(-1, (self.heads, -1)).transpose(1, 2)
                     for t in self.qkv(self.norm1(x)).chunk(3, dim=-1))

    def finish(self, x: Tensor, attended: Tensor, drop: bool = False) -> Tensor:
        """x (N, T, D) plus the attention output (N, heads, T, head_dim), then feed-forward;
        dropout on both outputs only if ``drop`` (training), whatever the module's mode."""
        x = x + F.dropout(self.proj(attended.transpose(1, 2).flatten(2)), self.dropout, drop)
        return x + F.dropout(self.ff(self.norm2(x)), self.dropout, drop)


class TransformerLM(nn.Module):
    """A causal Transformer whose every prediction reads the last ``order`` tokens."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        if config.vocab_size < 1:
            raise ValueError("TransformerConfig.vocab_size is not set")
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.dim)
        nn.init.normal_(self.embedding.weight, std=0.02)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.num_layers))
        self.norm = nn.LayerNorm(config.dim)
        self.output = make_output(config.output, config.dim, config.vocab_size, config.cutoffs,
                                  config.div_value,
                                  self.embedding.weight if config.tie_weights else None)
        h = config.num_heads
        slopes = torch.tensor([2.0 ** (-8.0 * (i + 1) / h) for i in range(h)])
        self.register_buffer("slopes", slopes, persistent=False)  # (heads,)
        self.work: dict[str, int] = {}  # output-layer rows computed by the scoring methods

    @property
    def vocab_size(self) -> int:
        return self.config.vocab_size

    @property
    def order(self) -> int:
        return self.config.order

    @property
    def device(self) -> torch.device:
        return self.embedding.weight.device

    def _bias(self, distance: Tensor, allowed: Tensor) -> Tensor:
        """ALiBi scores: distance (..., Tq, Tk) >= 0, allowed (N, 1, Tq, Tk) bool -> (N, heads,
        Tq, Tk): ``-slope * distance``, -inf where not allowed."""
        bias = -self.slopes[:, None, None] * distance.to(self.slopes.dtype)
        return bias.masked_fill(~allowed, float("-inf"))

    # ---- whole windows (training, sequence_log_probs) ------------------------------------

    def windows(self, inputs: Tensor, starts: Tensor | None, positions: Tensor,
                order: int, drop: bool = False) -> Tensor:
        """Top outputs (M, D) for the windows ending at ``positions`` (M, 2) [row, t]: each
        the last ``order`` inputs up to t, none before its row's last sentence start; dropout
        only if ``drop`` (``nll`` in training mode)."""
        b, t = positions[:, 0], positions[:, 1]
        slot = torch.arange(order, device=inputs.device)
        at = t[:, None] - order + 1 + slot  # (M, order) absolute positions, oldest first
        first = torch.zeros_like(inputs)
        if starts is not None:  # the last start at or before each position
            steps = torch.arange(inputs.shape[1], device=inputs.device).expand_as(inputs)
            first = torch.where(starts, steps, 0).cummax(dim=1).values
        valid = at >= first[b, t][:, None]
        x = F.dropout(self.embedding(inputs[b[:, None], at.clamp(min=0)]),
                      self.config.dropout, drop)
        distance = slot[:, None] - slot[None, :]  # query - key
        allowed = (distance >= 0) & (valid[:, None, :] | (distance == 0))  # (M, order, order)
        bias = self._bias(distance, allowed[:, None])
        for block in self.blocks:
            q, k, v = block.qkv_heads(x)
            x = block.finish(x, F.scaled_dot_product_attention(q, k, v, attn_mask=bias), drop)
        return x[:, -1]

    def nll(self, inputs: Tensor, targets: Tensor, mask: Tensor, starts: Tensor | None = None,
            state: State | None = None) -> tuple[Tensor, None]:
        """Summed negative log-likelihood of ``targets`` (B, T) where ``mask`` (B, T), each
        from its order-K window (dropout in training mode); no state is carried (None)."""
        top = self.windows(inputs, starts, mask.nonzero(), self.order, drop=self.training)
        return self.output.nll(self.norm(top), targets[mask]), None

    # ---- the LanguageModel interface (lmrescore/lm/interface.py): no dropout --------------

    def start(self, n: int) -> State:
        """n empty windows."""
        c, w = self.config, self.embedding.weight
        cache = [w.new_zeros(n, c.num_heads, c.order, c.dim // c.num_heads)
                 for _ in range(2 * c.num_layers)]
        return torch.zeros(n, dtype=torch.int64, device=w.device), w.new_zeros(n, c.dim), *cache

    def step(self, state: State, tokens: Tensor) -> State:
        """Each window one token longer (the oldest dropped past K): n states, (n,) ids. Without
        gradients the cache is written in place (``state`` is consumed: callers step rows of their
        own, from ``start`` or ``select``); with them, into a copy."""
        count, _, *cache = state
        if torch.is_grad_enabled():
            cache = [c.clone() for c in cache]
        x = self.embedding(tokens)[:, None]  # (n, 1, D)
        at = count % self.order  # (n,) the slot of the new position
        distance = (at[:, None] - torch.arange(self.order, device=x.device)) % self.order
        count = count + 1
        bias = self._bias(distance[:, None, None], (distance < count[:, None])[:, None, None])
        slot = at[:, None, None, None].expand(-1, self.config.num_heads, 1,
                                              self.config.dim // self.config.num_heads)
        for block, keys, values in zip(self.blocks, cache[0::2], cache[1::2]):
            q, k, v = block.qkv_heads(x)
            keys.scatter_(2, slot, k)
            values.scatter_(2, slot, v)
            x = block.finish(x, F.scaled_dot_product_attention(q, keys, values, attn_mask=bias))
        return count, x[:, 0], *cache

    def logits(self, state: State) -> Tensor:
        """n states -> (n, V) output-layer scores (their log-softmax is the distribution)."""
        return self.output.scores(self.norm(state[1]))

    def token_log_probs(self, state: State, rows: Tensor, tokens: Tensor,
                        block_rows: int = BLOCK_ROWS) -> Tensor:
        """log p(tokens[q] | state row rows[q]), each distinct row through the output layer once.

        Args:
            rows, tokens: (Q,) int64 (CPU).
        Returns:
            (Q,) float32 (CPU).
        """
        if not rows.numel():
            return torch.empty(0, dtype=torch.float32)
        distinct, row = torch.unique(rows, return_inverse=True)
        top = self.norm(state[1][distinct.to(self.device)])
        return self.output.token_log_probs(top, row, tokens, block_rows, self.work)

    def sequence_log_probs(self, inputs: Tensor, targets: Tensor, mask: Tensor,
                           starts: Tensor | None, order: int | None,
                           state: State | None = None) -> tuple[Tensor, State | None]:
        """(B, T) float32 log p(targets | inputs so far) where ``mask`` (0 elsewhere).

        Order k: each from the window of its last k inputs (``state`` unused; None returned).
        None: by ``step``, from ``state`` (default ``start``), and the B final states.
        """
        out = torch.zeros(inputs.shape, dtype=torch.float32, device=inputs.device)
        if order is not None:
            top = self.windows(inputs, starts, mask.nonzero(), order)
            out[mask] = self.output.target_log_probs(self.norm(top), targets[mask], self.work)
            return out, None
        state = self.start(inputs.shape[0]) if state is None else state
        for t in range(inputs.shape[1]):
            if starts is not None:
                state = reset(self, state, starts[:, t].nonzero().squeeze(1))
            state = self.step(state, inputs[:, t])
            scored = self.output.target_log_probs(self.norm(state[1]), targets[:, t], self.work)
            out[:, t] = torch.where(mask[:, t], scored, 0.0)
        return out, state
