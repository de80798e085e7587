"""How commands end on OS errors: one line and exit 1 for a full disk; a closed stdout (``| head``)
ends quietly as a tool killed by SIGPIPE does, not with a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lmrescore.cli import main

FIXTURES = Path(__file__).parent / "fixtures"
ARK = f"ark:{FIXTURES / 'lats.ark'}"
WORDS = str(FIXTURES / "words.txt")


def test_a_full_disk_is_one_line_and_exit_1(capsys) -> None:
    assert main(["info", ARK, "--words", WORDS, "--one-best", "/dev/full"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["lmrescore info: error: [Errno 28] No space left on device"]


def test_a_closed_stdout_ends_without_a_traceback() -> None:
    cmd = (f"{sys.executable} -m lmrescore.cli convert {ARK} ark,t:- --out-format kaldi "
           f"--words {WORDS} | head -n 2")
    run = subprocess.run(["bash", "-c", f"set -o pipefail; {cmd}"], capture_output=True,
                         text=True)
    assert run.stdout.split()[0] == "ptb-001"  # the text archive's first key
    assert "Traceback" not in run.stderr and "BrokenPipeError" not in run.stderr
    assert run.returncode == 141  # 128 + SIGPIPE, as a killed tool


def test_an_unexpected_exception_is_one_internal_error_line_and_exit_2(monkeypatch,
                                                                        capsys) -> None:
    import lmrescore.cli.info

    def boom(args) -> int:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(lmrescore.cli.info, "run", boom)
    assert main(["info", ARK, "--words", WORDS]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["lmrescore info: internal error: RuntimeError: boom second line (a bug: "
                   "please report it to the lmrescore maintainers with the command line; "
                   "--log-level DEBUG prints the traceback)"]
    assert main(["--log-level", "DEBUG", "info", ARK, "--words", WORDS]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith(
        "lmrescore info: internal error: RuntimeError: boom")
