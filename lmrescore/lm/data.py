"""Corpora -> token ids -> training batches (sentence-level, or one continuous stream).

Text is read line by line (``iter_sentences``: plain, or Kaldi ``text`` whose first field is the
utterance id); its ids live in a ``TokenStore`` (lmrescore/lm/corpus.py, memory-mapped), and
batches are made from the store one at a time when asked for, so memory is flat in corpus size.

Sentence mode (what ASR rescoring needs): each line is an utterance, inputs ``<s> w1 .. wn``,
targets ``w1 .. wn </s>``, the state starts fresh. Stream mode (the classic setup behind
published PTB/WikiText perplexities): all lines joined, each followed by ``</s>``, cut into
``batch_size`` parallel streams and chunks of ``bptt_len``; the state is carried across chunks,
or, for an order-K model, each chunk is preceded by K-1 context positions that are not scored.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, overload

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from lmrescore.errors import InputError
from lmrescore.text_input import read_lines
from lmrescore.vocab import Vocab

if TYPE_CHECKING:
    from lmrescore.lm.corpus import TokenStore

CORPUS_FILES = {
    "ptb": "ptb.{split}.txt",
    "wikitext-2": "wiki.{split}.tokens",
}
TEXT_FORMATS = ("plain", "kaldi")  # kaldi: "utt-id w1 w2 ...", the id is not a word
MAX_SENTENCE_TOKENS = 100_000  # the default of data.max_sentence_tokens
BYTES_PER_TOKEN = 64  # a line over this many bytes per allowed token is refused unsplit


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


def iter_sentences(path: str | Path, text_format: str = "plain", desc: str | None = None,
                   max_tokens: int = MAX_SENTENCE_TOKENS) -> Iterator[list[str]]:
    """Whitespace-tokenised non-empty lines of a UTF-8 text file, streamed.

    Args:
        text_format: "plain", or "kaldi" (a Kaldi ``text`` file: the first field of each line,
            the utterance id, is dropped).
        desc: show a progress bar (bytes read) with this label.
        max_tokens: ``data.max_sentence_tokens``: a line of more words is an error, and so is
            a line of more than ``BYTES_PER_TOKEN * max_tokens`` bytes, found before it is split
            (reading at most that much of it).
    Raises:
        InputError: naming file:line, for a line that is not UTF-8 or is over a cap.
    """
    path = Path(path)
    skip = 1 if text_format == "kaldi" else 0
    max_bytes = BYTES_PER_TOKEN * max_tokens
    with open(path, "rb") as f, tqdm(total=path.stat().st_size, desc=desc, unit="B",
                                     unit_scale=True, mininterval=5, leave=False,
                                     disable=desc is None) as bar:
        for lineno, raw in enumerate(iter(lambda: f.readline(max_bytes + 1), b""), 1):
            if lineno % 10000 == 0:
                bar.update(f.tell() - bar.n)
            if len(raw.rstrip(b"\n")) > max_bytes:
                raise InputError(f"{path}:{lineno}: a line longer than {max_bytes} bytes "
                                 f"({BYTES_PER_TOKEN} per token of data.max_sentence_tokens="
                                 f"{max_tokens})")
            try:
                words = raw.decode("utf-8").split()[skip:]
            except UnicodeDecodeError as e:
                raise InputError(f"{path}:{lineno}: not UTF-8 (byte {raw[e.start]:#04x} at "
                                 f"column {e.start + 1})") from None
            if len(words) > max_tokens:
                raise InputError(f"{path}:{lineno}: {len(words)} tokens, more than "
                                 f"data.max_sentence_tokens={max_tokens}")
            if words:
                yield words


def kaldi_text_ids(path: str | Path, max_lines: int = 1000) -> list[str] | None:
    """The utterance ids, if ``path`` (read as plain text) looks like a Kaldi ``text`` file.

    It does when its first ``max_lines`` non-empty lines (at least 2) all start with a distinct
    field that has a digit and is never a word elsewhere in those lines (``utt-001 the cat``);
    plain text repeats its first words, or has them among the others.

    Args:
        max_lines: lines looked at (the start of the file only: a corpus is not read twice).
    Returns:
        those lines' first fields, or None (not a Kaldi text, or unreadable: the reading that
        follows says why).
    """
    try:
        lines = list(itertools.islice(iter_sentences(path), max_lines))
    except (OSError, InputError):
        return None
    firsts = [s[0] for s in lines]
    if len(firsts) < 2 or len(set(firsts)) < len(firsts):
        return None
    if not all(any(c.isdigit() for c in f) for f in firsts):
        return None
    others = {w for s in lines for w in s[1:]}
    return None if others.intersection(firsts) else firsts


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


class LazyBatches(Sequence[Batch]):
    """Batches made when asked for: ``len()``, ``[i]`` and ``[a:b]`` over ``batch(i)``."""

    def batch(self, i: int) -> Batch:
        raise NotImplementedError

    @overload
    def __getitem__(self, i: int) -> Batch: ...

    @overload
    def __getitem__(self, i: slice) -> list[Batch]: ...

    def __getitem__(self, i: int | slice) -> Batch | list[Batch]:
        if isinstance(i, slice):
            return [self.batch(j) for j in range(*i.indices(len(self)))]
        return self.batch(i)


class SentenceBatches(LazyBatches):
    """Sentences of similar length padded into batches (rows ``<s> w1 .. wn`` -> ``w1 .. wn
    </s>``), made one at a time; the batch order is shuffled if a seed is given."""

    def __init__(self, store: TokenStore, vocab: Vocab, batch_size: int,
                 shuffle_seed: int | None = None) -> None:
        self.store, self.bos, self.eos, self.batch_size = store, vocab.bos, vocab.eos, batch_size
        n = -(-len(store) // batch_size)
        self.order = (torch.randperm(n, generator=torch.Generator().manual_seed(shuffle_seed))
                      if shuffle_seed is not None else torch.arange(n))

    def __len__(self) -> int:
        return len(self.order)

    def batch(self, i: int) -> Batch:
        first = int(self.order[i]) * self.batch_size
        rows = [self.store.sentence(j)
                for j in self.store.by_length[first: first + self.batch_size]]
        length = max(len(r) for r in rows) + 1
        inputs = torch.zeros(len(rows), length, dtype=torch.long)
        targets = torch.zeros_like(inputs)
        mask = torch.zeros(len(rows), length, dtype=torch.bool)
        for b, r in enumerate(rows):
            inputs[b, 0] = self.bos
            inputs[b, 1 : len(r) + 1] = r
            targets[b, : len(r)] = r
            targets[b, len(r)] = self.eos
            mask[b, : len(r) + 1] = True
        return Batch(inputs, targets, mask)


class StreamBatches(LazyBatches):
    """Chunks of ``batch_size`` parallel streams; ``context`` > 0 prepends unscored positions.

    The stream is ``</s>`` (as if a sentence had just ended) then every sentence followed by
    ``</s>``, cut into ``batch_size`` equal rows. With ``context == 0`` batches carry state
    (truncated BPTT / exact evaluation). With ``context = K - 1`` every scored position sees its
    full K-token window inside the chunk.
    """

    def __init__(self, store: TokenStore, vocab: Vocab, batch_size: int, bptt_len: int,
                 context: int = 0) -> None:
        self.per_stream = len(store.tokens) // batch_size
        if self.per_stream < 1:
            raise InputError(f"corpus too small for {batch_size} streams")
        self.store, self.eos, self.batch_size = store, vocab.eos, batch_size
        self.bptt_len, self.context = bptt_len, context

    def __len__(self) -> int:
        return -(-self.per_stream // self.bptt_len)

    def _span(self, start: int, end: int) -> np.ndarray:
        """Stream positions [start, end): position 0 is the leading ``</s>``, p is token p-1."""
        tokens = self.store.tokens
        if start > 0:
            return tokens[start - 1: end - 1]
        return np.concatenate([np.array([self.eos], dtype=tokens.dtype), tokens[: end - 1]])

    def batch(self, i: int) -> Batch:
        if not 0 <= i < len(self):
            raise IndexError(i)
        start = i * self.bptt_len
        end = min(start + self.bptt_len, self.per_stream)
        first = max(0, start - self.context)
        rows = [self._span(b * self.per_stream + first, b * self.per_stream + end + 1)
                for b in range(self.batch_size)]
        data = torch.from_numpy(np.stack(rows).astype(np.int64))
        mask = torch.zeros(self.batch_size, end - first, dtype=torch.bool)
        mask[:, start - first :] = True
        return Batch(data[:, :-1], data[:, 1:], mask, carry=self.context == 0)


def shard(batch: Batch, rank: int, world: int) -> Batch | None:
    """The rows of ``batch`` that process ``rank`` of ``world`` trains or scores (an even
    split, in order), or None when it has none."""
    if world == 1:
        return batch
    rows = batch.inputs.shape[0]
    lo, hi = rows * rank // world, rows * (rank + 1) // world
    if lo == hi:
        return None
    return Batch(batch.inputs[lo:hi], batch.targets[lo:hi], batch.mask[lo:hi], batch.carry)
