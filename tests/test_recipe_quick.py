"""egs/ptb/s5/run.sh --quick end to end: data, training, perplexity, lattices, rescoring, RESULTS.

Runs a copy of the recipe in a temporary folder on the shared PTB corpus when present (else on
the toy corpus, MD5 check off); never uses the network. Without espeak-ng only stages 0-2 run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from toy_corpus import write_toy_corpus

REPO = Path(__file__).resolve().parent.parent
SHARED_PTB = REPO.parent / "shared" / "data" / "ptb"


def copy_recipe(root: Path) -> Path:
    """egs/utils and egs/ptb/s5 (without working folders) under ``root``; the recipe folder."""
    skip = shutil.ignore_patterns("data", "exp", "__pycache__")
    shutil.copytree(REPO / "egs" / "utils", root / "egs" / "utils", ignore=skip)
    shutil.copytree(REPO / "egs" / "ptb" / "s5", root / "egs" / "ptb" / "s5", symlinks=True,
                    ignore=skip)
    return root / "egs" / "ptb" / "s5"


def run_recipe(recipe: Path, *args: str) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.run(["./run.sh", "--quick", "--model-dir", str(REPO / "models"), *args],
                       cwd=recipe, env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, f"run.sh {' '.join(args)} failed:\n{p.stdout}\n{p.stderr}"
    return p.stdout


def test_recipe_quick(tmp_path: Path) -> None:
    recipe = copy_recipe(tmp_path)
    if SHARED_PTB.is_dir():
        corpus = ["--corpus-dir", str(SHARED_PTB)]
    else:
        corpus = ["--corpus-dir", str(write_toy_corpus(tmp_path / "toy")), "--check-md5", "false"]
    out = run_recipe(recipe, *corpus, "--stop-stage", "2")
    exp = recipe / "exp" / "quick"
    for model in ("ptb-lstm256-bptt", "ptb-lstm256-afp4"):
        assert (exp / model / ".done.train").is_file()
    assert re.search(r"ptb\.test\.txt: order K=4, sentence batching: ppl [\d.]+", out)
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed: lattice stages not run (CI installs it)")

    out = run_recipe(recipe, *corpus, "--stage", "3")
    for lats in (recipe / "data" / "quick" / "test", recipe / "data" / "quick" / "dev"):
        assert len((lats / "text").read_text().splitlines()) == 5
        assert len(list((lats / "slf").glob("*.slf"))) == 5
        assert (lats / "lat.ark").is_file() and (lats / ".done").is_file()
    results = (exp / "RESULTS.md").read_text()
    for row in ("first pass", "acoustic scores only", "lattice oracle",
                "ptb-lstm256-bptt (bptt) | fixed-point K=4 |", "ptb-lstm256-afp4 (afp) | "
                "fixed-point K=4 |", "ptb-lstm256-afp4 (afp) | n-best N=10 |",
                "ptb-lstm256-afp4 (afp) | n-gram approx n=3 |"):
        assert row in results, f"RESULTS.md lacks {row!r}:\n{results}"
    wer = re.search(r"ptb-lstm256-afp4 \(afp\) \| fixed-point K=4 \| [\d.]+ \| [-\d.]+ / "
                    r"[-\d.]+ \| ([\d.]+) \|", results)
    assert wer and f"%WER {wer.group(1)}" in out  # the table quotes what the command printed
    system = exp / "ptb-lstm256-afp4" / "score_fp_k4"
    tune = json.loads((system / "tune.json").read_text())
    assert tune["grid"]  # the weights were picked on dev
    # the grid on test (for comparing LMs at the same weights) holds the reported test WER at
    # the weights picked on dev
    on_test = {(p["lmwt"], p["word_ins_penalty"]): p["wer"]
               for p in json.loads((system / "test_grid.json").read_text())["grid"]}
    reported = json.loads((system / "wer.json").read_text())["wer"]
    assert on_test[tune["lmwt"], tune["word_ins_penalty"]] == pytest.approx(reported)

    # a rerun finds every stage done and rewrites the same tables (the quoted commands differ:
    # they include the run.sh options of each run)
    again = run_recipe(recipe, *corpus)
    assert "is complete, nothing to do" in again

    def table_rows(text: str) -> list[str]:
        return [line for line in text.splitlines() if line.startswith("|")]

    assert table_rows((exp / "RESULTS.md").read_text()) == table_rows(results)

    # killed while rescoring test lattices: no markers, a half-written archive; the rerun
    # redoes that part only and gets the same numbers
    for marker in (system / ".done", system / "test" / ".done", system / "wer.json"):
        marker.unlink()
    ark = system / "test" / "lat.1.ark"
    ark.write_bytes(ark.read_bytes()[: ark.stat().st_size // 2])
    again = run_recipe(recipe, *corpus, "--stage", "4")
    assert f"{exp.relative_to(recipe) / 'ptb-lstm256-afp4' / 'score_nbest10'} is complete" in again
    assert f"{system.relative_to(recipe)}: test: %WER" in again

    def measured(rows: list[str]) -> list[str]:
        """The rows less the WER table's last column, the wall-clock seconds of rescoring, which
        a redone rescoring measures anew."""
        cells = [row.split("|") for row in rows]
        return ["|".join(c[:-2] + [""] if len(c) == 11 else c) for c in cells]

    assert measured(table_rows((exp / "RESULTS.md").read_text())) == measured(table_rows(results))
