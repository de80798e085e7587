"""bench/rescore.py's work counter counts what rescoring computes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from lmrescore.rescoring.exact import query_log_probs
from test_rescore import BOS, model

BENCH = Path(__file__).resolve().parent.parent / "bench" / "rescore.py"


def bench_module():
    spec = importlib.util.spec_from_file_location("bench_rescore", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def count_work(lm):
    return bench_module().count_work(lm)


def test_models_are_labelled_by_experiment_folder_or_file_name() -> None:
    label = bench_module().model_label
    assert label("exp/ptb-afp8/best.pt") == "ptb-afp8" == label("exp/ptb-afp8/last.pt")
    assert label("../../../models/ptb-lstm256-afp8.pt") == "ptb-lstm256-afp8"


@pytest.mark.parametrize("cell", ["lstm", "gru"])  # gru: its step_ is its step, counted once
def test_counts_one_softmax_per_distinct_history_and_one_cell_call_per_trie_level(
        cell: str) -> None:
    lm = model(cell, 3)  # 2 layers
    work = count_work(lm)
    # right-aligned 3-token histories, -1 before the sentence start; the first repeats
    histories = torch.tensor([[BOS, 4, 5], [BOS, 4, 6], [-1, BOS, 4], [BOS, 4, 5]])
    _, distinct = query_log_probs(lm, histories, torch.tensor([5, 6, 7, 8]), BOS, chunk=2)
    assert distinct == 3
    assert work["softmax_rows"] == 3  # in two output-layer blocks of <= 2
    assert work["cell_calls"] == 3 * 2  # 3 trie levels x 2 layers
    # trie nodes per level: {<s>, -1}, {<s> 4, -1 <s>}, {<s> 4 5, <s> 4 6, -1 <s> 4}
    assert work["cell_steps"] == (2 + 2 + 3) * 2


def test_counts_a_transformer_s_steps_through_every_layer() -> None:
    from lmrescore.lm.transformer import TransformerConfig, TransformerLM

    torch.manual_seed(0)
    lm = TransformerLM(TransformerConfig(vocab_size=10, order=3, dim=8, num_layers=2,
                                         num_heads=2, ff_dim=16)).eval()
    work = count_work(lm)  # a kind without cells: no AttributeError
    histories = torch.tensor([[BOS, 4, 5], [BOS, 4, 6], [-1, BOS, 4], [BOS, 4, 5]])
    _, distinct = query_log_probs(lm, histories, torch.tensor([5, 6, 7, 8]), BOS, chunk=2)
    assert distinct == 3 and work["softmax_rows"] == 3
    assert work["cell_calls"] == 3 * 2 and work["cell_steps"] == (2 + 2 + 3) * 2
