"""Exact order-K LM scores for every arc of an expanded batch of lattices.

Every arc asks for log p(token | history of its source state): one query per token of its word
(subwords advance the history token by token), and ``</s>`` on arcs into the final state.

The state an order-K model reaches after a K-token history is what K Jacobi sweeps give at the
last position of that K-token window; K >= window length, so it is also the exact recurrence run
over the window from a zero state (tests/test_fixed_point.py). The unique histories of the whole
batch therefore form a prefix trie of depth K, and the states are computed down the trie: one
batched ``step`` per trie level (K levels, as K sweeps; for an RNN one cell call per layer),
each distinct prefix once. That is the same numbers as K sweeps over every window, with far
fewer cell steps (a sweep over N windows costs N*K steps; trie level j costs the number of
distinct j-token prefixes). Any ``LanguageModel`` exact at order K is scored exactly this way.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lmrescore.rescoring.expand import VOID, Expansion, TokenTable
from lmrescore.lattice.lattice import FINAL_LABEL
from lmrescore.lm.interface import (BLOCK_ROWS, LanguageModel, State, num_rows, reset,
                                    select)


def history_states(model: LanguageModel, histories: Tensor, bos: int) -> tuple[State, Tensor]:
    """The model's state after each distinct K-token history, computed down the prefix trie.

    Args:
        histories: (N, K) token histories, right-aligned, ``-1`` before the sentence start.
        bos: id of ``<s>``: the state before it is reset (``model.start``).
    Returns:
        U states: the order-K model's state after each of the U distinct histories, and (N,)
        the index of each history among them.
    """
    device = model.device
    histories = histories.to(device)
    num, order = histories.shape
    base = model.vocab_size + 1
    node = torch.zeros(num, dtype=torch.int64, device=device)  # trie node of each history
    state = model.start(1)
    for j in range(order):
        nodes, node = torch.unique(node * base + histories[:, j] + 1, return_inverse=True)
        parent, token = nodes // base, nodes % base - 1
        fresh = ((token == bos) | (token == VOID)).nonzero().squeeze(1)  # nothing before <s>
        state = model.step(reset(model, select(state, parent), fresh), token.clamp(min=0))
    return state, node


@torch.no_grad()
def query_log_probs(model: LanguageModel, histories: Tensor, tokens: Tensor, bos: int,
                    chunk: int = BLOCK_ROWS) -> tuple[Tensor, int]:
    """log p(tokens[q] | histories[q]) for every query, each distinct history run once.

    Args:
        histories: (Q, K) token histories (``-1`` before the sentence start).
        tokens: (Q,) next tokens.
        chunk: histories per softmax call (bounds memory: chunk x vocabulary).
    Returns:
        (Q,) float32 log-probabilities, and the number of distinct histories. This is the
        order-K model's score for an order-K model, and the order-K approximation of any other.
    """
    state, which = history_states(model, histories, bos)
    return model.token_log_probs(state, which.cpu(), tokens, chunk), num_rows(state)


def arc_log_probs(model: LanguageModel, expansion: Expansion, table: TokenTable, bos: int, eos: int,
                  chunk: int = BLOCK_ROWS) -> tuple[Tensor, int]:
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
