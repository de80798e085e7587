"""The adaptive output layer: exact normalised log-probabilities for just the queried tokens.

Every queried log-probability must equal the model's dense ``log_prob`` over the whole vocabulary
(computed here in float64); rescoring the fixture lattices with an adaptive model by every method
must equal per-path scores; training by every method with ``model.output=adaptive`` works, and
its checkpoint loads and rescores, the summary counting head and tail rows. All of it holds with
the layer tied to the input embedding (lmrescore/lm/adaptive.py) and untied.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lattice_testing import enumerate_paths
from lmrescore.cli import main
from lmrescore.errors import InputError
from lmrescore.lm.checkpoint import load_model
from lmrescore.lm.config import ExperimentConfig
from lmrescore.lm.model import ModelConfig, RNNLM
from lmrescore.rescoring.rescorer import LatticeRescorer, RescoreOptions
from test_lm_interface import FIXTURES, fixture_rescorer_inputs
from toy_corpus import write_toy_corpus

CUTOFFS = [6, 13, 20]  # head: ids 0-5 + 3 cluster entries; clusters 6-12, 13-19, 20-V


def adaptive(vocab_size: int = 29, order: int | None = None, tie: bool = False, seed: int = 5,
             ) -> RNNLM:
    torch.manual_seed(seed)
    return RNNLM(ModelConfig(vocab_size=vocab_size, hidden_dim=16, num_layers=2, order=order,
                             output="adaptive", cutoffs=CUTOFFS, div_value=2.0,
                             tie_weights=tie)).double().eval()


def random_states(lm: RNNLM, n: int, generator: torch.Generator) -> torch.Tensor:
    """(n, S) states after 3 random tokens each."""
    state = lm.start(n)
    for _ in range(3):
        state = lm.step(state, torch.randint(0, lm.vocab_size, (n,), generator=generator))
    return state


def dense(lm: RNNLM, state: torch.Tensor) -> torch.Tensor:
    """(n, V) float64 log p(. | state) from the whole vocabulary at once."""
    return lm.output.log_prob(lm.top(state).double())


@torch.no_grad()
@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("block_rows", [3, 512])
def test_queried_log_probs_equal_the_dense_distribution(block_rows: int, tie: bool) -> None:
    lm = adaptive(tie=tie)
    g = torch.Generator().manual_seed(0)
    state = random_states(lm, 20, g)
    full = dense(lm, state)
    torch.testing.assert_close(full.logsumexp(-1), torch.zeros(20, dtype=torch.float64))
    rows = torch.randint(0, 17, (300,), generator=g)  # rows 17-19 are never asked
    tokens = torch.randint(0, lm.vocab_size, (300,), generator=g)
    tokens[:4] = torch.tensor([0, 6, 13, lm.vocab_size - 1])  # each cluster's edges
    tokens[4:8] = torch.tensor([5, 12, 19, 20])
    cluster = torch.bucketize(tokens, torch.tensor(CUTOFFS), right=True)
    assert set(cluster.tolist()) == {0, 1, 2, 3}
    got = lm.token_log_probs(state, rows, tokens, block_rows)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), full[rows, tokens], rtol=0, atol=1e-6)
    pairs = {(r, c) for r, c in zip(rows.tolist(), cluster.tolist()) if c > 0}
    assert lm.work == {"head_rows": len(set(rows.tolist())), "tail_rows": len(pairs)}


@torch.no_grad()
@pytest.mark.parametrize("tie", [False, True])
def test_sequence_log_probs_logits_and_nll_match_the_dense_distribution(tie: bool) -> None:
    lm = adaptive(tie=tie)
    g = torch.Generator().manual_seed(1)
    inputs = torch.randint(0, lm.vocab_size, (3, 7), generator=g)
    targets = torch.randint(0, lm.vocab_size, (3, 7), generator=g)
    mask = torch.rand(3, 7, generator=g) < 0.8
    seq, final = lm.sequence_log_probs(inputs, targets, mask, None, None)
    state, steps = lm.start(3), []
    for t in range(7):
        state = lm.step(state, inputs[:, t])
        steps.append(state)
    states = torch.stack(steps, 1)  # (3, 7, S)
    full = dense(lm, states.flatten(0, 1)).unflatten(0, (3, 7))
    want = full.gather(2, targets[..., None]).squeeze(2)
    torch.testing.assert_close(final, state, rtol=0, atol=1e-12)
    torch.testing.assert_close(seq.double(), torch.where(mask, want, 0.0), rtol=0, atol=1e-6)
    torch.testing.assert_close(lm.log_probs(inputs, order=None), full, rtol=0, atol=1e-12)
    # FPP's loss is the cross-entropy of ``logits``: the adaptive layer's log-probabilities
    torch.testing.assert_close(torch.log_softmax(lm.logits(states), -1), full, rtol=0, atol=1e-12)
    loss, _ = lm.nll(inputs, targets, mask, order=None)
    torch.testing.assert_close(loss, -want[mask].sum(), rtol=0, atol=1e-10)
    tail = int((targets[mask] >= CUTOFFS[0]).sum())
    assert lm.work == {"head_rows": int(mask.sum()), "tail_rows": tail} and 0 < tail


def test_config_is_validated_and_old_configs_load_as_softmax() -> None:
    for bad in [None, [], [10, 5], [0, 5], [5, 5]]:
        with pytest.raises(ValueError, match="cutoffs"):
            ModelConfig(output="adaptive", cutoffs=bad, tie_weights=False)
    with pytest.raises(ValueError, match="below vocab_size 20"):
        ModelConfig(output="adaptive", cutoffs=[5, 20], tie_weights=False, vocab_size=20)
    with pytest.raises(ValueError, match="no dimension"):
        ModelConfig(output="adaptive", cutoffs=[5, 10], tie_weights=False, hidden_dim=8,
                    div_value=4.0)
    with pytest.raises(ValueError, match="output must be"):
        ModelConfig(output="hierarchical")
    with pytest.raises(ValueError, match="cutoffs are for output 'adaptive'"):
        ModelConfig(cutoffs=[10])
    old = ExperimentConfig.from_dict({"model": {"cell": "gru", "hidden_dim": 8}})
    assert (old.model.output, old.model.cutoffs) == ("softmax", None)
    with pytest.raises(InputError, match="cutoffs"):
        ExperimentConfig.from_dict({"model": {"output": "adaptive", "cutoffs": [10, 3]}})


def test_tied_layer_takes_its_output_vectors_from_the_embedding() -> None:
    """Head: shortlist word w scores h . E[w] + b[w]; tail cluster i: (P_i h) . (P_i E[w]). One
    input embedding per word is all the output layer stores of the words; gradients of a target
    reach its embedding row; scoring follows in-place updates and loaded weights."""
    tied, untied = adaptive(tie=True), adaptive(tie=False)
    E, out = tied.embedding.weight, tied.output
    h = torch.randn(4, 16, dtype=torch.float64)
    head = out.head(h)
    torch.testing.assert_close(head[:, :6], h @ E[:6].T + out.head.bias[:6], rtol=0, atol=1e-12)
    for tail, (a, b) in zip(out.tail, zip(CUTOFFS, CUTOFFS[1:] + [29])):
        P = tail[0].weight
        torch.testing.assert_close(tail(h), (h @ P.T) @ (E[a:b] @ P.T).T, rtol=0, atol=1e-12)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731 (shared once)
    stored = 6 * 16 + 7 * 8 + 7 * 4 + 9 * 2  # untied: the shortlist's and each tail's rows
    assert count(untied) - count(tied) == stored
    # a tail word only ever a target: its input embedding row learns from the output layer
    # (tied), and only its own cluster's rows do (10 is in another cluster)
    inputs, targets = torch.zeros(2, 3, dtype=torch.int64), torch.full((2, 3), 25)
    for lm in (tied, untied):
        lm.nll(inputs, targets, torch.ones(2, 3, dtype=torch.bool), order=None)[0].backward()
    assert E.grad[25].abs().sum() > 0 and E.grad[10].abs().sum() == 0
    assert untied.embedding.weight.grad[25].abs().sum() == 0
    g = torch.Generator().manual_seed(2)
    state = random_states(tied, 5, g)
    rows, tokens = torch.arange(5).repeat(6), torch.randint(0, 29, (30,), generator=g)
    with torch.no_grad():
        before = tied.token_log_probs(state, rows, tokens)
        E[6:].mul_(3.0)  # in place, as an optimizer step
        changed = tied.token_log_probs(state, rows, tokens)
        torch.testing.assert_close(changed.double(), dense(tied, state)[rows, tokens], rtol=0,
                                   atol=1e-6)
        assert (changed - before).abs().max() > 1e-3
        tied.load_state_dict(adaptive(tie=True, seed=9).state_dict())
        torch.testing.assert_close(tied.token_log_probs(state, rows, tokens).double(),
                                   dense(tied, state)[rows, tokens], rtol=0, atol=1e-6)


def path_scores_by_sentence(lm: RNNLM, sentences: list[list[int]], bos: int, eos: int,
                            order: int | None) -> list[float]:
    """log p(s </s> | <s>) of each token sequence from the dense distribution, one batch."""
    width = max(len(s) for s in sentences) + 1
    inputs = torch.full((len(sentences), width), bos)
    targets = torch.zeros(len(sentences), width, dtype=torch.int64)
    for i, s in enumerate(sentences):
        inputs[i, 1: len(s) + 1] = torch.tensor(s, dtype=torch.int64)
        targets[i, : len(s) + 1] = torch.tensor(s + [eos], dtype=torch.int64)
    with torch.no_grad():
        logp = lm.log_probs(inputs, order=order).gather(2, targets[..., None]).squeeze(2)
    return [float(logp[i, : len(s) + 1].sum()) for i, s in enumerate(sentences)]


@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("method", ["fixed-point", "ngram-approx", "nbest"])
def test_rescoring_with_the_adaptive_layer_equals_per_path_scores(method: str, tie: bool) -> None:
    lat, symbols, units = fixture_rescorer_inputs()
    order = 2
    lm = adaptive(len(units.vocab), order=order, tie=tie).float()
    # ngram-approx with n - 1 past every sentence's length is the exact recurrence
    opts = RescoreOptions(method=method, beam=2.0, max_ngram_order=40, num_paths=2000)
    rescorer = LatticeRescorer(lm, units, symbols, opts)
    result = rescorer.rescore(lat)
    out, table = result.lattice, rescorer.tokens.table
    assert not result.failed and out.num_lattices == lat.num_lattices
    paths = [p for i in range(out.num_lattices) for p in enumerate_paths(out, i)]
    sentences = [[t for a in p if int(out.label[a]) > 0
                  for t in table.values[table.splits[out.label[a]]:
                                        table.splits[out.label[a] + 1]].tolist()]
                 for p in paths]
    clusters = torch.bucketize(torch.tensor([t for s in sentences for t in s]),
                               torch.tensor(CUTOFFS), right=True)
    assert len(paths) > 100 and set(clusters.tolist()) == {0, 1, 2, 3}
    want = path_scores_by_sentence(lm.double(), sentences, units.vocab.bos, units.vocab.eos,
                                   None if method == "ngram-approx" else order)
    got = [float(out.scores["rnnlm"][p].double().sum()) for p in paths]
    torch.testing.assert_close(torch.tensor(got), torch.tensor(want), rtol=0, atol=1e-4)
    assert result.counts["head_rows"] > 0 and result.counts["tail_rows"] > 0
    assert result.counts.get("softmax_rows", 0) == 0
    if method == "fixed-point":
        assert result.counts["head_rows"] == result.counts["histories"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_toy_corpus(tmp_path_factory.mktemp("toy"), train=150, heldout=20)


@pytest.mark.parametrize("method, tie", [("bptt", "true"), ("afp", "false"), ("afp", "true"),
                                         ("fpp", "true")])
def test_train_adaptive_then_rescore(corpus: Path, tmp_path: Path, method: str, tie: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "m.yaml"
    order = 2 if method == "afp" else None
    batching = "stream" if method == "fpp" else "sentence"
    cfg.write_text(f"model: {{cell: gru, hidden_dim: 16, order: {order or 'null'}}}\n"
                   f"train: {{method: {method}, batching: {batching}, batch_size: 8, "
                   f"bptt_len: 10, optimizer: adam, lr: 0.03, epochs: 2, fpp: {{buffer: 50}}}}\n")
    exp = tmp_path / "exp"
    assert main(["train", "--config", str(cfg), "--corpus-dir", str(corpus), "--exp-dir",
                 str(exp), "--set", "model.output=adaptive", "--set", "model.cutoffs=[8, 16]",
                 "--set", f"model.tie_weights={tie}"]) == 0
    results = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    model, vocab, config, _ = load_model(exp / "best.pt")
    assert (config.model.output, config.model.cutoffs) == ("adaptive", [8, 16])
    assert 1 < results["valid_ppl"] < len(vocab) / 4  # it learned (untrained: about V)
    summary = tmp_path / "summary.json"
    assert main(["--log-level", "WARNING", "score", "--model", str(exp / "best.pt"),
                 "--lattice", f"ark:{FIXTURES / 'lats.ark'}", "--words",
                 str(FIXTURES / "words.txt"), "--beam", "5", "--order", "2",
                 "--one-best", str(tmp_path / "hyp"), "--summary", str(summary)]) == 0
    counts = json.loads(summary.read_text())
    assert counts["rescored"] == 5
    assert counts["head_rows"] == counts["histories"] > 0 and counts["tail_rows"] > 0
