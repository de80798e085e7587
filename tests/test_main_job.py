"""The README's main job: the bundled model rescores the demo lattices."""

import re
from pathlib import Path

import pytest

from lmrescore.cli import main
from lmrescore.rescoring.metrics import corpus_word_errors, read_text

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()


def test_readme_main_job_rescores_the_demo_lattices(capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    command = re.search(r"&& lmrescore (score .*)\n", README).group(1).split()
    monkeypatch.chdir(REPO)
    assert main(command) == 0
    out = capsys.readouterr()
    utts = [line.split()[0] for line in (REPO / "egs/ptb/s5/demo/text").read_text().splitlines()]
    assert [line.split()[0] for line in out.out.splitlines()] == utts
    wer = re.search(r"%WER ([\d.]+) .* over 5 of 5 reference utterances", out.err)
    demo = REPO / "egs/ptb/s5/demo"
    refs, first_pass = read_text(demo / "text"), read_text(demo / "hyp_first_pass")
    first = corpus_word_errors(list(refs.values()), [first_pass[u] for u in refs])
    assert wer and float(wer.group(1)) < first.wer  # the tuned settings beat the first pass
