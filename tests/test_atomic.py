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
