"""ARPA n-gram LMs (lmrescore/lm/arpa.py): reading, back-off scores, and exact rescoring.

The test ARPA is a trigram with interpolated absolute discounting estimated here from a random
corpus over the fixture words (so it is normalised, and has back-off weights at every order),
with some bigrams removed whose trigrams stay (pruned models: a context that is not an n-gram).
Its scores are checked against Kaldi's arpa2fst (kaldilm: the G.fst's arcs read along each
sentence, taking the back-off arc where a word has none), kenlm where it is installed, and a
plain dictionary reading of the ARPA text.
"""

from __future__ import annotations

import gzip
import json
import math
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from lattice_testing import enumerate_paths
from lmrescore.cli import main
from lmrescore.errors import InputError
from lmrescore.formats import read_lattice_batches
from lmrescore.lattice.lattice import Lattice
from lmrescore.lm.arpa import NgramLM, read_arpa
from lmrescore.lm.checkpoint import save_checkpoint
from lmrescore.lm.config import ExperimentConfig, TrainConfig
from lmrescore.lm.interface import LanguageModel
from lmrescore.lm.model import ModelConfig, RNNLM
from lmrescore.lm.units import WordUnits
from lmrescore.rescoring.rescorer import LatticeRescorer, RescoreOptions
from lmrescore.rescoring.symbols import skipped
from lmrescore.vocab import BOS, EOS, SPECIALS, UNK, Vocab

FIXTURES = Path(__file__).parent / "fixtures"
BEAM = 2.0  # as tests/test_lm_interface.py: each fixture lattice keeps < NUM_PATHS sequences
NUM_PATHS = 2000
DISCOUNT = 0.6


def corpus(seed: int, words: list[str], num: int = 400) -> list[list[str]]:
    """Random sentences from a sparse random Markov chain over ``words`` (repeated n-grams)."""
    rng = random.Random(seed)
    nexts = {w: rng.sample(words, 4) for w in words + [BOS]}
    out = []
    for _ in range(num):
        prev, sentence = BOS, []
        for _ in range(rng.randint(1, 9)):
            prev = rng.choice(nexts[prev]) if rng.random() < 0.8 else rng.choice(words)
            sentence.append(prev)
        out.append(sentence)
    return out


def arpa_text(sentences: list[list[str]], drop_prefixes: int, n: int = 3) -> str:
    """An order-n ARPA of interpolated absolute discounting, add-one unigrams over the words,
    ``</s>`` and ``<unk>``; ``drop_prefixes`` bigrams that are prefixes of trigrams removed."""
    counts = [Counter() for _ in range(n + 1)]  # counts[k][k-gram]
    for s in sentences:
        padded = [BOS] + s + [EOS]
        for k in range(1, n + 1):
            for i in range(len(padded) - k + 1):
                if padded[i + k - 1] != BOS:
                    counts[k][tuple(padded[i: i + k])] += 1
    words = sorted({g[0] for g in counts[1]} | {UNK})
    total = sum(counts[1].values())
    prob = {(w,): (counts[1][(w,)] + 1) / (total + len(words)) for w in words}
    backoff: dict[tuple[str, ...], float] = {}
    for k in range(2, n + 1):
        ctx_total, ctx_types = Counter(), Counter()
        for g, c in counts[k].items():
            ctx_total[g[:-1]] += c
            ctx_types[g[:-1]] += 1
        for h in ctx_total:
            backoff[h] = DISCOUNT * ctx_types[h] / ctx_total[h]
        for g, c in counts[k].items():
            h = g[:-1]
            prob[g] = (c - DISCOUNT) / ctx_total[h] + backoff[h] * _backed_off(prob, backoff,
                                                                                g[1:])
    rng = random.Random(0)
    prefixes = sorted({g[:2] for g in prob if len(g) == 3 and g[0] != BOS})
    for g in rng.sample(prefixes, drop_prefixes):
        del prob[g]
    lines = ["\\data\\"] + [f"ngram {k}={sum(len(g) == k for g in prob) + (k == 1)}"
                            for k in range(1, n + 1)]
    for k in range(1, n + 1):
        lines += ["", f"\\{k}-grams:"]
        if k == 1:
            lines.append(f"-99\t{BOS}\t{math.log10(backoff[(BOS,)]):.6f}")
        for g in sorted(g for g in prob if len(g) == k):
            bow = f"\t{math.log10(backoff[g]):.6f}" if g in backoff and k < n else ""
            lines.append(f"{math.log10(prob[g]):.6f}\t{' '.join(g)}{bow}")
    return "\n".join(lines + ["", "\\end\\", ""])


