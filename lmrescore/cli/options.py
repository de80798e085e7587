"""Options that several commands share, spelled once (Kaldi's names), and the records built from
them once."""

from __future__ import annotations

import argparse

from lmrescore.formats import AUTO, FORMATS
from lmrescore.lattice.weights import Weights


def add_reading_args(p: argparse.ArgumentParser, format_flag: str = "--format",
                     oov_option: bool = True) -> None:
    """The lattice input's format and words, and how many lattices may fail.

    Args:
        format_flag: the name of the input format option.
        oov_option: offer ``--map-oov-to-unk`` (else SLF words outside words.txt are ``<unk>``).
    """
    p.add_argument(format_flag, default=AUTO, choices=(AUTO, *FORMATS),
                   help="lattice format (default: auto: k2 for a path ending in .pt, else kaldi; "
                        "SLF is never guessed)")
    p.add_argument("--words", help="the lattices' words.txt (required for SLF)")
    if oov_option:
        p.add_argument("--map-oov-to-unk", action="store_true",
                       help="SLF words missing from words.txt become <unk> (default: the "
                            "lattice fails)")
    p.add_argument("--max-failures", type=float, default=0.0,
                   help="exit 1 when more than this fraction of lattices fail (default: 0)")


def add_weight_args(p: argparse.ArgumentParser, lm_scale_help: str) -> None:
    """``--acoustic-scale`` / ``--inv-acoustic-scale``, ``--lm-scale``, ``--word-ins-penalty``.

    Args:
        lm_scale_help: what ``--lm-scale`` weighs in this command.
    """
    g = p.add_argument_group("score weights (Kaldi's names)")
    scale = g.add_mutually_exclusive_group()
    scale.add_argument("--acoustic-scale", type=float,
                       help="weight of the acoustic scores (default 0.1)")
    scale.add_argument("--inv-acoustic-scale", type=float,
                       help="1 / acoustic scale: the LMWT of Kaldi's scoring")
    g.add_argument("--lm-scale", type=float, default=1.0, help=lm_scale_help)
    g.add_argument("--word-ins-penalty", type=float, default=0.0,
                   help="subtracted per word (default 0)")


def weights(args: argparse.Namespace) -> Weights:
    """The ``Weights`` record of the parsed weight options; the acoustic scale is given as
    ``--acoustic-scale`` or ``--inv-acoustic-scale`` (default 0.1)."""
    if args.inv_acoustic_scale is not None:
        acoustic = 1.0 / args.inv_acoustic_scale
    else:
        acoustic = 0.1 if args.acoustic_scale is None else args.acoustic_scale
    return Weights(acoustic, args.lm_scale, args.word_ins_penalty)
