"""k2 FSAs saved with ``torch.save(fsa.as_dict(), path)``; k2 itself is never imported.

Layout of ``as_dict()`` (k2's ``fsa_to_tensor``):

- an Fsa: ``arcs`` int32 (A, 4): src, dst, label, score (float32 bits as int32), local state ids;
- an FsaVec: ``arcs`` int32 1-D: ``[num_fsas, 0, row_splits1 (num_fsas+1: states),
  row_splits12 (num_fsas+1: arcs), arcs (A*4)]``, state ids local to each FSA;
- other keys: per-arc tensors (``aux_labels``, ``lm_scores``, ...) and non-tensor attributes.

Mapping: k2 ``scores`` are total log scores, so ``lm = lm_scores`` (0 when absent) and
``am = scores - lm_scores``; we also store ``am_scores`` so a round trip is exact to the bit.
Words are ``aux_labels`` when present (icefall lattices: ``labels`` are tokens, kept as the arc
attribute ``"labels"``), else ``labels``. Other per-arc tensors become arc attributes. Ragged
``aux_labels`` (k2.RaggedTensor: several or no words per arc, as in icefall's HLG lattices) are
read without k2, each arc becoming a chain of one-word arcs, and written back as k2 stores them
(:mod:`lmrescore.formats.k2_ragged`). Other k2.RaggedTensor attributes are not read.

A file we write holds one FsaVec dict plus ``utt_ids`` (list of str), ``state_attrs`` and
``ragged_arc_attrs`` (dicts of tensors): ``k2.Fsa.from_dict(torch.load(path))`` loads it
(``weights_only=False`` when it holds ragged aux_labels, as for k2's own files).
Reading also accepts a single Fsa dict, a list of FSA dicts, or a dict utt_id -> FSA dict.

Untrusted files: every tensor's storage must hold its elements (no stride-0 bombs), else the
file fails as a whole; a file holding no FSA dict at all (a tensor, a list of numbers) is not
lattices, an error for the whole file. The layout (dtype, shapes, row splits, the length of
every per-arc, per-state and ragged attribute, ``utt_ids``) is checked before use; a malformed
dict fails as a whole.
Then each FSA is checked on its own (caps of :mod:`lmrescore.formats.limits`, local state ids
inside the FSA, labels -1..len(symbols)-1 with -1 exactly on the arcs into the last state,
finite scores: k2 scores of -inf are refused, not read as "no arc"); a bad FSA fails alone
with its utterance and arc named, and never reaches its neighbours' states.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lmrescore.atomic import atomic_save
from lmrescore.errors import InputError
from lmrescore.formats import k2_ragged
from lmrescore.formats.k2_ragged import CHAIN, K2RaggedTensor
from lmrescore.formats.limits import MAX_ARCS, MAX_K2_BYTES, MAX_STATES
from lmrescore.lattice.lattice import Lattice
from lmrescore.vocab import Vocab

_RESERVED = {"arcs", "aux_labels", "lm_scores", "am_scores", "utt_ids", "state_attrs",
             "ragged_arc_attrs", "labels"}


def _fsa_arcs(arcs: object, name: str) -> tuple[Tensor, Tensor, Tensor]:
    """Arc rows, state row splits and arc row splits of an Fsa or FsaVec ``arcs`` tensor.

    Only the layout is checked here (shape, dtype, lengths, splits); state ids, labels and the
    caps are checked per FSA by :func:`_fsa_problems`.

    Returns:
        (A, 4) int32 arcs with local state ids; (L+1,) state splits; (L+1,) arc splits.
    Raises:
        InputError: a malformed tensor, naming ``name``.
    """
    if not isinstance(arcs, Tensor) or arcs.dtype != torch.int32:
        got = f"{arcs.dtype} tensor" if isinstance(arcs, Tensor) else type(arcs).__name__
        raise InputError(f"{name}: 'arcs' must be an int32 tensor, got a {got}")
    if arcs.dim() == 2:
        if arcs.shape[1] != 4:
            raise InputError(f"{name}: 'arcs' has shape {tuple(arcs.shape)}; expected (A, 4)")
        num_states = int(arcs[:, :2].max()) + 1 if arcs.shape[0] else 0
        return arcs, torch.tensor([0, max(num_states, 0)]), torch.tensor([0, arcs.shape[0]])
    if arcs.dim() != 1 or arcs.shape[0] < 4:
        raise InputError(f"{name}: 'arcs' of shape {tuple(arcs.shape)} is neither an Fsa (A, 4) "
                         "nor an FsaVec (1-D, at least 4 values)")
    n = int(arcs[0])
    if not 0 <= n <= (arcs.shape[0] - 4) // 2:
        raise InputError(f"{name}: the FsaVec claims {n} FSAs in {arcs.shape[0]} values")
    state_splits = arcs[2: 3 + n].long()
    arc_splits = arcs[3 + n: 4 + 2 * n].long()
    for what, splits in (("state", state_splits), ("arc", arc_splits)):
        if int(splits[0]) != 0 or bool((splits[1:] < splits[:-1]).any()):
            raise InputError(f"{name}: the FsaVec's {what} row splits do not rise from 0")
    body = arcs[4 + 2 * n:]
    if body.numel() != 4 * int(arc_splits[-1]):
        raise InputError(f"{name}: the FsaVec claims {int(arc_splits[-1])} arcs but holds "
                         f"{body.numel()} values after its header (4 per arc)")
    return body.reshape(-1, 4), state_splits, arc_splits


def _per_arc(d: dict[str, Any], key: str, num_arcs: int, name: str, integer: bool
             ) -> Tensor | None:
    """``d[key]`` if present, checked to be a (num_arcs,) integer or floating tensor."""
    v = d.get(key)
    if v is None:
        return None
    kind_ok = isinstance(v, Tensor) and (
        (v.dtype != torch.bool and not v.is_floating_point() and not v.is_complex()) if integer
        else v.is_floating_point())
    if not kind_ok or v.shape != (num_arcs,):
        got = f"{v.dtype} tensor of shape {tuple(v.shape)}" if isinstance(v, Tensor) else (
            type(v).__name__)
        raise InputError(f"{name}: {key!r} must be a 1-D {'integer' if integer else 'float'} "
                         f"tensor of {num_arcs} values (one per arc), got a {got}")
    return v


def _attributes(d: dict[str, Any], num_arcs: int, num_states: int, name: str
                ) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, tuple[Tensor, Tensor]]]:
    """Per-arc, per-state and ragged per-arc attributes of ``d``, each checked for length."""
    arc_attrs = {}
    for k, v in d.items():
        if isinstance(v, Tensor) and k not in _RESERVED:
            if v.dim() == 0 or v.shape[0] != num_arcs:
                raise InputError(f"{name}: attribute {k!r} has shape {tuple(v.shape)}; a k2 "
                                 f"tensor attribute has one row per arc ({num_arcs})")
            arc_attrs[k] = v
    state_attrs = {} if d.get("state_attrs") is None else d["state_attrs"]
    if not isinstance(state_attrs, dict) or not all(
            isinstance(v, Tensor) and v.dim() and v.shape[0] == num_states
            for v in state_attrs.values()):
        raise InputError(f"{name}: 'state_attrs' must map names to tensors of {num_states} rows "
                         "(one per state)")
    ragged = {} if d.get("ragged_arc_attrs") is None else d["ragged_arc_attrs"]
    if not isinstance(ragged, dict):
        raise InputError(f"{name}: 'ragged_arc_attrs' must be a dict")
    for k, pair in ragged.items():
        values, splits = pair if isinstance(pair, (tuple, list)) and len(pair) == 2 else (0, 0)
        if not (isinstance(values, Tensor) and isinstance(splits, Tensor)
                and values.dim() == 1 and splits.shape == (num_arcs + 1,)
                and not splits.is_floating_point() and int(splits[0]) == 0
                and int(splits[-1]) == values.shape[0] and bool((splits[1:] >= splits[:-1]).all())):
            raise InputError(f"{name}: ragged attribute {k!r} must be (values, splits) with "
                             f"{num_arcs + 1} splits rising from 0 to len(values)")
    return arc_attrs, dict(state_attrs), {k: (v[0], v[1]) for k, v in ragged.items()}


def _utt_ids(d: dict[str, Any], utt_ids: Sequence[str] | None, num: int, name: str) -> list[str]:
    """One utterance id per FSA: ``utt_ids``, else ``d["utt_ids"]``, else ``name-i``."""
    ids = utt_ids if utt_ids is not None else d.get("utt_ids")
    if ids is None:
        return [f"{name}-{i}" for i in range(num)]
    if not isinstance(ids, (list, tuple)) or not all(isinstance(u, str) for u in ids):
        raise InputError(f"{name}: 'utt_ids' must be a list of strings")
    if len(ids) != num:
        raise InputError(f"{name}: {len(ids)} utterance ids for {num} FSAs")
    return list(ids)


def _first_bad(bad: Tensor, fsa: Tensor, num: int) -> Tensor:
    """(num,) index of each FSA's first arc where ``bad`` holds, or -1 (bad, fsa: (A,))."""
    first = torch.full((num,), bad.shape[0], dtype=torch.long)
    arcs = bad.nonzero()[:, 0]
    first.scatter_reduce_(0, fsa[arcs], arcs, "amin")
    return torch.where(first == bad.shape[0], -1, first)


