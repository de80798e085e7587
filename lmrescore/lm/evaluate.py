"""Perplexity of a model on a text, at the model's order K or with the exact recurrence."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from lmrescore.lm.corpus import TokenStore
from lmrescore.lm.data import Batch, SentenceBatches, StreamBatches, shard
from lmrescore.lm.interface import LanguageModel
from lmrescore.vocab import Vocab


@dataclass
class Perplexity:
    """Summed negative log-likelihood over a text.

    Attributes:
        nll: total nats.
        tokens: predicted tokens (units + one ``</s>`` per sentence).
        words: words + one ``</s>`` per sentence: the per-word normaliser.
    """

    nll: float
    tokens: int
    words: int

    @property
    def ppl(self) -> float:
        """Per-word perplexity (equals per-token for word models)."""
        return math.exp(self.nll / self.words)


@torch.no_grad()
def perplexity(model: LanguageModel, corpus: TokenStore, vocab: Vocab, batching: str,
               batch_size: int, bptt_len: int = 35, order: int | None | str = "model",
               rank: int = 0, world: int = 1) -> Perplexity:
    """Evaluate ``model`` (without dropout) on a tokenised text.

    Args:
        corpus: the text's token ids (lmrescore/lm/corpus.py).
        batching: "sentence" (fresh state per sentence) or "stream" (continuous text).
        order: "model" (the model's order), None (exact recurrence) or an order K.
        rank, world: score only this process's rows of each batch (``nll`` is then this
            process's part; ``tokens`` and ``words`` are always the whole text's).
    """
    k = model.order if order == "model" else order
    device = model.device
    if batching == "sentence":
        batches: Sequence[Batch] = SentenceBatches(corpus, vocab, batch_size)
    else:
        batches = StreamBatches(corpus, vocab, batch_size, bptt_len,
                                context=0 if k is None else k - 1)
    nll, tokens, state = 0.0, 0, None
    for batch in batches:
        tokens += batch.num_tokens
        part = shard(batch, rank, world)
        if part is None:
            continue
        log_probs, final = model.sequence_log_probs(
            part.inputs.to(device), part.targets.to(device), part.mask.to(device), None, k,
            state if part.carry else None)
        nll -= float(log_probs.sum(dtype=torch.float64))
        state = final
    return Perplexity(nll, tokens, corpus.num_words + len(corpus))