def _backed_off(prob: dict, backoff: dict, g: tuple[str, ...]) -> float:
    """p(g[-1] | g[:-1]) of the model built so far (orders below len(g) + 1 complete)."""
    if g in prob:
        return prob[g]
    return backoff.get(g[:-1], 1.0) * _backed_off(prob, backoff, g[1:])


class DictArpa:
    """The plain reading of an ARPA text: recursive back-off over dictionaries (log10)."""

    def __init__(self, text: str) -> None:
        self.prob: dict[tuple[str, ...], float] = {}
        self.backoff: dict[tuple[str, ...], float] = {}
        k = 0
        for line in text.splitlines():
            f = line.split()
            if line.endswith("-grams:"):
                k = int(line[1:-len("-grams:")])
            elif k and len(f) > k:
                self.prob[tuple(f[1: k + 1])] = float(f[0])
                if len(f) == k + 2:
                    self.backoff[tuple(f[1: k + 1])] = float(f[-1])
        self.n = k

    def log10_prob(self, history: list[str], w: str) -> float:
        """log10 p(w | history); -100 for a word without a 1-gram (as kenlm's missing <unk>)."""
        h = tuple(history)[len(history) - self.n + 1:] if self.n > 1 else ()
        if h + (w,) in self.prob:
            return self.prob[h + (w,)]
        if not h:
            return -100.0
        return self.backoff.get(h, 0.0) + self.log10_prob(list(h[1:]), w)

    def sentence(self, words: list[str]) -> float:
        """Natural-log p(words </s> | <s>), words without a 1-gram as <unk>."""
        history, total = [BOS], 0.0
        for w in [w if (w,) in self.prob else UNK for w in words] + [EOS]:
            total += self.log10_prob(history, w)
            history.append(w)
        return total * math.log(10)


class KaldiG:
    """Kaldi's G.fst of an ARPA (kaldilm.arpa2fst, no disambiguation symbol), walked along a
    sentence: an arc with the word, else the back-off (epsilon) arc and try again."""

    def __init__(self, arpa_path: Path, tmp: Path) -> None:
        kaldilm = pytest.importorskip("kaldilm", reason="kaldilm (pip install kaldilm) "
                                                        "is the reference ARPA compiler")
        text = kaldilm.arpa2fst(str(arpa_path), write_symbol_table=str(tmp / "g_words.txt"),
                                max_arpa_warnings=0)
        self.ids = {w: int(i) for w, i in
                    (line.split() for line in (tmp / "g_words.txt").read_text().splitlines())}
        self.arcs: dict[int, dict[int, tuple[int, float]]] = {}
        self.final: dict[int, float] = {}
        self.start = None
        for line in text.splitlines():
            f = line.split()
            if len(f) in (1, 2):
                self.final[int(f[0])] = float(f[1]) if len(f) == 2 else 0.0
            elif len(f) in (4, 5):
                src = int(f[0])
                self.start = src if self.start is None else self.start
                self.arcs.setdefault(src, {})[int(f[2])] = (int(f[1]),
                                                            float(f[4]) if len(f) == 5 else 0.0)

    def sentence(self, words: list[str]) -> float:
        """Natural-log p(words </s> | <s>) read off the G.fst."""
        state, cost = self.start, 0.0
        for w in [BOS] + words + [EOS]:
            label = self.ids.get(w, self.ids[UNK])
            while label not in self.arcs.get(state, {}):
                state, c = self.arcs[state][0]
                cost += c
            state, c = self.arcs[state][label]
            cost += c
        return -(cost + self.final[state])


