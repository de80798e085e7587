"""Corpora on disk: text tokenised once into a memory-mapped array of token ids.

A store of one split is three files in a data folder (``<exp-dir>/data``):
``<split>.tokens`` (int32 ids, each sentence followed by ``</s>``), ``<split>.offsets`` (int64,
sentence i is ``tokens[offsets[i] : offsets[i + 1] - 1]``) and ``<split>.json`` (counts, and the
stamp of the text and units it was made from). The JSON is written last: a store without it, or
whose stamp differs (the text changed, other units), is made again. Text is read line by line
and ids are written in chunks, so tokenising takes memory flat in the corpus size.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lmrescore.atomic import atomic_open, atomic_write_text
from lmrescore.errors import InputError
from lmrescore.lm.data import MAX_SENTENCE_TOKENS, TEXT_FORMATS, corpus_path, iter_sentences
from lmrescore.lm.units import Units

VERSION = 1
CHUNK = 1 << 18  # ids buffered before a write


@dataclass
class TokenStore:
    """The sentences of one text as token ids.

    Attributes:
        tokens: (num_tokens + num_sentences,) int32 ids, each sentence followed by ``</s>``.
        offsets: (num_sentences + 1,) int64 start of each sentence in ``tokens``.
        num_words: words in the text (before any subword split), without ``</s>``.
    """

    tokens: np.ndarray
    offsets: np.ndarray
    num_words: int

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def sentence(self, i: int) -> Tensor:
        """(n,) int64 ids of sentence ``i``, without ``</s>``."""
        return torch.from_numpy(self.tokens[self.offsets[i]: self.offsets[i + 1] - 1]
                                .astype(np.int64))

    @cached_property
    def by_length(self) -> np.ndarray:
        """(num_sentences,) sentence indices, shortest first, ties in text order."""
        lengths = np.diff(self.offsets)
        return np.argsort(lengths, kind="stable").astype(np.int64)


@dataclass(frozen=True)
class CorpusFiles:
    """The texts to train on: a path per split (train, valid, optional test), how lines are
    read, and optionally the word list the vocabulary must be (words.txt or a lexicon)."""

    splits: dict[str, Path]
    text_format: str = "plain"
    vocab: Path | None = None

    def __post_init__(self) -> None:
        if self.text_format not in TEXT_FORMATS:
            raise InputError(f"text format must be one of {', '.join(TEXT_FORMATS)}, "
                             f"got {self.text_format!r}")

    @classmethod
    def known(cls, corpus_dir: str | Path, corpus: str) -> "CorpusFiles":
        """The train/valid/test files of a known corpus (``ptb``, ``wikitext-2``)."""
        return cls({s: corpus_path(corpus_dir, corpus, s) for s in ("train", "valid", "test")})

    def check(self) -> None:
        """Every file exists and holds a sentence (reads up to its first one)."""
        for path in self.splits.values():
            if not Path(path).is_file():
                raise InputError(f"{path}: no such corpus file")
        if self.vocab is not None and not self.vocab.is_file():
            raise InputError(f"{self.vocab}: no such word list")
        for path in self.splits.values():
            if next(iter_sentences(path, self.text_format), None) is None:
                raise InputError(f"{path}: corpus file is empty")


def units_stamp(units: Units) -> str:
    """A hash of everything that decides which ids a text becomes."""
    h = hashlib.sha256("\n".join(units.vocab.words).encode())
    for value in units.to_checkpoint().values():
        h.update(value if isinstance(value, bytes) else str(value).encode())
    return h.hexdigest()


def text_stamp(path: str | Path, text_format: str, units: Units) -> dict[str, Any]:
    """What a store of ``path`` depends on: the file (path, size, time), format and units."""
    st = Path(path).stat()
    return {"version": VERSION, "source": str(Path(path).resolve()), "size": st.st_size,
            "mtime_ns": st.st_mtime_ns, "text_format": text_format, "units": units_stamp(units)}


def _encode(path: Path, text_format: str, units: Units, write_tokens: Callable[[np.ndarray], Any],
            write_offsets: Callable[[np.ndarray], Any], progress: bool, max_tokens: int
            ) -> tuple[int, int, int]:
    """Stream ``path`` into chunks of ids and offsets; returns (tokens, sentences, words)."""
    eos = units.vocab.eos
    ids: list[int] = []
    offsets: list[int] = [0]
    end = sentences = words = 0
    desc = f"tokenising {path.name}" if progress else None
    for sentence in iter_sentences(path, text_format, desc, max_tokens):
        ids.extend(units.encode_ids(sentence))
        ids.append(eos)
        words += len(sentence)
        sentences += 1
        offsets.append(end + len(ids))
        if len(ids) >= CHUNK:
            write_tokens(np.asarray(ids, dtype=np.int32))
            end += len(ids)
            ids.clear()
        if len(offsets) >= CHUNK:
            write_offsets(np.asarray(offsets, dtype=np.int64))
            offsets.clear()
    write_tokens(np.asarray(ids, dtype=np.int32))
    write_offsets(np.asarray(offsets, dtype=np.int64))
    return end + len(ids), sentences, words


def encode_text(path: str | Path, text_format: str, units: Units,
                max_tokens: int = MAX_SENTENCE_TOKENS) -> TokenStore:
    """A store of ``path`` in memory (int32 ids: 4 bytes per token), read line by line; a line
    over ``max_tokens`` words is an error (see :func:`~lmrescore.lm.data.iter_sentences`)."""
    tokens: list[np.ndarray] = []
    offsets: list[np.ndarray] = []
    _, sentences, words = _encode(Path(path), text_format, units, tokens.append, offsets.append,
                                  False, max_tokens)
    if not sentences:
        raise InputError(f"{path}: corpus file is empty")
    return TokenStore(np.concatenate(tokens), np.concatenate(offsets), words)


def build_store(path: str | Path, text_format: str, units: Units, data_dir: str | Path,
                split: str, max_tokens: int = MAX_SENTENCE_TOKENS) -> TokenStore:
    """Tokenise ``path`` into ``data_dir/<split>.*`` (with a progress bar) unless a store of the
    same text and units is there; return it memory-mapped. A line over ``max_tokens`` words is
    an error (see :func:`~lmrescore.lm.data.iter_sentences`)."""
    data_dir = Path(data_dir)
    stamp = text_stamp(path, text_format, units)
    meta_path = data_dir / f"{split}.json"
    if _read_meta(meta_path).get("stamp") == stamp:
        return open_store(data_dir, split)
    meta_path.unlink(missing_ok=True)  # the store is invalid until its JSON is back
    data_dir.mkdir(parents=True, exist_ok=True)
    with atomic_open(data_dir / f"{split}.tokens", "wb") as ft, \
            atomic_open(data_dir / f"{split}.offsets", "wb") as fo:
        tokens, sentences, words = _encode(Path(path), text_format, units,
                                           lambda a: ft.write(a.tobytes()),
                                           lambda a: fo.write(a.tobytes()), True, max_tokens)
    if not sentences:
        raise InputError(f"{path}: corpus file is empty")
    meta = {"stamp": stamp, "tokens": tokens, "sentences": sentences, "words": words}
    atomic_write_text(meta_path, json.dumps(meta, indent=1) + "\n")
    return open_store(data_dir, split)


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def open_store(data_dir: str | Path, split: str) -> TokenStore:
    """The store ``data_dir/<split>.*``, memory-mapped read-only."""
    data_dir = Path(data_dir)
    meta = _read_meta(data_dir / f"{split}.json")
    if "stamp" not in meta:
        raise InputError(f"{data_dir}: no complete token store for {split}")
    tokens = np.memmap(data_dir / f"{split}.tokens", dtype=np.int32, mode="r")
    offsets = np.memmap(data_dir / f"{split}.offsets", dtype=np.int64, mode="r")
    if len(tokens) != meta["tokens"] or len(offsets) != meta["sentences"] + 1:
        raise InputError(f"{data_dir}: token store of {split} is damaged (sizes differ from "
                         f"{split}.json); remove {data_dir} to tokenise again")
    return TokenStore(tokens, offsets, meta["words"])
