"""The old LM that rescoring takes out of the graph cost: an ARPA file, or the ``G.fst`` of a Kaldi
lang dir read back into the n-gram it encodes, either one an :class:`NgramLM`.

A G.fst made by Kaldi's arpa2fst (``utils/format_lm.sh``) has a state per n-gram history. A word
arc from history h carries ``-ln p(w | h)`` and leads to the longest suffix of h w that is a
history; a state's one back-off arc (output epsilon; input ``#0`` or epsilon) carries
``-ln backoff(h)`` and leads to h without its first word; a final cost is ``-ln p(</s> | h)``.
Following the back-off arcs gives each state's order, and the word arcs that raise the order by
one spell every history: the arcs are then the n-grams, as Kaldi's
``BackoffDeterministicOnDemandFst`` reads them. With arpa2fst's ``--disambig-symbol`` the FST
starts in the ``<s>`` history (Kaldi's lang dirs); without it, its start state has one ``<s>``
arc and ``</s>`` is an arc into a final state: both forms are read. Every arc is checked to
lead where the n-gram semantics says, so the n-gram scores exactly what the FST scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmrescore.errors import InputError
from lmrescore.formats.kaldi_binary import FST_MAGIC_BYTES
from lmrescore.formats.openfst import StdFst, read_std_fst
from lmrescore.lm.arpa import Arpa, NgramLM, NgramTable
from lmrescore.vocab import BOS, EOS, Vocab

MAX_NGRAM_ORDER = 20  # longest n-gram a G.fst may encode
_MAX_PASSES = 64  # longest run of arcs, none a prefix of the next n-gram, that reach a history
_ARPA_BOS_LOG10 = -99.0  # what ARPA files give <s>, which is never predicted


def load_old_lm(path: str | Path, symbols: Vocab) -> NgramLM:
    """The n-gram of an ARPA file (plain or gzipped) or a binary G.fst over ``symbols``' ids."""
    with open(path, "rb") as f:
        head = f.read(32)
    if head.startswith(FST_MAGIC_BYTES):
        return NgramLM(ngrams_of_fst(read_std_fst(path), symbols, str(path)))
    if b"ConstArpaLm" in head:
        raise InputError(f"{path}: a Kaldi G.carpa (ConstArpaLm) is not supported: give the "
                         "ARPA it was built from, or the lang dir's G.fst")
    return NgramLM.from_file(path)


def _fail(name: str, arc: int | None, what: str) -> InputError:
    where = f"{name}: arc {arc}" if arc is not None else name
    return InputError(f"{where}: {what}: not an n-gram G.fst as arpa2fst writes it")


