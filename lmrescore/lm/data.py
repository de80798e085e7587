"""Corpora -> token ids -> training batches (sentence-level, or one continuous stream).

Sentence mode (what ASR rescoring needs): each line is an utterance, inputs ``<s> w1 .. wn``,
targets ``w1 .. wn </s>``, the state starts fresh. Stream mode (the classic setup behind
published PTB/WikiText perplexities): all lines joined, each followed by ``</s>``, cut into
``batch_size`` parallel streams and chunks of ``bptt_len``; the state is carried across chunks,
or, for an order-K model, each chunk is preceded by K-1 context positions that are not scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from lmrescore.errors import InputError
from lmrescore.text_input import read_lines
from lmrescore.vocab import Vocab

CORPUS_FILES = {
    "ptb": "ptb.{split}.txt",
    "wikitext-2": "wiki.{split}.tokens",
}


def corpus_path(corpus_dir: str | Path, corpus: str, split: str) -> Path:
    """Path of ``split`` (train/valid/test) of a known corpus inside ``corpus_dir``."""
    if corpus not in CORPUS_FILES:
        raise InputError(f"unknown corpus {corpus!r}; known: {', '.join(CORPUS_FILES)}")
    return Path(corpus_dir) / CORPUS_FILES[corpus].format(split=split)


def read_sentences(path: str | Path) -> list[list[str]]:
    """Whitespace-tokenised non-empty lines of a UTF-8 text file.

    Raises:
        InputError: a missing or empty file, or a line that is not UTF-8 (file:line).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such corpus file")
    sentences = [s for s in (line.split() for _, line in read_lines(path)) if s]
    if not sentences:
        raise InputError(f"{path}: corpus file is empty")
    return sentences


def encode(sentences: Sequence[Sequence[str]], vocab: Vocab) -> list[Tensor]:
    """Each sentence as an int64 tensor of ids (unknown words -> ``<unk>``), no markers."""
    return [torch.tensor(vocab.encode(s), dtype=torch.long) for s in sentences]


@dataclass
class Batch:
    """One training or evaluation batch.

    Attributes:
        inputs, targets: (B, T) token ids.
        mask: (B, T) bool, positions whose target is scored.
        carry: the state continues from the previous batch (stream mode, exact recurrence).
    """

    inputs: Tensor
    targets: Tensor
    mask: Tensor
    carry: bool = False

    @property
    def num_tokens(self) -> int:
        return int(self.mask.sum())


def sentence_batches(sentences: Sequence[Tensor], vocab: Vocab, batch_size: int,
                     shuffle_seed: int | None = None) -> list[Batch]:
    """Pad sentences of similar length into batches; shuffle batch order if a seed is given."""
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    batches = []
    for first in range(0, len(order), batch_size):
        rows = [sentences[i] for i in order[first : first + batch_size]]
        length = max(len(r) for r in rows) + 1
        inputs = torch.zeros(len(rows), length, dtype=torch.long)
        targets = torch.zeros_like(inputs)
        mask = torch.zeros(len(rows), length, dtype=torch.bool)
        for b, r in enumerate(rows):
            inputs[b, 0] = vocab.bos
            inputs[b, 1 : len(r) + 1] = r
            targets[b, : len(r)] = r
            targets[b, len(r)] = vocab.eos
            mask[b, : len(r) + 1] = True
        batches.append(Batch(inputs, targets, mask))
    if shuffle_seed is not None:
        perm = torch.randperm(len(batches), generator=torch.Generator().manual_seed(shuffle_seed))
        batches = [batches[i] for i in perm]
    return batches


def stream_batches(sentences: Sequence[Tensor], vocab: Vocab, batch_size: int, bptt_len: int,
                   context: int = 0) -> list[Batch]:
    """Chunks of ``batch_size`` parallel streams; ``context`` > 0 prepends unscored positions.

    With ``context == 0`` batches carry state (truncated BPTT / exact evaluation). With
    ``context = K - 1`` every scored position sees its full K-token window inside the chunk.
    """
    eos = torch.tensor([vocab.eos])
    data = torch.cat([torch.cat([s, eos]) for s in sentences])
    data = torch.cat([eos, data])  # the stream starts as if a sentence had just ended
    per_stream = (len(data) - 1) // batch_size
    if per_stream < 1:
        raise InputError(f"corpus too small for {batch_size} streams")
    streams = data[: per_stream * batch_size + 1]
    inputs_all = streams[:-1].view(batch_size, per_stream)
    targets_all = streams[1:].view(batch_size, per_stream)
    batches = []
    for start in range(0, per_stream, bptt_len):
        end = min(start + bptt_len, per_stream)
        first = max(0, start - context)
        mask = torch.zeros(batch_size, end - first, dtype=torch.bool)
        mask[:, start - first :] = True
        batches.append(Batch(inputs_all[:, first:end], targets_all[:, first:end], mask,
                             carry=context == 0))
    return batches

