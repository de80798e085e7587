"""LMs combined by scale on one expansion (lmrescore/rescoring/combination.py): a tiny RNN, the
test ARPA of tests/test_arpa.py and its G.fst (kaldilm's arpa2fst), each its own score column.

On every path of the fixture lattices (pruned to few paths, every path listed), each column
sums to its LM's own sentence score at order K, and the combined score is the sum over LMs of
scale x that score (less the RNN's OOV cost)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lmrescore.errors import InputError
from lmrescore.lm.arpa import NgramLM
from lmrescore.lm.model import ModelConfig, RNNLM
from lmrescore.lm.units import WordUnits
from lmrescore.rescoring.combination import ScoredLM
from lmrescore.rescoring.old_lm import load_old_lm
from lmrescore.rescoring.rescorer import LatticeRescorer, RescoreOptions
from lmrescore.vocab import Vocab
from test_arpa import _path_scores, _rnnlm, _shuffled, sentence_scores
from test_old_lm import few_paths, make_lang

pytest.importorskip("kaldilm", reason="kaldilm (pip install kaldilm) is Kaldi's arpa2fst")

SCALES = {"rnn": 0.5, "arpa": -0.5, "gfst": 0.25}
UNK_PENALTY = 2.0


@pytest.fixture(scope="module")
def lang(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[list[str]]]:
    return make_lang(tmp_path_factory.mktemp("lang"), 0)


def three_lms(arpa: Path, lang_dir: Path, symbols: Vocab) -> list[ScoredLM]:
    """The order-2 RNN (its own ids: the ARPA's words shuffled), the ARPA, the G.fst."""
    ngram, gfst = NgramLM.from_file(arpa), load_old_lm(lang_dir / "G.fst", symbols)
    vocab = _shuffled(ngram.vocab)
    return [ScoredLM("rnn", _rnnlm(vocab), WordUnits(vocab), SCALES["rnn"]),
            ScoredLM("arpa", ngram, WordUnits(ngram.vocab), SCALES["arpa"], oov_cost=False),
            ScoredLM("gfst", gfst, WordUnits(gfst.vocab), SCALES["gfst"], oov_cost=False)]


def rnn_sentence(rnn: RNNLM, vocab: Vocab, words: list[str], order: int) -> float:
    """ln p(words </s> | <s>) at fixed-point order ``order``."""
    ids = vocab.encode(words)
    inputs, targets = torch.tensor([[vocab.bos] + ids]), torch.tensor([ids + [vocab.eos]])
    starts = torch.zeros_like(inputs, dtype=torch.bool)
    starts[:, 0] = True
    log_probs, _ = rnn.sequence_log_probs(inputs, targets, torch.ones_like(starts), starts,
                                          order)
    return float(log_probs.double().sum())


def test_each_column_is_its_lm_and_the_sum_is_scaled(lang) -> None:
    arpa, lang_dir, _ = lang
    symbols = Vocab.load(lang_dir / "words.txt")
    lms = three_lms(arpa, lang_dir, symbols)
    opts = RescoreOptions(order=2, first_pass_scale=0.0, unk_penalty=UNK_PENALTY, beam=None,
                          prune_order=None, determinize=False)
    with torch.no_grad():
        rescorer = LatticeRescorer.combining(lms, symbols, opts)
        out = rescorer.rescore(few_paths(symbols)).lattice
    combined = _path_scores(out, symbols, "lm")
    assert len(combined) > 20
    columns = {lm.name: _path_scores(out, symbols, lm.name) for lm in lms}
    rnn, ngram, gfst = (lm.model for lm in lms)
    rnn_vocab = lms[0].units.vocab
    oov_paths = 0
    for key, value in combined.items():
        words = list(key[1:])
        with torch.no_grad():
            own = {"rnn": rnn_sentence(rnn, rnn_vocab, words, 2),
                   "arpa": float(sentence_scores(ngram, [words])[0]),
                   "gfst": float(sentence_scores(gfst, [words])[0])}
        for name, score in own.items():
            assert abs(columns[name][key] - score) < 1e-4, (name, key)
        oov = sum(w not in rnn_vocab for w in words)
        oov_paths += oov > 0
        want = sum(SCALES[n] * s for n, s in own.items()) - SCALES["rnn"] * UNK_PENALTY * oov
        assert abs(value - want) < 1e-4, key
    assert oov_paths > 5  # the RNN's OOV cost is in the sum


def test_model_and_old_lm_is_a_combination(lang) -> None:
    """``LatticeRescorer(model, ..., old_lm)`` is the combination [rnnlm at lm_scale, old_lm at
    old_lm_scale, not charged for OOV words]: the same scores to the bit."""
    arpa, lang_dir, _ = lang
    symbols = Vocab.load(lang_dir / "words.txt")
    rnn, _, gfst = three_lms(arpa, lang_dir, symbols)
    opts = RescoreOptions(order=2)
    with torch.no_grad():
        old = LatticeRescorer(rnn.model, rnn.units, symbols, opts, gfst.model)
        new = LatticeRescorer.combining(
            [ScoredLM("rnnlm", rnn.model, rnn.units, 1.0),
             ScoredLM("old_lm", gfst.model, gfst.units, -1.0, oov_cost=False)], symbols, opts)
        a, b = (r.rescore(few_paths(symbols)).lattice for r in (old, new))
    for name in ("lm", "rnnlm", "old_lm", "am"):
        assert torch.equal(a.scores[name], b.scores[name]), name


def test_ngram_approx_scores_the_ngrams_exactly(lang) -> None:
    arpa, lang_dir, _ = lang
    symbols = Vocab.load(lang_dir / "words.txt")
    lms = three_lms(arpa, lang_dir, symbols)
    opts = RescoreOptions(method="ngram-approx", max_ngram_order=3, beam=None, prune_order=None)
    with torch.no_grad():
        out = LatticeRescorer.combining(lms, symbols, opts).rescore(few_paths(symbols)).lattice
    arpa_scores = _path_scores(out, symbols, "arpa")
    for key, value in _path_scores(out, symbols, "gfst").items():
        want = float(sentence_scores(lms[1].model, [list(key[1:])])[0])
        assert abs(value - want) < 1e-4 and abs(arpa_scores[key] - want) < 1e-4, key


def test_what_the_expansion_cannot_score_is_refused(lang) -> None:
    arpa, lang_dir, _ = lang
    symbols = Vocab.load(lang_dir / "words.txt")
    lms = three_lms(arpa, lang_dir, symbols)
    cases = {"--method nbest is not supported": RescoreOptions(method="nbest"),
             "needs histories of 2 words .* got 1": RescoreOptions(order=1),
             "needs histories of 2 words .* --max-ngram-order 3 .* got 1":
                 RescoreOptions(method="ngram-approx", max_ngram_order=2)}
    for message, opts in cases.items():
        with pytest.raises(InputError, match=message):
            LatticeRescorer.combining(lms, symbols, opts)
    vocab = lms[0].units.vocab
    bptt = ScoredLM("bptt", RNNLM(ModelConfig(cell="gru", vocab_size=len(vocab), hidden_dim=8,
                                              order=None)), lms[0].units)
    with pytest.raises(InputError, match="exact recurrence"):
        LatticeRescorer.combining(lms + [bptt], symbols, RescoreOptions(order=2))
    with pytest.raises(InputError, match="one score column"):
        LatticeRescorer.combining(lms + [lms[0]], symbols, RescoreOptions(order=2))


def test_cli_lm_options(lang, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--lm ckpt:0.5 --lm G.fst:-0.5`` writes the bytes of ``--model ckpt --lm-scale 0.5
    --old-lm G.fst``; three LMs each get a summary entry; --lm with --old-lm is refused."""
    from lmrescore.cli import main
    from lmrescore.lm.checkpoint import save_checkpoint
    from lmrescore.lm.config import ExperimentConfig, TrainConfig
    from test_arpa import FIXTURES

    arpa, lang_dir, _ = lang
    rnn = three_lms(arpa, lang_dir, Vocab.load(lang_dir / "words.txt"))[0]
    ckpt, gfst = tmp_path / "lm.pt", lang_dir / "G.fst"
    config = ExperimentConfig(model=rnn.model.config, train=TrainConfig(method="afp"))
    save_checkpoint(ckpt, rnn.model, rnn.units.vocab, config)

    def score(name: str, *lms: str) -> int:
        (tmp_path / name).mkdir()
        out = tmp_path / name
        return main(["--log-level", "WARNING", "score", *lms, "--lattice",
                     f"ark:{FIXTURES / 'lats.ark'}", "--words", str(lang_dir / "words.txt"),
                     "--one-best", str(out / "hyp"), "--write-lattice", f"ark:{out / 'lat'}",
                     "--summary", str(out / "summary.json")])

    assert score("old", "--model", str(ckpt), "--lm-scale", "0.5", "--old-lm", str(gfst)) == 0
    assert score("new", "--lm", f"{ckpt}:0.5", "--lm", f"{gfst}:-0.5") == 0
    for name in ("hyp", "lat"):
        assert (tmp_path / "old" / name).read_bytes() == (tmp_path / "new" / name).read_bytes()
    assert score("three", "--lm", f"{ckpt}:0.5", "--lm", f"{arpa}:-0.5",
                 "--lm", f"{gfst}:0.25") == 0
    summary = json.loads((tmp_path / "three" / "summary.json").read_text())
    assert (summary["lm_1"], summary["lm_2_scale"], summary["rescored"]) == (str(arpa), 0.25, 5)
    assert score("mixed", "--lm", f"{ckpt}:0.5", "--old-lm", str(gfst)) == 1
    assert "--lm gives each LM its scale" in capsys.readouterr().err