def sentence_scores(lm: NgramLM, sentences: list[list[str]]) -> torch.Tensor:
    """(N,) natural-log p(sentence </s> | <s>) by ``sequence_log_probs`` over a padded batch."""
    ids = [lm.vocab.encode(s) for s in sentences]
    t = max(len(s) for s in ids) + 1
    inputs = torch.zeros(len(ids), t, dtype=torch.long)
    targets = torch.zeros_like(inputs)
    mask = torch.zeros(len(ids), t, dtype=torch.bool)
    for i, s in enumerate(ids):
        inputs[i, : len(s) + 1] = torch.tensor([lm.vocab.bos] + s)
        targets[i, : len(s) + 1] = torch.tensor(s + [lm.vocab.eos])
        mask[i, : len(s) + 1] = True
    starts = torch.zeros_like(mask)
    starts[:, 0] = True
    log_probs, _ = lm.sequence_log_probs(inputs, targets, mask, starts, None)
    return log_probs.double().sum(1)


def _write_model(tmp: Path, drop_prefixes: int) -> tuple[Path, str, list[list[str]]]:
    symbols = Vocab.load(FIXTURES / "words.txt").words[4:]
    train_words = list(symbols[::2])
    text = arpa_text(corpus(1, train_words), drop_prefixes=drop_prefixes)
    path = tmp / "lm.arpa"
    path.write_text(text)
    tests = corpus(1, train_words, 150) + corpus(2, list(symbols), 150)
    return path, text, tests


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, list[list[str]]]:
    """(ARPA path, its text, test sentences: held-out, with words outside the model)."""
    return _write_model(tmp_path_factory.mktemp("arpa"), 0)


@pytest.fixture(scope="module")
def pruned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, list[list[str]]]:
    """As ``model``, with 5 bigrams removed whose trigrams stay (a pruned model)."""
    return _write_model(tmp_path_factory.mktemp("pruned"), 5)


def test_scores_match_kaldi_arpa2fst(model, tmp_path: Path) -> None:
    """Kaldi's G.fst has the same scores. (Not on a pruned model: arpa2fst drops an n-gram
    whose prefix is not an n-gram, with a warning; SRILM and kenlm use it, as NgramLM does.)"""
    path, text, sentences = model
    lm = NgramLM.from_file(path)
    assert isinstance(lm, LanguageModel) and (lm.order, lm.start(1).shape[1]) == (2, 2)
    got = sentence_scores(lm, sentences)
    g = KaldiG(path, tmp_path)
    want = torch.tensor([g.sentence(s) for s in sentences], dtype=torch.float64)
    assert sum(w not in lm.vocab for s in sentences for w in s) > 50  # <unk> is exercised
    torch.testing.assert_close(got, want, rtol=1e-6, atol=2e-4)


def test_scores_match_kenlm(model) -> None:
    """kenlm has the same scores. (Not on a pruned model: kenlm's probing model, the one its
    Python module loads an ARPA as, refuses a file where a context is not an n-gram.)"""
    kenlm = pytest.importorskip("kenlm", reason="kenlm (pip install kenlm: a C++ source build) "
                                                "is not installed")
    path, _, sentences = model
    ref = kenlm.Model(str(path))
    got = sentence_scores(NgramLM.from_file(path), sentences)
    want = torch.tensor([ref.score(" ".join(s), bos=True, eos=True) * math.log(10)
                         for s in sentences], dtype=torch.float64)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("name", ["model", "pruned"])
