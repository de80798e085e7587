"""A windowed causal Transformer LM: every prediction reads exactly the last K tokens.

The model at position t encodes the window of the last K = ``order`` tokens (fewer after a
sentence start) as a sequence of its own, causally, every layer attending only inside it, with
ALiBi relative positions (Press et al. 2022: no position embeddings; head h adds
``-slope_h * distance`` to its attention scores). Its score therefore depends on exactly the
last K tokens, as an order-K fixed-point RNN's does, and it is exact on the order-K expansion.

Training and ``sequence_log_probs`` encode every scored position's window at once ((B, T) ->
(M, K) windows of the M scored positions). Rescoring steps the windows token by token down the
prefix trie: a ``State`` is the window's key/value cache, ``(kv, length, top)`` with kv
(n, L, 2, heads, K, head_dim) right-aligned (the newest position last), length (n,) the valid
positions and top (n, D) the newest position's output. Stepping past K positions drops the
oldest one from every layer's cache (a rolling cache, as sliding-window attention does): that
is the model's recurrence over a whole history (``order`` None), used by ngram-approx; at
order K it is never reached.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmrescore.formats.limits import MAX_ORDER
from lmrescore.lm.interface import BLOCK_ROWS, log_softmax_at, reset

State = tuple[Tensor, Tensor, Tensor]  # kv (n, L, 2, heads, K, head_dim), length (n,), top (n, D)


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
    """

    vocab_size: int = 0
    order: int = 8
    dim: int = 128
    num_layers: int = 2
    num_heads: int = 4
    ff_dim: int = 512
    dropout: float = 0.0
    tie_weights: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.order, int) or not 1 <= self.order <= MAX_ORDER:
            raise ValueError(f"order must be 1..{MAX_ORDER}, got {self.order}")
        for name in ("dim", "num_layers", "num_heads", "ff_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.dim % self.num_heads:
            raise ValueError(f"dim {self.dim} is not a multiple of num_heads {self.num_heads}")


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
        self.output = nn.Linear(config.dim, config.vocab_size)
        nn.init.zeros_(self.output.bias)
        if config.tie_weights:
            self.output.weight = self.embedding.weight
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
        return F.cross_entropy(self.output(self.norm(top)), targets[mask], reduction="sum"), None

    # ---- the LanguageModel interface (lmrescore/lm/interface.py): no dropout --------------

    def start(self, n: int) -> State:
        """n empty windows."""
        c, w = self.config, self.embedding.weight
        kv = w.new_zeros(n, c.num_layers, 2, c.num_heads, c.order, c.dim // c.num_heads)
        return kv, torch.zeros(n, dtype=torch.int64, device=w.device), w.new_zeros(n, c.dim)

    def step(self, state: State, tokens: Tensor) -> State:
        """Each window one token longer (the oldest dropped past K): n states, (n,) ids."""
        kv, length, _ = state
        x = self.embedding(tokens)[:, None]  # (n, 1, D)
        length = (length + 1).clamp(max=self.order)
        slot = torch.arange(self.order, device=x.device)
        valid = slot >= self.order - length[:, None]  # (n, K), right-aligned
        bias = self._bias((self.order - 1 - slot)[None, :], valid[:, None, None, :])
        new = []
        for layer, block in enumerate(self.blocks):
            q, k, v = block.qkv_heads(x)
            keys = torch.cat([kv[:, layer, 0, :, 1:], k], dim=2)
            values = torch.cat([kv[:, layer, 1, :, 1:], v], dim=2)
            x = block.finish(x, F.scaled_dot_product_attention(q, keys, values, attn_mask=bias))
            new.append(torch.stack([keys, values], dim=1))
        return torch.stack(new, dim=1), length, x[:, 0]

    def logits(self, state: State) -> Tensor:
        """n states -> (n, V) output-layer scores."""
        return self.output(self.norm(state[2]))

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
        top = self.norm(state[2][distinct.to(self.device)])
        self.work["softmax_rows"] = self.work.get("softmax_rows", 0) + distinct.shape[0]
        return log_softmax_at(self.output, top, row, tokens, block_rows)

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
            log_probs = torch.log_softmax(self.output(self.norm(top)).float(), dim=-1)
            out[mask] = log_probs.gather(1, targets[mask][:, None]).squeeze(1)
            return out, None
        state = self.start(inputs.shape[0]) if state is None else state
        for t in range(inputs.shape[1]):
            if starts is not None:
                state = reset(self, state, starts[:, t].nonzero().squeeze(1))
            state = self.step(state, inputs[:, t])
            log_probs = torch.log_softmax(self.logits(state).float(), dim=-1)
            out[:, t] = torch.where(mask[:, t], log_probs.gather(1, targets[:, t, None])[:, 0], 0.0)
        return out, state
