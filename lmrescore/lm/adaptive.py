"""Tying ``torch.nn.AdaptiveLogSoftmaxWithLoss`` to the input embedding E (V, H).

A word's output vector is derived from its input embedding, as in a tied full softmax:
- the head's shortlist rows are E's rows (its tail-cluster entries and bias stay its own);
- tail cluster i projects the hidden vector by its (d_i, H) matrix P_i, as untied, and scores
  word w by (P_i h) . (P_i E[w]): its output matrix is E's rows of the cluster times P_i^T.

Only the output matrices are replaced; the adaptive layer's forward, ``log_prob`` and the
per-cluster cost are torch's.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class TiedHead(nn.Module):
    """(..., H) -> (..., shortlist + clusters) head scores; the shortlist's weights are
    E[:shortlist]."""

    def __init__(self, embedding: nn.Parameter, shortlist: int, clusters: int) -> None:
        super().__init__()
        self.embedding = embedding  # (V, H), shared with the input embedding
        self.shortlist = shortlist
        self.cluster_weight = nn.Parameter(torch.empty(clusters, embedding.shape[1]))
        self.bias = nn.Parameter(torch.zeros(shortlist + clusters))
        nn.init.uniform_(self.cluster_weight, -0.1, 0.1)

    def forward(self, x: Tensor) -> Tensor:
        weight = torch.cat([self.embedding[: self.shortlist], self.cluster_weight])
        return F.linear(x, weight, self.bias)


class TiedTail(nn.Module):
    """(..., d) projected hidden -> (..., end - start) scores of the cluster's ids [start, end),
    with output matrix E[start:end] P^T (end - start, d)."""

    def __init__(self, embedding: nn.Parameter, projection: nn.Parameter, start: int,
                 end: int) -> None:
        super().__init__()
        self.embedding = embedding  # (V, H), shared with the input embedding
        self.projection = projection  # (d, H), shared with the tail's first layer
        self.start, self.end = start, end

    def weight(self) -> Tensor:
        """(end - start, d) output matrix."""
        return F.linear(self.embedding[self.start: self.end], self.projection)

    def forward(self, z: Tensor) -> Tensor:
        return F.linear(z, self.weight())


def fixed_tail(tail: nn.Sequential) -> Callable[[Tensor], Tensor]:
    """A tail cluster (projection, output) as a function (..., H) -> (..., cluster size) whose
    output matrix is computed once, now: for scoring many blocks of rows with the same weights."""
    if not isinstance(tail[1], TiedTail):
        return tail
    projection, weight = tail[0], tail[1].weight()
    return lambda x: F.linear(projection(x), weight)


def tie_to_embedding(output: nn.AdaptiveLogSoftmaxWithLoss, embedding: nn.Parameter) -> None:
    """Replace ``output``'s head and tail output matrices by ones derived from ``embedding``."""
    output.head = TiedHead(embedding, output.shortlist_size, output.n_clusters)
    for tail, start, end in zip(output.tail, output.cutoffs, output.cutoffs[1:]):
        tail[1] = TiedTail(embedding, tail[0].weight, start, end)
