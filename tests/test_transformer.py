"""The windowed Transformer kind (lmrescore/lm/transformer.py): the trie's stepped windows are the
teacher-forced windows, lattice paths score their sentences exactly at order K, and it trains
with ``lmrescore train`` from its config in models/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lmrescore.cli import main
from lmrescore.lm.checkpoint import load_model
from lmrescore.lm.config import ExperimentConfig
from lmrescore.lm.interface import LanguageModel
from lmrescore.lm.transformer import TransformerConfig, TransformerLM
from lmrescore.lm.units import WordUnits
from lmrescore.rescoring.exact import query_log_probs
from lmrescore.vocab import Vocab
from test_cli_score import ARK, WORDS
from test_kinds import check_paths_exact
from toy_corpus import write_toy_corpus

CONFIG = Path(__file__).parent.parent / "models" / "tiny-transformer-w4.yaml"
BOS = 1


def tiny(vocab_size: int, order: int, output: str = "softmax") -> TransformerLM:
    """A random Transformer; "adaptive": a head of 4 ids and two tail clusters, tied."""
    torch.manual_seed(0)
    adaptive = {"cutoffs": [4, vocab_size // 2], "div_value": 2.0} if output == "adaptive" else {}
    config = TransformerConfig(vocab_size=vocab_size, order=order, dim=16, num_layers=2,
                               num_heads=2, ff_dim=32, output=output, **adaptive)
    return TransformerLM(config).eval()


def windows(inputs: torch.Tensor, order: int) -> torch.Tensor:
    """(B, T, order) the last ``order`` inputs at each position, -1 before the row's last
    ``<s>`` (the trie's histories)."""
    out = torch.full((*inputs.shape, order), -1)
    for b, row in enumerate(inputs.tolist()):
        for t in range(len(row)):
            start = max(i for i in range(t + 1) if row[i] == BOS)
            seen = row[max(start, t - order + 1): t + 1]
            out[b, t, order - len(seen):] = torch.tensor(seen)
    return out


@pytest.mark.parametrize("output", ["softmax", "adaptive"])
@pytest.mark.parametrize("order", [1, 3])
@torch.no_grad()
def test_trie_scores_equal_teacher_forced_windows(order: int, output: str) -> None:
    """Down the prefix trie (one ``step`` per level, from the KV cache) == every position's
    window encoded whole, as in training; sentences restart mid-row at ``<s>``."""
    lm = tiny(11, order, output)
    g = torch.Generator().manual_seed(1)
    inputs = torch.randint(2, 11, (4, 9), generator=g)
    inputs[:, 0] = BOS
    inputs[1, 4] = inputs[2, 6] = BOS
    targets = torch.randint(2, 11, (4, 9), generator=g)
    mask = torch.rand(4, 9, generator=g) < 0.8
    seq, none = lm.sequence_log_probs(inputs, targets, mask, inputs == BOS, order)
    trie, histories = query_log_probs(lm, windows(inputs, order)[mask], targets[mask], BOS)
    assert none is None and 0 < histories <= int(mask.sum())
    torch.testing.assert_close(trie, seq[mask], rtol=0, atol=1e-4)
    assert torch.all(seq[~mask] == 0)
    train_nll, _ = lm.nll(inputs, targets, mask, inputs == BOS)
    torch.testing.assert_close(train_nll, -seq.sum(), rtol=0, atol=1e-4)


@torch.no_grad()
def test_the_recurrence_is_stepping_and_the_window_within_k() -> None:
    """``order`` None steps the rolling cache: its final state carries on, and the first K
    positions of a sentence are the order-K scores (the cache not yet full)."""
    lm = tiny(9, 3)
    inputs = torch.randint(2, 9, (3, 8))
    inputs[:, 0] = BOS
    targets = torch.randint(2, 9, (3, 8))
    mask = torch.ones(3, 8, dtype=torch.bool)
    whole, final = lm.sequence_log_probs(inputs, targets, mask, None, None)
    head, state = lm.sequence_log_probs(inputs[:, :5], targets[:, :5], mask[:, :5], None, None)
    tail, _ = lm.sequence_log_probs(inputs[:, 5:], targets[:, 5:], mask[:, 5:], None, None,
                                    state)
    torch.testing.assert_close(torch.cat([head, tail], 1), whole, rtol=0, atol=1e-5)
    windowed, _ = lm.sequence_log_probs(inputs, targets, mask, None, 3)
    torch.testing.assert_close(whole[:, :3], windowed[:, :3], rtol=0, atol=1e-5)
    count, top, *cache = final  # 2 layers x (keys, values): a ring of K = 3 slots of 2 heads
    assert torch.equal(count, torch.full((3,), 8)) and top.shape == (3, 16)
    assert [c.shape for c in cache] == [(3, 2, 3, 8)] * 4


@pytest.mark.parametrize("output", ["softmax", "adaptive"])
def test_lattice_paths_score_their_sentences_at_order_k(output: str) -> None:
    vocab = Vocab.from_words(w for w in Vocab.load(WORDS).words if w != "<eps>")
    lm = tiny(len(vocab), 2, output)
    assert isinstance(lm, LanguageModel)
    assert check_paths_exact(lm, WordUnits(vocab), 2) > 100


def test_trains_with_lmrescore_train_and_rescores(tmp_path: Path, capsys) -> None:
    corpus = write_toy_corpus(tmp_path / "toy")
    exp = tmp_path / "exp"
    assert main(["train", "--config", str(CONFIG), "--corpus-dir", str(corpus),
                 "--exp-dir", str(exp), "--set", "train.epochs=2"]) == 0
    results = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert results["order"] == 4 and results["valid_ppl"] < 10  # ~40 words: random is ~40
    lm, vocab, config, _ = load_model(exp / "best.pt")
    assert isinstance(lm, TransformerLM) and config.to_dict()["model"]["kind"] == "transformer"
    assert ExperimentConfig.load(CONFIG).model.order == lm.order == 4
    assert main(["--log-level", "WARNING", "score", "--model", str(exp / "best.pt"),
                 "--lattice", ARK, "--words", WORDS, "--one-best", str(tmp_path / "hyp")]) == 0
    assert len((tmp_path / "hyp").read_text().splitlines()) == 5


def test_dropout_only_in_training_nll() -> None:
    """The LanguageModel interface never drops, even in training mode (the trainer scores the
    validation text between steps, its model still in training mode); ``nll`` drops then."""
    torch.manual_seed(0)
    lm = TransformerLM(TransformerConfig(vocab_size=12, order=3, dim=16, num_layers=2,
                                         num_heads=2, ff_dim=32, dropout=0.5))
    inputs = torch.tensor([[BOS, 4, 5, 6, 7], [BOS, 8, 9, 10, 11]])
    targets = torch.roll(inputs, -1, dims=1)
    mask = torch.ones_like(inputs, dtype=torch.bool)
    results = {}
    for training in (True, False):
        lm.train(training)
        with torch.no_grad():
            by_window, _ = lm.sequence_log_probs(inputs, targets, mask, None, 3)
            state = lm.step(lm.start(2), inputs[:, 0])
            results[training] = (by_window, lm.logits(state),
                                 [float(lm.nll(inputs, targets, mask)[0]) for _ in range(2)])
    assert torch.equal(results[True][0], results[False][0])
    assert torch.equal(results[True][1], results[False][1])
    assert results[False][2][0] == results[False][2][1]  # eval mode: no dropout
    assert results[True][2][0] != results[True][2][1]  # training: a new mask each call
