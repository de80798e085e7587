"""The old LM taken out of the graph score (lmrescore/rescoring/old_lm.py): a Kaldi G.fst read back
into its n-gram, and rescoring lattices whose graph score holds the old LM.

The G.fsts are made by Kaldi's arpa2fst (kaldilm), as utils/format_lm.sh makes a lang dir's
(``--disambig-symbol=#0 --read-symbol-table=words.txt``) and without the disambiguation symbol.
The lattices with the old LM in their graph score are built from the fixture lattices: their
own graph score stands for the non-LM costs, and the n-gram's score along each path is added
(checked against the G.fst walked by ``KaldiG``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lmrescore.cli import main
from lmrescore.errors import InputError
from lmrescore.formats import read_lattice_batches
from lmrescore.formats.openfst import StdFst, read_std_fst
from lmrescore.lattice.determinize import determinize
from lmrescore.lattice.lattice import Lattice
from lmrescore.lattice.prune import prune_beam
from lmrescore.lattice.weights import Weights
from lmrescore.lm.arpa import NgramLM
from lmrescore.lm.checkpoint import save_checkpoint
from lmrescore.lm.config import ExperimentConfig, TrainConfig
from lmrescore.lm.model import ModelConfig
from lmrescore.lm.units import WordUnits
from lmrescore.rescoring.old_lm import load_old_lm, ngrams_of_fst
from lmrescore.rescoring.rescorer import (DEFAULT_BEAM, DEFAULT_PRUNE_ORDER, LatticeRescorer,
                                          RescoreOptions)
from lmrescore.vocab import Vocab
from test_arpa import (BEAM, FIXTURES, KaldiG, _path_scores, _rnnlm, _shuffled, _write_model,
                       sentence_scores)

kaldilm = pytest.importorskip("kaldilm", reason="kaldilm (pip install kaldilm) is Kaldi's "
                                                "arpa2fst")


def make_lang(tmp: Path, drop_prefixes: int) -> tuple[Path, Path, list[list[str]]]:
    """(ARPA, lang dir with words.txt and G.fst as format_lm.sh makes them, test sentences);
    also G_plain.fst, arpa2fst's form without the disambiguation symbol."""
    arpa, _, sentences = _write_model(tmp, drop_prefixes)
    words = (FIXTURES / "words.txt").read_text()
    (tmp / "words.txt").write_text(words + f"#0 {len(words.splitlines())}\n")
    for name, disambig in (("G.fst", "#0"), ("G_plain.fst", "")):
        kaldilm.arpa2fst(str(arpa), str(tmp / name), disambig_symbol=disambig,
                         read_symbol_table=str(tmp / "words.txt"), max_arpa_warnings=0)
    return arpa, tmp, sentences


@pytest.fixture(scope="module")
def lang(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[list[str]]]:
    return make_lang(tmp_path_factory.mktemp("lang"), 0)


@pytest.mark.parametrize("fst", ["G.fst", "G_plain.fst"])
@pytest.mark.parametrize("drop_prefixes", [0, 5])
def test_gfst_scores_as_kaldi_walks_it(tmp_path: Path, fst: str, drop_prefixes: int) -> None:
    """Every test sentence (words outside the model among them) scores as the G.fst's own arcs
    do; on the unpruned model that is the ARPA's score too (float32 costs: 1e-4)."""
    arpa, lang_dir, sentences = make_lang(tmp_path, drop_prefixes)
    lm = load_old_lm(lang_dir / fst, Vocab.load(lang_dir / "words.txt"))
    assert lm.n == 3
    got = sentence_scores(lm, sentences)
    g = KaldiG(arpa, tmp_path)
    want = torch.tensor([g.sentence(s) for s in sentences], dtype=torch.float64)
    assert torch.allclose(got, want, atol=1e-4, rtol=0)
    if not drop_prefixes:  # (arpa2fst drops the n-grams of a missing prefix)
        assert torch.allclose(got, sentence_scores(NgramLM.from_file(arpa), sentences),
                              atol=1e-4, rtol=0)


def test_a_lang_dirs_gfst_is_read_whole(lang) -> None:
    """The arrays are the FST's: as many arcs and final states as fstinfo-style counts of the
    text form arpa2fst prints."""
    arpa, lang_dir, _ = lang
    fst = read_std_fst(lang_dir / "G.fst")
    text = kaldilm.arpa2fst(str(arpa), disambig_symbol="#0",
                            read_symbol_table=str(lang_dir / "words.txt"), max_arpa_warnings=0)
    rows = [line.split() for line in text.splitlines() if line.strip()]
    assert fst.src.shape[0] == sum(len(r) >= 4 for r in rows)
    assert int(np.isfinite(fst.final).sum()) == sum(len(r) <= 2 for r in rows)
    assert fst.start == int(next(r for r in rows if len(r) >= 4)[0])


