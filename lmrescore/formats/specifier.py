"""Kaldi rspecifiers and wspecifiers: ``ark:lat.ark``, ``ark,t:-``, ``scp:lat.scp``, ..."""

from __future__ import annotations

from dataclasses import dataclass

from lmrescore.errors import InputError


@dataclass(frozen=True)
class Specifier:
    """A parsed rspecifier / wspecifier.

    Attributes:
        kind: ``"ark"``, ``"scp"`` or ``"ark,scp"``.
        text: ``t`` option (text output).
        paths: one path (or two for ``ark,scp``).
    """

    kind: str
    text: bool
    paths: tuple[str, ...]


def parse_specifier(spec: str) -> Specifier:
    """Split ``ark,t:path`` into kind, options and path(s)."""
    head, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise InputError(f"{spec!r}: expected a Kaldi specifier like ark:lat.ark or scp:lat.scp")
    opts = head.split(",")
    kinds = [o for o in opts if o in ("ark", "scp")]
    if not kinds or len(set(kinds)) != len(kinds):
        raise InputError(f"{spec!r}: the specifier must start with ark: or scp:")
    kind = ",".join(kinds)
    paths = tuple(rest.split(",", 1)) if kind == "ark,scp" else (rest,)
    if kind == "scp,ark":
        raise InputError(f"{spec!r}: write ark,scp:ARK,SCP")
    return Specifier(kind=kind, text="t" in opts, paths=paths)
