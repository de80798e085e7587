"""Kaldi ``Lattice`` / ``CompactLattice`` values as arrays, and the mapping to our lattices.

The binary (OpenFst ``vector`` FST) codec is :mod:`lmrescore.formats.kaldi_binary`, the text
form :mod:`lmrescore.formats.kaldi_text`, archives and rspecifiers
:mod:`lmrescore.formats.archive`. All of them map a value to a
:class:`~lmrescore.lattice.lattice.Lattice` here:

- A LatticeWeight is (graph cost, acoustic cost); ``lm = -graph_cost``, ``am = -acoustic_cost``.
- Kaldi states keep their numbers (the start state is moved to 0 if it is not there); a new
  final state is appended and each Kaldi final weight becomes a label -1 arc into it.
- CompactLattice: ``label`` = the word. Lattice: ``label`` = the olabel (word).
- Transition ids go to the ragged arc attribute ``"transition_ids"``: a CompactLattice arc's
  string, or a Lattice arc's ilabel (an empty list when the ilabel is 0). Final weights' strings
  sit on the -1 arcs. Reading then writing the same kind is lossless (scores to the bit).
- Writing a Lattice from arcs holding several transition ids expands them as Kaldi's
  ``ConvertLattice`` does (:func:`expand_strings`).
"""

from __future__ import annotations

import numpy as np
import torch

from lmrescore.errors import InputError
from lmrescore.lattice.lattice import FINAL_LABEL, Lattice
from lmrescore.lattice.ragged import ragged_arange
from lmrescore.vocab import Vocab

TIDS = "transition_ids"


class EntryError(InputError):
    """A bad Kaldi value; ``end`` is where the next archive entry starts, or None if unknown."""

    def __init__(self, message: str, end: int | None) -> None:
        super().__init__(message)
        self.end = end


class Truncated(EntryError):
    """A value the data ends inside of: more data could read otherwise. ``need``: where the
    data would have to reach at least (an offset of the same buffer as ``end``'s); ``guess``:
    where the value probably ends (None: no better guess than ``need``)."""

    def __init__(self, message: str, need: int, guess: int | None = None) -> None:
        super().__init__(message, None)
        self.need, self.guess = need, guess


def decode_key(raw: bytes) -> tuple[str, bool]:
    """An archive key as text, and whether it is UTF-8: if not, its bytes are shown as ``\\xNN``
    and the entry fails alone (two such keys could otherwise read as one id)."""
    try:
        return raw.decode("utf-8"), True
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace"), False


def to_lattice(utt_id: str, num_states: int, start: int, src: np.ndarray, dst: np.ndarray,
               word: np.ndarray, graph: np.ndarray, acoustic: np.ndarray, tid_values: np.ndarray,
               tid_counts: np.ndarray, final_state: np.ndarray, final_graph: np.ndarray,
               final_acoustic: np.ndarray, final_tid_values: np.ndarray,
               final_tid_counts: np.ndarray, symbols: Vocab | None, where: str) -> Lattice:
    """Build a one-lattice batch from Kaldi arcs and final weights.

    Args:
        num_states: S Kaldi states; ``start`` the Kaldi start state.
        src, dst, word, graph, acoustic: (A,) arcs (costs); tid_values/tid_counts: ragged (A,).
        final_state, final_graph, final_acoustic: (F,) states with a non-Zero final weight.
        where: "archive offset N" or "line N", for error messages.
    Returns:
        A batch of one lattice with S+1 states (the last is the new final state).
    """
    if num_states == 0 or start < 0 or start >= num_states:
        raise InputError(f"utterance {utt_id} ({where}): empty lattice or no start state")
    if final_state.size == 0:
        raise InputError(f"utterance {utt_id} ({where}): lattice has no final state")
    bad = (dst < 0) | (dst >= num_states)
    if bad.any():
        a = int(bad.argmax())
        raise InputError(f"utterance {utt_id} ({where}): arc {a} goes to state {int(dst[a])}, "
                         f"outside 0..{num_states - 1}")
    if (word < 0).any():
        raise InputError(f"utterance {utt_id} ({where}): negative word label {int(word.min())}")
    if symbols is not None and word.size and int(word.max()) >= len(symbols):
        raise InputError(f"utterance {utt_id} ({where}): word id {int(word.max())} is not in "
                         f"the symbol table ({len(symbols)} words)")
    perm = np.arange(num_states + 1)
    if start != 0:  # the start state must come first
        perm[:start] += 1
        perm[start] = 0
    a_src = np.concatenate([perm[src], perm[final_state]])
    a_dst = np.concatenate([perm[dst], np.full(final_state.size, num_states)])
    label = np.concatenate([word, np.full(final_state.size, FINAL_LABEL)])
    lm = -np.concatenate([graph, final_graph]).astype(np.float32)
    am = -np.concatenate([acoustic, final_acoustic]).astype(np.float32)
    counts = np.concatenate([tid_counts, final_tid_counts]).astype(np.int64)
    # arcs first, then final weights: keep each lattice's arcs grouped by source state
    order = np.argsort(a_src, kind="stable")
    values = np.concatenate([tid_values, final_tid_values]).astype(np.int64)
    counts_out = counts[order]
    ends = np.cumsum(counts_out)
    starts = (np.cumsum(counts) - counts)[order]
    values_out = values[np.arange(int(ends[-1])) + np.repeat(starts - ends + counts_out,
                                                              counts_out)]
    # the checks above are those of Lattice.from_arcs: build the batch of one directly
    t = torch.from_numpy
    return Lattice(src=t(a_src[order]), dst=t(a_dst[order]), label=t(label[order]),
                   scores={"am": t(am[order]), "lm": t(lm[order])},
                   state_splits=torch.tensor([0, num_states + 1]),
                   arc_splits=torch.tensor([0, order.shape[0]]), utt_ids=[utt_id],
                   symbols=symbols,
                   ragged_arc_attrs={TIDS: (t(values_out), t(np.concatenate([[0], ends])))})


