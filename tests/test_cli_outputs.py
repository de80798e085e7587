"""Outputs fail fast: every output option of every command is checked before any work (one
error line naming the option and the path, exit 1), and no folder is ever made for it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lmrescore.atomic import atomic_write_text, unwritable
from lmrescore.cli import main
from lmrescore.formats.outputs import check_output
from lmrescore.errors import InputError

FIXTURES = Path(__file__).parent / "fixtures"
ARK = f"ark:{FIXTURES / 'lats.ark'}"
WORDS = str(FIXTURES / "words.txt")
MISSING = "/nonexistent-lmrescore-dir/sub"


def error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# the model, config and lattices are missing too: the output is checked first, before any work
COMMANDS = {
    "info --one-best": ["info", ARK, "--words", WORDS, "--one-best", f"{MISSING}/hyp"],
    "tune --json": ["tune", ARK, "--words", WORDS, "--ref", "/none/text",
                    "--json", f"{MISSING}/tune.json"],
    "convert output": ["convert", ARK, f"ark:{MISSING}/lat.ark", "--out-format", "kaldi"],
    "fpp --out": ["fpp", "cycleworld", "--config", "/none.yaml", "--out", f"{MISSING}/r.json"],
    **{f"score {opt}": ["score", "--model", "/none.pt", "--lattice", ARK, "--words", WORDS,
                        "--one-best", "/dev/null", opt, value]
       for opt, value in [("--one-best", f"{MISSING}/hyp"), ("--nbest-out", f"{MISSING}/n"),
                          ("--summary", f"{MISSING}/s.json"),
                          ("--write-lattice", f"ark:{MISSING}/lat.ark")]},
}


@pytest.mark.parametrize("name", COMMANDS)
def test_a_missing_output_folder_is_one_error_line_before_any_work(name: str, capsys) -> None:
    command, option = name.split()
    line = error_line(capsys, COMMANDS[name])
    assert line.startswith(f"lmrescore {command}: error: {option} ")
    assert line.endswith(f": no such folder {MISSING}")
    assert not Path(MISSING).parent.exists()


def test_wspecifiers_check_their_files_not_their_pipes(tmp_path: Path, capsys) -> None:
    check_output(f"ark:| gzip -c > {MISSING}/lat.gz", "--write-lattice", "kaldi")  # a command
    check_output("ark,t:-", "--write-lattice", "kaldi")
    check_output(f"ark,scp:{tmp_path}/a.ark,{tmp_path}/a.scp", "--write-lattice", "kaldi")
    with pytest.raises(InputError, match=f"no such folder {MISSING}$"):
        check_output(f"ark,scp:{tmp_path}/a.ark,{MISSING}/a.scp", "--write-lattice", "kaldi")
    with pytest.raises(InputError, match="write with ark: or ark,scp:"):
        check_output(f"scp:{tmp_path}/a.scp", "--write-lattice", "kaldi")
    out = tmp_path / "out.txt"
    assert main(["convert", ARK, f"ark,t:| cat > {out}", "--out-format", "kaldi",
                 "--words", WORDS]) == 0
    assert out.read_text().startswith("ptb-001")


def test_an_slf_folder_is_made_one_level_only(tmp_path: Path, capsys) -> None:
    argv = ["convert", ARK, "", "--out-format", "slf", "--words", WORDS]
    argv[2] = str(tmp_path / "a" / "slf")
    assert "output" in error_line(capsys, argv) and not (tmp_path / "a").exists()
    argv[2] = str(tmp_path / "slf")
    assert main(argv) == 0 and len(list((tmp_path / "slf").glob("*.slf"))) == 5
    (tmp_path / "file").write_text("")
    argv[2] = str(tmp_path / "file")
    assert error_line(capsys, argv).endswith(f"output {tmp_path / 'file'}: is not a folder")


def test_what_can_be_written(tmp_path: Path, monkeypatch) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "old").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "new")  # a dangling link: its target is made
    for ok in ["-", "/dev/null", tmp_path / "fifo", tmp_path / "old", tmp_path / "new",
               tmp_path / "link"]:
        assert unwritable(ok) is None, ok
    assert unwritable(tmp_path) == "is a folder, not a file"
    assert unwritable(tmp_path / "old" / "x") == f"{tmp_path / 'old'} is not a folder"
    assert unwritable(tmp_path / "link-to-missing") is None
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # as a user who may not write
    assert unwritable(tmp_path / "new") == f"cannot create files in {tmp_path}"
    assert unwritable(tmp_path / "fifo") == "not writable"
    assert unwritable(tmp_path, folder=True) == f"cannot create files in {tmp_path}"


def test_atomic_writes_make_no_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such folder"):
        atomic_write_text(tmp_path / "a" / "b.txt", "x")
    assert not (tmp_path / "a").exists()
