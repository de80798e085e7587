"""Training in 2 processes (``torchrun``, gloo on CPU) is training in one with the same global
batch, a rank that dies ends the job, and checkpoints resume in either number of processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from lmrescore.lm.checkpoint import load_checkpoint
from lmrescore.lm.config import ExperimentConfig
from lmrescore.training.trainer import Trainer
from toy_corpus import write_toy_corpus

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 240  # seconds: a hung job fails the test instead of hanging it

# SIGKILLs rank 1 in its 12th step (after the step-10 checkpoint), then runs the CLI.
KILLER = """
import os, signal, sys
from lmrescore.training.trainer import Trainer
real, calls = Trainer.step, [0]
def step(self, batch):
    calls[0] += 1
    if calls[0] == 12 and self.dist.rank == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, batch)
Trainer.step = step
from lmrescore.cli import main
sys.exit(main(sys.argv[1:]))
"""


def config(method: str, batching: str) -> dict:
    return {"model": {"cell": "lstm", "hidden_dim": 16, "dropout": 0.0,
                      "order": 3 if method == "afp" else None},
            "train": {"method": method, "batching": batching, "batch_size": 16, "bptt_len": 8,
                      "epochs": 2, "optimizer": "adam", "lr": 0.02, "save_every": 5}}


def torchrun(cfg: dict, corpus: Path, exp: Path, script: Path | None = None
             ) -> subprocess.CompletedProcess:
    """``lmrescore train`` (or ``script``) in 2 processes; stdout and stderr together."""
    path = exp.parent / f"{exp.name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    target = [str(script)] if script else ["-m", "lmrescore.cli"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         *target, "--log-level", "WARNING", "train", "--config", str(path), "--corpus-dir",
         str(corpus), "--exp-dir", str(exp)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT)


def one_process(cfg: dict, corpus: Path, exp: Path) -> Trainer:
    trainer = Trainer(ExperimentConfig.from_dict(cfg), corpus, exp)
    trainer.run()
    return trainer


def assert_same_run(a: Path, b: Path) -> None:
    """The same curve (train and valid perplexity of every epoch) and final weights, up to
    float rounding (2 processes sum the loss in another order)."""
    rows_a, rows_b = (json.loads((e / "metrics.json").read_text()) for e in (a, b))
    assert len(rows_a) == len(rows_b) == 2
    for ra, rb in zip(rows_a, rows_b):
        for key in ("train_ppl", "valid_ppl"):
            assert rb[key] == pytest.approx(ra[key], rel=1e-5), (key, ra, rb)
    wa, wb = (load_checkpoint(e / "best.pt")["model"] for e in (a, b))
    for name, value in wa.items():
        torch.testing.assert_close(wb[name], value, atol=1e-5, rtol=1e-4)


def test_two_processes_train_as_one_with_the_same_global_batch(tmp_path: Path) -> None:
    corpus = write_toy_corpus(tmp_path / "toy", train=401)  # the last batch has 1 row of 16
    cfg = config("afp", "sentence")
    one_process(cfg, corpus, tmp_path / "one")
    run = torchrun(cfg, corpus, tmp_path / "two")
    assert run.returncode == 0, run.stdout[-3000:]
    assert_same_run(tmp_path / "one", tmp_path / "two")
    results = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert len(results) == 1  # rank 0 alone prints (and writes)
    expected = json.loads((tmp_path / "one" / "results.json").read_text())
    assert results[0]["test_ppl"] == pytest.approx(expected["test_ppl"], rel=1e-5)


@pytest.fixture(scope="module")
def stream_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A toy corpus and a one-process stream-BPTT run on it (the state carries over batches)."""
    tmp = tmp_path_factory.mktemp("stream")
    corpus = write_toy_corpus(tmp / "toy")
    one_process(config("bptt", "stream"), corpus, tmp / "one")
    return corpus, tmp / "one"


def test_a_killed_rank_fails_the_job_and_it_resumes_in_2_or_1_processes(
        stream_run: tuple[Path, Path], tmp_path: Path) -> None:
    corpus, reference = stream_run
    cfg, exp = config("bptt", "stream"), tmp_path / "exp"
    killer = tmp_path / "killer.py"
    killer.write_text(KILLER)
    tic = time.time()
    run = torchrun(cfg, corpus, exp, script=killer)
    assert run.returncode != 0 and "SIGKILL" in run.stdout, run.stdout[-3000:]
    assert time.time() - tic < TIMEOUT / 2  # the survivor did not wait for it
    payload = load_checkpoint(exp / "last.pt")
    assert payload["run_state"]["step_in_epoch"] == 10
    assert payload["carry"][0].shape[0] == 16  # every stream's state, from both ranks
    assert len(payload["rank_rngs"]) == 2
    assert not (exp / "metrics.json").exists()

    shutil.copytree(exp, tmp_path / "exp1")
    run = torchrun(cfg, corpus, exp)
    assert run.returncode == 0, run.stdout[-3000:]
    assert_same_run(reference, exp)
    one_process(cfg, corpus, tmp_path / "exp1")  # the 2-process checkpoint in one process
    assert_same_run(reference, tmp_path / "exp1")


def test_a_one_process_checkpoint_resumes_in_2_processes(stream_run: tuple[Path, Path],
                                                         tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    corpus, reference = stream_run
    cfg, exp = config("bptt", "stream"), tmp_path / "exp"
    real_step, calls = Trainer.step, {"n": 0}

    def dying_step(self: Trainer, batch) -> float:
        calls["n"] += 1
        if calls["n"] == 12:
            raise KeyboardInterrupt
        return real_step(self, batch)

    monkeypatch.setattr(Trainer, "step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        one_process(cfg, corpus, exp)
    assert load_checkpoint(exp / "last.pt")["run_state"]["step_in_epoch"] == 10
    run = torchrun(cfg, corpus, exp)
    assert run.returncode == 0, run.stdout[-3000:]
    assert_same_run(reference, exp)
