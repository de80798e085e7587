"""Corpora on disk and training on any text: the token store, batches made from it, Kaldi text,
a given vocabulary, and the command-line options that reach them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lmrescore.cli import main
from lmrescore.errors import InputError
from lmrescore.lm.checkpoint import load_model
from lmrescore.lm.corpus import build_store, encode_text, open_store
from lmrescore.lm.data import (SentenceBatches, StreamBatches, iter_sentences, kaldi_text_ids,
                               read_sentences, shard)
from lmrescore.lm.units import WordUnits, read_word_list
from lmrescore.vocab import Vocab
from test_train import error_of
from toy_corpus import write_toy_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_toy_corpus(tmp_path_factory.mktemp("toy"), train=101, heldout=20)


@pytest.fixture(scope="module")
def units(corpus: Path) -> WordUnits:
    return WordUnits(Vocab.build(read_sentences(corpus / "ptb.train.txt"), max_size=12))


def test_store_holds_the_encoded_sentences_and_is_made_once(corpus: Path, units: WordUnits,
                                                            tmp_path: Path) -> None:
    text = corpus / "ptb.train.txt"
    store = build_store(text, "plain", units, tmp_path, "train")
    expected = units.encode(read_sentences(text))
    assert len(store) == len(expected) == 101
    for i, ids in enumerate(expected):
        assert torch.equal(store.sentence(i), ids)
    assert (units.vocab.unk == store.tokens).any()  # a 12-word vocabulary leaves words out
    assert store.num_words == sum(len(s) for s in read_sentences(text))
    assert list(store.tokens[store.offsets[1:] - 1]) == [units.vocab.eos] * 101

    made = (tmp_path / "train.tokens").stat().st_mtime_ns
    build_store(text, "plain", units, tmp_path, "train")  # same text, same units: kept
    assert (tmp_path / "train.tokens").stat().st_mtime_ns == made
    other = WordUnits(Vocab.build(read_sentences(text)))  # other units: made again
    again = build_store(text, "plain", other, tmp_path, "train")
    assert not (again.tokens == other.vocab.unk).any()  # every word is in this vocabulary
    assert torch.equal(again.sentence(0), other.encode(read_sentences(text)[:1])[0])


def test_a_failed_build_leaves_no_store(units: WordUnits, tmp_path: Path) -> None:
    text = tmp_path / "bad.txt"
    text.write_bytes(b"the cat\n" * 5 + b"a \xff dog\n")
    build_dir = tmp_path / "data"
    with pytest.raises(InputError, match=r"bad.txt:6: not UTF-8 \(byte 0xff at column 3\)"):
        build_store(text, "plain", units, build_dir, "train")
    with pytest.raises(InputError, match="no complete token store"):
        open_store(build_dir, "train")


def test_kaldi_text_drops_the_utterance_ids(tmp_path: Path) -> None:
    text = tmp_path / "text"
    text.write_text("utt1 the cat\nutt2\nutt3  a dog sees\n")
    assert list(iter_sentences(text, "kaldi")) == [["the", "cat"], ["a", "dog", "sees"]]
    assert list(iter_sentences(text))[0] == ["utt1", "the", "cat"]


def reference_stream(sentences: list[torch.Tensor], eos: int, batch_size: int
                     ) -> tuple[torch.Tensor, int]:
    """The stream ``</s> s1 </s> s2 </s> ...`` in memory, cut to ``batch_size`` equal rows (+1
    position), and the row length: how the batches were made before the store."""
    data = torch.cat([torch.tensor([eos])] + [torch.cat([s, torch.tensor([eos])])
                                              for s in sentences])
    per_stream = (len(data) - 1) // batch_size
    return data[: per_stream * batch_size + 1], per_stream


@pytest.mark.parametrize("context", [0, 2])
def test_stream_batches_cut_the_stream_into_rows(corpus: Path, units: WordUnits,
                                                 context: int) -> None:
    store = encode_text(corpus / "ptb.train.txt", "plain", units)
    data, per_stream = reference_stream(units.encode(read_sentences(corpus / "ptb.train.txt")),
                                        units.vocab.eos, 4)
    inputs, targets = data[:-1].view(4, per_stream), data[1:].view(4, per_stream)
    batches = StreamBatches(store, units.vocab, 4, bptt_len=7, context=context)
    assert len(batches) == -(-per_stream // 7) and len(batches[1:3]) == 2
    for i, batch in enumerate(batches):
        first, end = max(0, 7 * i - context), min(7 * i + 7, per_stream)
        assert torch.equal(batch.inputs, inputs[:, first:end])
        assert torch.equal(batch.targets, targets[:, first:end])
        assert batch.num_tokens == 4 * (end - 7 * i) and batch.carry == (context == 0)


def test_sentence_batches_cover_every_sentence_once(corpus: Path, units: WordUnits) -> None:
    store = encode_text(corpus / "ptb.train.txt", "plain", units)
    batches = SentenceBatches(store, units.vocab, 8, shuffle_seed=3)
    assert len(batches) == 13  # 101 sentences
    rows = sorted(tuple(b.targets[r][b.mask[r]].tolist()) for b in batches
                  for r in range(len(b.targets)))
    assert rows == sorted(tuple(s.tolist()) + (units.vocab.eos,) for s in
                          units.encode(read_sentences(corpus / "ptb.train.txt")))


def test_shards_split_a_batch_by_rows(corpus: Path, units: WordUnits) -> None:
    store = encode_text(corpus / "ptb.train.txt", "plain", units)
    batch = SentenceBatches(store, units.vocab, 5)[0]
    parts = [shard(batch, r, 3) for r in range(3)]
    assert [p.inputs.shape[0] for p in parts] == [1, 2, 2]
    assert torch.equal(torch.cat([p.inputs for p in parts]), batch.inputs)
    assert sum(p.num_tokens for p in parts) == batch.num_tokens
    last = SentenceBatches(store, units.vocab, 5)[-1]  # 101 = 20 * 5 + 1 rows
    assert last.inputs.shape[0] == 1 and shard(last, 0, 2) is None
    assert torch.equal(shard(last, 1, 2).inputs, last.inputs)


def test_word_lists_from_words_txt_or_a_lexicon(tmp_path: Path) -> None:
    words = tmp_path / "words.txt"
    words.write_text("<eps> 0\ncat 2\n!SIL 1\n<unk> 3\ndog 4\n#0 5\n")
    assert read_word_list(words) == ["!SIL", "cat", "dog"]
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("cat k ae t\ndog d ao g\ndog d aa g\n<unk> spn\n")
    assert read_word_list(lexicon) == ["cat", "dog", "dog"]
    assert Vocab.from_words(read_word_list(lexicon)).words == (
        "<eps>", "<s>", "</s>", "<unk>", "cat", "dog")


def test_a_kaldi_words_txt_gives_words_not_its_graph_symbols(tmp_path: Path) -> None:
    """Kaldi's words.txt: <eps> 0 (epsilon), #0 (and #1 ... in some lang dirs), then <s> </s>
    after #0; icefall's <UNK>. None is a word of the LM: the vocabulary is the specials at ids
    0-3, as a vocabulary built from text has them, then the words in id order."""
    kaldi = ["<eps>", "!SIL", "<UNK>", "cat", "dog", "#0", "#1", "<s>", "</s>"]
    words = tmp_path / "words.txt"
    words.write_text("".join(f"{w} {i}\n" for i, w in enumerate(kaldi)))
    vocab = WordUnits(Vocab.from_words(read_word_list(words))).vocab
    assert vocab.words == ("<eps>", "<s>", "</s>", "<unk>", "!SIL", "cat", "dog")
    assert vocab.id("<UNK>") == vocab.unk == 3 and vocab.id("#0") == vocab.unk


def kaldi_text(plain: Path, out: Path) -> Path:
    out.write_text("".join(f"utt{i:03d} {line}" for i, line in
                           enumerate(plain.read_text().splitlines(keepends=True))))
    return out


def test_cli_trains_on_kaldi_text_with_a_given_vocabulary(corpus: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str],
                                                          caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    files = {s: kaldi_text(corpus / f"ptb.{s}.txt", tmp_path / f"{s}.text")
             for s in ("train", "valid")}
    words = tmp_path / "words.txt"
    asr_words = ["<eps>", "!SIL", "the", "cat", "a", "dog", "sees", "<unk>", "<s>", "</s>", "#0"]
    words.write_text("".join(f"{w} {i}\n" for i, w in enumerate(asr_words)))
    cfg = tmp_path / "m.yaml"
    cfg.write_text("model: {hidden_dim: 8}\ntrain: {epochs: 1, batch_size: 8}\n")
    exp = tmp_path / "exp"
    assert main(["train", "--config", str(cfg), "--train", str(files["train"]), "--valid",
                 str(files["valid"]), "--text-format", "kaldi", "--vocab", str(words),
                 "--exp-dir", str(exp)]) == 0
    results = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "valid_ppl" in results and "test_ppl" not in results  # no --test
    model, vocab, _, _ = load_model(exp / "best.pt")
    # the specials first, then the ASR system's words in id order; #0 is not a word
    assert vocab.words == ("<eps>", "<s>", "</s>", "<unk>", "!SIL", "the", "cat", "a", "dog",
                           "sees")
    train = open_store(exp / "data", "train")
    assert train.num_words == sum(len(s) for s in read_sentences(corpus / "ptb.train.txt"))

    text = kaldi_text(corpus / "ptb.test.txt", tmp_path / "test.text")
    assert main(["eval", "--model", str(exp / "best.pt"), "--text", str(text),
                 "--text-format", "kaldi"]) == 0
    assert main(["eval", "--model", str(exp / "best.pt"), "--text",
                 str(corpus / "ptb.test.txt")]) == 0
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    assert main(["eval", "--model", str(exp / "best.pt"), "--text", str(text)]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "give --text-format kaldi" in warnings[0]
    assert f"{text} looks like a Kaldi text file" in warnings[0]
    kaldi, plain, ids_as_words = capsys.readouterr().out.strip().splitlines()[-3:]
    assert kaldi.split(":", 1)[1] == plain.split(":", 1)[1]  # the same words, the same ppl
    assert kaldi.split(":", 1)[1] != ids_as_words.split(":", 1)[1]


def test_kaldi_text_ids_tell_a_kaldi_text_from_plain_text(corpus: Path, tmp_path: Path
                                                          ) -> None:
    kaldi = kaldi_text(corpus / "ptb.train.txt", tmp_path / "text")
    assert kaldi_text_ids(kaldi)[:2] == ["utt000", "utt001"]
    assert kaldi_text_ids(corpus / "ptb.train.txt") is None  # first words repeat
    plain = tmp_path / "plain.txt"
    plain.write_text("1990 was a year\n1991 came after 1990\n")  # distinct, but a word too
    assert kaldi_text_ids(plain) is None
    plain.write_text("hello world\ngoodbye moon\n")  # distinct, never words, but no digit
    assert kaldi_text_ids(plain) is None
    plain.write_text("utt1 one line\n")  # one line: too little to tell
    assert kaldi_text_ids(plain) is None
    assert kaldi_text_ids(tmp_path / "missing.txt") is None


def test_train_warns_on_a_kaldi_text_read_as_plain(corpus: Path, tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    files = [str(kaldi_text(corpus / f"ptb.{s}.txt", tmp_path / f"{s}.text"))
             for s in ("train", "valid")]
    cfg = tmp_path / "m.yaml"
    cfg.write_text("model: {hidden_dim: 8}\ntrain: {epochs: 1, batch_size: 8}\n")
    argv = ["train", "--config", str(cfg), "--train", files[0], "--valid", files[1],
            "--exp-dir", str(tmp_path / "exp")]
    assert main(argv) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert [w.split(" ")[0] for w in warnings if "--text-format kaldi" in w] == files


def test_cli_text_options_are_checked(corpus: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "m.yaml"
    cfg.write_text("model: {hidden_dim: 8}\n")
    base = ["train", "--config", str(cfg), "--exp-dir", str(tmp_path / "e")]
    train = str(corpus / "ptb.train.txt")
    assert "not both" in error_of(capsys, base + ["--corpus-dir", str(corpus), "--train", train])
    assert "not both" in error_of(capsys, base)
    assert "--train needs --valid" in error_of(capsys, base + ["--train", train])
    assert "no such word list" in error_of(
        capsys, base + ["--corpus-dir", str(corpus), "--vocab", str(tmp_path / "none.txt")])
    words = tmp_path / "words.txt"
    words.write_text("<eps> 0\ncat 1\n")
    cfg.write_text("model: {hidden_dim: 8}\ndata: {units: sentencepiece}\n")
    assert "needs data.units: word" in error_of(
        capsys, base + ["--corpus-dir", str(corpus), "--vocab", str(words)])
    assert not (tmp_path / "e").exists()