def _fsa_problems(lat: Lattice, local_src: Tensor, local_dst: Tensor, symbols: Vocab | None,
                  name: str, max_states: int, max_arcs: int,
                  file_arcs: tuple[Tensor, Tensor] | None = None) -> list[str | None]:
    """Why each FSA of ``lat`` cannot be used (None where it can), checked for all at once.

    Per FSA, the first of: more states or arcs than the caps; an arc whose state is outside
    the FSA; a label below -1 or outside ``symbols``; label -1 not exactly on the arcs into the
    last state; a non-finite score. ``lat.src``/``dst`` are not used: they may point anywhere.
    ``file_arcs``: (arc of the file of each arc (A,), the file's arc splits (L+1,)), where the
    arcs are chains of the file's arcs: errors then name the file's arc.
    """
    num = lat.num_lattices
    states = lat.state_splits[1:] - lat.state_splits[:-1]
    arcs = lat.arc_splits[1:] - lat.arc_splits[:-1]
    fsa = lat.arc_lattice()
    n = states[fsa]
    out_of_range = (local_src < 0) | (local_src >= n) | (local_dst < 0) | (local_dst >= n)
    if symbols is None:
        bad_label, label_rule = lat.label < -1, "has a label below -1"
    else:
        bad_label = (lat.label < -1) | (lat.label >= len(symbols))
        label_rule = f"has a label outside -1..{len(symbols) - 1} (the symbol table)"
    finite = torch.isfinite(lat.scores["am"]) & torch.isfinite(lat.scores["lm"])
    checks = [
        (out_of_range, "has a state outside 0..{last}"),
        (bad_label, label_rule),
        ((lat.label == -1) != (local_dst == n - 1),
         "breaks the rule that label -1 marks exactly the arcs into the last state {last}"),
        (~finite, "has a non-finite score (am {am}, lm {lm})"),
    ]
    firsts = [_first_bad(bad, fsa, num) for bad, _ in checks]
    problems: list[str | None] = [None] * num
    for i in ((states > max_states) | (arcs > max_arcs) | (torch.stack(firsts) >= 0).any(0)
              ).nonzero()[:, 0].tolist():
        where = f"{name}: utterance {lat.utt_ids[i]}"
        if states[i] > max_states or arcs[i] > max_arcs:
            problems[i] = (f"{where}: {int(states[i])} states and {int(arcs[i])} arcs; the caps "
                           f"are {max_states} states and {max_arcs} arcs")
            continue
        c = next(c for c, first in enumerate(firsts) if first[i] >= 0)
        a = int(firsts[c][i])
        last = int(states[i]) - 1
        what = checks[c][1].format(last=last, am=float(lat.scores["am"][a]),
                                   lm=float(lat.scores["lm"][a]))
        at = (f"arc {a - int(lat.arc_splits[i])}" if file_arcs is None else
              f"arc {int(file_arcs[0][a] - file_arcs[1][i])} of the file, word arc")
        problems[i] = (f"{where}: {at} ({int(local_src[a])} -> "
                       f"{int(local_dst[a])}, label {int(lat.label[a])}) {what}")
    return problems


