"""Lattice symbol tables as Kaldi lang dirs have them: no special word required, <UNK> as the
unknown word, silence/noise/#0 skipped by the LM and never charged as OOV."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmrescore.cli import main
from lmrescore.errors import InputError
from lmrescore.lm.units import WordUnits
from lmrescore.rescoring.metrics import read_text
from lmrescore.rescoring.symbols import oov_symbol, token_table
from lmrescore.vocab import Vocab
from test_cli_score import ARK, WORDS, make_model

LANG = ["<eps>", "!SIL", "<UNK>", "<SPOKEN_NOISE>", "[laughter]", "a", "b", "zebra", "#0", "#1"]


def test_a_lang_dir_table_loads_and_maps_kaldi_s_conventions(tmp_path: Path) -> None:
    (tmp_path / "words.txt").write_text("".join(f"{w} {i}\n" for i, w in enumerate(LANG)))
    symbols = Vocab.load(tmp_path / "words.txt")  # no <s>, </s>, <unk>: not required
    assert symbols.unk == LANG.index("<UNK>") and oov_symbol(symbols) == "<UNK>"
    units = WordUnits(Vocab.from_words(["a", "b"]))  # the LM knows a, b (and <unk>)
    table, is_oov = token_table(symbols, units, oov=oov_symbol(symbols))
    tokens = {w: table.values[table.splits[i]: table.splits[i + 1]].tolist()
              for i, w in enumerate(LANG)}
    for w in ("<eps>", "!SIL", "<SPOKEN_NOISE>", "[laughter]", "#0", "#1"):
        assert tokens[w] == [] and not is_oov[LANG.index(w)], w  # no LM score, no penalty
    unk = units.vocab.unk
    assert tokens["<UNK>"] == [unk] and not is_oov[LANG.index("<UNK>")]
    assert tokens["zebra"] == [unk] and is_oov[LANG.index("zebra")]  # charged --unk-penalty
    assert tokens["a"] == [units.vocab.ids["a"]] and not is_oov[LANG.index("a")]
    with pytest.raises(InputError, match="--oov-symbol"):
        oov_symbol(symbols, "<unk>")


def test_score_with_a_lang_dir_table_gives_the_same_one_best(tmp_path: Path) -> None:
    # the fixture words.txt with its specials spelled as a Kaldi lang dir spells its own
    make_model(tmp_path / "lm.pt")
    rename = {"<s>": "!SIL", "</s>": "<SPOKEN_NOISE>", "<unk>": "<UNK>"}
    words = Vocab.load(WORDS).words
    lang = [rename.get(w, w) for w in words] + ["#0"]
    (tmp_path / "words.txt").write_text("".join(f"{w} {i}\n" for i, w in enumerate(lang)))
    hyps = {}
    for name, table in [("fixture", WORDS), ("lang", str(tmp_path / "words.txt"))]:
        assert main(["score", "--model", str(tmp_path / "lm.pt"), "--lattice", ARK, "--words",
                     table, "--beam", "10", "--one-best", str(tmp_path / name),
                     "--unk-penalty", "3"]) == 0
        hyps[name] = read_text(tmp_path / name)
    assert hyps["lang"] == hyps["fixture"] and len(hyps["lang"]) == 5
