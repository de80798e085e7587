"""Test helpers: seeded random DAG lattices, brute-force path enumeration, kaldifst conversion."""

from __future__ import annotations

import random
from dataclasses import replace

import torch

from lmrescore.formats.kaldi import TIDS
from lmrescore.lattice.lattice import Lattice


def random_lattice(rng: random.Random, utt_id: str, num_states: int, num_arcs: int,
                   vocab_size: int = 6, eps_prob: float = 0.2, dup_prob: float = 0.2) -> Lattice:
    """A random connected DAG lattice with shuffled state ids and arcs.

    Every state is on a path from start to final. Some arcs are epsilons, some duplicate the
    states of an earlier arc (with another label and score), so states have parallel arcs.

    Args:
        rng: the random generator.
        utt_id: the utterance id.
        num_states: S >= 2.
        num_arcs: extra random arcs beyond the ones that connect every state.
        vocab_size: labels are drawn from 1..vocab_size-1 (0 with probability ``eps_prob``).
    """
    inner = list(range(1, num_states - 1))
    rng.shuffle(inner)
    topo = [0] + inner + [num_states - 1]  # topo[i] = state id at topological position i
    pairs = []
    for i in range(1, num_states):
        pairs.append((rng.randrange(i), i))  # an arc into every state
    for i in range(num_states - 1):
        pairs.append((i, rng.randrange(i + 1, num_states)))  # an arc out of every state
    for _ in range(num_arcs):
        i = rng.randrange(num_states - 1)
        pairs.append((i, rng.randrange(i + 1, num_states)))
    pairs += [p for p in pairs if rng.random() < dup_prob]
    rng.shuffle(pairs)
    src = [topo[i] for i, _ in pairs]
    dst = [topo[j] for _, j in pairs]
    label = [-1 if j == num_states - 1 else
             (0 if rng.random() < eps_prob else rng.randrange(1, vocab_size)) for _, j in pairs]
    am = [round(rng.uniform(-4.0, 0.0), 3) for _ in pairs]
    lm = [round(rng.uniform(-3.0, 0.0), 3) for _ in pairs]
    return Lattice.from_arcs(utt_id, num_states, src, dst, label, {"am": am, "lm": lm})


def random_batch(seed: int, num_lattices: int, max_states: int = 8,
                 max_extra_arcs: int = 8) -> Lattice:
    """A batch of random lattices of random sizes (2..max_states states)."""
    rng = random.Random(seed)
    return Lattice.cat([
        random_lattice(rng, f"utt{i}", rng.randint(2, max_states),
                       rng.randint(0, max_extra_arcs)) for i in range(num_lattices)])


def with_transition_ids(lat: Lattice, seed: int, max_len: int = 3, num_ids: int = 4) -> Lattice:
    """``lat`` with random transition ids on every arc (epsilons too) and arc ids as "aux".

    Each arc gets 0..max_len ids from 1..num_ids (few, so that arcs share strings), in the
    ragged arc attribute ``TIDS``; the dense arc attribute "aux" holds each arc's id.
    """
    g = torch.Generator().manual_seed(seed)
    counts = torch.randint(0, max_len + 1, (lat.num_arcs,), generator=g)
    values = torch.randint(1, num_ids + 1, (int(counts.sum()),), generator=g)
    splits = torch.cat([torch.zeros(1, dtype=torch.int64), counts.cumsum(0)])
    return replace(lat, arc_attrs={**lat.arc_attrs, "aux": torch.arange(lat.num_arcs)},
                   ragged_arc_attrs={**lat.ragged_arc_attrs, TIDS: (values, splits)})


def path_tids(lat: Lattice, path: list[int]) -> list[int]:
    """The transition ids along a path (arc ids), concatenated."""
    values, splits = lat.ragged_arc_attrs[TIDS]
    return [int(v) for a in path for v in values[splits[a]:splits[a + 1]]]


def enumerate_paths(lat: Lattice, i: int) -> list[list[int]]:
    """All paths (global arc ids) from start to final state of lattice ``i``, depth first."""
    a0, a1 = int(lat.arc_splits[i]), int(lat.arc_splits[i + 1])
    out: dict[int, list[int]] = {}
    for a in range(a0, a1):
        out.setdefault(int(lat.src[a]), []).append(a)
    final = int(lat.final_states[i])
    paths = []

    def visit(state: int, prefix: list[int]) -> None:
        if state == final:
            paths.append(prefix)
        for a in out.get(state, []):
            visit(int(lat.dst[a]), prefix + [a])

    visit(int(lat.start_states[i]), [])
    return paths


def path_words(lat: Lattice, path: list[int]) -> list[int]:
    """Word ids (labels > 0) along a path."""
    return [int(lat.label[a]) for a in path if int(lat.label[a]) > 0]


def to_kaldifst(lat: Lattice, i: int, arc_score: torch.Tensor, final_arcs: bool = False):
    """Lattice ``i`` as a kaldifst StdVectorFst with costs ``-arc_score``.

    By default the final state is dropped: each -1 arc becomes the final weight of its source
    state (the lowest cost where there are several). With ``final_arcs`` the -1 arcs become
    epsilon arcs into the final state, which has final weight 0, so paths map one to one.
    """
    import kaldifst

    s0 = int(lat.state_splits[i])
    fst = kaldifst.StdVectorFst()
    for _ in range(int(lat.state_splits[i + 1]) - s0 - (0 if final_arcs else 1)):
        fst.add_state()
    fst.start = 0
    finals: dict[int, float] = {}
    if final_arcs:
        finals[fst.num_states - 1] = 0.0
    for a in range(int(lat.arc_splits[i]), int(lat.arc_splits[i + 1])):
        src, dst, label = int(lat.src[a]) - s0, int(lat.dst[a]) - s0, int(lat.label[a])
        cost = -float(arc_score[a])
        if label == -1 and not final_arcs:
            finals[src] = min(cost, finals.get(src, float("inf")))
        else:
            fst.add_arc(src, kaldifst.StdArc(max(label, 0), max(label, 0), cost, dst))
    for state, cost in finals.items():
        fst.set_final(state, cost)
    return fst