def from_lattice(lat: Lattice) -> dict[str, np.ndarray | int]:
    """Kaldi arrays of a one-lattice batch (inverse of :func:`to_lattice`).

    Returns:
        dict with ``num_states`` S, per-arc (A,) ``src dst word graph acoustic tid_counts``,
        ragged ``tid_values``, and per-state (S,) ``final_graph final_acoustic`` (inf = not
        final), ``final_tid_counts``, ragged ``final_tid_values``. Arcs sorted by source state.
    """
    s0 = int(lat.state_splits[0])
    n = int(lat.state_splits[1]) - s0
    src = (lat.src - s0).numpy()
    dst = (lat.dst - s0).numpy()
    label = lat.label.numpy()
    am = lat.scores["am"].numpy() if "am" in lat.scores else np.zeros(src.size, np.float32)
    lm = lat.scores["lm"].numpy() if "lm" in lat.scores else np.zeros(src.size, np.float32)
    if TIDS in lat.ragged_arc_attrs:
        values, splits = (t.numpy() for t in lat.ragged_arc_attrs[TIDS])
    else:
        values, splits = np.zeros(0, np.int64), np.zeros(src.size + 1, np.int64)
    counts = np.diff(splits)
    is_final = label == FINAL_LABEL
    final_src = src[is_final]
    # Kaldi has one final weight per state and no arcs leave the final state; otherwise keep our
    # final state as a Kaldi state (final weight One) reached by epsilon arcs.
    keep_final = (np.unique(final_src).size != final_src.size) or bool((src == n - 1).any())
    if keep_final:
        is_final = np.zeros_like(is_final)
        label = np.where(label == FINAL_LABEL, 0, label)
        num_states = n
    else:
        num_states = n - 1
    final_graph = np.full(num_states, np.inf, np.float32)
    final_acoustic = np.full(num_states, np.inf, np.float32)
    final_counts = np.zeros(num_states, np.int64)
    fidx = np.nonzero(is_final)[0]
    final_graph[src[fidx]] = -lm[fidx]
    final_acoustic[src[fidx]] = -am[fidx]
    final_counts[src[fidx]] = counts[fidx]
    if keep_final:
        final_graph[n - 1] = 0.0
        final_acoustic[n - 1] = 0.0
    # final strings in state order
    fstate_order = fidx[np.argsort(src[fidx], kind="stable")]
    final_values = values[ragged_arange(torch.from_numpy(splits[:-1][fstate_order]),
                                        torch.from_numpy(counts[fstate_order])).numpy()]
    aidx = np.nonzero(~is_final)[0]
    aidx = aidx[np.argsort(src[aidx], kind="stable")]
    arc_values = values[ragged_arange(torch.from_numpy(splits[:-1][aidx]),
                                      torch.from_numpy(counts[aidx])).numpy()]
    return {"num_states": num_states, "src": src[aidx], "dst": dst[aidx], "word": label[aidx],
            "graph": -lm[aidx], "acoustic": -am[aidx], "tid_counts": counts[aidx],
            "tid_values": arc_values, "final_graph": final_graph,
            "final_acoustic": final_acoustic, "final_tid_counts": final_counts,
            "final_tid_values": final_values}