def _read_dict(d: object, utt_ids: Sequence[str] | None, symbols: Vocab | None, name: str,
               max_states: int, max_arcs: int) -> tuple[Lattice, list[str | None]]:
    """The batch of one ``as_dict()`` and why each of its FSAs cannot be used (or None).

    The batch is only safe to slice: use the FSAs whose problem is None.
    """
    if not isinstance(d, dict) or "arcs" not in d:
        raise InputError(f"{name}: not a k2 FSA dict (expected a dict with 'arcs', got "
                         f"{type(d).__name__})")
    arcs, state_splits, arc_splits = _fsa_arcs(d["arcs"], name)
    num, num_arcs = state_splits.shape[0] - 1, arcs.shape[0]
    ids = _utt_ids(d, utt_ids, num, name)
    score = arcs[:, 3].contiguous().view(torch.float32)
    lm = _per_arc(d, "lm_scores", num_arcs, name, integer=False)
    am = _per_arc(d, "am_scores", num_arcs, name, integer=False)
    lm = torch.zeros_like(score) if lm is None else lm.float()
    am = score - lm if am is None else am.float()
    words = None
    if isinstance(d.get("aux_labels"), K2RaggedTensor):
        words = k2_ragged.ragged_parts(d["aux_labels"], num_arcs, name, "aux_labels")
        aux = None
    else:
        aux = _per_arc(d, "aux_labels", num_arcs, name, integer=True)
    arc_attrs, state_attrs, ragged = _attributes(d, num_arcs, int(state_splits[-1]), name)
    label = arcs[:, 2].long()
    if aux is not None or words is not None:
        arc_attrs["labels"] = label
        label = label if aux is None else aux.long()
    local_src, local_dst = arcs[:, 0].long(), arcs[:, 1].long()
    scores, file_arcs = {"am": am, "lm": lm}, None
    if words is not None:
        c = k2_ragged.expand(local_src, local_dst, label, *words, state_splits, arc_splits,
                             bool(state_attrs))
        arc, first = c["arc"], c["first"]
        file_arcs = (arc, arc_splits)
        scores = {k: torch.where(first, v[arc], 0.0) for k, v in scores.items()}
        arc_attrs = {k: torch.where(first.view(-1, *[1] * (v.dim() - 1)), v[arc],
                                    torch.zeros((), dtype=v.dtype)) for k, v in arc_attrs.items()}
        arc_attrs[CHAIN] = c["chain"]
        ragged = {k: (v[0][(rows := k2_ragged.expand_rows(v[1], arc, first))[0]], rows[1])
                  for k, v in ragged.items()}
        state_attrs = {k: v[c["state_map"]] for k, v in state_attrs.items()}
        label, local_src, local_dst = c["label"], c["src"], c["dst"]
        state_splits, arc_splits = c["state_splits"], c["arc_splits"]
    offset = torch.repeat_interleave(state_splits[:-1], arc_splits[1:] - arc_splits[:-1])
    lat = Lattice(src=local_src + offset, dst=local_dst + offset, label=label,
                  scores=scores, state_splits=state_splits, arc_splits=arc_splits,
                  utt_ids=ids, symbols=symbols, arc_attrs=arc_attrs, state_attrs=state_attrs,
                  ragged_arc_attrs=ragged)
    return lat, _fsa_problems(lat, local_src, local_dst, symbols, name, max_states, max_arcs,
                              file_arcs)


