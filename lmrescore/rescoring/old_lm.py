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
        has a 1-gram for (in id order; a word without one is ``<unk>``, as with an ARPA).
    Raises:
        InputError: naming ``name`` and the arc, where the FST is not such an n-gram.
    """
    words = symbols.words + tuple(w for w in (BOS, EOS) if w not in symbols)
    vocab = Vocab(words)
    num_states = fst.final.shape[0]
    word = fst.olabel != 0
    bad = (word & (fst.ilabel != fst.olabel)) | (fst.olabel < 0) | (fst.olabel >= len(vocab))
    if bad.any():
        a = int(np.argmax(bad))
        raise _fail(name, a, f"labels {fst.ilabel[a]}:{fst.olabel[a]} are neither a word of "
                             f"the {len(symbols)} symbols on both sides nor a back-off")
    backoff = np.full(num_states, -1, np.int64)
    bo_cost = np.zeros(num_states)
    bo_arcs = np.flatnonzero(~word)
    if np.unique(fst.src[bo_arcs]).shape[0] != bo_arcs.shape[0]:
        raise _fail(name, None, "a state has two back-off arcs")
    backoff[fst.src[bo_arcs]] = fst.dst[bo_arcs]
    bo_cost[fst.src[bo_arcs]] = fst.cost[bo_arcs]

    depth = np.zeros(num_states, np.int64)  # order of each state's history
    for _ in range(MAX_NGRAM_ORDER + 1):
        new = np.where(backoff >= 0, depth[backoff] + 1, 0)
        if (new == depth).all():
            break
        depth = new
    else:
        raise _fail(name, None, f"back-off chains longer than {MAX_NGRAM_ORDER} (or a cycle)")

    out = np.flatnonzero(fst.src == fst.start)
    opening = out.shape[0] == 1 and fst.olabel[out[0]] == vocab.bos  # start --<s>--> history
    entry = int(fst.dst[out[0]]) if opening else fst.start
    skip = fst.start if opening else -1
    root = entry
    while backoff[root] >= 0:
        root = int(backoff[root])
    width = int(depth.max()) if num_states else 0
    col = np.arange(width + 1)
    hist = np.full((num_states, width + 1), -1, np.int64)  # right-aligned, a spare column
    known = np.zeros(num_states, bool)  # reached from the start: its history spelled
    known[root] = True
    if depth[entry] == 1:
        hist[entry, -1], known[entry] = vocab.bos, True
    arcs = np.flatnonzero(word & (fst.src != skip))
    src, dst, w = fst.src[arcs], fst.dst[arcs], fst.olabel[arcs]
    bo_src = np.flatnonzero(backoff >= 0)
    for _ in range(_MAX_PASSES):  # spell the histories forward from the known states
        new = np.flatnonzero(known[src] & ~known[dst])
        new_bo = bo_src[known[bo_src] & ~known[backoff[bo_src]]]
        if not (new.size or new_bo.size):
            break
        spelled = np.concatenate([hist[src[new], 1:], w[new, None]], axis=1)
        hist[dst[new]] = np.where(col >= width + 1 - depth[dst[new], None], spelled, -1)
        hist[backoff[new_bo]] = np.where(col > width + 1 - depth[new_bo, None], hist[new_bo], -1)
        known[dst[new]] = known[backoff[new_bo]] = True
    else:
        raise _fail(name, None, f"histories not spelled within {_MAX_PASSES} arcs of the start")
    live = known[src]  # arcs out of states the start cannot reach are never taken
    arcs, src, dst, w = arcs[live], src[live], dst[live], w[live]
    # every word arc leads to the longest suffix of (h, w) that is a state
    spelled = np.concatenate([hist[src, 1:], w[:, None]], axis=1)
    off = ((spelled != hist[dst]) & (col >= width + 1 - depth[dst][:, None])).any(1)
    off |= depth[dst] > depth[src] + 1
    if off.any():
        raise _fail(name, int(arcs[np.argmax(off)]), "it leads to a state whose history is not "
                                                     "a suffix of its n-gram")
    has_bo = bo_src[known[bo_src]]  # back-off drops the first word
    wrong = (np.where(col > width + 1 - depth[has_bo, None], hist[has_bo], -1)
             != hist[backoff[has_bo]]).any(1)
    if wrong.any():
        s = int(has_bo[np.argmax(wrong)])
        raise _fail(name, int(bo_arcs[np.argmax(fst.src[bo_arcs] == s)]),
                    "a back-off arc that does not drop its history's first word")
    tree = depth[dst] == depth[src] + 1  # h --w--> (h, w): the n-gram (h, w) is a history
    is_ngram = np.zeros(num_states, bool)
    is_ngram[dst[tree]] = True
    is_ngram[[root, entry]] = True
    blank = known & ~is_ngram & (bo_cost != 0)
    if blank.any():  # a history that is no n-gram has no back-off weight in an ARPA
        s = int(np.argmax(blank))
        raise _fail(name, int(bo_arcs[np.argmax(fst.src[bo_arcs] == s)]),
                    "a back-off weight on a history that no arc spells as an n-gram")

    # the n-grams: each word arc, each final cost of a history; back-offs on the histories
    history = known & (depth >= 1)
    history[root] = True  # (not the end state of arpa2fst's form without #0: </s> leads there)
    finals = np.flatnonzero(history & np.isfinite(fst.final))
    rows = np.concatenate([spelled, np.concatenate(
        [hist[finals, 1:], np.full((finals.shape[0], 1), vocab.eos)], axis=1)])
    order = np.concatenate([depth[src], depth[finals]]) + 1
    cost = np.concatenate([fst.cost[arcs], fst.final[finals]]).astype(np.float64)
    bo = np.concatenate([np.where(tree, bo_cost[dst], 0.0), np.zeros(finals.shape[0])])
    line = np.concatenate([arcs, -1 - finals])
    prob = -cost / math.log(10)
    if entry != root:  # <s> is a history, never a prediction
        rows = np.concatenate([rows, hist[entry][None]])
        order = np.append(order, 1)
        prob, bo = np.append(prob, _ARPA_BOS_LOG10), np.append(bo, bo_cost[entry])
        line = np.append(line, -1 - entry)
    if not np.isfinite(prob).all():
        raise _fail(name, None, "a cost that is not finite")
    tables = []
    for k in range(1, int(order.max(initial=1)) + 1):
        at = np.flatnonzero(order == k)
        ids = rows[at, width + 1 - k:]
        by = np.lexsort(ids.T[::-1]) if at.size else at
        ids, at = ids[by], at[by]
        dup = np.flatnonzero((ids[1:] == ids[:-1]).all(1))
        if dup.size:
            raise _fail(name, _arc_or_none(line[at[dup[0] + 1]]), f"a {k}-gram met twice")
        tables.append(NgramTable(ids, prob[at], -bo[at] / math.log(10), line[at]))
    return _own_words(Arpa(name, vocab, tables))


def _own_words(arpa: Arpa) -> Arpa:
    """``arpa`` over the words it has a 1-gram for (specials added in front where missing), as
    ``read_arpa`` makes an ARPA file's vocabulary."""
    has = np.sort(arpa.tables[0].ids[:, 0])
    vocab = Vocab.from_words(arpa.vocab.words[i] for i in has)
    new_id = np.zeros(len(arpa.vocab), np.int64)
    new_id[has] = [vocab.ids[arpa.vocab.words[i]] for i in has]
    tables = [NgramTable(new_id[t.ids], t.prob, t.backoff, t.lines) for t in arpa.tables]
    for t in tables:  # id order, as NgramLM expects
        by = np.lexsort(t.ids.T[::-1])
        t.ids, t.prob, t.backoff, t.lines = t.ids[by], t.prob[by], t.backoff[by], t.lines[by]
    return Arpa(arpa.path, vocab, tables)


def _arc_or_none(line: int) -> int | None:
    """The arc an n-gram row came from (final costs and ``<s>`` have none)."""
    return int(line) if line >= 0 else None