def test_scores_match_the_plain_reading(name: str, request: pytest.FixtureRequest) -> None:
    """Sentences, and every (context, word) pair over a slice of the vocabulary, also contexts
    no sentence has (``<s>`` inside, ``<eps>``, blank prefixes of the pruned model)."""
    path, text, sentences = request.getfixturevalue(name)
    lm, plain = NgramLM.from_file(path), DictArpa(text)
    want = torch.tensor([plain.sentence(s) for s in sentences], dtype=torch.float64)
    torch.testing.assert_close(sentence_scores(lm, sentences), want, rtol=1e-6, atol=1e-5)
    words = list(lm.vocab.words[::7]) + [BOS, EOS, UNK]
    ctx = torch.tensor([[lm.vocab.ids[a], lm.vocab.ids[b]] for a in words for b in words])
    ctx = torch.cat([ctx, torch.tensor([[-1, lm.vocab.bos]])])
    rows = torch.arange(ctx.shape[0]).repeat_interleave(len(words))
    tokens = torch.tensor([lm.vocab.ids[w] for w in words]).repeat(ctx.shape[0])
    got = lm.log10_probs(ctx[rows], tokens)
    want = torch.tensor([plain.log10_prob([lm.vocab.words[i] for i in ctx[r].tolist() if i >= 0],
                                          lm.vocab.words[w])
                         for r, w in zip(rows.tolist(), tokens.tolist())], dtype=torch.float64)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-9)
    blank = [g for g in plain.prob if len(g) == 3 and g[:2] not in plain.prob]
    assert len({g[:2] for g in blank}) == (5 if name == "pruned" else 0)
    for g in blank:  # a trigram whose bigram prefix is not in the model is still used,
        a, b, c = (lm.vocab.ids[w] for w in g)  # and that bigram is backed off from
        assert float(lm.log10_probs(torch.tensor([[a, b]]), torch.tensor([c]))) == plain.prob[g]
        bigram = float(lm.log10_probs(torch.tensor([[-1, a]]), torch.tensor([b])))
        assert bigram == pytest.approx(plain.log10_prob([g[0]], g[1]), abs=1e-12)


def test_interface_methods_agree(model) -> None:
    """step from start, token_log_probs, logits and sequence_log_probs: one model; the
    distribution is normalised."""
    path, _, sentences = model
    lm = NgramLM.from_file(path)
    ids = torch.tensor([lm.vocab.encode(s[:4]) for s in sentences if len(s) >= 4][:6])
    state, steps = lm.start(ids.shape[0]), []
    for t in range(ids.shape[1]):
        state = lm.step(state, ids[:, t])
        steps.append(state)
    states = torch.stack(steps, 1).flatten(0, 1)
    targets = torch.roll(ids, -1, 1)
    mask = torch.ones_like(ids, dtype=torch.bool)
    seq, final = lm.sequence_log_probs(ids, targets, mask, None, None)
    assert torch.equal(final, state)
    rows = torch.arange(states.shape[0])
    queried = lm.token_log_probs(states, rows, targets.flatten())
    assert torch.equal(queried, seq.flatten())
    full = lm.logits(states)
    assert torch.equal(full[rows, targets.flatten()], queried)
    # normalised over the words (<eps> and <s> have ~10^-100)
    torch.testing.assert_close(full.double().exp().sum(-1), torch.ones(states.shape[0],
                                                                       dtype=torch.float64),
                               rtol=0, atol=1e-4)
    seq1, none = lm.sequence_log_probs(ids, targets, mask, None, 1)
    bigram = lm.token_log_probs(states.masked_fill(torch.tensor([True, False]), -1), rows,
                               targets.flatten())
    assert none is None and torch.equal(seq1.flatten(), bigram)
    assert not torch.equal(seq1, seq)


def test_gzip_and_vocabulary(model, tmp_path: Path) -> None:
    path, text, _ = model
    gz = tmp_path / "lm.arpa.gz"
    with gzip.open(gz, "wt") as f:
        f.write(text)
    plain, zipped = read_arpa(path), read_arpa(gz)
    assert plain.vocab == zipped.vocab and plain.order == zipped.order == 3
    assert plain.vocab.words[0] == "<eps>" and all(
        torch.equal(torch.from_numpy(a.prob), torch.from_numpy(b.prob))
        for a, b in zip(plain.tables, zipped.tables))
    assert len(plain.tables[0].ids) + 1 == len(plain.vocab)  # the 1-grams and <eps>


