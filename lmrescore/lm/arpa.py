"""Back-off n-gram LMs from ARPA files (SRILM, kenlm, Kaldi), as a ``LanguageModel``.

``read_arpa`` reads the ``\\data\\`` header (``ngram N=count``) and the ``\\N-grams:`` sections
(``log10prob w1 .. wN [log10backoff]``), plain or gzipped, checking each section's count against
the header. ``NgramLM`` scores by back-off, vectorised over queries: n-grams are keys in sorted
int64 tables, ``key(w1..wk) = position of w1..wk-1 in the (k-1)-gram table * V + wk``
(``w1 * V + w2`` for bigrams), looked up with ``torch.searchsorted``. A prefix that is not an
n-gram itself (pruned models) is kept as a blank entry: no probability, back-off weight 0, so
the longer n-gram is used and queries ending at the prefix back off past it (as kenlm's trie
does; kenlm's probing model refuses such a file, and Kaldi's arpa2fst drops the longer n-gram).

log p(w | h) = the log-prob of the longest n-gram ``(suffix of h, w)`` in the model + the
back-off weights of the longer suffixes of h that are n-grams, times ln 10 (natural log).

Words: the vocabulary is the 1-grams in file order with ``<eps>`` (and any of ``<s> </s> <unk>``
missing) in front; a word outside it is ``<unk>``. Ids without a 1-gram (``<eps>``, or ``<unk>``
in a closed-vocabulary model) have log10 p = -100, as kenlm gives a missing ``<unk>``.
"""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lmrescore.errors import InputError
from lmrescore.lm.interface import BLOCK_ROWS
from lmrescore.vocab import Vocab

MISSING_LOG10 = -100.0  # log10 p of an id without a 1-gram (kenlm's missing <unk>)
MAX_IDS = 2 ** 24 - 1  # a state row holds id + 1 as float32: exact below 2^24
LN10 = math.log(10.0)


@dataclass
class NgramTable:
    """The n-grams of one order k, rows in id order.

    Attributes:
        ids: (N, k) int64 word ids.
        prob: (N,) float64 log10 probabilities.
        backoff: (N,) float64 log10 back-off weights (0 where the file has none).
        lines: (N,) int64 line of each n-gram in the file (for error messages).
    """

    ids: np.ndarray
    prob: np.ndarray
    backoff: np.ndarray
    lines: np.ndarray


@dataclass
class Arpa:
    """An ARPA model as arrays: ``tables[k-1]`` holds the k-grams."""

    path: str
    vocab: Vocab
    tables: list[NgramTable]

    @property
    def order(self) -> int:
        return len(self.tables)


def _open(path: Path):
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def read_arpa(path: str | Path) -> Arpa:
    """Read an ARPA file (plain or gzipped) into per-order arrays.

    Raises:
        InputError: naming file:line, on a malformed line, a section whose count differs from
            the header, a word of a higher order missing from the 1-grams, or a duplicate n-gram.
    """
    path = Path(path)
    counts: dict[int, int] = {}
    rows: list[list[tuple[int, list[str]]]] = []  # per order: (line, fields)
    section = 0  # 0 before \data\, -1 in \data\, k in \k-grams:, -2 after \end\
    with _open(path) as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            where = f"{path}:{lineno}"
            if not line:
                continue
            if line == "\\data\\":
                section = -1
            elif line == "\\end\\":
                section = -2
                break
            elif line.startswith("\\") and line.endswith("-grams:"):
                k = line[1:-len("-grams:")]
                if not k.isdigit() or int(k) != len(rows) + 1 or int(k) not in counts:
                    raise InputError(f"{where}: unexpected section {line!r} (header declares "
                                     f"orders {sorted(counts)}, {len(rows)} read so far)")
                section = int(k)
                rows.append([])
            elif section == -1:
                key, _, value = line.partition("=")
                parts = key.split()
                if len(parts) != 2 or parts[0] != "ngram" or not parts[1].isdigit() \
                        or not value.strip().isdigit():
                    raise InputError(f"{where}: expected 'ngram N=count', got {line!r}")
                counts[int(parts[1])] = int(value)
            elif section > 0:
                rows[-1].append((lineno, line.split()))
            elif section == 0:
                continue  # text before \data\ (SRILM and kenlm write none; some tools do)
    if section != -2:
        raise InputError(f"{path}: no \\end\\ line (truncated file?)")
    if sorted(counts) != list(range(1, len(counts) + 1)) or len(rows) != len(counts):
        raise InputError(f"{path}: header declares orders {sorted(counts)} but the file has "
                         f"sections 1..{len(rows)}")
    for k, section_rows in enumerate(rows, 1):
        if len(section_rows) != counts[k]:
            raise InputError(f"{path}: \\{k}-grams: has {len(section_rows)} entries, the header "
                             f"says ngram {k}={counts[k]}")
    if not rows or not rows[0]:
        raise InputError(f"{path}: no 1-grams")
    vocab = Vocab.from_words(fields[1] if len(fields) > 1 else "" for _, fields in rows[0])
    tables = [_table(path, k, section_rows, vocab, k == len(rows))
              for k, section_rows in enumerate(rows, 1)]
    return Arpa(str(path), vocab, tables)


