"""k2 ``.pt`` files as data: k2's pickled RaggedTensor without k2, tensors checked, word chains.

What k2 stores (k2 source, checked): ``Fsa.as_dict`` (k2/python/k2/fsa.py) puts every tensor
attribute into the dict as it is, so a ragged ``aux_labels`` is a ``k2.RaggedTensor`` object,
the pybind11 class ``_k2.ragged.RaggedTensor`` (k2/python/csrc/torch/v2/any.cu). Its
``py::pickle`` ``__getstate__`` is the tuple ``(row_splits1, "row_ids1", values)`` for two axes
(int32 row splits, values of the tensor's dtype); ``torch.save`` pickles it as the global
``_k2.ragged.RaggedTensor``, an empty NEWOBJ, then BUILD with that tuple. ``Fsa.from_dict``
passes ``aux_labels`` to ``Fsa(arcs, aux_labels)``, which takes a 1-D int32 tensor or a
``k2.RaggedTensor`` with one row per arc.

``torch.load(weights_only=True)`` refuses that global (icefall issue #1981). We load with a
stand-in class of ours allowlisted under that one name: its ``__setstate__`` only keeps the
tuple, so nothing of the file runs. We write the same opcodes, so k2 loads our files with
``k2.Fsa.from_dict(torch.load(path, weights_only=False))``.

Our Lattice has one word per arc. A k2 arc with words ``[w1 .. wm]`` becomes a chain of m arcs
through m-1 new states (its scores and other attributes on the first arc, 0, k2's "filler", on
the others); no word: one arc labelled 0; an arc into the final state: its words, then the -1
arc. The per-arc attribute ``aux_labels_chain`` (int8) records how to merge them back: bit 0 =
the arc continues the k2 arc of the arc before it, bit 1 = its label stands for no word (an
empty list, or a final arc whose list had no -1). Writing merges a continuation arc into the arc
before it when its source state has that one arc in and one out; rescored lattices, whose
chains were expanded or determinized, merge wherever that still holds, and stay exact anyway.
"""

from __future__ import annotations

import copyreg
import pickle
import types
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lmrescore.errors import InputError
from lmrescore.lattice.lattice import Lattice, derive
from lmrescore.lattice.ragged import ragged_arange, splits_of

CHAIN = "aux_labels_chain"
_K2_GLOBAL = "_k2.ragged.RaggedTensor"


class K2RaggedTensor:
    """A k2.RaggedTensor with two axes as data: (R+1,) int32 row splits and (N,) values."""

    def __init__(self, row_splits: Tensor, values: Tensor) -> None:
        self.state: tuple[Any, ...] = (row_splits.int(), "row_ids1", values)

    def __setstate__(self, state: Any) -> None:
        self.state = state  # checked by ragged_parts before any use

    def __reduce_ex__(self, protocol: int) -> tuple[Any, ...]:
        return copyreg.__newobj__, (type(self),), self.state


class _Pickler(pickle._Pickler):  # the pure-Python pickler: its save_global can be overridden
    def save_global(self, obj: Any, name: str | None = None) -> None:
        if obj is K2RaggedTensor:  # k2's name, as k2 writes it; _k2 need not be importable here
            module, cls = _K2_GLOBAL.rsplit(".", 1)
            self.write(pickle.GLOBAL + f"{module}\n{cls}\n".encode())
            self.memoize(obj)
            return
        super().save_global(obj, name)


_PICKLE = types.ModuleType("lmrescore_k2_pickle")  # what torch.save takes as pickle_module
_PICKLE.Pickler = _Pickler  # type: ignore[attr-defined]


def save(obj: Any, f: Any) -> None:
    """``torch.save`` with k2's pickling of :class:`K2RaggedTensor`."""
    torch.save(obj, f, pickle_module=_PICKLE)


def _tensors(obj: Any) -> list[Tensor]:
    """Every tensor in ``obj`` (dicts, lists, tuples, k2 ragged tensors), without recursion."""
    out, todo = [], [obj]
    while todo:
        x = todo.pop()
        if isinstance(x, Tensor):
            out.append(x)
        elif isinstance(x, dict):
            todo.extend(x.values())
        elif isinstance(x, (list, tuple)):
            todo.extend(x)
        elif isinstance(x, K2RaggedTensor):
            todo.append(x.state)
    return out


def load(path: str | Path) -> Any:
    """``torch.load(path, weights_only=True)`` reading k2's RaggedTensor as
    :class:`K2RaggedTensor`, every tensor's storage checked to hold its elements.

    Raises:
        InputError: the file cannot be unpickled as data, or a tensor claims more elements than
            its storage holds (a stride-0 view: ``torch.zeros(4).expand(2**31, 4)`` would cost
            32 GB on first use), naming the file.
    """
    with torch.serialization.safe_globals([(K2RaggedTensor, _K2_GLOBAL)]):
        obj = torch.load(path, map_location="cpu", weights_only=True)
    for t in _tensors(obj):
        need = t.numel() * t.element_size()
        have = t.untyped_storage().nbytes()
        if need > have:
            raise InputError(f"{path}: a {t.dtype} tensor of shape {tuple(t.shape)} (strides "
                             f"{t.stride()}) claims {need} bytes but its storage holds {have}: "
                             "refused before use")
    return obj