SMALL = """\\data\\
ngram 1=4
ngram 2=2

\\1-grams:
-1.0\t<unk>
-99\t<s>\t-0.5
-0.5\t</s>
-0.7\ta\t-0.3

\\2-grams:
-0.3\t<s> a
-0.4\ta </s>

\\end\\
"""


def test_blank_lines_and_crlf_read_as_the_plain_file(tmp_path: Path) -> None:
    """Blank lines inside sections and Windows line ends change nothing; line numbers in
    messages still count every line."""
    plain, odd = tmp_path / "plain.arpa", tmp_path / "odd.arpa"
    plain.write_text(SMALL)
    text = SMALL.replace("-0.5\t</s>\n", "-0.5\t</s>\n\n  \n").replace("\n", "\r\n")
    odd.write_bytes(text.encode())
    a, b = read_arpa(plain), read_arpa(odd)
    assert a.vocab == b.vocab
    for x, y in zip(a.tables, b.tables, strict=True):
        assert np.array_equal(x.ids, y.ids) and np.array_equal(x.prob, y.prob)
        assert np.array_equal(x.backoff, y.backoff)
    odd.write_bytes(text.replace("-0.4\ta </s>", "-0.4\ta b").encode())
    with pytest.raises(InputError, match=r"odd.arpa:15: word 'b' is not in the 1-grams"):
        read_arpa(odd)


@pytest.mark.parametrize("text", ["\\data\\\n\\end\\\n",
                                  "\\data\\\nngram 1=0\n\\1-grams:\n\\end\\\n"])
def test_a_model_without_1_grams_is_refused(tmp_path: Path, text: str) -> None:
    (tmp_path / "lm.arpa").write_text(text)
    with pytest.raises(InputError, match=r"lm.arpa: no 1-grams"):
        read_arpa(tmp_path / "lm.arpa")


@pytest.mark.parametrize("old, new, message", [
    ("ngram 2=2", "ngram 2=3", r"lm.arpa: \\2-grams: has 2 entries, the header says ngram 2=3"),
    ("-0.4\ta </s>", "-0.4\ta b", r"lm.arpa:13: word 'b' is not in the 1-grams"),
    ("-0.4\ta </s>", "-0.4\ta </s>\t-0.1", r"lm.arpa:13: expected log10prob and 2 words"),
    ("-0.7\ta\t-0.3", "x\ta\t-0.3", r"lm.arpa:9: not a number"),
    ("-0.4\ta </s>", "-0.4\t<s> a", r"lm.arpa:13: duplicate 2-gram \(first at line 12\)"),
    ("ngram 2=2", "ngram 2 2", r"lm.arpa:3: expected 'ngram N=count'"),
    ("\\2-grams:", "\\3-grams:", r"lm.arpa:11: unexpected section"),
    ("\\end\\", "", r"lm.arpa: no \\end\\ line"),
])
def test_malformed_files_name_the_line(tmp_path: Path, old: str, new: str, message: str) -> None:
    path = tmp_path / "lm.arpa"
    path.write_text(SMALL)
    assert NgramLM.from_file(path).n == 2  # the unedited file reads
    assert SMALL.count(old) == 1
    path.write_text(SMALL.replace(old, new))
    with pytest.raises(InputError, match=message):
        read_arpa(path)


def _fixture(lm: NgramLM) -> tuple[Lattice, Vocab, WordUnits]:
    symbols = Vocab.load(FIXTURES / "words.txt")
    lat = next(iter(read_lattice_batches(f"ark:{FIXTURES / 'lats.ark'}", "kaldi", symbols)))[0]
    return lat, symbols, WordUnits(lm.vocab)


