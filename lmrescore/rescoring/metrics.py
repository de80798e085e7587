"""Word error rates: of hypotheses against references (kaldialign), of lattice oracles, and a
batch-by-batch summary of lattices (sizes, 1-best and oracle WER)."""

from __future__ import annotations

import struct
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import kaldialign

from lmrescore.errors import Failure, InputError
from lmrescore.lattice.lattice import Lattice
from lmrescore.lattice.oracle import Oracle, oracle_path
from lmrescore.lattice.shortest_path import BestPath, best_path
from lmrescore.lattice.weights import Weights
from lmrescore.vocab import Vocab


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
        """compute-wer's ``%WER`` line."""
        return (f"%WER {kaldi_percent(self.errors, self.ref_words)} [ {self.errors} / {self.ref_words}, {self.ins} ins, "
                f"{self.dels} del, {self.subs} sub ]")


def kaldi_percent(count: int, total: int) -> str:
    """``100 * count / total`` as compute-wer prints it: rounded to a 32-bit float, then to 2
    decimals (``inf`` for errors with no reference words, ``nan`` for 0 / 0)."""
    value = 100.0 * count / total if total else float("inf") if count else float("nan")
    return f"{struct.unpack('f', struct.pack('f', value))[0]:.2f}"


def read_text(path: str | Path) -> dict[str, list[str]]:
    """utt_id -> words of each non-empty line of a Kaldi ``text`` file ('utt w1 w2 ...')."""
    with open(path, encoding="utf-8") as f:
        return {p[0]: p[1:] for p in (line.split() for line in f) if p}


def reference_ids(refs: dict[str, list[str]], symbols: Vocab) -> tuple[dict[str, list[int]], int]:
    """Reference words as ids of the lattices' words.txt, compared as Kaldi's compute-wer
    compares strings: a word outside the table gets the id ``len(symbols)``, which no lattice
    label has (labels are checked against the table on reading), so it is an error against any
    hypothesis word, ``<unk>`` included.

    Args:
        refs: utt_id -> reference words (:func:`read_text`).
        symbols: the lattices' words.txt.
    Returns:
        utt_id -> word ids, and how many reference words are outside the table.
    """
    oov = len(symbols)
    ids = {u: [symbols.ids.get(w, oov) for w in words] for u, words in refs.items()}
    return ids, sum(i == oov for r in ids.values() for i in r)


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


@dataclass
class LatticeSummary:
    """Totals over lattices read (see :func:`summarize_lattices`).

    Attributes:
        lattices, states, arcs: counts; max_arcs: arcs of the largest lattice.
        one_best: utt_id -> word ids of the best path.
        one_best_errors, oracle_errors: word errors over the ``scored`` lattices that have a
            reference.
        failures: the lattices without a best path (a cycle, no path, a NaN score), not counted
            in the others.
    """

    lattices: int = 0
    states: int = 0
    arcs: int = 0
    max_arcs: int = 0
    one_best: dict[str, list[int]] = field(default_factory=dict)
    scored: int = 0
    one_best_errors: WordErrors = field(default_factory=WordErrors)
    oracle_errors: WordErrors = field(default_factory=WordErrors)
    failures: list[Failure] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The JSON record of ``lmrescore info --json``."""
        return {"lattices": self.lattices, "states": self.states, "arcs": self.arcs,
                "max_arcs": self.max_arcs, "scored": self.scored,
                "ref_words": self.one_best_errors.ref_words,
                "one_best_errors": self.one_best_errors.errors,
                "oracle_errors": self.oracle_errors.errors,
                "one_best_wer": self.one_best_errors.wer, "oracle_wer": self.oracle_errors.wer}


def summarize_lattices(batches: Iterable[Lattice], refs: dict[str, list[int]] | None,
                       weights: Weights) -> LatticeSummary:
    """Sizes, 1-best paths and (with references) 1-best and oracle word errors.

    Args:
        batches: batches of lattices.
        refs: utt_id -> reference word ids, or None; lattices without a reference are not scored.
        weights: how the 1-best path is chosen.
    """
    s = LatticeSummary()
    for lat in batches:
        lat, best, failures = _best_paths(lat, weights)
        s.failures += failures
        if lat is None:
            continue
        s.lattices += lat.num_lattices
        s.states += lat.num_states
        s.arcs += lat.num_arcs
        s.max_arcs = max(s.max_arcs, int((lat.arc_splits[1:] - lat.arc_splits[:-1]).max()))
        s.one_best.update(zip(lat.utt_ids, best.word_lists()))
        have = [i for i, u in enumerate(lat.utt_ids) if u in (refs or {})]
        if not have:
            continue
        sub = lat.select(have)
        sub_refs = [refs[u] for u in sub.utt_ids]
        s.oracle_errors += oracle_word_errors(sub, sub_refs)[0]
        s.one_best_errors += corpus_word_errors(sub_refs, [s.one_best[u] for u in sub.utt_ids])
        s.scored += len(have)
    return s


def _best_paths(lat: Lattice, weights: Weights
                ) -> tuple[Lattice | None, BestPath | None, list[Failure]]:
    """The lattices of a batch that have a best path, their best paths, and a failure for each
    of the others (a cycle, no path, a NaN score): one bad lattice costs only itself."""
    try:
        return lat, best_path(lat, weights), []
    except InputError:
        pass
    keep, failed = [], []
    for i in range(lat.num_lattices):
        try:
            best_path(lat[i], weights)
            keep.append(i)
        except InputError as e:
            failed.append(Failure(lat.utt_ids[i], str(e)))
    if not keep:
        return None, None, failed
    lat = lat.select(keep)
    return lat, best_path(lat, weights), failed
