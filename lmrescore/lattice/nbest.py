"""The N best paths of each lattice in a batch: level-synchronous top-N Viterbi.

Each state keeps the N best partial paths reaching it; the candidates for a state are its
in-arcs extended from the partial paths of their sources. In a DAG this is exact: the N best
complete paths are among the kept partial paths of the final state.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lmrescore.lattice.lattice import Lattice
from lmrescore.lattice.weights import Weights
from lmrescore.lattice.ragged import ragged_arange
from lmrescore.lattice.semiring import forward_scores
from lmrescore.lattice.topsort import Levels, levels, no_path_error


@dataclass
class Nbest:
    """The N best paths of each of L lattices, P paths in all, best first within each lattice.

    Paths are distinct arc sequences; their word sequences repeat where the lattice has several
    paths with the same words (determinize it first to get distinct word sequences).

    Attributes:
        score: (P,) float64 total weighted score of each path.
        path_splits: (L+1,) row splits [lattice][path].
        arcs: (X,) int64 arc ids of the paths, start to final: [path][arc].
        arc_splits: (P+1,) row splits of ``arcs``.
        words: (W,) int64 word ids (labels > 0) of the paths: [path][word].
        word_splits: (P+1,) row splits of ``words``.
    """

    score: Tensor
    path_splits: Tensor
    arcs: Tensor
    arc_splits: Tensor
    words: Tensor
    word_splits: Tensor

    def word_lists(self) -> list[list[list[int]]]:
        """Word ids of each path of each lattice: [lattice][path][word]."""
        words = self.words.tolist()
        ws = self.word_splits.tolist()
        ps = self.path_splits.tolist()
        return [[words[ws[p]:ws[p + 1]] for p in range(ps[i], ps[i + 1])]
                for i in range(len(ps) - 1)]

    def path_sum(self, arc_values: Tensor) -> Tensor:
        """(P,) sum of per-arc values along each path, e.g. ``nbest.path_sum(lat.scores["am"])``.

        Args:
            arc_values: (A,) a value per arc of the lattice batch.
        """
        path_of = torch.repeat_interleave(torch.arange(self.score.shape[0]),
                                          self.arc_splits[1:] - self.arc_splits[:-1])
        out = torch.zeros(self.score.shape[0], dtype=torch.float64)
        return out.index_add_(0, path_of, arc_values[self.arcs].double())


def _hyp_counts(lat: Lattice, lv: Levels, n: int) -> Tensor:
    """(S,) int64 min(n, number of paths from the start to each state)."""
    log_paths = forward_scores(lat, lv, torch.zeros(lat.num_arcs, dtype=torch.float64), "log")
    return torch.exp(log_paths).round().clamp(max=n).long()


def _nth_best_floor(last: Tensor, count: Tensor, group: Tensor, num_groups: int,
                    n: int) -> Tensor:
    """A lower bound on the n-th best candidate score of each group, to skip sorting the rest.

    An arc's candidates are its source's hyps, best first, so all ``count`` of them score at
    least ``last``. Taking arcs by falling ``last`` until n candidates are covered gives a bound.

    Args:
        last: (n_arcs,) score of each arc's worst candidate.
        count: (n_arcs,) candidates of each arc.
        group: (n_arcs,) group (destination state) of each arc.
        num_groups: G.
        n: N.
    Returns:
        (G,) float64 bound, -inf for groups with fewer than n candidates.
    """
    by_last = torch.argsort(last, descending=True, stable=True)
    order = by_last[torch.argsort(group[by_last], stable=True)]
    covered = torch.cumsum(count[order], 0)
    group_total = torch.zeros(num_groups, dtype=torch.int64).index_add_(0, group, count)
    covered = covered - (torch.cumsum(group_total, 0) - group_total)[group[order]]
    crossing = (covered >= n) & (covered - count[order] < n)
    floor = torch.full((num_groups,), -torch.inf, dtype=torch.float64)
    floor[group[order[crossing]]] = last[order[crossing]]
    return floor


def nbest(lat: Lattice, n: int, weights: Weights = Weights()) -> Nbest:
    """The ``n`` best paths of each lattice (fewer where a lattice has fewer paths).

    Ties are broken by arc order, then by rank of the partial path.

    Args:
        lat: a batch of L lattices with S states and A arcs.
        n: N >= 1.
        weights: how arc scores are weighted.
    Returns:
        Scores, arcs and words of the paths.
    Raises:
        InputError: a lattice has a cycle or no path from start to final state.
    """
    assert n >= 1, "n-best needs n >= 1"
    lv = levels(lat)
    arc_score = weights.arc_scores(lat)
    count = _hyp_counts(lat, lv, n)
    nonempty = lat.nonempty()
    no_path = torch.ones(lat.num_lattices, dtype=torch.bool)
    no_path[nonempty] = count[lat.final_states[nonempty]] == 0
    if no_path.any():
        raise no_path_error(lat, no_path)
    # Partial paths ("hyps") of each state are stored contiguously, best first.
    hyp_start = torch.cumsum(count, 0) - count
    num_hyps = int(count.sum())
    hyp_score = torch.zeros(num_hyps, dtype=torch.float64)
    hyp_arc = torch.full((num_hyps,), -1, dtype=torch.int64)
    hyp_prev = torch.full((num_hyps,), -1, dtype=torch.int64)
    for k in range(1, lv.num_levels):
        arcs, group, states = lv.by_dst.level(k)
        src = lat.src[arcs]
        src_count = count[src]
        last = hyp_score[(hyp_start[src] + src_count - 1).clamp(min=0)] + arc_score[arcs]
        floor = _nth_best_floor(last, src_count, group, states.shape[0], n)
        cand = ragged_arange(hyp_start[src], src_count)
        cand_arc = torch.repeat_interleave(arcs, src_count)
        cand_group = torch.repeat_interleave(group, src_count)
        cand_score = hyp_score[cand] + arc_score[cand_arc]
        keep = cand_score >= floor[cand_group]
        cand, cand_arc, cand_group, cand_score = (cand[keep], cand_arc[keep], cand_group[keep],
                                                  cand_score[keep])
        by_score = torch.argsort(cand_score, descending=True, stable=True)
        order = by_score[torch.argsort(cand_group[by_score], stable=True)]
        group_size = torch.bincount(cand_group, minlength=states.shape[0])
        first = torch.cumsum(group_size, 0) - group_size
        rank = torch.arange(order.shape[0]) - first[cand_group[order]]
        kept = order[rank < n]
        dest = hyp_start[states][cand_group[kept]] + rank[rank < n]
        hyp_score[dest] = cand_score[kept]
        hyp_arc[dest] = cand_arc[kept]
        hyp_prev[dest] = cand[kept]
    num_paths = count[lat.final_states]
    final_hyps = ragged_arange(hyp_start[lat.final_states], num_paths)
    return _trace_back(lat, final_hyps, hyp_score[final_hyps], num_paths, hyp_arc, hyp_prev)


def _trace_back(lat: Lattice, final_hyps: Tensor, score: Tensor, num_paths: Tensor,
                hyp_arc: Tensor, hyp_prev: Tensor) -> Nbest:
    """Follow back-pointers from the final hyps, all paths at once, one arc per step.

    Args:
        lat: the lattice batch.
        final_hyps: (P,) hyp ids of the complete paths, lattice by lattice.
        score: (P,) their scores.
        num_paths: (L,) paths per lattice.
        hyp_arc, hyp_prev: (H,) last arc and previous hyp of every hyp (-1 at a start state).
    """
    num = final_hyps.shape[0]
    path_ids, steps, step_arcs = [], [], []
    active = torch.arange(num)
    hyp = final_hyps
    step = 0
    while active.numel():
        arc = hyp_arc[hyp]
        going = arc >= 0
        active, hyp, arc = active[going], hyp[going], arc[going]
        path_ids.append(active)
        step_arcs.append(arc)
        steps.append(torch.full_like(active, step))
        hyp = hyp_prev[hyp]
        step += 1
    arcs, arc_splits, words, word_splits = assemble_paths(
        lat, num, torch.cat(path_ids), torch.cat(steps), torch.cat(step_arcs))
    zero = torch.zeros(1, dtype=torch.int64)
    return Nbest(score=score, path_splits=torch.cat([zero, num_paths.cumsum(0)]), arcs=arcs,
                 arc_splits=arc_splits, words=words, word_splits=word_splits)


def assemble_paths(lat: Lattice, num_paths: int, path_of: Tensor, back_step: Tensor,
                   arc: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Ragged paths from arcs found walking back from the final state.

    Args:
        lat: the lattice batch.
        num_paths: P.
        path_of: (X,) path of each found arc.
        back_step: (X,) steps from the end of its path (0 = last arc); dense 0..len-1 per path.
        arc: (X,) the arc ids.
    Returns:
        (X,) arcs start to final and their (P+1,) row splits [path][arc]; (W,) word ids
        (labels > 0) and their (P+1,) row splits [path][word].
    """
    length = torch.bincount(path_of, minlength=num_paths)
    zero = torch.zeros(1, dtype=torch.int64)
    arc_splits = torch.cat([zero, length.cumsum(0)])
    arcs = torch.empty(path_of.shape[0], dtype=torch.int64)
    arcs[arc_splits[path_of] + length[path_of] - 1 - back_step] = arc
    is_word = lat.label[arcs] > 0
    path_of_arc = torch.repeat_interleave(torch.arange(num_paths), length)
    word_count = torch.bincount(path_of_arc[is_word], minlength=num_paths)
    return arcs, arc_splits, lat.label[arcs[is_word]], torch.cat([zero, word_count.cumsum(0)])