def _table(path: Path, k: int, rows: list[tuple[int, list[str]]], vocab: Vocab,
           highest: bool) -> NgramTable:
    """The k-grams of a section, checked."""
    ids = np.empty((len(rows), k), dtype=np.int64)
    prob = np.empty(len(rows))
    backoff = np.zeros(len(rows))
    for r, (lineno, fields) in enumerate(rows):
        if len(fields) not in (k + 1, k + 2) or (highest and len(fields) == k + 2):
            want = f"log10prob and {k} words" + ("" if highest else " [and a back-off weight]")
            raise InputError(f"{path}:{lineno}: expected {want} in \\{k}-grams:, got "
                             f"{' '.join(fields)!r}")
        try:
            prob[r] = float(fields[0])
            if len(fields) == k + 2:
                backoff[r] = float(fields[-1])
        except ValueError:
            raise InputError(f"{path}:{lineno}: not a number in {' '.join(fields)!r}") from None
        for j, w in enumerate(fields[1: k + 1]):
            if w not in vocab:
                raise InputError(f"{path}:{lineno}: word {w!r} is not in the 1-grams")
            ids[r, j] = vocab.ids[w]
    order = np.lexsort(ids.T[::-1]) if len(rows) else np.zeros(0, dtype=np.int64)
    ids, prob, backoff = ids[order], prob[order], backoff[order]
    lines = np.array([lineno for lineno, _ in rows], dtype=np.int64)[order]
    dup = np.flatnonzero((ids[1:] == ids[:-1]).all(1))
    if dup.size:
        raise InputError(f"{path}:{lines[dup[0] + 1]}: duplicate {k}-gram (first at line "
                         f"{lines[dup[0]]})")
    return NgramTable(ids, prob, backoff, lines)


