"""Kaldi-style ``words.txt`` symbol tables: word <-> integer id."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lmrescore.atomic import atomic_write_text
from lmrescore.errors import InputError
from lmrescore.text_input import read_lines

EPS = "<eps>"
BOS = "<s>"
EOS = "</s>"
UNK = "<unk>"
SPECIALS = (EPS, BOS, EOS, UNK)
_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits only: "²".isdigit() is true


@dataclass(frozen=True)
class Vocab:
    """A symbol table. Id 0 is ``<eps>``; ids are dense 0..len-1.

    Args:
        words: the word of each id, in id order.
    """

    words: tuple[str, ...]
    ids: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ids = {w: i for i, w in enumerate(self.words)}
        if len(ids) != len(self.words):
            dup = next(w for w in self.words if self.words.count(w) > 1)
            raise ValueError(f"symbol table has the word {dup!r} twice")
        object.__setattr__(self, "ids", ids)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.ids

    @property
    def bos(self) -> int:
        return self.ids[BOS]

    @property
    def eos(self) -> int:
        return self.ids[EOS]

    @property
    def unk(self) -> int:
        """Id of the unknown word: ``<unk>``, or ``<UNK>`` (LibriSpeech, WSJ lang dirs)."""
        for word in (UNK, "<UNK>"):
            if word in self.ids:
                return self.ids[word]
        raise InputError("the symbol table has no unknown word (<unk> or <UNK>)")

    def id(self, word: str) -> int:
        """Id of ``word``; unknown words map to ``<unk>``."""
        return self.ids.get(word, self.unk)

    def encode(self, words: Iterable[str]) -> list[int]:
        """Ids of ``words``, unknown words as ``<unk>`` (or ``<UNK>``, see :attr:`unk`)."""
        unk = self.unk
        return [self.ids.get(w, unk) for w in words]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.words[i] for i in ids]

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], max_size: int | None = None,
              min_count: int = 1) -> "Vocab":
        """Vocabulary of a training text: specials first, then words by falling count.

        Args:
            sentences: tokenised training sentences.
            max_size: keep at most this many words (specials included).
            min_count: drop words seen fewer times.
        """
        counts = Counter(w for s in sentences for w in s if w not in SPECIALS)
        ranked = sorted((w for w, c in counts.items() if c >= min_count),
                        key=lambda w: (-counts[w], w))
        if max_size is not None:
            ranked = ranked[: max(0, max_size - len(SPECIALS))]
        return cls(SPECIALS + tuple(ranked))

    @classmethod
    def from_words(cls, words: Iterable[str]) -> "Vocab":
        """Vocabulary of an existing word list, specials added at the front where missing."""
        words = list(dict.fromkeys(words))
        return cls(tuple(s for s in SPECIALS if s not in words) + tuple(words))

    @classmethod
    def load(cls, path: str | Path) -> "Vocab":
        """Read a ``words.txt`` (``word id`` per line, ids dense from 0, each word and id once).

        Raises:
            InputError: naming ``path`` and the line (not UTF-8, not ``word id``, a repeated
                word or id), or a missing id. No special word is required: a lattice's table
                maps its ids to words; the LM's own vocabulary lives in the model.
        """
        table: dict[int, str] = {}
        line_of: dict[str, int] = {}
        for lineno, line in read_lines(path):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or not _ID.fullmatch(parts[1]):
                raise InputError(f"{path}:{lineno}: expected 'word id', got {line.rstrip()!r}")
            word, i = parts[0], int(parts[1])
            if word in line_of:
                raise InputError(f"{path}:{lineno}: the word {word!r} appears twice "
                                 f"(first on line {line_of[word]})")
            if i in table:
                raise InputError(f"{path}:{lineno}: id {i} appears twice (first for "
                                 f"{table[i]!r}, line {line_of[table[i]]})")
            table[i] = word
            line_of[word] = lineno
        if not table:
            raise InputError(f"{path}: empty symbol table")
        missing_id = next((i for i in range(len(table)) if i not in table), None)
        if missing_id is not None:
            raise InputError(f"{path}: id {missing_id} is missing (ids must be dense "
                             f"0..{len(table) - 1})")
        return cls(tuple(table[i] for i in range(len(table))))

    def save(self, path: str | Path) -> None:
        """Write ``words.txt`` atomically."""
        atomic_write_text(path, "".join(f"{w} {i}\n" for i, w in enumerate(self.words)))
