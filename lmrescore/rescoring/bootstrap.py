"""Bootstrap confidence of WERs over utterances (Bisani & Ney 2004; Kaldi's compute-wer-bootci).

Utterances are resampled with replacement: draw b takes N utterance indices, and its WER is
its summed errors over its summed reference words. One seeded index matrix (B, N) serves every
system of the same test set, so two systems are compared on the same draws (a paired
bootstrap). As compute-wer-bootci, an interval is the draws' mean +- 1.96 standard deviations,
and the probability that B improves on A is the share of draws where B makes fewer errors
(a draw where both make as many counts for neither).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lmrescore.rescoring.metrics import word_errors

# a difference is "better" only when P(improvement) exceeds this: p < 0.05
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """A bootstrap estimate in percent: the draws' mean and its 95% interval."""

    mean: float
    low: float
    high: float

    def __str__(self) -> str:
        """compute-wer-bootci's ``%WER m 95% Conf Interval [ lo, hi ]``."""
        return f"%WER {self.mean:.2f} 95% Conf Interval [ {self.low:.2f}, {self.high:.2f} ]"


@dataclass(frozen=True)
class Comparison:
    """System B against system A on the same draws.

    Attributes:
        difference: WER(B) - WER(A), in points.
        p_improvement: share of draws where B has fewer errors than A.
        p_worse: share of draws where B has more errors than A.
    """

    difference: Interval
    p_improvement: float
    p_worse: float

    @property
    def verdict(self) -> str:
        """'B better' or 'A better' when that side improves in more than 95% of the draws
        (p < 0.05), else 'tie'."""
        if self.p_improvement > CONFIDENCE:
            return "B better"
        if self.p_worse > CONFIDENCE:
            return "A better"
        return "tie"


def utterance_errors(refs: dict[str, list[str]], hyps: dict[str, list[str]]) -> np.ndarray:
    """Each reference utterance's word errors, in ``refs``' order: (N,) int64. An utterance
    without a hypothesis is all deletions (compute-wer-bootci's ``--mode=all``)."""
    return np.array([word_errors(r, hyps.get(u, [])).errors for u, r in refs.items()],
                    dtype=np.int64)


def utterance_words(refs: dict[str, list[str]]) -> np.ndarray:
    """Each reference utterance's word count, in ``refs``' order: (N,) int64."""
    return np.array([len(r) for r in refs.values()], dtype=np.int64)


def draw_indices(num_utts: int, replications: int = 10000, seed: int = 0) -> np.ndarray:
    """Utterance indices of every draw: (B, N), row b the N utterances of draw b."""
    if num_utts < 1 or replications < 1:
        raise ValueError(f"need utterances and draws, got {num_utts} and {replications}")
    return np.random.default_rng(seed).integers(0, num_utts, size=(replications, num_utts))


def _interval(values: np.ndarray) -> Interval:
    """mean +- 1.96 standard deviations of per-draw values (B,), in percent."""
    mean, sd = 100.0 * values.mean(), 100.0 * values.std()
    return Interval(mean, mean - 1.96 * sd, mean + 1.96 * sd)


def wer_interval(errors: np.ndarray, words: np.ndarray, draws: np.ndarray) -> Interval:
    """A system's WER over the draws.

    Args:
        errors, words: (N,) errors (:func:`utterance_errors`) and reference words.
        draws: (B, N) indices (:func:`draw_indices`).
    """
    return _interval(errors[draws].sum(axis=1) / words[draws].sum(axis=1))


def compare(errors_a: np.ndarray, errors_b: np.ndarray, words: np.ndarray,
            draws: np.ndarray) -> Comparison:
    """System B against system A on the same utterances and draws.

    Args:
        errors_a, errors_b: (N,) per-utterance errors of A and B.
        words: (N,) reference words.
        draws: (B, N) indices.
    """
    gain = (errors_a - errors_b)[draws].sum(axis=1)
    return Comparison(_interval(-gain / words[draws].sum(axis=1)),
                      float((gain > 0).mean()), float((gain < 0).mean()))


def compare_systems(refs: dict[str, list[str]], hyps: Sequence[dict[str, list[str]]],
                    replications: int = 10000, seed: int = 0
                    ) -> tuple[list[Interval], dict[tuple[int, int], Comparison]]:
    """Every system's WER interval and every pair's comparison, on one set of draws.

    Args:
        refs: utt_id -> reference words.
        hyps: S systems' utt_id -> hypothesis words.
    Returns:
        S intervals, and (i, j) -> system j against system i for i < j.
    """
    errors = [utterance_errors(refs, h) for h in hyps]
    words = utterance_words(refs)
    draws = draw_indices(len(words), replications, seed)
    intervals = [wer_interval(e, words, draws) for e in errors]
    pairs = {(i, j): compare(errors[i], errors[j], words, draws)
             for i in range(len(hyps)) for j in range(i + 1, len(hyps))}
    return intervals, pairs
