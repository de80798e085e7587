"""Word error rates: of hypotheses against references (kaldialign), and of lattice oracles."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

import kaldialign

from lmrescore.lattice.lattice import Lattice
from lmrescore.lattice.oracle import Oracle, oracle_path


@dataclass(frozen=True)
class WordErrors:
    """Word error counts of one or more utterances; ``+`` sums them."""

    ref_words: int = 0
    ins: int = 0
    dels: int = 0
    subs: int = 0

    @property
    def errors(self) -> int:
        return self.ins + self.dels + self.subs

    @property
    def wer(self) -> float:
        """Errors per reference word, in percent (inf for errors with no reference words)."""
        if self.ref_words == 0:
            return 0.0 if self.errors == 0 else float("inf")
        return 100.0 * self.errors / self.ref_words

    def __add__(self, other: "WordErrors") -> "WordErrors":
        return WordErrors(self.ref_words + other.ref_words, self.ins + other.ins,
                          self.dels + other.dels, self.subs + other.subs)

    def __str__(self) -> str:
        return (f"%WER {self.wer:.2f} [ {self.errors} / {self.ref_words}, {self.ins} ins, "
                f"{self.dels} del, {self.subs} sub ]")


def read_text(path: str | Path) -> dict[str, list[str]]:
    """utt_id -> words of each non-empty line of a Kaldi ``text`` file ('utt w1 w2 ...')."""
    with open(path, encoding="utf-8") as f:
        return {p[0]: p[1:] for p in (line.split() for line in f) if p}


def word_errors(ref: Sequence[Hashable], hyp: Sequence[Hashable]) -> WordErrors:
    """Minimum edit-distance errors of one hypothesis (words or ids).

    Args:
        ref: the reference words.
        hyp: the hypothesis words.
    """
    d = kaldialign.edit_distance(list(ref), list(hyp))
    return WordErrors(ref_words=len(ref), ins=d["ins"], dels=d["del"], subs=d["sub"])


def corpus_word_errors(refs: Sequence[Sequence[Hashable]],
                       hyps: Sequence[Sequence[Hashable]]) -> WordErrors:
    """Summed errors of paired references and hypotheses.

    Args:
        refs: N reference word sequences.
        hyps: N hypothesis word sequences, in the same order.
    """
    assert len(refs) == len(hyps), f"{len(refs)} references but {len(hyps)} hypotheses"
    return sum((word_errors(r, h) for r, h in zip(refs, hyps)), WordErrors())


def oracle_word_errors(lat: Lattice,
                       refs: Sequence[Sequence[int]]) -> tuple[WordErrors, Oracle]:
    """Oracle (lattice) word errors: summed errors of each lattice's best-matching path.

    Args:
        lat: a batch of L lattices.
        refs: L reference word-id sequences.
    Returns:
        The summed errors, with the ins/del/sub split of each oracle path, and the oracle paths.
    """
    oracle = oracle_path(lat, refs)
    return corpus_word_errors(refs, oracle.word_lists()), oracle
