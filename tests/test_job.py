"""The rescoring job as one library call (lmrescore/rescoring/job.py): what ``lmrescore score``
writes, and the README's three-line example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lmrescore.cli import main
from lmrescore.rescoring.job import JobOptions, LmFile, rescore_job
from lmrescore.rescoring.rescorer import RescoreOptions
from test_cli_score import ARK, FIXTURES, WORDS, make_model

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("model") / "lm.pt"
    make_model(path)
    return str(path)


def test_rescore_job_writes_what_score_writes(model: str, tmp_path: Path) -> None:
    assert main(["--log-level", "WARNING", "score", "--model", model, "--lattice", ARK,
                 "--words", WORDS, "--beam", "10", "--prune-order", "0", "--one-best",
                 str(tmp_path / "cli_hyp"), "--write-lattice", f"ark:{tmp_path / 'cli_lat'}"]) == 0
    done = rescore_job(JobOptions(
        [LmFile(model)], ARK, WORDS, RescoreOptions(beam=10.0), one_best=str(tmp_path / "hyp"),
        write_lattice=f"ark:{tmp_path / 'lat'}", ref=str(FIXTURES / "text")))
    assert done.exit_status == 0 and done.summary["rescored"] == 5
    assert (tmp_path / "hyp").read_bytes() == (tmp_path / "cli_hyp").read_bytes()
    assert (tmp_path / "lat").read_bytes() == (tmp_path / "cli_lat").read_bytes()
    lines = (tmp_path / "hyp").read_text().splitlines()
    assert lines == [f"{u} {' '.join(w)}" for u, w in done.run.one_best.items()]
    assert 0 <= done.summary["wer"] and done.summary["lm_0"] == model


def test_readme_library_example(model: str, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    code = re.search(r"```python\n(from lmrescore.rescoring.job import .*?)```", README,
                     re.S).group(1)
    monkeypatch.chdir(FIXTURES)
    exec(code.replace("exp/afp8/best.pt", model).replace("ark:lat.ark", ARK)
         .replace("words.txt", WORDS), {})
    assert len(capsys.readouterr().out.splitlines()) == 5
