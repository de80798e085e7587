"""Units from a training text that is streamed, never held whole (#17): the word vocabulary is
counted line by line, sentencepiece keeps a sample of at most ``SP_SAMPLE`` sentences, and a
corpus within the sample gives the model it gave before there was one."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmrescore.lm import units
from lmrescore.lm.config import DataConfig
from lmrescore.lm.data import iter_sentences, read_sentences
from lmrescore.lm.units import PieceUnits, make_units
from lmrescore.vocab import Vocab
from toy_corpus import write_toy_corpus


@pytest.fixture(scope="module")
def train_text(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """400 sentences of the toy grammar."""
    return write_toy_corpus(tmp_path_factory.mktemp("toy")) / "ptb.train.txt"


def test_word_vocabulary_is_counted_from_one_pass_over_the_lines(train_text: Path,
                                                                 tmp_path: Path) -> None:
    passes = []

    def train():
        passes.append(1)
        return iter_sentences(train_text)  # a generator: one line at a time

    vocab = make_units(DataConfig(max_vocab=20), train, tmp_path).vocab
    assert passes == [1]
    assert vocab == Vocab.build(read_sentences(train_text), max_size=20)  # the text in memory
    assert len(vocab) == 20


def pieces(u: PieceUnits) -> list[tuple[str, float]]:
    """The model: each piece and its log-probability (the saved bytes also hold the options)."""
    return [(u.sp.id_to_piece(i), u.sp.get_score(i)) for i in range(u.sp.get_piece_size())]


def test_sentencepiece_within_its_sample_trains_as_on_the_whole_text(
        train_text: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sampled = pieces(PieceUnits.train(iter_sentences(train_text), 40))
    monkeypatch.setattr(units, "SP_SAMPLE", 0)  # no sample: every sentence, as before
    assert pieces(PieceUnits.train(iter_sentences(train_text), 40)) == sampled
    monkeypatch.setattr(units, "SP_SAMPLE", 101)  # a quarter of the text: the sample is taken
    assert pieces(PieceUnits.train(iter_sentences(train_text), 40)) != sampled
