"""Exact order-K LM scores for every arc of an expanded batch of lattices.

Every arc asks for log p(token | history of its source state): one query per token of its word
(subwords advance the history token by token), and ``</s>`` on arcs into the final state. The
unique histories of the whole batch run through the model together: each is a K-token window
(right-aligned, reset at ``<s>``). Only its last position is needed, and after K Jacobi sweeps
that position equals the recurrence run sequentially over the window from a zero state, so the
window is run sequentially: K batched cell calls per layer as with K sweeps, but each over one
position instead of K (K times less work). Histories go in chunks to bound memory.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lmrescore.expand import Expansion, TokenTable
from lmrescore.lattice import FINAL_LABEL
from lmrescore.model import RNNLM


def history_inputs(histories: Tensor, bos: int) -> tuple[Tensor, Tensor]:
    """Model inputs (N, K) and sentence-start flags (N, K) for K-token histories."""
    return histories.clamp(min=0), histories == bos


@torch.no_grad()
def query_log_probs(model: RNNLM, histories: Tensor, tokens: Tensor, bos: int,
                    chunk: int = 4096) -> tuple[Tensor, int]:
    """log p(tokens[q] | histories[q]) for every query, each unique history run once.

    Args:
        histories: (Q, K) token histories (``-1`` before the sentence start).
        tokens: (Q,) next tokens.
        chunk: histories per model call.
    Returns:
        (Q,) float32 log-probabilities, and the number of unique histories. K sweeps over a K-token window solve it exactly, so
        this is the order-K model's score for an order-K model, and the order-K approximation
        of any other model.
    """
    device = next(model.parameters()).device
    unique, which = torch.unique(histories, dim=0, return_inverse=True)
    by_history = torch.argsort(which)
    bounds = torch.searchsorted(which[by_history],
                                torch.arange(0, unique.shape[0] + chunk, chunk))
    out = torch.empty(tokens.shape[0], dtype=torch.float32)
    for c in range(0, unique.shape[0], chunk):
        inputs, starts = history_inputs(unique[c : c + chunk], bos)
        # order K over a K-token window == the exact recurrence over it (see the docstring)
        top, _ = model.hidden(inputs.to(device), starts.to(device), order=None)
        log_probs = torch.log_softmax(model.output(top[:, -1]).float(), dim=-1)
        q = by_history[bounds[c // chunk] : bounds[c // chunk + 1]]
        out[q] = log_probs[(which[q] - c).to(device), tokens[q].to(device)].cpu()
    return out, unique.shape[0]


def arc_log_probs(model: RNNLM, expansion: Expansion, table: TokenTable, bos: int, eos: int,
                  chunk: int = 4096) -> tuple[Tensor, int]:
    """(A',) LM log-probability of each expanded arc (0 on epsilon arcs); unique histories.

    A word arc scores the sum over its tokens; an arc into the final state scores ``</s>``.
    """
    lat = expansion.lattice
    labels = lat.label
    history = expansion.history[lat.src]
    arc_ids, hists, toks = [], [], []
    final = (labels == FINAL_LABEL).nonzero().squeeze(1)
    arc_ids.append(final)
    hists.append(history[final])
    toks.append(torch.full_like(final, eos))
    words = (labels > 0).nonzero().squeeze(1)
    h = history[words]
    for j in range(table.max_len):
        tok = table.token(labels[words], j)
        has = tok >= 0
        arc_ids.append(words[has])
        hists.append(h[has])
        toks.append(tok[has])
        h = h.clone()
        h[has] = torch.cat([h[has, 1:], tok[has, None]], dim=1)
    log_probs, histories = query_log_probs(model, torch.cat(hists), torch.cat(toks), bos, chunk)
    return torch.zeros(lat.num_arcs).index_add_(0, torch.cat(arc_ids), log_probs), histories
