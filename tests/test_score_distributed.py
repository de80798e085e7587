"""``lmrescore score`` in 2 processes (``torchrun``, gloo on CPU) writes the bytes one process
writes: 1-best, n-best lists and lattices in every format, with unequal shares (5 lattices in
batches of 2: rank 0 gets 3, rank 1 gets 2); failures in one rank count for the job; a rank that
dies ends the job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch.distributed as dist

from lmrescore.cli import main
from test_cli_score import FIXTURES, WORDS, make_model

pytestmark = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="torch.distributed with the gloo backend is unavailable")

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 240  # seconds: a hung job fails the test instead of hanging it
PER_RUN = ("seconds", "rescore_seconds", "rescore_cpu_seconds", "processes")

# SIGKILLs rank 1 as it starts rescoring its first batch, then runs the CLI.
KILLER = """
import os, signal, sys
from lmrescore.rescoring.rescorer import LatticeRescorer
real = LatticeRescorer.rescore
def rescore(self, lat):
    if os.environ["RANK"] == "1":
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, lat)
LatticeRescorer.rescore = rescore
from lmrescore.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("model") / "lm.pt"
    make_model(path)
    return str(path)


def args(model: str, lattice: str, *extra: str) -> list[str]:
    """``score`` on ``lattice`` in batches of 2, outputs relative to the working folder."""
    return ["--log-level", "INFO", "score", "--model", model, "--lattice", lattice,
            "--words", WORDS, "--beam", "10", "--acoustic-scale", "0.1", "--batch-size", "2",
            "--summary", "summary.json", *extra]


def one_process(cwd: Path, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return main(argv)


def two_processes(cwd: Path, argv: list[str], script: Path | None = None
                  ) -> subprocess.CompletedProcess:
    """``argv`` under ``torchrun --nproc-per-node 2`` in ``cwd``; stdout as bytes."""
    cwd.mkdir()
    target = [str(script)] if script else ["-m", "lmrescore.cli"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node", "2", *target, *argv], cwd=cwd, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT)


def counts(folder: Path) -> dict:
    """The summary without the fields that belong to the run (times, processes)."""
    summary = json.loads((folder / "summary.json").read_text())
    return {k: v for k, v in summary.items() if k not in PER_RUN}


def assert_same_files(a: Path, b: Path) -> None:
    """The same files in both folders, byte for byte (hidden ones included), but the summary."""
    def files(folder: Path) -> list[Path]:
        return sorted(p.relative_to(folder) for p in folder.rglob("*")
                      if p.is_file() and p.name != "summary.json")
    names = files(a)
    assert names == files(b)
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.parametrize("output", [
    ["--write-lattice", "ark,scp:lat.ark,lat.scp", "--nbest-out", "nbest", "--num-paths", "3",
     "--ref", str(FIXTURES / "text")],
    ["--write-lattice", "slf", "--out-format", "slf"],
    ["--write-lattice", "lat.pt", "--out-format", "k2"],
], ids=["ark,scp", "slf", "k2"])
def test_two_processes_write_the_files_one_writes(model: str, tmp_path: Path, output: list[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    argv = args(model, f"ark:{FIXTURES / 'lats.ark'}", "--one-best", "hyp", *output)
    assert one_process(tmp_path / "one", argv, monkeypatch) == 0
    run = two_processes(tmp_path / "two", argv)
    assert run.returncode == 0, run.stderr[-3000:]
    assert_same_files(tmp_path / "one", tmp_path / "two")  # the part folder is gone too
    assert counts(tmp_path / "one") == counts(tmp_path / "two")
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert (summary["processes"], summary["rescored"]) == (2, 5)


def test_two_processes_write_text_lattices_to_stdout(model: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    argv = args(model, f"ark:{FIXTURES / 'lats.ark'}", "--one-best", "hyp")
    assert one_process(tmp_path / "one", argv + ["--write-lattice", "ark,t:lat.txt"],
                       monkeypatch) == 0
    run = two_processes(tmp_path / "two", argv + ["--write-lattice", "ark,t:-"])
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout == (tmp_path / "one" / "lat.txt").read_bytes()  # rank 0 alone writes
    assert (tmp_path / "two" / "hyp").read_bytes() == (tmp_path / "one" / "hyp").read_bytes()
    assert not list((tmp_path / "two").glob(".*.parts"))


def test_failures_in_one_rank_fail_the_job(model: str, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 2: [001, 002] rank 0; [003, 001 again] and 004 unreadable rank 1; [005] rank
    0. Rank 0 alone has no failure; the job has 2 of 6 (past --max-failures 0.3)."""
    data = (FIXTURES / "lats.txt").read_bytes()
    starts = [data.index(f"ptb-00{i} ".encode()) for i in range(1, 6)] + [len(data)]
    entry = {i: data[a:b] for i, (a, b) in enumerate(zip(starts, starts[1:]), 1)}
    bad = entry[4].replace(b"ptb-004 \n0\t", b"ptb-004 \n0\tx", 1)
    assert bad != entry[4]
    (tmp_path / "bad.txt").write_bytes(entry[1] + entry[2] + entry[3] + bad + entry[1] + entry[5])
    argv = args(model, f"ark:{tmp_path / 'bad.txt'}", "--one-best", "hyp", "--write-lattice",
                "ark:lat.ark", "--max-failures", "0.3")
    assert one_process(tmp_path / "one", argv, monkeypatch) == 1
    run = two_processes(tmp_path / "two", argv)
    assert run.returncode != 0
    assert b"Done 4 lattices, failed for 2" in run.stderr
    assert b"skipping ptb-001: utterance ptb-001: a second lattice" in run.stderr
    assert_same_files(tmp_path / "one", tmp_path / "two")
    summary = counts(tmp_path / "two")
    assert summary == counts(tmp_path / "one")
    assert (summary["lattices"], summary["rescored"], summary["failed"]) == (6, 4, 2)


def test_a_killed_rank_fails_the_job(model: str, tmp_path: Path) -> None:
    killer = tmp_path / "killer.py"
    killer.write_text(KILLER)
    tic = time.time()
    run = two_processes(tmp_path / "two", args(model, f"ark:{FIXTURES / 'lats.ark'}",
                                               "--one-best", "hyp"), killer)
    assert run.returncode != 0 and b"SIGKILL" in run.stderr, run.stderr[-3000:]
    assert time.time() - tic < TIMEOUT / 2  # rank 0 did not wait for it
    assert not (tmp_path / "two" / "hyp").exists()
