"""egs/seqmnist/s5/run.sh --quick true end to end on a synthetic t10k-only MNIST folder.

Checks the recipe's bookkeeping, not learning: the quick budget writes its records and
RESULTS.md under exp/quick (never beside the full budget's), the quoted commands name the
recipe's data/mnist link (not the machine's folder), and a rerun skips finished runs.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def write_fake_t10k(folder: Path, images: int = 8100) -> Path:
    """t10k IDX files (gzipped) of random images: 8000 train, ``images - 8000`` test."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (images, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, images, dtype=np.uint8)
    header = lambda *dims: bytes([0, 0, 8, len(dims)]) + b"".join(  # noqa: E731
        d.to_bytes(4, "big") for d in dims)
    with gzip.open(folder / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(header(images, 28, 28) + x.tobytes())
    with gzip.open(folder / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(header(images) + y.tobytes())
    return folder


def run_quick(recipe: Path, mnist: Path) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.run(["./run.sh", "--mnist-dir", str(mnist), "--quick", "true"], cwd=recipe,
                       env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"run.sh failed:\n{p.stdout}\n{p.stderr}"
    return p.stdout


def test_seqmnist_quick_recipe(tmp_path: Path) -> None:
    # the recipes with the utils/, cmd.sh and path.sh they link to
    shutil.copytree(REPO / "egs", tmp_path / "egs", symlinks=True,
                    ignore=shutil.ignore_patterns("exp", "data", "RESULTS.md", "*.png"))
    recipe = tmp_path / "egs" / "seqmnist" / "s5"
    mnist = write_fake_t10k(tmp_path / "mnist")
    out = run_quick(recipe, mnist)
    assert "t10k only: train on its first 8000 images, test on its last 2000" in out
    quick = recipe / "exp" / "quick"
    names = sorted(p.name for p in quick.glob("*.json"))
    assert names == ["fpp_n10.json", "fpp_n1_W10.json", "full_bptt.json", "tbptt_T10.json"]
    assert not (recipe / "exp" / "full").exists() and not (recipe / "RESULTS.md").exists()
    record = json.loads((quick / "fpp_n10.json").read_text())
    assert record["steps"] == 1000 and len(record["final"]) == 2  # the quick budget, 2 seeds
    assert record["data"] == {"train_images": 8000, "test_images": 100, "chunk": 20,
                              "label_steps": 20}
    results = (quick / "RESULTS.md").read_text()
    assert "**Budget run:** quick" in results
    assert "| final test accuracy % (mean ± sd) |" in results
    for name in ("fpp_n10_N1000", "fpp_n1_N1000_W10", "tbptt_T10", "tbptt_T40_every40"):
        assert f"| {name} |" in results
    assert "| fpp_n1_N1000_W10 | 10 |" in results  # one 10-step window: 10 gradient computations
    assert (quick / "seqmnist_curves.png").stat().st_size > 1000
    assert (recipe / "data" / "mnist").resolve() == mnist.resolve()
    assert "--mnist-dir data/mnist" in results and str(tmp_path) not in results

    before = {p.name: p.stat().st_mtime_ns for p in quick.glob("*.json")}
    out = run_quick(recipe, mnist)
    assert out.count("exists, skipping") == 4
    assert before == {p.name: p.stat().st_mtime_ns for p in quick.glob("*.json")}
