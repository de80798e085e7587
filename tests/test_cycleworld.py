"""CycleWorld and sequential-MNIST tasks: the data, FPP learning the cycle, the recipe CLI and
the recipes' report (egs/utils/fpp_report.py)."""

import gzip
import importlib.util
import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from lmrescore.cli import main
from lmrescore.errors import InputError
from lmrescore.online.fpp import FPPConfig
from lmrescore.online.cycleworld import cycleworld, naive_accuracy, run_cycleworld
from lmrescore.online.runs import OnlineConfig
from lmrescore.online.seqmnist import load_mnist, read_idx, to_steps

REPO = Path(__file__).resolve().parent.parent
FPP_REPORT = REPO / "egs" / "utils" / "fpp_report.py"


def load_fpp_report():  # -> the egs/utils/fpp_report.py module
    spec = importlib.util.spec_from_file_location("fpp_report", FPP_REPORT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cycleworld_stream() -> None:
    bits, targets = cycleworld(3, 7)
    assert bits.tolist() == [0, 0, 1, 0, 0, 1, 0]
    assert targets.tolist() == [0, 1, 0, 0, 1, 0, 0]  # the next bit
    assert naive_accuracy(6) == pytest.approx(5 / 6)


def test_fpp_learns_3_cycleworld_beyond_the_naive_predictor() -> None:
    config = OnlineConfig(method="fpp", runs=2, steps=2000, seed=1,
                          fpp=FPPConfig(buffer=100, updates=1))
    result = run_cycleworld(config, period=3)
    naive = naive_accuracy(3)
    assert all(a > naive + 0.15 for a in result["final"]), result["final"]
    assert len(result["curve"]) == 2 and len(result["curve"][0]) == 20


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_mnist_idx_files_and_the_split(tmp_path: Path) -> None:
    images = np.arange(3 * 28 * 28).reshape(3, 28, 28) % 256
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([7, 2, 1]))
    assert np.array_equal(read_idx(tmp_path / "t10k-images-idx3-ubyte"), images)
    data = load_mnist(tmp_path)  # t10k only: train = the first 8000 (here all 3)
    assert data["train"][0].shape == (3, 784) and data["test"][0].shape == (0, 784)
    assert data["train"][1].tolist() == [7, 2, 1]
    steps = to_steps(data["train"][0], 20)
    assert steps.shape == (3, 40, 20) and steps[0, -1, 4:].abs().sum() == 0  # padded
    (tmp_path / "bad-images-idx3-ubyte").write_bytes(b"\x01\x02\x03")
    with pytest.raises(InputError, match="not an unsigned-byte IDX"):
        read_idx(tmp_path / "bad-images-idx3-ubyte")


def test_cli_runs_and_report(tmp_path: Path) -> None:
    conf = tmp_path / "cw.yaml"
    conf.write_text("cell: rnn\nhidden: 4\noptimizer: adagrad\nlr: 0.1\nruns: 2\nsteps: 200\n"
                    "fpp: {buffer: 50}\n")
    exp = tmp_path / "exp"
    (exp / "compare").mkdir(parents=True)  # outputs go into existing folders
    assert main(["fpp", "cycleworld", "--config", str(conf), "--period", "3", "--method", "fpp",
                 "--updates", "2", "--state-lr", "0.05", "--window", "2",
                 "--out", str(exp / "compare" / "fpp.json")]) == 0
    assert main(["fpp", "cycleworld", "--config", str(conf), "--period", "3",
                 "--method", "tbptt", "--truncation", "2", "--optimizer", "rmsprop", "--lr", "0.01",
                 "--out", str(exp / "compare" / "tbptt.json")]) == 0
    record = json.loads((exp / "compare" / "fpp.json").read_text())
    assert record["name"] == "fpp_n2_N50_W2" and record["config"]["runs"] == 2
    assert "--updates 2" in record["command"] and record["config"]["fpp"]["state_lr"] == 0.05
    tbptt = json.loads((exp / "compare" / "tbptt.json").read_text())["config"]
    assert (tbptt["optimizer"], tbptt["lr"]) == ("rmsprop", 0.01)
    (tmp_path / "notes.md").write_text("## Kept notes\n\nWhy it differs.\n")
    # the report runs in the recipe folder (here tmp_path), as run.sh runs it
    p = subprocess.run([sys.executable, str(FPP_REPORT), "--kind", "cycleworld",
                        "--exp-dir", "exp", "--results", "RESULTS.md", "--budget", "test",
                        "--notes", "notes.md"], cwd=tmp_path, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    text = (tmp_path / "RESULTS.md").read_text()
    assert "fpp_n2_N50_W2" in text and "tbptt_T2" in text and "--truncation 2" in text
    # the runs named absolute paths in the recipe folder: quoted relative to it
    assert "--config cw.yaml" in text and str(tmp_path) not in text
    assert "whole run %" in text and text.endswith("## Kept notes\n\nWhy it differs.\n")
    assert (tmp_path / "cycleworld_curves.png").stat().st_size > 1000
    conf.write_text("bogus: 1\n")
    bad = ["fpp", "cycleworld", "--config", str(conf), "--out", str(tmp_path / "x.json")]
    assert main(bad) == 1  # unknown config key


def test_claims_are_judged_on_the_whole_run_online_accuracy(tmp_path: Path) -> None:
    """The paper summarises a run by its online accuracy over all steps: a T-BPTT run that is
    right only at the end (final 100%, whole run 82%) has not learned, so "fails" agrees."""
    config = asdict(OnlineConfig(method="tbptt", truncation=1, runs=1, steps=1000))
    record = {"config": config, "name": "tbptt_T1", "command": "x", "commit": "c", "period": 6,
              "naive": 5 / 6, "window": 100, "curve": [[0.8] * 9 + [1.0]], "final": [1.0],
              "steps_per_s": 1.0}
    (tmp_path / "exp" / "compare").mkdir(parents=True)
    (tmp_path / "exp" / "compare" / "tbptt_T1.json").write_text(json.dumps(record))
    load_fpp_report().write_report("cycleworld", tmp_path / "exp", tmp_path / "RESULTS.md")
    text = (tmp_path / "RESULTS.md").read_text()
    assert "T-BPTT T = 1 < 6 fails: 0/1 seeds learned (published: fails): agrees" in text
    assert "| 100.0 ± 0.0 | 82.0 ± 0.0 |" in text  # final, whole run


def test_report_refuses_a_command_with_a_path_outside_the_recipe(tmp_path: Path) -> None:
    portable_command = load_fpp_report().portable_command
    recipe = tmp_path / "egs" / "seqmnist" / "s5"
    assert (portable_command(f"lmrescore fpp seqmnist --out {recipe}/exp/full/a.json "
                             "--mnist-dir data/mnist", recipe)
            == "lmrescore fpp seqmnist --out exp/full/a.json --mnist-dir data/mnist")
    with pytest.raises(InputError, match="names /data/mnist, outside"):
        portable_command("lmrescore fpp seqmnist --mnist-dir /data/mnist", recipe)
    with pytest.raises(InputError, match="outside"):
        portable_command(f"lmrescore fpp seqmnist --mnist-dir {recipe}/../mnist", recipe)
