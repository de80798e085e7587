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

Untrusted files: a file over ``max_bytes`` (decompressed; :mod:`lmrescore.formats.limits`) is
refused after reading at most that much; a byte that is not UTF-8 is an error naming file:line.
Every number must be finite, as kenlm requires of back-off weights, except a log10 probability
of ``-inf`` (p = 0), which reads as -99, SRILM's spelling of log10 0; ``nan``, ``inf`` or a
``-inf`` back-off weight is an error naming file:line.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lmrescore.errors import InputError
from lmrescore.formats.limits import MAX_ARPA_BYTES
from lmrescore.lm.interface import BLOCK_ROWS
from lmrescore.text_input import read_text
from lmrescore.vocab import Vocab

MISSING_LOG10 = -100.0  # log10 p of an id without a 1-gram (kenlm's missing <unk>)
ZERO_LOG10 = -99.0  # SRILM's log10 0, what a log10 probability of -inf reads as
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


def _is_gzip(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"\x1f\x8b"
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from None


_MARK = re.compile(r"^\\(.*)$", re.M)  # a line starting with a backslash (\data\, \k-grams:)
_BLANK = re.compile(r"^[^\S\n]*$", re.M)  # a line of white space only


def read_arpa(path: str | Path, max_bytes: int = MAX_ARPA_BYTES) -> Arpa:
    """Read an ARPA file (plain or gzipped) into per-order arrays.

    The text is read whole and cut at its ``\\`` lines; each section is parsed by whole-section
    operations (one ``split`` of its text, numpy indexing, C-level ``float`` and dict lookups):
    no Python code per line beyond splitting it once to count its fields.

    Args:
        max_bytes: a larger file (decompressed) is an error, found after reading at most
            ``max_bytes + 1`` bytes.
    Raises:
        InputError: naming file:line, on a malformed line, a number that is not finite, a
            section whose count differs from the header, a word of a higher order missing from
            the 1-grams, a duplicate n-gram, or a byte that is not UTF-8; or a file too large.
    """
    path = Path(path)
    text = read_text(path, max_bytes, gz=_is_gzip(path))
    counts, sections = _sections(path, text)
    del text
    tables: list[NgramTable] = []
    vocab = Vocab(())
    for k, (header_line, body) in enumerate(sections, 1):
        rows = _Rows(path, k, header_line, body, k == len(sections), None if k == 1 else vocab)
        sections[k - 1] = (header_line, "")  # the text is not needed any more
        if k == 1:
            vocab = Vocab.from_words(rows.words()[:, 0].tolist())
        tables.append(rows.table(vocab))
    return Arpa(str(path), vocab, tables)


def _sections(path: Path, text: str) -> tuple[dict[int, int], list[tuple[int, str]]]:
    """The header's counts and each ``\\k-grams:`` section as (the line number of its header,
    its text from the end of the header line), the counts checked against the sections."""
    counts: dict[int, int] = {}
    sections: list[tuple[int, str]] = []
    section = 0  # 0 before \data\, -1 in \data\, k in \k-grams:, -2 at \end\
    pos, lineno = 0, 1  # the end of the last mark line, and its line number
    for mark in _MARK.finditer(text):
        between = text[pos: mark.start()]
        if section == -1:
            for i, line in enumerate(between.split("\n")):
                _header_count(path, lineno + i, line, counts)
        elif section > 0:
            sections.append((lineno, between))
        lineno += between.count("\n")
        pos = mark.end()
        line = mark.group(0).strip()
        if line == "\\data\\":
            section = -1
        elif line == "\\end\\":
            section = -2
            break
        elif _order_of(line) == len(sections) + 1 and len(sections) + 1 in counts:
            section = len(sections) + 1
        else:
            raise InputError(f"{path}:{lineno}: unexpected section {line!r} (header declares "
                             f"orders {sorted(counts)}, {len(sections)} read so far)")
    if section == -1:  # the file ends in the header: its lines are checked first
        for i, line in enumerate(text[pos:].split("\n")):
            _header_count(path, lineno + i, line, counts)
    if section != -2:
        raise InputError(f"{path}: no \\end\\ line (truncated file?)")
    if sorted(counts) != list(range(1, len(counts) + 1)) or len(sections) != len(counts):
        raise InputError(f"{path}: header declares orders {sorted(counts)} but the file has "
                         f"sections 1..{len(sections)}")
    for k, (_, body) in enumerate(sections, 1):
        entries = body.count("\n") + 1 - len(_BLANK.findall(body))
        if entries != counts[k]:
            raise InputError(f"{path}: \\{k}-grams: has {entries} entries, the header says "
                             f"ngram {k}={counts[k]}")
    if not counts.get(1):
        raise InputError(f"{path}: no 1-grams")
    return counts, sections


def _order_of(mark: str) -> int | None:
    """k of a ``\\k-grams:`` line (None for any other line)."""
    k = mark[1:-len("-grams:")] if mark.endswith("-grams:") else ""
    return int(k) if k.isdigit() else None


def _header_count(path: Path, lineno: int, line: str, counts: dict[int, int]) -> None:
    """Read one line of the ``\\data\\`` section (``ngram N=count``, or blank) into ``counts``."""
    line = line.strip()
    if not line:
        return
    key, _, value = line.partition("=")
    parts = key.split()
    if len(parts) != 2 or parts[0] != "ngram" or not parts[1].isdigit() \
            or not value.strip().isdigit():
        raise InputError(f"{path}:{lineno}: expected 'ngram N=count', got {line!r}")
    counts[int(parts[1])] = int(value)


class _Rows:
    """The non-blank lines of a ``\\k-grams:`` section, split and checked.

    Args:
        path: the file (for messages).
        k: the order.
        header_line: the file's line number of the section's header.
        body: the section's text from the end of the header line (so its i-th line, split at
            "\\n", is the file's line ``header_line + i``).
        highest: the model's highest order (no back-off weights).
        vocab: the 1-grams' words (None for the 1-grams themselves).
    Raises:
        InputError: naming file:line, at the first line with the wrong number of fields, a
            number that does not parse or is not finite, or (with ``vocab``) a word that is not
            a 1-gram.
    """

    def __init__(self, path: Path, k: int, header_line: int, body: str, highest: bool,
                 vocab: Vocab | None) -> None:
        self.path, self.k = path, k
        self.text = body.split("\n")
        width = np.fromiter(map(len, map(str.split, self.text)), np.int64, len(self.text))
        self.index = np.flatnonzero(width)  # the rows' lines in ``text``
        self.lines = header_line + self.index
        width = width[self.index]
        bad = (width < k + 1) | (width > k + 2) | ((width == k + 2) & highest)
        self.tokens = np.array(body.split(), dtype=object)
        self.start = np.cumsum(width) - width  # each row's first token
        with_backoff = np.flatnonzero(width == k + 2)
        self.backoff = np.zeros(len(self.start))
        try:
            self.prob = np.fromiter(map(float, self.tokens[self.start]), np.float64,
                                    len(self.start))
            self.backoff[with_backoff] = np.fromiter(
                map(float, self.tokens[self.start[with_backoff] + k + 1]), np.float64,
                len(with_backoff))
            numbers = True
        except ValueError:
            numbers = False
        if bad.any() or not numbers:  # name the first malformed line
            want = f"log10prob and {k} words" + ("" if highest else " [and a back-off weight]")
            for r in range(len(self.start)):
                if bad[r]:
                    self._fail(r, f"expected {want} in \\{k}-grams:, got")
                fields = self.text[self.index[r]].split()
                if not all(map(_is_float, [fields[0]] + fields[k + 1:])):
                    self._fail(r, "not a number in")
                for word in fields[1: k + 1] if vocab is not None else ():
                    if word not in vocab:
                        self._unknown(r, word)
        self.prob[np.isneginf(self.prob)] = ZERO_LOG10
        bad = ~(np.isfinite(self.prob) & np.isfinite(self.backoff))
        if bad.any():
            self._fail(int(bad.argmax()), "a number that is not finite (nan or inf) in")

    def _fail(self, r: int, what: str) -> None:
        line = " ".join(self.text[self.index[r]].split())
        raise InputError(f"{self.path}:{self.lines[r]}: {what} {line!r}")

    def _unknown(self, r: int, word: str) -> None:
        raise InputError(f"{self.path}:{self.lines[r]}: word {word!r} is not in the 1-grams")

    def words(self) -> np.ndarray:
        """(N, k) the rows' words (str objects)."""
        return self.tokens[self.start[:, None] + 1 + np.arange(self.k)]

    def table(self, vocab: Vocab) -> NgramTable:
        """The rows as word ids in id order; checks that every word is a 1-gram and no n-gram
        repeats."""
        k, n = self.k, len(self.start)
        words = self.words()
        ids = np.fromiter(map(vocab.ids.get, words.ravel(), itertools.repeat(-1)), np.int64,
                          n * k).reshape(n, k)
        if (ids < 0).any():
            r = int(np.argmax((ids < 0).any(1)))
            self._unknown(r, words[r, int(np.argmax(ids[r] < 0))])
        order = np.lexsort(ids.T[::-1]) if n else np.zeros(0, dtype=np.int64)
        ids, prob, backoff, lines = ids[order], self.prob[order], self.backoff[order], \
            self.lines[order]
        dup = np.flatnonzero((ids[1:] == ids[:-1]).all(1))
        if dup.size:
            raise InputError(f"{self.path}:{lines[dup[0] + 1]}: duplicate {k}-gram (first at "
                             f"line {lines[dup[0]]})")
        return NgramTable(ids, prob, backoff, lines)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class NgramLM:
    """A back-off n-gram LM behind the ``LanguageModel`` interface (CPU).

    ``order`` = n-1 (at least 1): the model is exact at any fixed-point order K >= n-1. Its
    ``State`` is (n, order) int64: each row the last ``order`` token ids, right-aligned, -1 for
    none; the all -1 row is the start state, and stepping it by ``<s>`` starts a sentence.
    ``logits`` spells out the full distribution, V log-probs per row: for small vocabularies
    only.
    """

    device = torch.device("cpu")

    def __init__(self, arpa: Arpa) -> None:
        vocab, n = arpa.vocab, arpa.order
        self.vocab, self.n = vocab, n
        self.vocab_size = v = len(vocab)
        self.order = max(1, n - 1)
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

    def start(self, n: int) -> Tensor:
        """(n, order) int64 -1: no history (before ``<s>``)."""
        return torch.full((n, self.order), -1, dtype=torch.int64)

    def step(self, state: Tensor, tokens: Tensor) -> Tensor:
        """Shift the window: (..., order), (...,) ids -> (..., order)."""
        return torch.cat([state[..., 1:], tokens[..., None]], dim=-1)

    def logits(self, state: Tensor) -> Tensor:
        """(..., order) -> (..., V) natural log-probs of every next token (V queries per row)."""
        flat = state.reshape(-1, self.order)
        rows = torch.arange(flat.shape[0]).repeat_interleave(self.vocab_size)
        tokens = torch.arange(self.vocab_size).repeat(flat.shape[0])
        out = (self.log10_probs(flat[rows], tokens) * LN10).float()
        return out.reshape(*state.shape[:-1], self.vocab_size)

    def token_log_probs(self, state: Tensor, rows: Tensor, tokens: Tensor,
                        block_rows: int = BLOCK_ROWS) -> Tensor:
        """(Q,) float32 natural log p(tokens[q] | state[rows[q]]); memory is O(Q * n), so
        ``block_rows`` is not needed."""
        return (self.log10_probs(state[rows], tokens) * LN10).float()

    def sequence_log_probs(self, inputs: Tensor, targets: Tensor, mask: Tensor,
                           starts: Tensor | None, order: int | None,
                           state: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """(B, T) float32 log p(targets | inputs so far) where ``mask`` (0 elsewhere), by
        stepping the window; with ``order`` K < n-1 only the last K tokens are seen. Also the
        (B, order) final state (``order`` None; else None, as for the RNN)."""
        state = self.start(inputs.shape[0]) if state is None else state
        forget = torch.arange(self.order) < self.order - (order or self.order)
        out = torch.zeros(inputs.shape, dtype=torch.float32)
        for t in range(inputs.shape[1]):
            if starts is not None:
                state = torch.where(starts[:, t, None], -1, state)
            state = self.step(state, inputs[:, t])
            rows = mask[:, t].nonzero().squeeze(1)
            out[rows, t] = self.token_log_probs(state.masked_fill(forget, -1), rows,
                                                targets[rows, t])
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
