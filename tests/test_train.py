"""Training: learns, resumes exactly after a kill, and refuses bad input clearly."""

import json
from pathlib import Path

import pytest
import torch

from lmrescore.lm.checkpoint import load_model
from lmrescore.cli import main
from lmrescore.cli.train import apply_overrides
from lmrescore.lm.config import ExperimentConfig
from lmrescore.errors import InputError
from lmrescore.training.trainer import Trainer
from toy_corpus import write_toy_corpus


def config(method: str = "afp", batching: str = "sentence", **train) -> ExperimentConfig:
    order = 3 if method == "afp" else None
    return ExperimentConfig.from_dict({
        "model": {"cell": "lstm", "hidden_dim": 16, "dropout": 0.1, "order": order},
        "train": {"method": method, "batching": batching, "batch_size": 16, "bptt_len": 8,
                  "epochs": 2, "optimizer": "adam", "lr": 0.02, "save_every": 5, **train}})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_toy_corpus(tmp_path_factory.mktemp("toy"))


@pytest.mark.parametrize("method,batching", [("afp", "sentence"), ("bptt", "sentence"),
                                             ("bptt", "stream"), ("afp", "stream")])
def test_training_lowers_perplexity(corpus: Path, tmp_path: Path, method: str,
                                    batching: str) -> None:
    trainer = Trainer(config(method, batching, epochs=3), corpus, tmp_path)
    before = trainer.evaluate("valid").ppl
    results = trainer.run()
    assert results["valid_ppl"] < 0.5 * before, (before, results)
    assert results["test_ppl"] < 0.5 * before
    if method == "afp":  # the order-K model is also scored with the exact recurrence
        assert results["test_ppl_exact"] > 1
    assert (tmp_path / "curves.png").stat().st_size > 1000
    assert len(trainer.state.history) == 3


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def test_resume_gives_the_same_next_step(corpus: Path, tmp_path: Path) -> None:
    a = Trainer(config(epochs=3), corpus, tmp_path)
    a._train_epoch()  # epoch 1 ends with a checkpoint
    batch = a.batches(a.state.epoch)[0]
    a.step(batch)
    b = Trainer(config(epochs=3), corpus, tmp_path)  # a fresh process would do this
    assert b.state.epoch == 1 and b.state.step_in_epoch == 0
    b.step(batch)
    for name, value in weights(a).items():
        assert torch.equal(value, weights(b)[name]), name


