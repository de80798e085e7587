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
``aux_labels`` (k2.RaggedTensor) cannot be loaded without k2.

A file we write holds one FsaVec dict plus ``utt_ids`` (list of str), ``state_attrs`` and
``ragged_arc_attrs`` (dicts of tensors): ``k2.Fsa.from_dict(torch.load(path))`` loads it.
Reading also accepts a single Fsa dict, a list of FSA dicts, or a dict utt_id -> FSA dict.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lmrescore.atomic import atomic_save
from lmrescore.errors import InputError
from lmrescore.formats.batch import unbatch
from lmrescore.lattice.lattice import Lattice
from lmrescore.vocab import Vocab

_RESERVED = {"arcs", "aux_labels", "lm_scores", "am_scores", "utt_ids", "state_attrs",
             "ragged_arc_attrs", "labels"}


def _fsa_arcs(arcs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Arc rows, state row splits and arc row splits of an Fsa or FsaVec ``arcs`` tensor.

    Returns:
        (A, 4) int32 arcs with local state ids; (L+1,) state splits; (L+1,) arc splits.
    """
    if arcs.dim() == 2:
        num_states = int(arcs[:, :2].max()) + 1 if arcs.shape[0] else 0
        return arcs, torch.tensor([0, num_states]), torch.tensor([0, arcs.shape[0]])
    n = int(arcs[0])
    state_splits = arcs[2: 3 + n].long()
    arc_splits = arcs[3 + n: 4 + 2 * n].long()
    body = arcs[4 + 2 * n:]
    if body.numel() != 4 * int(arc_splits[-1]):
        raise ValueError("FsaVec arcs tensor has the wrong length")
    return body.reshape(-1, 4), state_splits, arc_splits


def from_dict(d: dict[str, Any], utt_ids: Sequence[str] | None = None,
              symbols: Vocab | None = None, name: str = "<k2>") -> Lattice:
    """A batch of lattices from one ``as_dict()`` (Fsa or FsaVec).

    Args:
        d: the dict; utt_ids: one per FSA (default: ``d["utt_ids"]`` or ``name-i``).
    Raises:
        InputError: a malformed dict, naming ``name``.
    """
    try:
        arcs, state_splits, arc_splits = _fsa_arcs(d["arcs"])
    except (KeyError, ValueError, IndexError, RuntimeError) as e:
        raise InputError(f"{name}: not a k2 FSA dict ({e})") from None
    num = state_splits.shape[0] - 1
    utt_ids = list(utt_ids or d.get("utt_ids") or [f"{name}-{i}" for i in range(num)])
    if len(utt_ids) != num:
        raise InputError(f"{name}: {len(utt_ids)} utterance ids for {num} FSAs")
    counts = arc_splits[1:] - arc_splits[:-1]
    offset = torch.repeat_interleave(state_splits[:-1], counts)
    score = arcs[:, 3].contiguous().view(torch.float32)
    lm = d["lm_scores"].float() if "lm_scores" in d else torch.zeros_like(score)
    am = d["am_scores"].float() if "am_scores" in d else score - lm
    arc_attrs = {k: v for k, v in d.items()
                 if isinstance(v, Tensor) and k not in _RESERVED and v.shape[:1] == score.shape}
    aux = d.get("aux_labels")
    if aux is not None and not isinstance(aux, Tensor):
        raise InputError(f"{name}: ragged aux_labels need k2 to load; save a tensor instead")
    label = arcs[:, 2].long()
    if aux is not None:
        arc_attrs["labels"] = label
        label = aux.long()
    lat = Lattice(src=arcs[:, 0].long() + offset, dst=arcs[:, 1].long() + offset, label=label,
                  scores={"am": am, "lm": lm}, state_splits=state_splits, arc_splits=arc_splits,
                  utt_ids=utt_ids, symbols=symbols, arc_attrs=arc_attrs,
                  state_attrs=dict(d.get("state_attrs") or {}),
                  ragged_arc_attrs={k: tuple(v) for k, v in (d.get("ragged_arc_attrs")
                                                             or {}).items()})
    final_src = lat.dst == lat.final_states[lat.arc_lattice()]
    if not torch.equal(final_src, lat.label == -1):
        i = int(lat.arc_lattice()[(final_src != (lat.label == -1)).nonzero()[0]])
        raise InputError(f"{name}: utterance {utt_ids[i]}: label -1 must mark exactly the arcs "
                         "into the last state")
    if symbols is not None and lat.num_arcs and int(lat.label.max()) >= len(symbols):
        raise InputError(f"{name}: word id {int(lat.label.max())} is not in the symbol table")
    return lat


def to_dict(lat: Lattice) -> dict[str, Any]:
    """``as_dict()`` of an FsaVec holding the batch, plus our extra keys (see module doc)."""
    local = torch.repeat_interleave(lat.state_splits[:-1],
                                    lat.arc_splits[1:] - lat.arc_splits[:-1])
    am = lat.scores.get("am", torch.zeros(lat.num_arcs))
    lm = lat.scores.get("lm", torch.zeros(lat.num_arcs))
    score = (am + lm).float()
    words = lat.label.int()
    has_tokens = "labels" in lat.arc_attrs
    arcs = torch.stack([(lat.src - local).int(), (lat.dst - local).int(),
                        lat.arc_attrs["labels"].int() if has_tokens else words,
                        score.view(torch.int32)], dim=1)
    n = lat.num_lattices
    flat = torch.cat([torch.tensor([n, 0], dtype=torch.int32), lat.state_splits.int(),
                      lat.arc_splits.int(), arcs.reshape(-1)])
    d: dict[str, Any] = {"arcs": flat, "lm_scores": lm.float(), "am_scores": am.float()}
    if has_tokens:
        d["aux_labels"] = words
    d.update({k: v for k, v in lat.arc_attrs.items() if k != "labels"})
    d["utt_ids"] = list(lat.utt_ids)
    d["state_attrs"] = dict(lat.state_attrs)
    d["ragged_arc_attrs"] = {k: list(v) for k, v in lat.ragged_arc_attrs.items()}
    return d


def read_k2(path: str | Path, symbols: Vocab | None = None
            ) -> Iterator[tuple[str, Lattice | InputError]]:
    """(utterance id, lattice or error) for each FSA of a ``.pt`` file (see module doc)."""
    path = str(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is bad input
        yield "?", InputError(f"cannot load k2 lattices from {path}: {e}")
        return
    if isinstance(obj, dict) and "arcs" in obj:
        items = [(None, obj)]
    elif isinstance(obj, dict):
        items = [([k], v) for k, v in obj.items()]
    elif isinstance(obj, list):
        items = [(None, v) for v in obj]
    else:
        yield "?", InputError(f"{path}: expected an FSA dict, a list or a dict of them")
        return
    for i, (ids, d) in enumerate(items):
        where = f"{path}[{ids[0] if ids else i}]"
        try:
            lat = from_dict(d, ids, symbols, where)
        except InputError as e:
            yield (ids[0] if ids else f"?{i}"), e
            continue
        for one in unbatch(lat):
            yield one.utt_ids[0], one


def write_k2(path: str | Path, lat: Lattice) -> None:
    """Save a batch as one FsaVec dict (``torch.save``), atomically."""
    d = to_dict(lat)
    atomic_save(path, lambda f: torch.save(d, f))