def expand_strings(k: dict) -> dict:
    """Kaldi arrays of a CompactLattice as those of the Lattice Kaldi's ConvertLattice makes.

    As ``ConvertLatticeFromCompact`` with ``invert`` (src/fstext/lattice-utils-inl.h): an arc
    with string t1..tn (n > 1) becomes a chain of n arcs through n-1 new states, ilabel ti, the
    word and the weight on the first arc, word 0 and weight One on the others; n <= 1 gives one
    arc (ilabel t1, or 0). A final weight with a string t1..tn becomes a chain of n word-0 arcs
    (the weight on the first) to a new state whose final weight is One. New states are
    numbered after the old ones in Kaldi's order: by state, its final chain, then its arcs.

    Args:
        k: as :func:`from_lattice` returns.
    Returns:
        the same keys, every ``tid_counts`` at most 1 and no final strings.
    """
    s = k["num_states"]
    fin = np.nonzero(~(np.isposinf(k["final_graph"]) & np.isposinf(k["final_acoustic"])))[0]
    num_f, num_a = fin.shape[0], k["src"].shape[0]
    # items: the final weights of the final states, then the arcs; Kaldi visits them by state,
    # final weight first, arcs in order
    src = np.concatenate([fin, k["src"]])
    is_fin = np.arange(num_f + num_a) < num_f
    length = np.concatenate([k["final_tid_counts"][fin], k["tid_counts"]]).astype(np.int64)
    fin_starts = (np.cumsum(k["final_tid_counts"]) - k["final_tid_counts"])[fin]
    arc_starts = np.cumsum(k["tid_counts"]) - k["tid_counts"] + k["final_tid_values"].shape[0]
    starts = np.concatenate([fin_starts, arc_starts])
    values = np.concatenate([k["final_tid_values"], k["tid_values"]]).astype(np.int64)
    visit = np.lexsort((~is_fin, src))
    new = np.where(is_fin, length, np.maximum(length - 1, 0))
    first_new = np.empty_like(new)
    first_new[visit] = s + np.cumsum(new[visit]) - new[visit]
    # output arcs: item i gives m_i arcs, j = 0 .. m_i - 1
    m = np.where(is_fin, length, np.maximum(length, 1))
    item = np.repeat(np.arange(m.shape[0]), m)
    j = np.arange(item.shape[0]) - np.repeat(np.cumsum(m) - m, m)
    last = j == m[item] - 1
    out_src = np.where(j == 0, src[item], first_new[item] + j - 1)
    arc_dst = np.concatenate([np.zeros(num_f, np.int64), k["dst"]])
    out_dst = np.where(last & ~is_fin[item], arc_dst[item], first_new[item] + j)
    word = np.concatenate([np.zeros(num_f, np.int64), k["word"]])
    out_word = np.where(j == 0, word[item], 0)
    has_tid = length[item] > 0
    tid = values[np.where(has_tid, starts[item] + j, 0)] if values.size else \
        np.zeros(item.shape[0], np.int64)
    graph = np.concatenate([k["final_graph"][fin], k["graph"]]).astype(np.float32)
    acoustic = np.concatenate([k["final_acoustic"][fin], k["acoustic"]]).astype(np.float32)
    out_graph = np.where(j == 0, graph[item], np.float32(0))
    out_acoustic = np.where(j == 0, acoustic[item], np.float32(0))
    # file order: by state; a state's final chain first, then its arcs in order
    rank = np.empty_like(visit)
    rank[visit] = np.arange(visit.shape[0])
    order = np.lexsort((j, rank[item], out_src))
    num_states = s + int(new.sum())
    final_graph = np.full(num_states, np.inf, np.float32)
    final_acoustic = np.full(num_states, np.inf, np.float32)
    plain = fin[length[:num_f] == 0]  # final weights without a string stay where they are
    final_graph[plain] = k["final_graph"][plain]
    final_acoustic[plain] = k["final_acoustic"][plain]
    chain_end = (first_new + length - 1)[:num_f][length[:num_f] > 0]
    final_graph[chain_end] = 0.0
    final_acoustic[chain_end] = 0.0
    tid_out = np.where(has_tid, tid, 0)[order]
    return {"num_states": num_states, "src": out_src[order], "dst": out_dst[order],
            "word": out_word[order], "graph": out_graph[order],
            "acoustic": out_acoustic[order], "tid_counts": (tid_out != 0).astype(np.int64),
            "tid_values": tid_out[tid_out != 0], "final_graph": final_graph,
            "final_acoustic": final_acoustic, "final_tid_counts": np.zeros(num_states, np.int64),
            "final_tid_values": np.zeros(0, np.int64)}


def single_tids(k: dict) -> np.ndarray:
    """(A,) the single transition id of each arc of a Lattice (0 where none)."""
    out = np.zeros(k["tid_counts"].shape[0], np.int64)
    has = k["tid_counts"] > 0
    out[has] = k["tid_values"]
    return out
