"""Modelling units: words, or sentencepiece subwords (a word = the sum of its pieces)."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor

from lmrescore.atomic import atomic_save
from lmrescore.errors import InputError
from lmrescore.lm.config import DataConfig
from lmrescore.vocab import BOS, EOS, EPS, SPECIALS, UNK, Vocab

SP_SAMPLE = 1_000_000  # sentences sentencepiece trains on at most (0: all of them)


class Units(Protocol):
    """Turns words into model tokens."""

    vocab: Vocab

    def word_ids(self, word: str) -> tuple[int, ...]:
        """Token ids of one word (unknown words -> ``<unk>``)."""

    def encode_ids(self, sentence: Sequence[str]) -> list[int]:
        """Token ids of one sentence, no markers."""

    def encode(self, sentences: Sequence[Sequence[str]]) -> list[Tensor]:
        """Each sentence as an int64 tensor of token ids, no markers."""

    def to_checkpoint(self) -> dict[str, Any]:
        """What a checkpoint must hold to rebuild these units."""


class _EncodeByWord:
    def encode_ids(self, sentence: Sequence[str]) -> list[int]:
        return [i for w in sentence for i in self.word_ids(w)]

    def encode(self, sentences: Sequence[Sequence[str]]) -> list[Tensor]:
        return [torch.tensor(self.encode_ids(s), dtype=torch.long) for s in sentences]


class WordUnits(_EncodeByWord):
    """One token per word."""

    def __init__(self, vocab: Vocab) -> None:
        self.vocab = vocab

    def word_ids(self, word: str) -> tuple[int, ...]:
        return (self.vocab.id(word),)

    def encode_ids(self, sentence: Sequence[str]) -> list[int]:
        return self.vocab.encode(sentence)

    def to_checkpoint(self) -> dict[str, Any]:
        return {"units": "word"}


class PieceUnits(_EncodeByWord):
    """Sentencepiece subwords; the text's own ``<unk>`` word maps to the ``<unk>`` piece."""

    def __init__(self, model: bytes) -> None:
        import sentencepiece as spm

        self.model = model
        self.sp = spm.SentencePieceProcessor(model_proto=model)
        self.vocab = Vocab(tuple(self.sp.id_to_piece(i) for i in range(self.sp.get_piece_size())))
        self.word_ids = lru_cache(maxsize=None)(self._word_ids)

    def _word_ids(self, word: str) -> tuple[int, ...]:
        return (self.vocab.unk,) if word == UNK else tuple(self.sp.encode(word))

    def to_checkpoint(self) -> dict[str, Any]:
        return {"units": "sentencepiece", "sp_model": self.model}

    @classmethod
    def train(cls, sentences: Iterable[Sequence[str]], vocab_size: int) -> "PieceUnits":
        """Train a unigram sentencepiece model whose ids 0-3 are ``<eps> <s> </s> <unk>``.

        The sentences are streamed into sentencepiece, which keeps a uniform sample of
        ``SP_SAMPLE`` of them (its reservoir, fixed seed): memory is bounded by the sample, not
        the corpus, and a corpus within the sample trains on every sentence, in order.
        """
        import sentencepiece as spm

        out = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=(" ".join(w for w in s if w != UNK) for s in sentences),
            model_writer=out, vocab_size=vocab_size, model_type="unigram",
            character_coverage=1.0, pad_id=0, pad_piece=EPS, bos_id=1, bos_piece=BOS,
            eos_id=2, eos_piece=EOS, unk_id=3, unk_piece=UNK, minloglevel=2,
            num_threads=1, input_sentence_size=SP_SAMPLE, shuffle_input_sentence=True)
        return cls(out.getvalue())


def make_units(config: DataConfig, train: Callable[[], Iterable[Sequence[str]]], exp_dir: Path,
               words: Path | None = None) -> Units:
    """Units for a training run: a word vocabulary (the words of ``words``, else the training
    text's by count), or a sentencepiece model saved in exp_dir.

    Args:
        train: returns the training sentences (streamed; called at most once).
        words: a words.txt or lexicon whose words are the vocabulary (word units only).
    """
    if words is not None:
        if config.units != "word" or config.max_vocab is not None:
            raise InputError(f"{words}: a given vocabulary needs data.units: word and "
                             "data.max_vocab: null")
        return WordUnits(Vocab.from_words(read_word_list(words)))
    if config.units == "word":
        return WordUnits(Vocab.build(train(), max_size=config.max_vocab))
    path = exp_dir / "sp.model"
    if path.exists():
        return PieceUnits(path.read_bytes())
    units = PieceUnits.train(train(), config.sp_vocab_size)
    exp_dir.mkdir(parents=True, exist_ok=True)
    atomic_save(path, lambda f: f.write(units.model))
    return units


DISAMBIGUATION = re.compile(r"#\d+")  # Kaldi's #0, #1 ...: graph symbols, never in text
# words.txt symbols that are not words of the text: epsilon, and the LM's own specials, which
# Vocab.from_words puts first (ids 0-3, as in a vocabulary built from text); Kaldi's <UNK>
# (LibriSpeech, WSJ) is the unknown word, so it becomes <unk>, not a second unknown word
NOT_WORDS = frozenset(SPECIALS) | {"<UNK>"}


def read_word_list(path: str | Path) -> list[str]:
    """The words of a Kaldi ``words.txt`` (``word id`` lines, in id order) or of a lexicon
    (``word pron ...`` lines, the first field, in file order), as Kaldi's conventions say: without
    ``<eps>``, disambiguation symbols (``#0``, ``#1`` ...) and the specials ``<s> </s> <unk>``
    (or ``<UNK>``), which :meth:`Vocab.from_words` adds in front.

    A file is read as words.txt when every line has two fields and the second is an integer.
    """
    path = Path(path)
    try:
        rows = [line.split() for line in path.read_text(encoding="utf-8").splitlines()]
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 ({e})") from None
    rows = [r for r in rows if r]
    if not rows:
        raise InputError(f"{path}: word list is empty")
    if all(len(r) == 2 and r[1].isdigit() for r in rows):
        by_id = sorted(rows, key=lambda r: int(r[1]))
        words = [w for w, _ in by_id]
    else:
        words = [r[0] for r in rows]
    return [w for w in words if w not in NOT_WORDS and not DISAMBIGUATION.fullmatch(w)]


def units_from_checkpoint(payload: dict[str, Any], where: str = "checkpoint") -> Units:
    """The units a checkpoint was trained with.

    Raises:
        InputError: naming ``where``, if its sentencepiece model does not load.
    """
    if payload.get("units") == "sentencepiece":
        model = payload.get("sp_model")
        try:
            if not isinstance(model, bytes):
                raise TypeError(f"sp_model is {type(model).__name__}, not bytes")
            return PieceUnits(model)
        except (RuntimeError, TypeError, ValueError) as e:
            raise InputError(f"{where}: the sentencepiece model does not load: {e}") from None
    return WordUnits(Vocab(tuple(payload["vocab"])))