@pytest.mark.parametrize("batching", ["sentence", "stream"])
def test_killed_run_resumes_to_the_same_weights(corpus: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                batching: str) -> None:
    method = "bptt" if batching == "stream" else "afp"  # stream BPTT carries state over the kill
    whole = Trainer(config(method, batching), corpus, tmp_path / "whole")
    whole.run()

    killed = Trainer(config(method, batching), corpus, tmp_path / "killed")
    calls = {"n": 0}
    real_step = Trainer.step

    def dying_step(self: Trainer, batch) -> float:
        calls["n"] += 1
        if calls["n"] == 12:  # mid-epoch 1, after the step-10 checkpoint
            raise KeyboardInterrupt
        return real_step(self, batch)

    monkeypatch.setattr(Trainer, "step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        killed.run()
    monkeypatch.setattr(Trainer, "step", real_step)
    resumed = Trainer(config(method, batching), corpus, tmp_path / "killed")
    assert resumed.state.step_in_epoch == 10
    resumed.run()
    for name, value in weights(whole).items():
        assert torch.equal(value, weights(resumed)[name]), name
    assert whole.state.history[-1]["valid_ppl"] == resumed.state.history[-1]["valid_ppl"]


def test_cli_train_then_eval(corpus: Path, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "m.yaml"
    cfg.write_text("model: {cell: gru, hidden_dim: 12, order: 2}\ntrain: {method: afp}\n")
    exp = tmp_path / "exp"
    assert main(["train", "--config", str(cfg), "--corpus-dir", str(corpus), "--exp-dir",
                 str(exp), "--set", "train.epochs=1"]) == 0
    assert main(["eval", "--model", str(exp / "best.pt"), "--text",
                 str(corpus / "ptb.test.txt"), "--exact"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()[-2:]
    assert "order K=2" in lines[0] and "exact recurrence" in lines[1]
    ppls = [float(line.split("ppl ")[1].split()[0]) for line in lines]
    model, vocab, _, _ = load_model(exp / "best.pt")
    assert model.config.order == 2 and all(1 < p < len(vocab) for p in ppls)


def test_sentencepiece_units_report_per_word_perplexity(corpus: Path, tmp_path: Path) -> None:
    cfg = config(epochs=1)
    cfg.data.units, cfg.data.sp_vocab_size = "sentencepiece", 40
    trainer = Trainer(cfg, corpus, tmp_path)
    result = trainer.evaluate("test")
    assert result.tokens > result.words  # more pieces than words
    assert (tmp_path / "sp.model").exists()


def error_of(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_bad_input_gives_one_line_errors(corpus: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "m.yaml"
    cfg.write_text("model: {hidden_dim: 8, odrer: 2}\n")
    assert "unknown key(s) odrer" in error_of(
        capsys, ["train", "--config", str(cfg), "--corpus-dir", str(corpus),
                 "--exp-dir", str(tmp_path / "e")])

    cfg.write_text("model: {hidden_dim: 8}\ntrain: {epochs: 1}\n")
    empty = tmp_path / "empty"
    write_toy_corpus(empty)
    (empty / "ptb.valid.txt").write_text("\n \n")
    assert "ptb.valid.txt: corpus file is empty" in error_of(
        capsys, ["train", "--config", str(cfg), "--corpus-dir", str(empty),
                 "--exp-dir", str(tmp_path / "e")])
    assert "ptb.train.txt: no such corpus file" in error_of(
        capsys, ["train", "--config", str(cfg), "--corpus-dir", str(tmp_path / "nowhere"),
                 "--exp-dir", str(tmp_path / "e")])
    assert not (tmp_path / "e").exists()


def test_checkpoint_from_another_vocab_is_refused_and_kept(corpus: Path, tmp_path: Path) -> None:
    Trainer(config(epochs=1), corpus, tmp_path / "exp").run()
    last = tmp_path / "exp" / "last.pt"
    before = last.read_bytes()
    other = write_toy_corpus(tmp_path / "other", seed=1, train=30)  # fewer words, other order
    with pytest.raises(InputError, match="vocabulary"):
        Trainer(config(epochs=1), other, tmp_path / "exp")
    assert last.read_bytes() == before


def test_exported_model_scores_like_the_trained_one(corpus: Path, tmp_path: Path) -> None:
    from lmrescore.lm.checkpoint import export_for_inference

    Trainer(config(epochs=1), corpus, tmp_path / "exp").run()
    export_for_inference(tmp_path / "exp" / "best.pt", tmp_path / "small.pt")
    full, vocab, _, _ = load_model(tmp_path / "exp" / "best.pt")
    small, vocab2, _, payload = load_model(tmp_path / "small.pt")
    assert vocab2.words == vocab.words and "optimizer" not in payload
    assert (tmp_path / "small.pt").stat().st_size < (tmp_path / "exp" / "best.pt").stat().st_size
    x = torch.randint(4, len(vocab), (2, 7))
    torch.testing.assert_close(small.log_probs(x), full.log_probs(x), atol=2e-2, rtol=0)


def test_cli_eval_scores_a_bptt_model_at_order_k(corpus: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    Trainer(config("bptt", epochs=1), corpus, tmp_path).run()
    text = str(corpus / "ptb.test.txt")
    assert main(["eval", "--model", str(tmp_path / "best.pt"), "--text", text]) == 0
    assert main(["eval", "--model", str(tmp_path / "best.pt"), "--text", text,
                 "--order", "1", "--exact"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()[-3:]
    assert "exact recurrence" in lines[0] and "order K=1" in lines[1]
    ppl = [float(line.split("ppl ")[1].split()[0]) for line in lines]
    assert ppl[2] == ppl[0] and ppl[1] != ppl[0]  # order 1 forgets all but the last word


def test_set_overrides_take_dotted_paths_of_any_depth() -> None:
    raw = apply_overrides(ExperimentConfig().to_dict(),
                          ["train.epochs=3", "train.fpp.window=5", "model.cell=gru"])
    config = ExperimentConfig.from_dict(raw)
    assert (config.train.epochs, config.train.fpp.window, config.model.cell) == (3, 5, "gru")
    for bad in ["train", "train.epochs", "train..window=5", "train.epochs.x=1"]:
        with pytest.raises(InputError, match="--set"):
            apply_overrides(ExperimentConfig().to_dict(), [bad])


def test_rerun_with_another_config_is_refused_and_says_what_differs(corpus: Path,
                                                                    tmp_path: Path) -> None:
    Trainer(config(epochs=1), corpus, tmp_path / "exp").run()
    last = tmp_path / "exp" / "last.pt"
    before = (last.read_bytes(), (tmp_path / "exp" / "config.yaml").read_text())
    changed = config(epochs=1)
    changed.model.hidden_dim *= 2  # would have been a raw 'size mismatch' on resume
    with pytest.raises(InputError, match=r"model.hidden_dim: \d+ there, \d+ now"):
        Trainer(changed, corpus, tmp_path / "exp")
    assert (last.read_bytes(), (tmp_path / "exp" / "config.yaml").read_text()) == before
    Trainer(config(epochs=1), corpus, tmp_path / "exp")  # the same config still resumes


def test_a_finished_run_given_more_epochs_trains_on_as_one_longer_run(corpus: Path,
                                                                      tmp_path: Path) -> None:
    Trainer(config(epochs=1), corpus, tmp_path / "short").run()
    longer = Trainer(config(epochs=2), corpus, tmp_path / "short")  # the same folder
    assert longer.state.epoch == 1
    longer.run()
    Trainer(config(epochs=2), corpus, tmp_path / "long").run()
    runs = [json.loads((tmp_path / e / "metrics.json").read_text()) for e in ("short", "long")]
    assert [len(r) for r in runs] == [2, 2]
    for key in ("train_ppl", "valid_ppl", "lr"):
        assert [row[key] for row in runs[0]] == [row[key] for row in runs[1]], key
    short, long = (load_model(tmp_path / e / "best.pt", "cpu")[0].state_dict()
                   for e in ("short", "long"))
    for name, value in long.items():
        assert torch.equal(short[name], value), name
    assert "epochs: 2" in (tmp_path / "short" / "config.yaml").read_text()


def test_metrics_lost_to_a_kill_after_the_checkpoint_come_back_on_rerun(corpus: Path,
                                                                        tmp_path: Path) -> None:
    Trainer(config(epochs=1), corpus, tmp_path / "exp").run()
    metrics = json.loads((tmp_path / "exp" / "metrics.json").read_text())
    for name in ("metrics.json", "curves.png"):  # as if killed between last.pt and these
        (tmp_path / "exp" / name).unlink()
    Trainer(config(epochs=1), corpus, tmp_path / "exp").run()  # done: resumes, trains nothing
    assert json.loads((tmp_path / "exp" / "metrics.json").read_text()) == metrics
    assert (tmp_path / "exp" / "curves.png").stat().st_size > 0


def test_a_schedule_set_before_it_starts_trains_as_one_run_with_it(corpus: Path,
                                                                    tmp_path: Path) -> None:
    """``train.decay_from`` may be set on resuming, to an epoch not yet done: the same weights
    as one run with it from the start; naming a done epoch is refused."""
    Trainer(config(epochs=1), corpus, tmp_path / "late").run()
    with pytest.raises(InputError, match="decay_from 0 -> 1: this run has done 1 epochs"):
        Trainer(config(epochs=3, decay_from=1), corpus, tmp_path / "late")
    Trainer(config(epochs=3, decay_from=2), corpus, tmp_path / "late").run()
    Trainer(config(epochs=3, decay_from=2), corpus, tmp_path / "early").run()
    runs = [json.loads((tmp_path / e / "metrics.json").read_text()) for e in ("late", "early")]
    assert [row["lr"] for row in runs[0]] == [row["lr"] for row in runs[1]] == [0.02, 0.02, 0.01]
    assert [row["valid_ppl"] for row in runs[0]] == [row["valid_ppl"] for row in runs[1]]
    late, early = (load_model(tmp_path / e / "best.pt", "cpu")[0].state_dict()
                   for e in ("late", "early"))
    for name, value in early.items():
        assert torch.equal(late[name], value), name
