"""Model kinds (lmrescore/lm/kinds.py): configs and checkpoints name their kind, old ones load as
``rnn``, a kind defined only in this file trains, loads, evaluates and rescores exactly, and
``score --model`` takes an n-gram file as the model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from lattice_testing import enumerate_paths
from lmrescore.cli import main
from lmrescore.errors import InputError
from lmrescore.formats import read_lattice_batches
from lmrescore.lattice.lattice import Lattice
from lmrescore.lm.arpa import NgramLM
from lmrescore.lm.checkpoint import load_model
from lmrescore.lm.config import ExperimentConfig
from lmrescore.lm.corpus import CorpusFiles
from lmrescore.lm.interface import BLOCK_ROWS, LanguageModel
from lmrescore.lm.kinds import KINDS, Kind
from lmrescore.lm.model import RNNLM
from lmrescore.lm.units import Units, WordUnits, units_from_checkpoint
from lmrescore.rescoring.rescorer import (DEFAULT_BEAM, DEFAULT_PRUNE_ORDER, LatticeRescorer,
                                          RescoreOptions)
from lmrescore.rescoring.symbols import skipped
from lmrescore.training.trainer import Trainer
from lmrescore.vocab import Vocab
from test_arpa import _write_model, corpus
from test_cli_score import ARK, WORDS, make_model

BEAM = 2.0  # each fixture lattice keeps few enough paths to list


@dataclass
class BigramConfig:
    """The test kind's architecture: a (V, V) table of next-token scores."""

    vocab_size: int = 0
    order: int | None = 1


class BigramTableLM(nn.Module):
    """log_softmax(table[previous token]); the state is a tuple, (previous token (n,) int64,),
    -1 before ``<s>``."""

    def __init__(self, config: BigramConfig) -> None:
        super().__init__()
        self.order, self.vocab_size = 1, config.vocab_size
        self.table = nn.Parameter(0.1 * torch.randn(config.vocab_size, config.vocab_size))

    @property
    def device(self) -> torch.device:
        return self.table.device

    def start(self, n: int) -> tuple[Tensor]:
        return (torch.full((n,), -1, dtype=torch.int64, device=self.device),)

    def step(self, state: tuple[Tensor], tokens: Tensor) -> tuple[Tensor]:
        return (tokens,)

    def logits(self, state: tuple[Tensor]) -> Tensor:
        return self.table[state[0].clamp(min=0)]

    def token_log_probs(self, state: tuple[Tensor], rows: Tensor, tokens: Tensor,
                        block_rows: int = BLOCK_ROWS) -> Tensor:
        return torch.log_softmax(self.logits(state)[rows], -1)[torch.arange(len(rows)), tokens]

    def sequence_log_probs(self, inputs: Tensor, targets: Tensor, mask: Tensor,
                           starts: Tensor | None, order: int | None,
                           state: tuple[Tensor] | None = None,
                           ) -> tuple[Tensor, tuple[Tensor] | None]:
        log_probs = torch.log_softmax(self.table[inputs], -1)
        out = log_probs.gather(2, targets[..., None]).squeeze(2)
        return torch.where(mask, out, 0.0), (inputs[:, -1],) if order is None else None

    def nll(self, inputs: Tensor, targets: Tensor, mask: Tensor, starts: Tensor | None = None,
            state: tuple[Tensor] | None = None) -> tuple[Tensor, None]:
        return -self.sequence_log_probs(inputs, targets, mask, starts, 1)[0].sum(), None


@pytest.fixture
def bigram_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(KINDS, "bigram-table", Kind(BigramConfig, BigramTableLM, ("afp",)))


def sentence_scores(lm: LanguageModel, units: Units, sentences: list[list[str]],
                    order: int | None) -> list[float]:
    """Natural-log p(sentence </s> | <s>) of each sentence, teacher-forced, one at a time."""
    vocab, out = units.vocab, []
    for words in sentences:
        ids = units.encode_ids(words)
        inputs = torch.tensor([[vocab.bos] + ids])
        targets = torch.tensor([ids + [vocab.eos]])
        with torch.no_grad():
            log_probs, _ = lm.sequence_log_probs(inputs, targets, torch.ones_like(inputs).bool(),
                                                 None, order)
        out.append(float(log_probs.double().sum()))
    return out


def fixture_lattices(symbols: Vocab) -> Lattice:
    return next(iter(read_lattice_batches(ARK, "kaldi", symbols)))[0]


def check_paths_exact(lm: LanguageModel, units: Units, order: int, **options) -> int:
    """Rescore the fixture lattices at ``order``: every path's summed LM score is the model's
    own score of its sentence; returns the number of paths checked."""
    symbols = Vocab.load(WORDS)
    opts = RescoreOptions(order=order, beam=BEAM, **options)
    with torch.no_grad():
        out = LatticeRescorer(lm, units, symbols, opts).rescore(fixture_lattices(symbols))
    lat, scores = out.lattice, out.lattice.scores["rnnlm"].double()
    assert not out.failed
    paths, sentences = [], []
    for i in range(lat.num_lattices):
        for p in enumerate_paths(lat, i):
            paths.append(float(scores[p].sum()))
            words = (symbols.words[int(lat.label[a])] for a in p if int(lat.label[a]) > 0)
            sentences.append([w for w in words if not skipped(w)])
    want = sentence_scores(lm, units, sentences, order)
    torch.testing.assert_close(torch.tensor(paths), torch.tensor(want), rtol=0, atol=1e-4)
    return len(paths)