class NgramLM:
    """A back-off n-gram LM behind the ``LanguageModel`` interface (CPU).

    ``order`` = n-1 (at least 1): the model is exact at any fixed-point order K >= n-1. A state
    row is the last ``order`` token ids, each stored as id + 1 (float32, exact for ids < 2^24),
    0 for none: the zero row is the reset state, as callers expect (they reset by multiplying
    by 0), and stepping it by ``<s>`` starts a sentence. ``logits`` spells out the full
    distribution, V log-probs per row: for small vocabularies only.
    """

    device = torch.device("cpu")

    def __init__(self, arpa: Arpa) -> None:
        vocab, n = arpa.vocab, arpa.order
        if len(vocab) > MAX_IDS:
            raise InputError(f"{arpa.path}: {len(vocab)} words; at most {MAX_IDS} supported")
        self.vocab, self.n = vocab, n
        self.vocab_size = v = len(vocab)
        self.order = self.state_size = max(1, n - 1)
        uni = arpa.tables[0]
        self.uni_prob = torch.full((v,), MISSING_LOG10, dtype=torch.float64)
        self.uni_backoff = torch.zeros(v, dtype=torch.float64)
        self.uni_has = torch.zeros(v, dtype=torch.bool)
        w = torch.from_numpy(uni.ids[:, 0])
        self.uni_prob[w] = torch.from_numpy(uni.prob)
        self.uni_backoff[w] = torch.from_numpy(uni.backoff)
        self.uni_has[w] = True
        # orders 2..n: sorted keys, log10 prob / back-off, and whether an entry is an n-gram
        # (False: a blank prefix of a longer n-gram the file lacks)
        self.keys: list[Tensor] = []
        self.prob: list[Tensor] = []
        self.backoff: list[Tensor] = []
        self.real: list[Tensor] = []
        for ids, prob, backoff, real in _close_prefixes(arpa.tables):
            ids_t = torch.from_numpy(ids)
            found, pos = self._lookup(ids_t[:, :-1])
            key = pos * v + ids_t[:, -1]
            assert bool(found.all())  # _close_prefixes made every prefix an entry
            by_key = torch.argsort(key)
            self.keys.append(key[by_key])
            self.prob.append(torch.from_numpy(prob)[by_key])
            self.backoff.append(torch.from_numpy(backoff)[by_key])
            self.real.append(torch.from_numpy(real)[by_key])

    @classmethod
    def from_file(cls, path: str | Path) -> "NgramLM":
        return cls(read_arpa(path))

    def _lookup(self, words: Tensor) -> tuple[Tensor, Tensor]:
        """Where each k-gram (row of ``words`` (Q, k), ids or -1) is in the k-gram table:
        (Q,) found, (Q,) position (the word id for k = 1; meaningless where not found)."""
        w = words[:, 0]
        found = (w >= 0) & self.uni_has[w.clamp(min=0)]
        pos = w.clamp(min=0)
        for j in range(1, words.shape[1]):
            keys = self.keys[j - 1]
            if not keys.numel():
                return torch.zeros_like(found), pos
            key = pos * self.vocab_size + words[:, j].clamp(min=0)
            pos = torch.searchsorted(keys, key).clamp(max=keys.shape[0] - 1)
            found = found & (words[:, j] >= 0) & (keys[pos] == key)
        return found, pos

    def log10_probs(self, context: Tensor, tokens: Tensor) -> Tensor:
        """(Q,) float64 log10 p(tokens | context) by back-off.

        Args:
            context: (Q, m) word ids, right-aligned, -1 for none (only the last n-1 are used).
            tokens: (Q,) word ids.
        """
        m = self.n - 1
        context = context[:, context.shape[1] - m:] if m else context[:, :0]
        out = self.uni_prob[tokens]
        done = torch.zeros_like(tokens, dtype=torch.bool)
        backoff = torch.zeros_like(out)  # back-off weights of the longer contexts passed
        for k in range(m, 0, -1):  # the context's last k words
            ctx = context[:, m - k:]
            ctx_found, ctx_pos = self._lookup(ctx)
            found, pos = self._lookup(torch.cat([ctx, tokens[:, None]], 1))
            hit = found & self.real[k - 1][pos] & ~done
            out = torch.where(hit, self.prob[k - 1][pos] + backoff, out)
            done |= hit
            ctx_backoff = (self.uni_backoff[ctx_pos] if k == 1
                           else self.backoff[k - 2][ctx_pos])
            backoff = backoff + torch.where(ctx_found, ctx_backoff, 0.0)
        return torch.where(done, out, out + backoff)

    # The LanguageModel interface (lmrescore/lm/interface.py).

    def zero_state(self, n: int) -> Tensor:
        """(n, order) zeros: no history (before ``<s>``)."""
        return torch.zeros(n, self.state_size)

    def step(self, state: Tensor, tokens: Tensor) -> Tensor:
        """Shift the window: (..., S), (...,) ids -> (..., S)."""
        return torch.cat([state[..., 1:], (tokens + 1).to(state.dtype)[..., None]], dim=-1)

    def _context(self, state: Tensor) -> Tensor:
        return state.round().long() - 1

    def logits(self, state: Tensor) -> Tensor:
        """(..., S) -> (..., V) natural log-probs of every next token (V queries per row)."""
        flat = self._context(state.reshape(-1, self.state_size))
        rows = torch.arange(flat.shape[0]).repeat_interleave(self.vocab_size)
        tokens = torch.arange(self.vocab_size).repeat(flat.shape[0])
        out = (self.log10_probs(flat[rows], tokens) * LN10).float()
        return out.reshape(*state.shape[:-1], self.vocab_size)

    def token_log_probs(self, state: Tensor, rows: Tensor, tokens: Tensor,
                        block_rows: int = BLOCK_ROWS) -> Tensor:
        """(Q,) float32 natural log p(tokens[q] | state[rows[q]]); memory is O(Q * n), so
        ``block_rows`` is not needed."""
        return (self.log10_probs(self._context(state[rows]), tokens) * LN10).float()

    def sequence_log_probs(self, inputs: Tensor, targets: Tensor, mask: Tensor,
                           starts: Tensor | None, order: int | None,
                           state: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """(B, T) float32 log p(targets | inputs so far) where ``mask`` (0 elsewhere), by
        stepping the window; with ``order`` K < n-1 only the last K tokens are seen. Also the
        (B, S) final state (``order`` None; else None, as for the RNN)."""
        state = self.zero_state(inputs.shape[0]) if state is None else state
        keep = torch.arange(self.state_size) >= self.state_size - (order or self.state_size)
        out = torch.zeros(inputs.shape, dtype=torch.float32)
        for t in range(inputs.shape[1]):
            if starts is not None:
                state = state * ~starts[:, t, None]
            state = self.step(state, inputs[:, t])
            rows = mask[:, t].nonzero().squeeze(1)
            out[rows, t] = self.token_log_probs(state * keep, rows, targets[rows, t])
        return out, state if order is None else None


def _close_prefixes(tables: list[NgramTable]) -> list[tuple[np.ndarray, ...]]:
    """Orders 2..n as (ids, prob, backoff, real), each order's entries completed by blank
    prefixes of the next order's n-grams (prob and back-off 0, real False), rows in id order."""
    out: list[tuple[np.ndarray, ...]] = []
    needed = np.zeros((0, len(tables)), dtype=np.int64)
    for t in reversed(tables[1:]):
        k = t.ids.shape[1]
        rows = np.concatenate([t.ids, needed])
        ids, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        real = first < t.ids.shape[0]
        prob, backoff = np.zeros(len(ids)), np.zeros(len(ids))
        prob[inverse[: t.ids.shape[0]]] = t.prob
        backoff[inverse[: t.ids.shape[0]]] = t.backoff
        out.append((ids, prob, backoff, real))
        needed = ids[:, : k - 1]
    return out[::-1]