def from_dict(d: dict[str, Any], utt_ids: Sequence[str] | None = None,
              symbols: Vocab | None = None, name: str = "<k2>", max_states: int = MAX_STATES,
              max_arcs: int = MAX_ARCS) -> Lattice:
    """A batch of lattices from one ``as_dict()`` (Fsa or FsaVec).

    Args:
        d: the dict; utt_ids: one per FSA (default: ``d["utt_ids"]`` or ``name-i``).
        max_states, max_arcs: caps per FSA (see :mod:`lmrescore.formats.limits`).
    Raises:
        InputError: a malformed dict or FSA (the first), naming ``name``, the utterance and arc.
    """
    lat, problems = _read_dict(d, utt_ids, symbols, name, max_states, max_arcs)
    first = next((p for p in problems if p is not None), None)
    if first is not None:
        raise InputError(first)
    return lat


def to_dict(lat: Lattice) -> dict[str, Any]:
    """``as_dict()`` of an FsaVec holding the batch, plus our extra keys (see module doc).

    A batch read with ragged aux_labels (it has the ``aux_labels_chain`` arc attribute) has its
    word chains merged back and its aux_labels written as a k2.RaggedTensor.
    """
    ragged_words = None
    if CHAIN in lat.arc_attrs:
        lat, *ragged_words = k2_ragged.merge_chains(lat)
    local = torch.repeat_interleave(lat.state_splits[:-1],
                                    lat.arc_splits[1:] - lat.arc_splits[:-1])
    am = lat.scores.get("am", torch.zeros(lat.num_arcs))
    lm = lat.scores.get("lm", torch.zeros(lat.num_arcs))
    score = (am + lm).float()
    words = lat.label.int()
    has_tokens = "labels" in lat.arc_attrs or ragged_words is not None
    arcs = torch.stack([(lat.src - local).int(), (lat.dst - local).int(),
                        lat.arc_attrs.get("labels", lat.label).int() if has_tokens else words,
                        score.view(torch.int32)], dim=1)
    n = lat.num_lattices
    flat = torch.cat([torch.tensor([n, 0], dtype=torch.int32), lat.state_splits.int(),
                      lat.arc_splits.int(), arcs.reshape(-1)])
    d: dict[str, Any] = {"arcs": flat, "lm_scores": lm.float(), "am_scores": am.float()}
    if ragged_words is not None:
        d["aux_labels"] = K2RaggedTensor(ragged_words[1].int(), ragged_words[0].int())
    elif has_tokens:
        d["aux_labels"] = words
    d.update({k: v for k, v in lat.arc_attrs.items() if k != "labels"})
    d["utt_ids"] = list(lat.utt_ids)
    d["state_attrs"] = dict(lat.state_attrs)
    d["ragged_arc_attrs"] = {k: list(v) for k, v in lat.ragged_arc_attrs.items()}
    return d