def test_configs_name_their_kind_and_old_ones_are_rnn(tmp_path: Path) -> None:
    make_model(tmp_path / "lm.pt")
    payload = torch.load(tmp_path / "lm.pt", weights_only=True)
    assert payload["config"]["model"]["kind"] == "rnn"
    del payload["config"]["model"]["kind"]  # as written before kinds existed
    torch.save(payload, tmp_path / "old.pt")
    model, _, config, _ = load_model(tmp_path / "old.pt")
    assert isinstance(model, RNNLM) and config.to_dict()["model"]["kind"] == "rnn"
    with pytest.raises(InputError, match=r"model: kind.*one of rnn\b.*'nope'"):
        ExperimentConfig.from_dict({"model": {"kind": "nope"}})


def test_a_kind_defined_here_trains_loads_and_rescores_exactly(bigram_kind, tmp_path: Path,
                                                              capsys) -> None:
    """One file (this one) and one registry entry: the trainer builds it from its config, the
    checkpoint loads as it, ``eval`` scores with it, and rescoring at K = 1 is exact."""
    with pytest.raises(InputError, match="does not train model kind 'bigram-table'"):
        ExperimentConfig.from_dict({"model": {"kind": "bigram-table"},
                                    "train": {"method": "fpp", "batching": "stream"}})
    text = [" ".join(s) + "\n" for s in corpus(1, list(Vocab.load(WORDS).words[4:]), 800)]
    for split, lines in (("train", text[:600]), ("valid", text[600:])):
        (tmp_path / f"{split}.txt").write_text("".join(lines))
    config = ExperimentConfig.from_dict({
        "model": {"kind": "bigram-table"},
        "train": {"method": "afp", "batch_size": 16, "epochs": 1, "optimizer": "adam",
                  "lr": 0.3}})
    files = CorpusFiles({s: tmp_path / f"{s}.txt" for s in ("train", "valid")})
    trainer = Trainer(config, files, tmp_path / "exp")
    before = trainer.evaluate("valid").ppl
    assert trainer.run()["valid_ppl"] < 0.9 * before
    lm, _, loaded, payload = load_model(tmp_path / "exp" / "best.pt")
    assert isinstance(lm, BigramTableLM) and loaded.to_dict()["model"]["kind"] == "bigram-table"
    assert check_paths_exact(lm, units_from_checkpoint(payload), 1) > 100
    assert main(["eval", "--model", str(tmp_path / "exp" / "best.pt"),
                 "--text", str(tmp_path / "valid.txt"), "--json"]) == 0
    assert '"order": 1' in capsys.readouterr().out


def test_score_takes_an_arpa_file_as_the_model(tmp_path: Path) -> None:
    """``score --model lm.arpa``: the n-gram is the model, exact at its order n-1, and the CLI's
    1-best is the library's."""
    arpa, _, _ = _write_model(tmp_path, 0)
    lm = NgramLM.from_file(arpa)
    assert check_paths_exact(lm, WordUnits(lm.vocab), 2) > 100
    for method in ("fixed-point", "nbest"):
        assert main(["--log-level", "WARNING", "score", "--model", str(arpa), "--lattice", ARK,
                     "--words", WORDS, "--method", method,
                     "--one-best", str(tmp_path / method)]) == 0
    symbols = Vocab.load(WORDS)
    with torch.no_grad():
        opts = RescoreOptions(beam=DEFAULT_BEAM, prune_order=DEFAULT_PRUNE_ORDER)  # score's
        out = LatticeRescorer(lm, WordUnits(lm.vocab), symbols, opts).rescore(
            fixture_lattices(symbols))
    want = "".join(f"{u} {' '.join(symbols.decode(w))}\n"
                   for u, w in zip(out.lattice.utt_ids, out.best.word_lists()))
    assert (tmp_path / "fixed-point").read_text() == want


def test_score_takes_a_gfst_as_the_model(tmp_path: Path) -> None:
    kaldilm = pytest.importorskip("kaldilm", reason="kaldilm (pip install kaldilm) is Kaldi's "
                                                    "arpa2fst")
    arpa, _, _ = _write_model(tmp_path, 0)
    kaldilm.arpa2fst(str(arpa), str(tmp_path / "G.fst"), read_symbol_table=WORDS,
                     max_arpa_warnings=0)
    for model in (arpa, tmp_path / "G.fst"):
        assert main(["--log-level", "WARNING", "score", "--model", str(model), "--lattice", ARK,
                     "--words", WORDS, "--one-best", str(tmp_path / f"{model.name}.hyp")]) == 0
    assert (tmp_path / "G.fst.hyp").read_text() == (tmp_path / "lm.arpa.hyp").read_text()


def test_a_model_file_that_is_neither_is_one_error(tmp_path: Path, capsys) -> None:
    (tmp_path / "junk").write_text("not a model\n")
    capsys.readouterr()
    assert main(["score", "--model", str(tmp_path / "junk"), "--lattice", ARK,
                 "--words", WORDS]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "junk" in err[0]
