"""Output layers shared by the model kinds: top outputs (..., H) -> next-token log-probabilities.

A full softmax (``SoftmaxOutput``: one V-way softmax per row), or an adaptive softmax (Grave et
al. 2017, ``AdaptiveOutput`` over ``torch.nn.AdaptiveLogSoftmaxWithLoss``): a head over the
``cutoffs[0]`` most frequent ids plus one entry per tail cluster, and per cluster a softmax of
reduced dimension. Both are exactly normalised; the adaptive one lets a query for a token pay
the head and only its own cluster. Ids must be frequency-ranked for that to pay: ``Vocab.build``
ranks words by falling count (after the four specials), and sentencepiece ranks pieces by their
unigram score. Either may be tied to the input embedding (adaptive: lmrescore/lm/adaptive.py).

Both are the torch module they extend (same parameter names in a checkpoint) plus the three
calls a kind needs: ``nll`` (training), ``target_log_probs`` (teacher-forced scoring) and
``token_log_probs`` (rescoring: queried tokens of distinct rows). The last two add the rows they
compute to a ``work`` dict: "softmax_rows", or "head_rows" and "tail_rows" (one per (row, tail
cluster) pair).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmrescore.lm.adaptive import fixed_tail, tie_to_embedding
from lmrescore.lm.interface import log_softmax_at

OUTPUTS = ("softmax", "adaptive")


def check_output(output: str, cutoffs: list[int] | None, div_value: float, dim: int,
                 vocab_size: int) -> None:
    """Raise ValueError unless (output, cutoffs, div_value) make an output layer of width ``dim``
    over ``vocab_size`` ids (0: not known yet)."""
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {', '.join(OUTPUTS)}, got {output!r}")
    if output == "softmax":
        if cutoffs is not None:
            raise ValueError("cutoffs are for output 'adaptive'; output is 'softmax'")
        return
    c = cutoffs
    if not c or any(not isinstance(x, int) for x in c) or c != sorted(set(c)) or c[0] < 1:
        raise ValueError(f"output 'adaptive' needs cutoffs: increasing ids >= 1, e.g. "
                         f"[2000, 10000], got {c!r}")
    if vocab_size and c[-1] >= vocab_size:
        raise ValueError(f"cutoffs {c} must be below vocab_size {vocab_size}")
    if div_value <= 0 or dim // div_value ** len(c) < 1:
        raise ValueError(f"div_value {div_value} leaves the last of {len(c)} tail "
                         f"clusters of width {dim} no dimension")


def _count(work: dict[str, int], **rows: int) -> None:
    for key, n in rows.items():
        work[key] = work.get(key, 0) + n


class SoftmaxOutput(nn.Linear):
    """(..., H) -> (..., V) logits; tied: its weight is the input embedding's."""

    def __init__(self, dim: int, vocab_size: int, embedding: nn.Parameter | None) -> None:
        super().__init__(dim, vocab_size)
        nn.init.zeros_(self.bias)
        if embedding is not None:
            self.weight = embedding
        else:
            nn.init.uniform_(self.weight, -0.1, 0.1)

    def scores(self, top: Tensor) -> Tensor:
        """(..., H) -> (..., V) logits (their log-softmax is the distribution)."""
        return self(top)

    def nll(self, top: Tensor, targets: Tensor) -> Tensor:
        """Summed -log p(targets (M,) | top (M, H))."""
        return F.cross_entropy(self(top), targets, reduction="sum")

    def target_log_probs(self, top: Tensor, targets: Tensor, work: dict[str, int]) -> Tensor:
        """(M,) float32 log p(targets (M,) | top (M, H))."""
        _count(work, softmax_rows=targets.shape[0])
        log_probs = torch.log_softmax(self(top).float(), dim=-1)
        return log_probs.gather(1, targets[:, None]).squeeze(1)

    def token_log_probs(self, top: Tensor, row: Tensor, tokens: Tensor, block_rows: int,
                        work: dict[str, int]) -> Tensor:
        """(Q,) float32 log p(tokens[q] | top[row[q]]): top (n, H), every row queried; row and
        tokens (Q,) int64 on the CPU. One V-way softmax per row, ``block_rows`` rows a call."""
        _count(work, softmax_rows=top.shape[0])
        return log_softmax_at(self, top, row, tokens, block_rows)


class AdaptiveOutput(nn.AdaptiveLogSoftmaxWithLoss):
    """(..., H) -> adaptive-softmax log-probabilities; tied: lmrescore/lm/adaptive.py."""

    def __init__(self, dim: int, vocab_size: int, cutoffs: list[int], div_value: float,
                 embedding: nn.Parameter | None) -> None:
        super().__init__(dim, vocab_size, cutoffs, div_value, head_bias=True)
        if embedding is not None:
            tie_to_embedding(self, embedding)
        else:
            nn.init.zeros_(self.head.bias)

    def scores(self, top: Tensor) -> Tensor:
        """(..., H) -> (..., V) log-probabilities (already normalised)."""
        return self.log_prob(top.reshape(-1, top.shape[-1])).reshape(*top.shape[:-1], -1)

    def nll(self, top: Tensor, targets: Tensor) -> Tensor:
        """Summed -log p(targets (M,) | top (M, H)); a tail only for the rows that ask."""
        return -self(top, targets).output.sum()

    def target_log_probs(self, top: Tensor, targets: Tensor, work: dict[str, int]) -> Tensor:
        """(M,) float32 log p(targets (M,) | top (M, H))."""
        _count(work, head_rows=targets.shape[0],
               tail_rows=int((targets >= self.shortlist_size).sum()))
        return self(top, targets).output.float()

    def token_log_probs(self, top: Tensor, row: Tensor, tokens: Tensor, block_rows: int,
                        work: dict[str, int]) -> Tensor:
        """(Q,) float32 log p(tokens[q] | top[row[q]]), as ``SoftmaxOutput.token_log_probs``:
        the head once per row, and tail cluster i once per row that some query asks a token of
        cluster i for, in blocks of no more scores than a block of head rows."""
        _count(work, head_rows=top.shape[0])
        cutoffs = self.cutoffs  # the shortlist's end, each cluster's end (the last is V)
        cluster = torch.bucketize(tokens, torch.tensor(cutoffs[:-1]), right=True)  # 0: head
        head_col = torch.where(cluster == 0, tokens, self.shortlist_size + cluster - 1)
        log_probs = log_softmax_at(self.head, top, row, head_col, block_rows)
        for i, tail in enumerate(self.tail):
            q = (cluster == i + 1).nonzero().squeeze(1)
            if not q.numel():
                continue
            pairs, pair = torch.unique(row[q], return_inverse=True)
            _count(work, tail_rows=pairs.shape[0])
            width = cutoffs[i + 1] - cutoffs[i]  # a call holds <= block_rows x head_size scores
            log_probs[q] += log_softmax_at(fixed_tail(tail), top[pairs.to(top.device)], pair,
                                           tokens[q] - cutoffs[i],
                                           max(1, block_rows * self.head_size // width))
        return log_probs


def make_output(output: str, dim: int, vocab_size: int, cutoffs: list[int] | None,
                div_value: float, embedding: nn.Parameter | None,
                ) -> SoftmaxOutput | AdaptiveOutput:
    """The output layer ``output`` ("softmax" or "adaptive"), tied to ``embedding`` if given."""
    if output == "adaptive":
        return AdaptiveOutput(dim, vocab_size, cutoffs, div_value, embedding)
    return SoftmaxOutput(dim, vocab_size, embedding)
