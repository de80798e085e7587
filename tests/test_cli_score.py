"""``lmrescore score`` on the PocketSphinx fixtures: methods, outputs, and bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from lmrescore.lm.checkpoint import save_checkpoint
from lmrescore.cli import main
from lmrescore.lm.config import ExperimentConfig, TrainConfig
from lmrescore.rescoring.expand import expand
from lmrescore.formats import read_lattices
from lmrescore.lm.model import ModelConfig, RNNLM
from lmrescore.rescoring.symbols import token_table
from lmrescore.lattice.shortest_path import best_path
from lmrescore.lattice.topsort import connect
from lmrescore.lm.units import WordUnits
from lmrescore.vocab import Vocab
from lmrescore.lattice.weights import Weights

FIXTURES = Path(__file__).parent / "fixtures"
WORDS = str(FIXTURES / "words.txt")
ARK = f"ark:{FIXTURES / 'lats.ark'}"
UTTS = [f"ptb-00{i}" for i in range(1, 6)]
OOV = ("the", "a", "and", "that", "it's")  # in every fixture lattice


def make_model(path: Path, drop: tuple[str, ...] = ()) -> Vocab:
    """A random tiny order-2 LSTM over the fixture words (minus ``drop``), saved at ``path``."""
    words = Vocab.load(WORDS).words
    vocab = Vocab.from_words(w for w in words if w not in drop and w != "<eps>")
    config = ExperimentConfig(model=ModelConfig(cell="lstm", vocab_size=len(vocab),
                                                hidden_dim=8, order=2),
                              train=TrainConfig(method="afp"))
    torch.manual_seed(0)
    save_checkpoint(path, RNNLM(config.model), vocab, config)
    return vocab


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("model") / "lm.pt"
    make_model(path)
    return str(path)


def score(model: str, tmp: Path, *extra: str, lattice: str = ARK, words: str = WORDS) -> int:
    return main(["--log-level", "WARNING", "score", "--model", model, "--lattice", lattice,
                 "--words", words, "--beam", "10", "--acoustic-scale", "0.1",
                 "--max-ngram-order", "3", "--one-best", str(tmp / "hyp"),
                 "--summary", str(tmp / "summary.json"), *extra])


def one_best(tmp: Path) -> dict[str, list[str]]:
    lines = (tmp / "hyp").read_text().splitlines()
    return {line.split()[0]: line.split()[1:] for line in lines}


@pytest.mark.parametrize("method", ["fixed-point", "ngram-approx", "nbest"])
def test_written_lattice_has_the_printed_one_best(model: str, tmp_path: Path,
                                                   method: str) -> None:
    out = f"ark:{tmp_path / 'out.ark'}"
    assert score(model, tmp_path, "--method", method, "--num-paths", "20",
                 "--write-lattice", out, "--ref", str(FIXTURES / "text")) == 0
    hyp = one_best(tmp_path)
    assert list(hyp) == UTTS
    symbols = Vocab.load(WORDS)
    for utt, lat in read_lattices(out, "kaldi", symbols):
        best = best_path(lat, Weights(0.1, 1.0))
        assert symbols.decode(best.word_lists()[0]) == hyp[utt]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["method"] == method and summary["rescored"] == 5
    assert 0 <= summary["wer"] and summary["wer_utterances"] == 5
    field = {"fixed-point": "histories", "ngram-approx": "rnn_states", "nbest": "sentences"}
    assert summary[field[method]] > 0


def test_nbest_lists_start_with_the_one_best(model: str, tmp_path: Path) -> None:
    assert score(model, tmp_path, "--num-paths", "3", "--nbest-out",
                 str(tmp_path / "nbest")) == 0
    hyp = one_best(tmp_path)
    lines = [line.split() for line in (tmp_path / "nbest").read_text().splitlines()]
    assert [key for key, *_ in lines] == [f"{u}-{k}" for u in UTTS for k in (1, 2, 3)]
    for key, *words in lines:
        if key.endswith("-1"):
            assert words == hyp[key[:-2]]


def test_corrupt_lattice_is_skipped_and_counted(model: str, tmp_path: Path) -> None:
    data = (FIXTURES / "lats.txt").read_bytes()
    bad = data.replace(b"ptb-002 \n0\t", b"ptb-002 \n0\tx", 1)
    assert bad != data
    (tmp_path / "bad.txt").write_bytes(bad)
    lattice = f"ark:{tmp_path / 'bad.txt'}"
    out = f"ark:{tmp_path / 'out.ark'}"
    assert score(model, tmp_path, "--write-lattice", out, lattice=lattice) == 1
    assert score(model, tmp_path, "--write-lattice", out, "--max-failures", "0.5",
                 lattice=lattice) == 0
    others = [u for u in UTTS if u != "ptb-002"]
    assert list(one_best(tmp_path)) == others
    assert [u for u, _ in read_lattices(out, "kaldi", Vocab.load(WORDS))] == others
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["failed"] == 1 and summary["lattices"] == 5


def test_words_missing_from_the_model_are_unk_with_a_penalty(tmp_path: Path) -> None:
    path = tmp_path / "lm.pt"
    make_model(path, drop=OOV)
    assert score(str(path), tmp_path) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["oov_words"] > 0
    assert summary["oov_rate"] == pytest.approx(summary["oov_words"] / summary["words"])
    # ln(words of words.txt outside the model's vocabulary)
    assert summary["unk_penalty"] == pytest.approx(math.log(len(OOV)), rel=1e-6)
    hyp = one_best(tmp_path)
    assert any(w in OOV for words in hyp.values() for w in words)  # words, not <unk>


def test_labels_beyond_words_txt_name_the_utterance(model: str, tmp_path: Path,
                                                    caplog) -> None:
    lines = Path(WORDS).read_text().splitlines()
    (tmp_path / "words.txt").write_text("\n".join(lines[:60]) + "\n")
    assert score(model, tmp_path, "--max-failures", "1", words=str(tmp_path / "words.txt")) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["failed"] == 5 and summary["rescored"] == 0
    for utt in UTTS:
        assert any(utt in r.getMessage() and "symbol table" in r.getMessage()
                   for r in caplog.records)
    assert score(model, tmp_path, words=str(tmp_path / "words.txt")) == 1


def test_expansion_past_max_arcs_is_named_and_others_rescored(model: str, tmp_path: Path,
                                                              caplog) -> None:
    symbols = Vocab.load(WORDS)
    vocab = make_model(tmp_path / "same.pt")
    table, _ = token_table(symbols, WordUnits(vocab))
    sizes = {}
    for utt, lat in read_lattices(ARK, "kaldi", symbols):
        sizes[utt] = expand(connect(lat)[0], table, 2, vocab.bos).lattice.num_arcs
    biggest = max(sizes, key=sizes.get)
    cap = max(n for u, n in sizes.items() if u != biggest)
    assert score(model, tmp_path, "--beam", "1e9", "--max-arcs", str(cap),
                 "--no-determinize") == 1  # sizes above are of undeterminized expansions
    assert list(one_best(tmp_path)) == [u for u in UTTS if u != biggest]
    assert any(biggest in r.getMessage() and "--max-arcs" in r.getMessage()
               for r in caplog.records)


@pytest.mark.parametrize("method", ["fixed-point", "ngram-approx", "nbest"])
def test_rescorer_reports_bad_lattices_and_keeps_the_others(model: str, method: str) -> None:
    from lmrescore.lm.checkpoint import load_model
    from lmrescore.lattice.lattice import Lattice
    from lmrescore.rescoring.rescorer import LatticeRescorer, RescoreOptions
    from lmrescore.lm.units import units_from_checkpoint

    symbols = Vocab.load(WORDS)
    lat = Lattice.cat([x for _, x in read_lattices(ARK, "kaldi", symbols)]).select([0, 1, 2])
    lm, _, _, payload = load_model(model)
    rescorer = LatticeRescorer(lm, units_from_checkpoint(payload), symbols,
                               RescoreOptions(method=method, beam=5.0, max_ngram_order=3,
                                              num_paths=5))
    lat.label = lat.label.clone()
    lat.label[400] = len(symbols) + 7  # an arc of ptb-002
    result = rescorer.rescore(lat)
    assert [f.utt_id for f in result.failed] == ["ptb-002"]
    assert "words.txt" in result.failed[0].message and "ptb-002" in result.failed[0].message
    assert result.lattice.utt_ids == ["ptb-001", "ptb-003"]
    alone = rescorer.rescore(lat.select([1]))  # a batch of only bad lattices
    assert alone.lattice is None and [f.utt_id for f in alone.failed] == ["ptb-002"]
    cyclic = lat.select([0])
    cyclic.dst = cyclic.dst.clone()
    cyclic.dst[cyclic.label > 0] = cyclic.src[cyclic.label > 0]  # self-loops: a cycle
    result = rescorer.rescore(cyclic)
    assert result.lattice is None and "cycle" in result.failed[0].message


def test_a_repeated_utterance_id_fails_and_the_first_result_stands(model: str,
                                                                   tmp_path: Path) -> None:
    data = (FIXTURES / "lats.ark").read_bytes()
    ark = tmp_path / "twice.ark"
    ark.write_bytes(data + data[: data.index(b"ptb-002 ")])  # ptb-001 again at the end
    assert score(model, tmp_path, lattice=f"ark:{ark}") == 1
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["lattices"], summary["rescored"], summary["failed"]) == (6, 5, 1)
    assert sorted(one_best(tmp_path)) == UTTS
    assert score(model, tmp_path, "--max-failures", "0.2", lattice=f"ark:{ark}") == 0


def test_lattices_and_one_best_cannot_share_stdout(model: str, tmp_path: Path, capsys) -> None:
    code = main(["score", "--model", model, "--lattice", ARK, "--words", WORDS,
                 "--write-lattice", "ark,t:-"])
    assert code == 1 and "both write to stdout" in capsys.readouterr().err


def test_score_ends_with_kaldi_s_done_line(model: str, tmp_path: Path, caplog) -> None:
    with caplog.at_level("INFO"):
        assert main(["score", "--model", model, "--lattice", ARK, "--words", WORDS,
                     "--beam", "10", "--one-best", str(tmp_path / "hyp")]) == 0
    assert "Done 5 lattices, failed for 0" in caplog.text
