"""Modelling units: words, or sentencepiece subwords (a word = the sum of its pieces)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor

from lmrescore.atomic import atomic_save
from lmrescore.lm.config import DataConfig
from lmrescore.vocab import BOS, EOS, EPS, UNK, Vocab


class Units(Protocol):
    """Turns words into model tokens."""

    vocab: Vocab

    def word_ids(self, word: str) -> tuple[int, ...]:
        """Token ids of one word (unknown words -> ``<unk>``)."""

    def encode(self, sentences: Sequence[Sequence[str]]) -> list[Tensor]:
        """Each sentence as an int64 tensor of token ids, no markers."""

    def to_checkpoint(self) -> dict[str, Any]:
        """What a checkpoint must hold to rebuild these units."""


class _EncodeByWord:
    def encode(self, sentences: Sequence[Sequence[str]]) -> list[Tensor]:
        return [torch.tensor([i for w in s for i in self.word_ids(w)], dtype=torch.long)
                for s in sentences]


class WordUnits(_EncodeByWord):
    """One token per word."""

    def __init__(self, vocab: Vocab) -> None:
        self.vocab = vocab

    def word_ids(self, word: str) -> tuple[int, ...]:
        return (self.vocab.id(word),)

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
    def train(cls, sentences: Sequence[Sequence[str]], vocab_size: int) -> "PieceUnits":
        """Train a unigram sentencepiece model whose ids 0-3 are ``<eps> <s> </s> <unk>``."""
        import sentencepiece as spm

        out = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=(" ".join(w for w in s if w != UNK) for s in sentences),
            model_writer=out, vocab_size=vocab_size, model_type="unigram",
            character_coverage=1.0, pad_id=0, pad_piece=EPS, bos_id=1, bos_piece=BOS,
            eos_id=2, eos_piece=EOS, unk_id=3, unk_piece=UNK, minloglevel=2,
            num_threads=1)
        return cls(out.getvalue())


def make_units(config: DataConfig, train: Sequence[Sequence[str]], exp_dir: Path) -> Units:
    """Units for a training run: a word vocabulary, or a sentencepiece model saved in exp_dir."""
    if config.units == "word":
        return WordUnits(Vocab.build(train, max_size=config.max_vocab))
    path = exp_dir / "sp.model"
    if path.exists():
        return PieceUnits(path.read_bytes())
    units = PieceUnits.train(train, config.sp_vocab_size)
    atomic_save(path, lambda f: f.write(units.model))
    return units


def units_from_checkpoint(payload: dict[str, Any]) -> Units:
    """The units a checkpoint was trained with."""
    if payload.get("units") == "sentencepiece":
        return PieceUnits(payload["sp_model"])
    return WordUnits(Vocab(tuple(payload["vocab"])))
