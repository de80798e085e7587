"""Options that several commands share, spelled once (Kaldi's names), and the records built from
them once."""

from __future__ import annotations

import argparse
import logging
import re

from lmrescore.formats import AUTO, FORMATS
from lmrescore.lattice.weights import Weights


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Every command's ``--help``: the description as written, and each option's default.

    The default is appended as ``(default: VALUE)`` (``none`` for None) unless the help already
    says it in words (``default: the model's order``, for a default decided at run time).
    Required options and positional arguments have none. Use it for every (sub)parser:
    ``sub.add_parser(name, ..., formatter_class=HelpFormatter)``.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        help = action.help or ""
        if (re.search(r"\bdefault\b", help) or action.required or not action.option_strings
                or action.default is argparse.SUPPRESS):
            return help
        return f"{help} (default: {'none' if action.default is None else '%(default)s'})"


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
                   help="exit 1 when more than this fraction of lattices fail")


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
                   help="subtracted per word")


def weights(args: argparse.Namespace) -> Weights:
    """The ``Weights`` record of the parsed weight options; the acoustic scale is given as
    ``--acoustic-scale`` or ``--inv-acoustic-scale`` (default 0.1)."""
    if args.inv_acoustic_scale is not None:
        acoustic = 1.0 / args.inv_acoustic_scale
    else:
        acoustic = 0.1 if args.acoustic_scale is None else args.acoustic_scale
    return Weights(acoustic, args.lm_scale, args.word_ins_penalty)


def warn_if_kaldi_text(path: str, text_format: str) -> None:
    """Log a warning when ``path``, read as plain text, looks like a Kaldi ``text`` file (see
    :func:`lmrescore.lm.data.kaldi_text_ids`): its utterance ids would be scored as words."""
    from lmrescore.lm.data import kaldi_text_ids

    ids = kaldi_text_ids(path) if text_format == "plain" else None
    if ids:
        logging.getLogger("lmrescore.cli").warning(
            "%s looks like a Kaldi text file: each line starts with a distinct id (%s, %s, ...) "
            "that is never a word; read as plain text, the ids are words: give --text-format "
            "kaldi", path, ids[0], ids[1])
