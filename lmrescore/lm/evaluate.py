"""Perplexity of a model on a text, at the model's order K or with the exact recurrence."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from lmrescore.lm.data import sentence_batches, stream_batches
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
def perplexity(model: LanguageModel, sentences: Sequence[Tensor], vocab: Vocab, batching: str,
               batch_size: int, bptt_len: int = 35, order: int | None | str = "model",
               num_words: int | None = None) -> Perplexity:
    """Evaluate ``model`` (without dropout) on encoded sentences.

    Args:
        sentences: token ids per sentence, without markers.
        batching: "sentence" (fresh state per sentence) or "stream" (continuous text).
        order: "model" (the model's order), None (exact recurrence) or an order K.
        num_words: words in the text when the tokens are subwords (default: token count).
    """
    k = model.order if order == "model" else order
    device = model.device
    if batching == "sentence":
        batches = sentence_batches(sentences, vocab, batch_size)
    else:
        batches = stream_batches(sentences, vocab, batch_size, bptt_len,
                                 context=0 if k is None else k - 1)
    nll, tokens, state = 0.0, 0, None
    for batch in batches:
        log_probs, final = model.sequence_log_probs(
            batch.inputs.to(device), batch.targets.to(device), batch.mask.to(device), None, k,
            state if batch.carry else None)
        nll -= float(log_probs.sum(dtype=torch.float64))
        tokens += batch.num_tokens
        state = final
    words = tokens if num_words is None else num_words + len(sentences)
    return Perplexity(nll, tokens, words)
