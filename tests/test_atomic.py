"""Atomic writes: the new file appears whole, with the mode a plain open() would give it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lmrescore.atomic import atomic_open, atomic_write_text


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_new_file_gets_the_umask_mode(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.txt", "x\n")
        with open(tmp_path / "b.txt", "w") as f:
            f.write("x\n")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "a.txt").stat().st_mode)
    assert mode == 0o666 & ~umask == stat.S_IMODE((tmp_path / "b.txt").stat().st_mode)


def test_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "a.txt", "old\n")
    with pytest.raises(RuntimeError):
        with atomic_open(tmp_path / "a.txt") as f:
            f.write("new\n")
            raise RuntimeError("boom")
    assert (tmp_path / "a.txt").read_text() == "old\n"
    assert os.listdir(tmp_path) == ["a.txt"]


def test_a_link_to_a_device_is_written_through_not_replaced(tmp_path: Path) -> None:
    # (through a link in tmp_path, so that a regression replaces the link, never /dev/null)
    (tmp_path / "out").symlink_to("/dev/null")
    atomic_write_text(tmp_path / "out", "x\n")
    assert (tmp_path / "out").is_symlink() and stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert os.listdir(tmp_path) == ["out"]


def test_a_named_pipe_gets_the_text_and_stays_a_pipe(tmp_path: Path) -> None:
    import threading

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    atomic_write_text(fifo, "line 1\nline 2\n")
    reader.join(timeout=10)
    assert got == ["line 1\nline 2\n"] and stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_link_to_a_regular_file_keeps_the_link(tmp_path: Path) -> None:
    (tmp_path / "target.txt").write_text("old\n")
    (tmp_path / "link.txt").symlink_to(tmp_path / "target.txt")
    atomic_write_text(tmp_path / "link.txt", "new\n")
    assert (tmp_path / "link.txt").is_symlink()
    assert (tmp_path / "target.txt").read_text() == "new\n"


def test_dash_is_stdout(capsys) -> None:
    atomic_write_text("-", "to stdout\n")
    assert capsys.readouterr().out == "to stdout\n"


def test_a_killed_writer_s_temporary_file_is_removed_on_the_next_write(tmp_path: Path) -> None:
    import subprocess
    import sys

    # a child that dies (kill -9) in the middle of an atomic write
    code = ("import os, signal, sys; from lmrescore.atomic import atomic_open\n"
            "with atomic_open(sys.argv[1]) as f:\n"
            "    f.write('half'); f.flush(); os.kill(os.getpid(), signal.SIGKILL)\n")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.txt")])
    assert len(list(tmp_path.glob(".a.txt.*.tmp"))) == 1 and not (tmp_path / "a.txt").exists()
    atomic_write_text(tmp_path / "a.txt", "whole\n")
    assert os.listdir(tmp_path) == ["a.txt"]
    assert (tmp_path / "a.txt").read_text() == "whole\n"