def ngrams_of_fst(fst: StdFst, symbols: Vocab, name: str = "G.fst") -> Arpa:
    """The n-grams of a back-off G.fst whose word ids are ``symbols``' (see module doc).

    Returns:
        an ``Arpa``, log10 scores, whose vocabulary is the words of ``symbols`` that the FST
        has a 1-gram for (specials added in front where missing, as ``read_arpa`` makes an ARPA
        file's; a word without a 1-gram is ``<unk>``, as with an ARPA).
    Raises:
        InputError: naming ``name`` and the arc, where the FST is not such an n-gram.
    """
    vocab = Vocab(symbols.words + tuple(w for w in (BOS, EOS) if w not in symbols))
    word = fst.olabel != 0
    bad = (word & (fst.ilabel != fst.olabel)) | (fst.olabel < 0) | (fst.olabel >= len(vocab))
    if bad.any():
        a = int(np.argmax(bad))
        raise _fail(name, a, f"labels {fst.ilabel[a]}:{fst.olabel[a]} are neither a word of "
                             f"the {len(symbols)} symbols on both sides nor a back-off")
    g = _Backoffs.of(fst, np.flatnonzero(~word), name)
    out = np.flatnonzero(fst.src == fst.start)
    opening = out.shape[0] == 1 and fst.olabel[out[0]] == vocab.bos  # start --<s>--> history
    entry = int(fst.dst[out[0]]) if opening else fst.start
    arcs = np.flatnonzero(word & (fst.src != (fst.start if opening else -1)))
    hist, known = _histories(fst, g, arcs, entry, vocab.bos, name)
    arcs = arcs[known[fst.src[arcs]]]  # arcs out of states the start cannot reach: never taken
    src, dst = fst.src[arcs], fst.dst[arcs]
    spelled = np.concatenate([hist[src, 1:], fst.olabel[arcs, None]], axis=1)
    _check_arcs(fst, g, hist, known, arcs, spelled, entry, name)

    # the n-grams: each word arc, each final cost of a history; back-offs on the histories
    tree = g.depth[dst] == g.depth[src] + 1  # h --w--> (h, w): the n-gram (h, w) is a history
    history = known & (g.depth >= 1)
    history[g.root] = True  # (not the end state of arpa2fst's form without #0: </s> leads there)
    finals = np.flatnonzero(history & np.isfinite(fst.final))
    ends = np.concatenate([hist[finals, 1:], np.full((len(finals), 1), vocab.eos)], axis=1)
    rows = np.concatenate([spelled, ends, hist[[entry]]])
    order = np.concatenate([g.depth[src], g.depth[finals], [0]]) + 1
    cost = np.concatenate([fst.cost[arcs], fst.final[finals], [0.0]]).astype(np.float64)
    prob = -cost / math.log(10)
    prob[-1] = _ARPA_BOS_LOG10  # <s> is a history, never a prediction
    bo = np.concatenate([np.where(tree, g.cost[dst], 0.0), np.zeros(len(finals)),
                         [g.cost[entry]]])
    line = np.concatenate([arcs, -1 - finals, [-1 - entry]])
    keep = slice(None) if entry != g.root else slice(-1)  # a unigram G starts at its root
    return _tables(rows[keep], order[keep], prob[keep], bo[keep], line[keep], vocab, name)


@dataclass
class _Backoffs:
    """Each state's back-off arc (target, cost; -1 and 0 where none), its order (the length
    of its back-off chain) and the null history (the end of every chain).

    Attributes:
        target, cost, depth: (S,) per state; arcs: the back-off arcs' indices; root: a state.
    """

    target: np.ndarray
    cost: np.ndarray
    arcs: np.ndarray
    depth: np.ndarray
    root: int

    @classmethod
    def of(cls, fst: StdFst, arcs: np.ndarray, name: str) -> "_Backoffs":
        num_states = fst.final.shape[0]
        if np.unique(fst.src[arcs]).shape[0] != arcs.shape[0]:
            raise _fail(name, None, "a state has two back-off arcs")
        target = np.full(num_states, -1, np.int64)
        cost = np.zeros(num_states)
        target[fst.src[arcs]] = fst.dst[arcs]
        cost[fst.src[arcs]] = fst.cost[arcs]
        depth = np.zeros(num_states, np.int64)
        for _ in range(MAX_NGRAM_ORDER + 1):
            new = np.where(target >= 0, depth[target] + 1, 0)
            if (new == depth).all():
                break
            depth = new
        else:
            raise _fail(name, None, f"back-off chains longer than {MAX_NGRAM_ORDER} (or a cycle)")
        root = fst.start
        while num_states and target[root] >= 0:
            root = int(target[root])
        return cls(target, cost, arcs, depth, root)

    def arc_of(self, fst: StdFst, state: int) -> int:
        """The back-off arc of ``state``."""
        return int(self.arcs[np.argmax(fst.src[self.arcs] == state)])


def _histories(fst: StdFst, g: _Backoffs, arcs: np.ndarray, entry: int, bos: int, name: str
               ) -> tuple[np.ndarray, np.ndarray]:
    """(S, W+1) each state's history, right-aligned (-1 before it), and (S,) whether it is
    known: spelled forward from the null history and the ``<s>`` state along ``arcs`` (word
    arcs) and the back-off arcs, one pass per arc of distance."""
    width = int(g.depth.max(initial=0))
    col = np.arange(width + 1)
    hist = np.full((fst.final.shape[0], width + 1), -1, np.int64)
    known = np.zeros(fst.final.shape[0], bool)
    known[g.root] = True
    if g.depth[entry] == 1:
        hist[entry, -1], known[entry] = bos, True
    src, dst, w = fst.src[arcs], fst.dst[arcs], fst.olabel[arcs]
    bo_src = np.flatnonzero(g.target >= 0)
    for _ in range(_MAX_PASSES):
        new = np.flatnonzero(known[src] & ~known[dst])
        new_bo = bo_src[known[bo_src] & ~known[g.target[bo_src]]]
        if not (new.size or new_bo.size):
            return hist, known
        spelled = np.concatenate([hist[src[new], 1:], w[new, None]], axis=1)
        hist[dst[new]] = np.where(col >= width + 1 - g.depth[dst[new], None], spelled, -1)
        hist[g.target[new_bo]] = np.where(col > width + 1 - g.depth[new_bo, None], hist[new_bo],
                                          -1)
        known[dst[new]] = known[g.target[new_bo]] = True
    raise _fail(name, None, f"histories not spelled within {_MAX_PASSES} arcs of the start")