def test_bad_fsts_are_one_error_line(lang, tmp_path: Path) -> None:
    _, lang_dir, _ = lang
    symbols = Vocab.load(lang_dir / "words.txt")
    data = (lang_dir / "G.fst").read_bytes()
    cases = {
        "truncated": (data[: len(data) // 2], "truncated or corrupt"),
        "carpa": (b"\0B<ConstArpaLm> " + bytes(64), "G.carpa"),
        "header": (data[:20], "truncated or corrupt FST header"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(InputError, match=message):
            load_old_lm(path, symbols)


def _fst(arcs: list[tuple[int, int, int, float, int]], final: dict[int, float],
         start: int = 0) -> StdFst:
    """An FST from (src, ilabel, olabel, cost, dst) rows."""
    a = np.array(arcs, dtype=np.float64).reshape(-1, 5)
    num = int(max(a[:, [0, 4]].max(initial=0), max(final, default=0))) + 1
    fin = np.full(num, np.inf, np.float32)
    fin[list(final)] = list(final.values())
    return StdFst(start, fin, a[:, 0].astype(np.int64), a[:, 1].astype(np.int64),
                  a[:, 2].astype(np.int64), a[:, 4].astype(np.int64), a[:, 3].astype(np.float32))


def test_what_is_not_an_ngram_fst_is_refused() -> None:
    """Words 4, 5; 1 = <s>, 2 = </s>; back-off arcs on #0 = 6 (output epsilon)."""
    symbols = Vocab(("<eps>", "<s>", "</s>", "<unk>", "a", "b", "#0"))
    good = [(0, 6, 0, 0.5, 1), (1, 4, 4, 1.0, 2), (1, 5, 5, 1.2, 1), (2, 6, 0, 0.1, 1),
            (2, 5, 5, 0.3, 1)]  # <s> state 0, root 1, history (a) 2
    arpa = ngrams_of_fst(_fst(good, {1: 2.0, 2: 1.5}), symbols)
    assert [[arpa.vocab.decode(row) for row in t.ids] for t in arpa.tables] == [
        [["<s>"], ["</s>"], ["a"], ["b"]], [["a", "</s>"], ["a", "b"]]]
    assert arpa.tables[0].prob[1] == pytest.approx(-2.0 / np.log(10))  # </s> | root: final
    assert arpa.tables[0].backoff[0] == pytest.approx(-0.5 / np.log(10))  # <s>: start state
    bad = {
        "two back-off arcs": good + [(2, 6, 0, 0.2, 1)],
        "cycle": [(0, 6, 0, 0.5, 1), (1, 6, 0, 0.5, 0)],
        "neither a word": good + [(1, 4, 5, 1.0, 1)],
        "not a suffix": good[:4] + [(2, 5, 5, 0.3, 2)],  # (a) b leads back to (a)
        "met twice": good + [(1, 5, 5, 1.3, 1)],
    }
    for message, arcs in bad.items():
        with pytest.raises(InputError, match=message):
            ngrams_of_fst(_fst(arcs, {1: 2.0}), symbols)


def few_paths(symbols: Vocab) -> Lattice:
    """The fixture lattices pruned to few paths (every path can be listed), one per words."""
    lat = next(iter(read_lattice_batches(f"ark:{FIXTURES / 'lats.ark'}", "kaldi",
                                         symbols)))[0]
    return determinize(prune_beam(lat, BEAM, Weights(0.1))[0], Weights(0.1))[0]


def with_old_lm(lat: Lattice, lm: NgramLM, symbols: Vocab) -> Lattice:
    """``lat`` with the n-gram's log-prob added to each path's graph score ("lm"): the n-gram
    rescores ``lat`` at its own order, every path kept (no beam, no determinization)."""
    opts = RescoreOptions(order=lm.order, first_pass_scale=1.0, unk_penalty=0.0,
                          determinize=False, beam=None, prune_order=None)
    with torch.no_grad():
        return LatticeRescorer(lm, WordUnits(lm.vocab), symbols, opts).rescore(lat).lattice


@pytest.mark.parametrize("fst", ["G.fst", None])
@pytest.mark.parametrize("prune", [{"beam": DEFAULT_BEAM, "prune_order": DEFAULT_PRUNE_ORDER},
                                   {"prune_order": None},
                                   {"prune_order": 2, "prune_beam": 1.0},
                                   {"prune_order": 1, "prune_beam": 1.0}])
def test_taking_the_old_lm_out_equals_never_adding_it(lang, tmp_path: Path, fst: str | None,
                                                     prune: dict) -> None:
    """Lattices whose graph score is the non-LM costs plus the old LM, rescored with the old LM
    (G.fst, or the ARPA) taken out, give the same 1-best and the same scores per word
    sequence as the same lattices rescored with the old LM never added: at score's default
    pruning (its first beam is on the lattices' own scores, the first pass's ranking, so the
    two keep other paths, with the same scores), without any, and with a tight order-2 coarse pass (where the trigram is
    exact). With an order-1 coarse pass, where the trigram's histories are cut to one word,
    other paths may survive, but every survivor's score is still the same. (The lattices are
    pruned to few paths first, so that every path can be listed.)"""
    arpa, lang_dir, _ = lang
    symbols = Vocab.load(lang_dir / "words.txt")
    lat = few_paths(symbols)
    old = load_old_lm(lang_dir / fst if fst else arpa, symbols)
    with_old = with_old_lm(lat, NgramLM.from_file(arpa), symbols)
    g = KaldiG(arpa, tmp_path)  # the construction, checked against Kaldi's G.fst
    added, plain = _path_scores(with_old, symbols, "lm"), _path_scores(lat, symbols, "lm")
    assert added.keys() == plain.keys() and len(added) > 20
    for key, value in added.items():
        assert abs(value - plain[key] - g.sentence(list(key[1:]))) < 2e-4, key

    vocab = _shuffled(NgramLM.from_file(arpa).vocab)
    rnn, units = _rnnlm(vocab), WordUnits(vocab)
    opts = RescoreOptions(order=3, **prune)  # Kaldi's weight 1: all of the old LM out
    with torch.no_grad():
        taken_out = LatticeRescorer(rnn, units, symbols, opts, old).rescore(with_old)
        never = LatticeRescorer(rnn, units, symbols, opts).rescore(lat)
    got = _path_scores(taken_out.lattice, symbols, "lm")
    want = _path_scores(never.lattice, symbols, "lm")
    if prune.get("prune_order") != 1:
        assert taken_out.best.word_lists() == never.best.word_lists()
    if prune.get("prune_order") != 1 and prune.get("beam") is None:
        assert got.keys() == want.keys()
    assert len(got.keys() & want.keys()) > 5
    for key in got.keys() & want.keys():
        assert abs(got[key] - want[key]) < 1e-4, key


def test_cli_score_with_a_gfst(lang, tmp_path: Path) -> None:
    arpa, lang_dir, _ = lang
    vocab = _shuffled(NgramLM.from_file(arpa).vocab)
    ckpt = tmp_path / "lm.pt"
    config = ExperimentConfig(model=ModelConfig(cell="gru", vocab_size=len(vocab),
                                                hidden_dim=8, order=2),
                              train=TrainConfig(method="afp"))
    save_checkpoint(ckpt, _rnnlm(vocab), vocab, config)
    args = ["--log-level", "WARNING", "score", "--model", str(ckpt), "--lattice",
            f"ark:{FIXTURES / 'lats.ark'}", "--words", str(lang_dir / "words.txt"),
            "--one-best", str(tmp_path / "hyp"), "--summary", str(tmp_path / "summary.json"),
            "--lm-scale", "0.5", "--old-lm", str(lang_dir / "G.fst")]
    assert main(args) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["old_lm_scale"], summary["first_pass_scale"], summary["rescored"]) == (
        -0.5, 1.0, 5)
    hyp_fst = (tmp_path / "hyp").read_text()
    assert main(args[:-1] + [str(arpa)]) == 0  # the ARPA it was made from: the same 1-best
    assert (tmp_path / "hyp").read_text() == hyp_fst


def test_a_unigram_gfst_starts_at_its_null_history(tmp_path: Path) -> None:
    """A unigram G.fst has one history, where it starts: <s> is no state of its own."""
    (tmp_path / "u.arpa").write_text("\\data\\\nngram 1=5\n\n\\1-grams:\n-1.0\t<unk>\n-99\t<s>\n"
                                     "-0.5\t</s>\n-0.7\ta\n-0.9\tb\n\n\\end\\\n")
    (tmp_path / "words.txt").write_text("<eps> 0\n<unk> 1\na 2\nb 3\nc 4\n#0 5\n<s> 6\n</s> 7\n")
    kaldilm.arpa2fst(str(tmp_path / "u.arpa"), str(tmp_path / "G.fst"), disambig_symbol="#0",
                     read_symbol_table=str(tmp_path / "words.txt"))
    lm = load_old_lm(tmp_path / "G.fst", Vocab.load(tmp_path / "words.txt"))
    sentences = [["a", "b"], ["c"], []]  # c has no 1-gram: <unk>
    got = sentence_scores(lm, sentences)
    want = sentence_scores(NgramLM.from_file(tmp_path / "u.arpa"), sentences)
    assert lm.n == 1 and torch.allclose(got, want, atol=1e-5, rtol=0)
    assert got[0].item() == pytest.approx(-(0.7 + 0.9 + 0.5) * np.log(10), abs=1e-5)