def read_k2(path: str | Path, symbols: Vocab | None = None, max_states: int = MAX_STATES,
            max_arcs: int = MAX_ARCS, max_bytes: int = MAX_K2_BYTES,
            ) -> Iterator[tuple[str, Lattice | InputError]]:
    """(utterance id, lattice or error) for each FSA of a ``.pt`` file (see module doc).

    A malformed dict fails as one item; a bad FSA of a good FsaVec fails alone; a file over
    ``max_bytes`` fails as one item, unread.

    Raises:
        InputError: the file holds no FSA dict at all (a tensor, a list of numbers, ...): it is
            not lattices, so there is nothing to fail alone.
    """
    path = str(path)
    try:
        size = os.path.getsize(path)
        if size > max_bytes:
            raise InputError(f"{size} bytes, over the cap of {max_bytes} (torch.load would "
                             f"read it whole)")
        obj = k2_ragged.load(path)
    except InputError as e:
        yield "?", e
        return
    except Exception as e:  # noqa: BLE001 - any unpickling failure is bad input
        yield "?", InputError(f"cannot load k2 lattices from {path}: {e}")
        return
    if isinstance(obj, dict) and "arcs" in obj:
        items = [(None, obj)]
    elif isinstance(obj, dict):
        items = [([k], v) for k, v in obj.items()]
    else:
        items = [(None, v) for v in obj] if isinstance(obj, list) else []
    if not any(isinstance(d, dict) for _, d in items):
        held = f" of {len(items)} items, none a dict" if isinstance(obj, (dict, list)) else ""
        raise InputError(f"{path}: not k2 lattices: it holds a {type(obj).__name__}{held}; "
                         "expected an FSA dict (k2's as_dict()), a list of them or a dict "
                         "utt_id -> FSA dict")
    for i, (ids, d) in enumerate(items):
        key = ids[0] if ids else i
        try:
            lat, problems = _read_dict(d, ids, symbols, f"{path}[{key!r}]", max_states, max_arcs)
        except InputError as e:
            yield (key if isinstance(key, str) else f"?{i}"), e
            continue
        for j, problem in enumerate(problems):  # a bad FSA is never sliced: its size is a lie
            yield lat.utt_ids[j], lat[j] if problem is None else InputError(problem)


def write_k2(path: str | Path, lat: Lattice) -> None:
    """Save a batch as one FsaVec dict (``torch.save``), atomically."""
    d = to_dict(lat)
    atomic_save(path, lambda f: k2_ragged.save(d, f))