def _check_arcs(fst: StdFst, g: _Backoffs, hist: np.ndarray, known: np.ndarray,
                arcs: np.ndarray, spelled: np.ndarray, entry: int, name: str) -> None:
    """Every live arc leads where the n-gram semantics says: a word arc to the longest suffix
    of its n-gram that is a state, a back-off arc to its history without the first word; and
    only a history that is an n-gram (or ``<s>``) has a back-off weight, as in an ARPA."""
    src, dst = fst.src[arcs], fst.dst[arcs]
    col = np.arange(hist.shape[1])
    off = ((spelled != hist[dst]) & (col >= hist.shape[1] - g.depth[dst][:, None])).any(1)
    off |= g.depth[dst] > g.depth[src] + 1
    if off.any():
        raise _fail(name, int(arcs[np.argmax(off)]), "it leads to a state whose history is not "
                                                     "a suffix of its n-gram")
    has_bo = np.flatnonzero(known & (g.target >= 0))
    wrong = (np.where(col > hist.shape[1] - g.depth[has_bo, None], hist[has_bo], -1)
             != hist[g.target[has_bo]]).any(1)
    if wrong.any():
        raise _fail(name, g.arc_of(fst, int(has_bo[np.argmax(wrong)])),
                    "a back-off arc that does not drop its history's first word")
    is_ngram = np.zeros(known.shape[0], bool)
    is_ngram[dst[g.depth[dst] == g.depth[src] + 1]] = True
    is_ngram[[g.root, entry]] = True
    blank = known & ~is_ngram & (g.cost != 0)
    if blank.any():
        raise _fail(name, g.arc_of(fst, int(np.argmax(blank))),
                    "a back-off weight on a history that no arc spells as an n-gram")


def _tables(rows: np.ndarray, order: np.ndarray, prob: np.ndarray, backoff: np.ndarray,
            line: np.ndarray, vocab: Vocab, name: str) -> Arpa:
    """The ``Arpa`` of n-gram rows (right-aligned ids of ``vocab``; natural-log back-offs as
    costs) over the words with a 1-gram, each order's table in id order."""
    if not np.isfinite(prob).all():
        raise _fail(name, None, "a cost that is not finite")
    has = np.unique(rows[order == 1, -1])
    own = Vocab.from_words(vocab.words[i] for i in has)
    new_id = np.full(len(vocab) + 1, -1, np.int64)  # (index -1: no word)
    new_id[has] = [own.ids[vocab.words[i]] for i in has]
    tables = []
    for k in range(1, int(order.max(initial=1)) + 1):
        at = np.flatnonzero(order == k)
        ids = new_id[rows[at, rows.shape[1] - k:]]
        by = np.lexsort(ids.T[::-1]) if at.size else at
        ids, at = ids[by], at[by]
        dup = np.flatnonzero((ids[1:] == ids[:-1]).all(1))
        if dup.size:
            raise _fail(name, _arc_or_none(line[at[dup[0] + 1]]), f"a {k}-gram met twice")
        if (ids < 0).any():
            raise _fail(name, _arc_or_none(line[at[np.argmax((ids < 0).any(1))]]),
                        f"a {k}-gram of a word that has no 1-gram")
        tables.append(NgramTable(ids, prob[at], -backoff[at] / math.log(10), line[at]))
    return Arpa(name, own, tables)


def _arc_or_none(line: int) -> int | None:
    """The arc an n-gram row came from (final costs and ``<s>`` have none)."""
    return int(line) if line >= 0 else None
