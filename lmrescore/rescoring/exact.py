"""Exact order-K LM scores for every arc of an expanded batch of lattices.

Every arc asks for log p(token | history of its source state): one query per token of its word
(subwords advance the history token by token), and ``</s>`` on arcs into the final state.

The state an order-K model reaches after a K-token history is what K Jacobi sweeps give at the
last position of that K-token window; K >= window length, so it is also the exact recurrence run
over the window from a zero state (tests/test_fixed_point.py). The unique histories of the whole
batch therefore form a prefix trie of depth K, and the states are computed down the trie: one
batched cell call per trie level and layer (K levels, as K sweeps), each distinct prefix once.
That is the same numbers as K sweeps over every window, with far fewer cell steps (a sweep over
N windows costs N*K steps; trie level j costs the number of distinct j-token prefixes).
"""

from __future__ import annotations

import torch
from torch import Tensor

from lmrescore.rescoring.expand import VOID, Expansion, TokenTable
from lmrescore.lattice.lattice import FINAL_LABEL
from lmrescore.lm.model import RNNLM

# Rows per output-layer call: a block of BLOCK_ROWS x vocabulary logits (20 MB for PTB's 10k
# words) stays in cache; 4096 took 2-4x the memory and somewhat longer (bench/RESULTS.md).
BLOCK_ROWS = 512


def history_states(model: RNNLM, histories: Tensor, bos: int) -> tuple[Tensor, Tensor]:
    """Top-layer output after each distinct K-token history, computed down the prefix trie.

    Args:
        histories: (N, K) token histories, right-aligned, ``-1`` before the sentence start.
        bos: id of ``<s>``: the state before it is reset to zero.
    Returns:
        (U, H) the order-K model's output after each of the U distinct histories, and (N,) the
        index of each history among them.
    """
    device = next(model.parameters()).device
    histories = histories.to(device)
    num, order = histories.shape
    base = model.config.vocab_size + 1
    node = torch.zeros(num, dtype=torch.int64, device=device)  # trie node of each history
    dtype = model.embedding.weight.dtype
    states = [torch.zeros(1, c.state_size, device=device, dtype=dtype) for c in model.cells]
    below = states[-1]
    for j in range(order):
        nodes, node = torch.unique(node * base + histories[:, j] + 1, return_inverse=True)
        parent, token = nodes // base, nodes % base - 1
        keep = (token != bos) & (token != VOID)  # reset before <s>; nothing before the start
        below = model.embedding(token.clamp(min=0))
        for layer, cell in enumerate(model.cells):
            prev = states[layer][parent] * keep[:, None]
            states[layer] = cell.step(prev, cell.input_proj(below))
            below = cell.output(states[layer])
    return below, node


def token_log_probs(model: RNNLM, top: Tensor, rows: Tensor, tokens: Tensor,
                    chunk: int = BLOCK_ROWS) -> Tensor:
    """log p(tokens[q] | top[rows[q]]): one softmax per row of ``top``, in chunks of rows.

    Args:
        top: (n, H) top-layer outputs (on the model's device).
        rows: (Q,) int64 row of each query (CPU).
        tokens: (Q,) int64 next token of each query (CPU).
    Returns:
        (Q,) float32 log-probabilities (CPU).
    """
    out = torch.empty(rows.shape[0], dtype=torch.float32)
    if not rows.numel():
        return out
    by_row = torch.argsort(rows)
    bounds = torch.searchsorted(rows[by_row], torch.arange(0, top.shape[0] + chunk, chunk))
    for c in range(0, top.shape[0], chunk):
        q = by_row[bounds[c // chunk]: bounds[c // chunk + 1]]
        if not q.numel():
            continue
        log_probs = torch.log_softmax(model.output(top[c: c + chunk]).float(), dim=-1)
        dev = log_probs.device
        out[q] = log_probs[(rows[q] - c).to(dev), tokens[q].to(dev)].cpu()
    return out


@torch.no_grad()
def query_log_probs(model: RNNLM, histories: Tensor, tokens: Tensor, bos: int,
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
    top, which = history_states(model, histories, bos)
    return token_log_probs(model, top, which.cpu(), tokens, chunk), top.shape[0]


def arc_log_probs(model: RNNLM, expansion: Expansion, table: TokenTable, bos: int, eos: int,
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
