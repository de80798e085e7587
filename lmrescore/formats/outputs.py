"""Outputs are checked before any work: each file (or each file of a wspecifier) needs an
existing folder that takes new files, or is ``-``, a device or a pipe; no folder is ever made."""

from __future__ import annotations

from lmrescore.atomic import unwritable
from lmrescore.errors import InputError
from lmrescore.formats.kaldi_writer import KaldiWriter, is_stream


def check_output(path: str | None, option: str, fmt: str | None = None) -> None:
    """Fail before any work when an output could not be written (no folder is ever made).

    Args:
        path: the option's value; None (not given): nothing to check.
        option: the option's name for the error (``--one-best``), or the argument's (``output``).
        fmt: None for a file (or ``-``); else a lattice output's format: ``kaldi``, a wspecifier
            (each file in it is checked, a ``| cmd`` pipe is not); ``slf``, a folder (existing,
            or made in an existing folder); ``k2``, a file.
    Raises:
        InputError: one line naming the option, the path and why.
    """
    if path is None:
        return
    files = [path]
    if fmt == "kaldi":
        files = [p for p in KaldiWriter(path).spec.paths if not is_stream(p)]
    for file in files:
        why = unwritable(file, folder=fmt == "slf")
        if why is not None:
            raise InputError(f"{option} {path}: {why}")


def is_std(target: str | None) -> bool:
    """Whether a lattice output or input (Kaldi specifier, SLF dir, k2 file) is stdout / stdin."""
    return target is not None and (target == "-" or target.rpartition(":")[2] == "-")
