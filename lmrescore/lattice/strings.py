"""Kaldi-style strings for determinization: the arcs of a best path not yet put on a det arc.

A subset member's residual string is a ragged row of arc ids. Arcs are compared by their
content (their values in every ragged attribute, e.g. transition ids), as Kaldi compares
strings of transition ids, so arcs of one content are interchangeable in a string.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lmrescore.lattice.lattice import Lattice
from lmrescore.lattice.ragged import ragged_arange, splits_of, unique_rows


def arc_contents(lat: Lattice) -> Tensor:
    """(A,) an id per arc, equal where the arcs' values agree in every ragged attribute.

    Arcs of one content are interchangeable in a string (they concatenate to the same ragged
    attributes), so subsets are told apart by their strings' contents, as Kaldi's by their
    strings of transition ids; without ragged attributes every arc has content 0.
    """
    ids = torch.zeros(lat.num_arcs, dtype=torch.int64)
    for values, splits in lat.ragged_arc_attrs.values():
        if not values.numel():
            continue
        length = splits[1:] - splits[:-1]
        padded = torch.zeros(lat.num_arcs, int(length.max()), dtype=torch.int64)
        member = torch.repeat_interleave(torch.arange(lat.num_arcs), length)
        padded[member, torch.arange(values.shape[0]) - splits[member]] = (
            values.long() - int(values.min()))  # >= 0, as unique_rows wants
        _, ids = unique_rows(torch.cat([ids[:, None], length[:, None], padded], 1))
    return ids


def split_strings(string: Tensor, string_splits: Tensor, arcs: Tensor, trans: Tensor,
                  heads: Tensor, content: Tensor) -> tuple[tuple[Tensor, Tensor], Tensor, Tensor]:
    """Each member's string extended by its arc, split into its group's common prefix and rest.

    The prefix is the longest one whose arcs' contents all members share; it is taken from the
    group's first member.

    Args:
        string, string_splits: ragged [member][arc], the members' residual strings before the
            step, all of one length within a group.
        arcs: (m,) the arc each member took.
        trans: (m,) its group (det-state, word), groups contiguous.
        heads: (T,) the first member of each group.
        content: (A,) ``arc_contents`` of the lattice's arcs.
    Returns:
        Each group's common prefix: (values, (T,) lengths); and ragged [member][arc] (values,
        splits): the rest of each member's string.
    """
    length = string_splits[1:] - string_splits[:-1] + 1
    splits = splits_of(length)
    full = torch.empty(int(splits[-1]), dtype=torch.int64)
    full[ragged_arange(splits[:-1], length - 1)] = string
    full[splits[1:] - 1] = arcs
    member = torch.repeat_interleave(torch.arange(length.shape[0]), length)
    pos = torch.arange(full.shape[0]) - splits[member]
    group = trans[member]
    differ = content[full] != content[full[splits[heads[group]] + pos]]  # vs the first member
    prefix = length[heads].clone()
    prefix.scatter_reduce_(0, group[differ], pos[differ], "amin")
    emitted = (full[ragged_arange(splits[heads], prefix)], prefix)
    rest = length - prefix[trans]
    return emitted, full[ragged_arange(splits[:-1] + prefix[trans], rest)], splits_of(rest)


def string_hash(string: Tensor, string_splits: Tensor, content: Tensor, mult: int,
                modulus: int) -> Tensor:
    """(M,) a hash (mod ``modulus``) of each string's length and its arcs' contents; 0 if empty.

    Args:
        string, string_splits: ragged [string][arc].
        content: (A,) ``arc_contents`` of the lattice's arcs.
        mult: the polynomial hash's base.
    """
    length = string_splits[1:] - string_splits[:-1]
    if not string.numel():
        return length
    string_of = torch.repeat_interleave(length)
    pos = torch.arange(string.shape[0]) - string_splits[string_of]
    powers = torch.tensor([pow(mult, k, modulus) for k in range(int(length.max()))])
    term = (content[string] % modulus + 1) * powers[pos] % modulus
    total = torch.zeros_like(length).index_add_(0, string_of, term) % modulus
    return (total * mult + length) % modulus
