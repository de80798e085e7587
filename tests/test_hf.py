"""Local Hugging Face causal LMs (lmrescore/lm/hf.py, ``score --model hf:DIR --order K``): every
path of the fixture lattices scores what the HF model itself gives its sentence with each word's
context cut to its last K words, spelt by the model's own tokenizer. The model and tokenizer are
made here (a random 2-layer GPT-2, a byte-level BPE trained on the fixture's words): nothing is
downloaded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lattice_testing import enumerate_paths
from lmrescore.cli import main
from lmrescore.errors import InputError
from lmrescore.lm.hf import spell
from lmrescore.rescoring.lm_file import load_lm
from lmrescore.rescoring.rescorer import LatticeRescorer, RescoreOptions
from lmrescore.rescoring.symbols import skipped
from lmrescore.vocab import UNK, Vocab
from test_cli_score import ARK, WORDS
from test_kinds import BEAM, fixture_lattices

transformers = pytest.importorskip("transformers")
os.environ["HF_HUB_OFFLINE"] = "1"
END = "<|endoftext|>"


def save_tiny_lm(folder: Path, unk: str | None) -> None:
    """A byte-level BPE over the fixture's words (BOS = EOS = ``END``; its own unknown token
    ``unk``, or none: ``END``, as GPT-2's) and a random 2-layer GPT-2 over its tokens, saved in
    ``folder``."""
    from tokenizers import ByteLevelBPETokenizer

    words = [w for w in Vocab.load(WORDS).words if not w.startswith("<")]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([" ".join(words)], vocab_size=300, min_frequency=2,
                            special_tokens=[END] + ([unk] if unk else []), show_progress=False)
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token=END,
                                                     eos_token=END, unk_token=unk or END)
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=2, n_head=2, n_embd=16, n_positions=64,
                                     vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                                     eos_token_id=tokenizer.eos_token_id)
    tokenizer.save_pretrained(folder)
    transformers.GPT2LMHeadModel(config).save_pretrained(folder)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("hf")
    save_tiny_lm(path, "<unk>")
    return path


class Reference:
    """The HF model's own scores, by a plain loop of whole-sequence calls (each word's
    log-probability kept, as paths share them)."""

    def __init__(self, folder: Path) -> None:
        self.model = transformers.AutoModelForCausalLM.from_pretrained(folder,
                                                                       local_files_only=True)
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.known: dict[tuple[tuple[str, ...], str | None], float] = {}

    def sentence(self, words: list[str], order: int) -> float:
        """log p of ``words`` and the end of the sentence, each word read after BOS and the
        text of its last ``order`` words."""
        return sum(self.word(tuple(words[max(0, t - order): t]), word)
                   for t, word in enumerate(words + [None]))

    @torch.no_grad()
    def word(self, context: tuple[str, ...], word: str | None) -> float:
        """log p(word's tokens | BOS, the tokens of the text ``context``); None: EOS."""
        if (context, word) not in self.known:
            tok = self.tokenizer
            before = tok(" ".join(context), add_special_tokens=False).input_ids
            if word is None:
                target = [tok.eos_token_id]
            else:
                ids = tok(" ".join(context + (word,)), add_special_tokens=False).input_ids
                assert ids[:len(before)] == before
                target = ids[len(before):]
            ids = torch.tensor([[tok.bos_token_id] + before + target])
            log_probs = torch.log_softmax(self.model.eval()(ids).logits[0].double(), dim=-1)
            self.known[context, word] = sum(float(log_probs[len(before) + j, t])
                                            for j, t in enumerate(target))
        return self.known[context, word]


@pytest.mark.parametrize("order,method", [(1, "fixed-point"), (2, "fixed-point"),
                                          (3, "fixed-point"), (2, "nbest")])
def test_paths_score_the_models_own_cut_sentence_scores(folder: Path, order: int,
                                                        method: str) -> None:
    symbols = Vocab.load(WORDS)
    lm, units = load_lm(f"hf:{folder}", symbols, order=order)
    opts = RescoreOptions(method=method, order=order, beam=BEAM, num_paths=1000)
    out = LatticeRescorer(lm, units, symbols, opts).rescore(fixture_lattices(symbols))
    assert not out.failed
    lat, scores = out.lattice, out.lattice.scores["rnnlm"].double()
    reference = Reference(folder)
    checked = 0
    for i in range(lat.num_lattices):
        for p in enumerate_paths(lat, i):
            words = [symbols.words[int(lat.label[a])] for a in p if int(lat.label[a]) > 0]
            words = [w for w in words if not skipped(w)]
            want = reference.sentence(words, order)
            assert abs(float(scores[p].sum()) - want) < 1e-4, words
            checked += 1
    assert checked > 20


def test_unk_is_the_tokenizers_own_unknown_token_else_its_text(folder: Path,
                                                               tmp_path: Path) -> None:
    """The lattice's ``<unk>`` is spelt as the tokenizer's unknown token; where that is its
    end of text (GPT-2), as the text ``<unk>``, like any word."""
    save_tiny_lm(tmp_path, None)
    for path, own in ((folder, True), (tmp_path, False)):
        lm, _ = load_lm(f"hf:{path}", Vocab.load(WORDS), order=2)
        tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
        s, unk = lm.spellings, lm.vocab.ids[UNK]
        for kind, text in ((0, "<unk>"), (1, " <unk>")):
            start, length = int(s.start[kind, unk]), int(s.length[kind, unk])
            want = ([tokenizer.unk_token_id] if own
                    else tokenizer(text, add_special_tokens=False).input_ids)
            assert s.values[start: start + length].tolist() == want
            assert own or len(want) > 1  # "<", "unk", ">" or so: not the end of text


def test_score_end_to_end(folder: Path, tmp_path: Path, capsys) -> None:
    args = ["--log-level", "WARNING", "score", "--model", f"hf:{folder}", "--lattice", ARK,
            "--words", WORDS, "--acoustic-scale", "0.1", "--one-best", str(tmp_path / "hyp")]
    assert main(args + ["--order", "2"]) == 0
    lines = (tmp_path / "hyp").read_text().splitlines()
    assert len(lines) == 5 and all(len(line.split()) > 1 for line in lines)
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "give --order K" in err[0] and f"hf:{folder}" in err[0]


def test_bad_folders_are_one_error(tmp_path: Path) -> None:
    symbols = Vocab.load(WORDS)
    with pytest.raises(InputError, match="not a folder"):
        load_lm(f"hf:{tmp_path / 'none'}", symbols, order=2)
    with pytest.raises(InputError, match="does not load as a causal LM"):
        load_lm(f"hf:{tmp_path}", symbols, order=2)


def test_the_package_works_without_transformers(folder: Path) -> None:
    """transformers is imported only when an hf: model loads: without it, every other model
    loads and hf: is one error naming the extra."""
    code = (f"import sys; sys.modules['transformers'] = None\n"
            f"from lmrescore.cli import main\n"
            f"from lmrescore.rescoring.lm_file import load_lm\n"
            f"from lmrescore.errors import InputError\n"
            f"from lmrescore.vocab import Vocab\n"
            f"try:\n"
            f"    load_lm('hf:{folder}', Vocab.load({WORDS!r}), order=2)\n"
            f"except InputError as e:\n"
            f"    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "needs transformers (pip install 'lmrescore[hf]')" in out


def test_a_tokenizer_that_does_not_spell_word_by_word_is_refused() -> None:
    """Here " b" is spelt as "b" alone but "a b" keeps its space: the window's tokens would not
    be the text's, so the model is refused (one error naming the two words)."""

    class Stripping:
        unk_token_id = None

        def __call__(self, texts: list[str], add_special_tokens: bool) -> dict:
            return {"input_ids": [[ord(c) for c in t.strip()] for t in texts]}

    vocab = Vocab.from_words(["a", "b"])
    with pytest.raises(InputError, match=r"hf:x: the tokenizer spells 'a' 'b' as \[97, 32, 98\]"):
        spell(Stripping(), vocab, 0, 0, "hf:x")