def ragged_parts(r: object, num_rows: int, name: str, key: str) -> tuple[Tensor, Tensor]:
    """(values (N,) int64, row splits (num_rows+1,) int64) of a k2 ragged tensor, checked.

    Raises:
        InputError: not a two-axis integer ragged tensor of ``num_rows`` rows, naming ``key``.
    """
    state = r.state if isinstance(r, K2RaggedTensor) else None
    ok = isinstance(state, tuple) and len(state) == 3
    splits, values = (state[0], state[2]) if ok else (None, None)
    ok = ok and isinstance(splits, Tensor) and isinstance(values, Tensor) and all(
        t.dim() == 1 and t.dtype != torch.bool and not t.is_floating_point()
        and not t.is_complex() for t in (splits, values)) and splits.shape == (num_rows + 1,)
    if ok:
        splits = splits.long()
        ok = (int(splits[0]) == 0 and int(splits[-1]) == values.shape[0]
              and bool((splits[1:] >= splits[:-1]).all()))
    if not ok:
        raise InputError(f"{name}: {key!r} must be a k2 RaggedTensor of integers with "
                         f"{num_rows} rows (one per arc; state (row_splits, 'row_ids1', values) "
                         "with row splits rising from 0 to len(values))")
    return values.long(), splits


def chains(words: Tensor, word_splits: Tensor, final: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Each k2 arc's chain of one-word arcs (see module doc).

    Args:
        words, word_splits: the ragged [arc][word] aux_labels: (N,) and (A+1,).
        final: (A,) bool, the arcs whose k2 label is -1 (into the final state).
    Returns:
        (A+1,) splits [k2 arc][chain arc]; (A',) label and (A',) int8 ``aux_labels_chain`` of
        each chain arc.
    """
    num_arcs = final.shape[0]
    row = torch.repeat_interleave(torch.arange(num_arcs), word_splits.diff())
    minus = (words == -1) & final[row]
    had_minus = torch.zeros(num_arcs, dtype=torch.bool)
    had_minus[row[minus]] = True
    kept, kept_row = words[~minus], row[~minus]
    count = torch.bincount(kept_row, minlength=num_arcs)
    n = torch.where(final, count + 1, count.clamp(min=1))
    splits = splits_of(n)
    arc = torch.repeat_interleave(torch.arange(num_arcs), n)
    pos = torch.arange(arc.shape[0]) - splits[arc]
    is_word = pos < count[arc]
    idx = (splits_of(count)[:-1][arc] + pos).clamp(max=max(kept.shape[0] - 1, 0))
    filler = torch.where(final[arc], -1, 0)
    label = torch.where(is_word, kept[idx] if kept.numel() else filler, filler)
    no_word = ~is_word & ~(final[arc] & had_minus[arc])
    chain = (pos > 0).to(torch.int8) | (no_word.to(torch.int8) << 1)
    return splits, label, chain


def merge_chains(lat: Lattice) -> tuple[Lattice, Tensor, Tensor]:
    """``lat`` with its word chains merged back into k2 arcs, and the k2 arcs' words.

    Args:
        lat: a batch carrying the ``aux_labels_chain`` arc attribute.
    Returns:
        the merged batch (without that attribute; its labels are those of each chain's first
        arc), and the ragged [arc][word] aux_labels: (N,) values, (A'+1,) splits.
    """
    s, a = lat.num_states, lat.num_arcs
    mark = lat.arc_attrs[CHAIN].to(torch.int8)
    inner = ((torch.bincount(lat.dst, minlength=s) == 1)
             & (torch.bincount(lat.src, minlength=s) == 1))
    inner[lat.start_states[lat.nonempty()]] = False
    cont = ((mark & 1) == 1) & inner[lat.src]
    if "labels" in lat.arc_attrs:
        cont &= lat.arc_attrs["labels"] == 0
    entering = torch.zeros(s, dtype=torch.int64)
    entering[lat.dst] = torch.arange(a)
    for _ in range(2):  # a second pass only after dropping cycles of chain arcs (unreachable)
        pred = torch.where(cont, entering[lat.src], torch.arange(a))
        depth = cont.long()
        for _ in range(a.bit_length() + 1):  # pointer jumping to each chain's first arc
            if torch.equal(pred[pred], pred):
                break
            depth = depth + depth[pred]
            pred = pred[pred]
        cyclic = pred[pred] != pred
        if not cyclic.any():
            break
        cont &= ~cyclic
    head = ~cont
    group = (head.cumsum(0) - 1)[pred]
    order = torch.argsort(group * (int(depth.max()) + 1 if a else 1) + depth, stable=True)
    num = int(head.sum())
    arc_splits_chain = splits_of(torch.bincount(group, minlength=num))
    last = order[arc_splits_chain[1:] - 1]
    keep = torch.ones(s, dtype=torch.bool)
    keep[lat.src[cont]] = False
    new_id = keep.cumsum(0) - 1
    keep_cum = torch.cat([torch.zeros(1, dtype=torch.int64), keep.cumsum(0)])
    head_cum = torch.cat([torch.zeros(1, dtype=torch.int64), head.cumsum(0)])
    heads = head.nonzero()[:, 0]
    scores = {k: torch.zeros(num, dtype=v.dtype).index_add_(0, group, v)
              for k, v in lat.scores.items()}
    merged = derive(lat, new_id[lat.src[heads]], new_id[lat.dst[last]], heads,
                    keep.nonzero()[:, 0], keep_cum[lat.state_splits], head_cum[lat.arc_splits],
                    scores=scores, arc_strings=(order, arc_splits_chain))
    merged.arc_attrs.pop(CHAIN)
    says = (mark[order] & 2) == 0
    words = lat.label[order][says]
    word_splits = splits_of(torch.bincount(group[order][says], minlength=num))
    return merged, words, word_splits


def expand_rows(splits: Tensor, arc: Tensor, first: Tensor) -> tuple[Tensor, Tensor]:
    """Value indices and row splits of a ragged per-arc attribute on the chain arcs: each
    chain's first arc (``first``) takes its k2 arc's row ``arc``, the others none."""
    counts = (splits[arc + 1] - splits[arc]) * first
    return ragged_arange(splits[arc], counts), splits_of(counts)


def expand(local_src: Tensor, local_dst: Tensor, token: Tensor, words: Tensor,
           word_splits: Tensor, state_splits: Tensor, arc_splits: Tensor,
           has_state_attrs: bool) -> dict[str, Tensor]:
    """The chain arcs of a batch of k2 arcs with ragged words (see module doc).

    Each FSA's new states come after its states but its final (last) state, which stays last;
    a state id outside the FSA stays outside it, so the per-FSA checks still see it.

    Args:
        local_src, local_dst, token: (A,) the k2 arcs (FSA-local state ids, k2 labels).
        words, word_splits: ragged [arc][word] aux_labels, (N,) and (A+1,).
        state_splits, arc_splits: (L+1,) the batch's row splits.
        has_state_attrs: also return ``state_map`` (S',) (else states are not enumerated).
    Returns:
        ``arc`` (A',) k2 arc of each chain arc, ``first`` (A',) bool, ``label``, ``chain``,
        ``src``/``dst`` (A',) local ids, ``state_splits``/``arc_splits`` (L+1,), and
        ``state_map`` (S',): the state each new state copies (a new one: its k2 arc's source).
    """
    splits, label, chain = chains(words, word_splits, token == -1)
    n = splits.diff()
    arc = torch.repeat_interleave(torch.arange(n.shape[0]), n)
    pos = torch.arange(arc.shape[0]) - splits[arc]
    num_fsas = state_splits.shape[0] - 1
    fsa = torch.repeat_interleave(torch.arange(num_fsas), arc_splits.diff())
    states = state_splits.diff()
    extra = torch.zeros(num_fsas, dtype=torch.int64).index_add_(0, fsa, n - 1)
    extra_before = splits_of(n - 1)
    base = states[fsa] - 1 + extra_before[:-1] - extra_before[arc_splits[:-1]][fsa]

    def move(local: Tensor) -> Tensor:  # the final state, and ids beyond it, move past the new
        return torch.where(local >= states[fsa] - 1, local + extra[fsa], local)

    new_states = splits_of(states + extra)
    out = {"arc": arc, "first": pos == 0, "label": label, "chain": chain,
           "src": torch.where(pos == 0, move(local_src)[arc], base[arc] + pos - 1),
           "dst": torch.where(pos == n[arc] - 1, move(local_dst)[arc], base[arc] + pos),
           "state_splits": new_states, "arc_splits": splits[arc_splits]}
    if has_state_attrs:  # the states are real rows of a stored tensor here: enumerating is safe
        state_map = torch.zeros(int(new_states[-1]), dtype=torch.int64)
        old = torch.arange(int(state_splits[-1]))
        old_fsa = torch.repeat_interleave(torch.arange(num_fsas), states)
        local = old - state_splits[old_fsa]
        state_map[new_states[old_fsa] + torch.where(local >= states[old_fsa] - 1,
                                                    local + extra[old_fsa], local)] = old
        inner = (pos > 0) & (states[fsa] > 0)[arc]
        ok = (local_src >= 0) & (local_src < states[fsa])
        source = state_splits[fsa] + torch.where(ok, local_src, 0)
        state_map[new_states[fsa][arc[inner]] + base[arc[inner]] + pos[inner] - 1] = \
            source[arc[inner]]
        out["state_map"] = state_map
    return out