@pytest.mark.parametrize("method", ["fixed-point", "ngram-approx", "nbest"])
def test_rescoring_equals_sentence_scores(model, tmp_path: Path, method: str) -> None:
    """Rescoring the fixture lattices (fixed-point at K = n-1, ngram-approx with n, nbest over
    all paths): each path's LM score is Kaldi's G.fst score of its sentence."""
    path, _, _ = model
    lm = NgramLM.from_file(path)
    lat, symbols, units = _fixture(lm)
    g = KaldiG(path, tmp_path)
    opts = RescoreOptions(method=method, beam=BEAM, max_ngram_order=3, num_paths=NUM_PATHS)
    result = LatticeRescorer(lm, units, symbols, opts).rescore(lat)
    out = result.lattice
    assert not result.failed and out.num_lattices == lat.num_lattices
    scores = out.scores["rnnlm"].double()
    checked = 0
    for i in range(out.num_lattices):
        paths = enumerate_paths(out, i)
        assert len(paths) < NUM_PATHS
        for p in paths:
            words = [symbols.words[int(out.label[a])] for a in p if int(out.label[a]) > 0]
            words = [w for w in words if not skipped(w)]
            assert abs(float(scores[p].sum()) - g.sentence(words)) < 2e-4, (method, words)
            checked += 1
    assert checked > 100


def _rnnlm(vocab: Vocab) -> RNNLM:
    """A random order-2 GRU over ``vocab``."""
    torch.manual_seed(0)
    return RNNLM(ModelConfig(cell="gru", vocab_size=len(vocab), hidden_dim=8, order=2)).eval()


def _shuffled(vocab: Vocab) -> Vocab:
    """The same words with other ids (model tokens must be translated to n-gram ids)."""
    words = [w for w in vocab.words if w not in SPECIALS]
    random.Random(0).shuffle(words)
    return Vocab(SPECIALS + tuple(words))


def _path_scores(lat: Lattice, symbols: Vocab, score: str) -> dict[tuple[str, ...], float]:
    """The summed ``score`` of every path, by its word sequence (skipped words left out)."""
    scores = lat.scores[score].double()
    out: dict[tuple[str, ...], float] = {}
    for i in range(lat.num_lattices):
        for p in enumerate_paths(lat, i):
            words = tuple(w for w in (symbols.words[int(lat.label[a])] for a in p
                                      if int(lat.label[a]) > 0) if not skipped(w))
            out[(lat.utt_ids[i],) + words] = float(scores[p].sum())
    return out


def _check_first_pass(rnn: RNNLM, units: WordUnits, symbols: Vocab, lat: Lattice, lm: NgramLM,
                      g: KaldiG, old_lm_scale: float, method: str = "fixed-point") -> int:
    """Rescore with and without ``lm`` as the first-pass n-gram: the paths are the same, each
    path's "old_lm" score is its G.fst sentence score, and the combined score is the one
    without it plus ``old_lm_scale * old_lm``; returns the number of word sequences checked.
    (With ngram-approx the RNN scores may differ a little: with the n-gram, states are merged
    by their last n-1 lattice words, which tell apart OOV words that share the RNN's <unk>.)"""
    opts = RescoreOptions(method=method, beam=BEAM, first_pass_scale=1.0,
                          old_lm_scale=old_lm_scale, max_ngram_order=3)
    with torch.no_grad():
        plain = LatticeRescorer(rnn, units, symbols, opts).rescore(lat).lattice
        out = LatticeRescorer(rnn, units, symbols, opts, lm).rescore(lat).lattice
    rnn_plain, rnn_out = (_path_scores(x, symbols, "rnnlm") for x in (plain, out))
    assert rnn_plain.keys() == rnn_out.keys()
    no_arpa, arpa = _path_scores(plain, symbols, "lm"), _path_scores(out, symbols, "old_lm")
    for key, value in arpa.items():
        assert abs(value - g.sentence(list(key[1:]))) < 2e-4, key
    for key, value in _path_scores(out, symbols, "lm").items():
        moved = rnn_out[key] - rnn_plain[key]  # 0 for fixed-point
        assert abs(value - no_arpa[key] - moved - old_lm_scale * arpa[key]) < 1e-3, key
        assert abs(moved) < (1e-4 if method == "fixed-point" else 1e-2), key
    return len(rnn_out)


@pytest.mark.parametrize("old_lm_scale,method", [(-1.0, "fixed-point"), (0.5, "fixed-point"),
                                                 (-1.0, "ngram-approx")])
def test_first_pass_ngram_on_the_expansion(model, tmp_path: Path, old_lm_scale: float,
                                           method: str) -> None:
    path, _, _ = model
    lm = NgramLM.from_file(path)
    lat, symbols, _ = _fixture(lm)
    vocab = _shuffled(lm.vocab)
    checked = _check_first_pass(_rnnlm(vocab), WordUnits(vocab), symbols, lat, lm,
                                KaldiG(path, tmp_path), old_lm_scale, method)
    assert checked > 20


def test_first_pass_ngram_with_a_smaller_rnn_vocabulary(model, tmp_path: Path) -> None:
    """Words outside the RNN's vocabulary are one RNN token (<unk>) but distinct n-gram words:
    the expansion over lattice word ids keeps their n-gram histories apart, so both scores
    stay exact (the paths' "arpa" sums are the G.fst's)."""
    path, _, _ = model
    lm = NgramLM.from_file(path)
    lat, symbols, _ = _fixture(lm)
    dropped = [w for w in lm.vocab.words if w not in SPECIALS][::3]
    small = Vocab.from_words(w for w in lm.vocab.words if w not in dropped)
    used = {symbols.words[int(x)] for x in lat.label[lat.label > 0]}
    assert len(used & set(dropped)) >= 2  # the lattices use words the RNN lacks
    assert _check_first_pass(_rnnlm(small), WordUnits(small), symbols, lat, lm,
                             KaldiG(path, tmp_path), 0.5) > 20


def test_first_pass_ngram_refuses_what_the_expansion_cannot_score(model) -> None:
    path, _, _ = model
    lm = NgramLM.from_file(path)
    _, symbols, units = _fixture(lm)
    rnn = _rnnlm(lm.vocab)
    with pytest.raises(InputError, match="--method nbest is not supported"):
        LatticeRescorer(rnn, units, symbols, RescoreOptions(method="nbest"), lm)
    with pytest.raises(InputError, match="needs histories of 2 words .* got 1"):
        LatticeRescorer(rnn, units, symbols, RescoreOptions(order=1), lm)
    with pytest.raises(InputError, match="needs histories of 2 words .* got 1"):
        LatticeRescorer(rnn, units, symbols,
                        RescoreOptions(method="ngram-approx", max_ngram_order=2), lm)
    LatticeRescorer(rnn, units, symbols, RescoreOptions(order=2), lm)
    LatticeRescorer(rnn, units, symbols, RescoreOptions(method="ngram-approx"), lm)


def test_cli_score_with_arpa(model, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path, _, _ = model
    lm = NgramLM.from_file(path)
    ckpt = tmp_path / "lm.pt"
    config = ExperimentConfig(model=ModelConfig(cell="gru", vocab_size=len(lm.vocab),
                                                hidden_dim=8, order=2),
                              train=TrainConfig(method="afp"))
    save_checkpoint(ckpt, _rnnlm(_shuffled(lm.vocab)), _shuffled(lm.vocab), config)
    args = ["--log-level", "WARNING", "score", "--model", str(ckpt), "--lattice",
            f"ark:{FIXTURES / 'lats.ark'}", "--words", str(FIXTURES / "words.txt"),
            "--beam", "5", "--one-best", str(tmp_path / "hyp"), "--first-pass-scale", "1",
            "--summary", str(tmp_path / "summary.json"), "--old-lm", str(path)]
    assert main(args) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["old_lm"], summary["old_lm_scale"], summary["rescored"]) == (str(path), -1.0, 5)
    assert len((tmp_path / "hyp").read_text().splitlines()) == 5
    assert main(args + ["--method", "nbest"]) == 1
    assert "--method nbest is not supported with it" in capsys.readouterr().err
    assert main(args + ["--method", "ngram-approx", "--max-ngram-order", "3"]) == 0
