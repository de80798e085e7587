"""lmrescore train: train an RNN LM from a YAML config; rerun to resume after a kill.

The text is a known corpus (``--corpus-dir``, the file names of ``data.corpus``) or any files
(``--train``/``--valid``/``--test``, plain or Kaldi ``text``); the vocabulary is the training
text's, or the words of ``--vocab`` (words.txt or a lexicon). Under ``torchrun`` it trains in
several processes (README: "Training on several processes")."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from lmrescore.cli.options import HelpFormatter, warn_if_kaldi_text
from lmrescore.errors import InputError
from lmrescore.lm.data import TEXT_FORMATS

if TYPE_CHECKING:
    from lmrescore.lm.corpus import CorpusFiles


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help=__doc__.split(": ", 1)[1].split("\n")[0],
                       description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--config", required=True, help="models/<name>.yaml")
    text = p.add_argument_group("text (--corpus-dir, or --train and --valid)")
    text.add_argument("--corpus-dir",
                      help="folder with the files of the config's data.corpus (ptb.train.txt ... "
                           "or wiki.train.tokens ...)")
    text.add_argument("--train", help="training text, one sentence per line")
    text.add_argument("--valid", help="validation text (picks best.pt, decays the lr)")
    text.add_argument("--test", help="test text (optional: scored at the end)")
    text.add_argument("--text-format", choices=TEXT_FORMATS, default="plain",
                      help="plain, or kaldi: a Kaldi text file, 'utt-id w1 w2 ...'")
    text.add_argument("--vocab",
                      help="words.txt or lexicon: its words are the vocabulary, others become "
                           "<unk> (default: every word of the training text, up to "
                           "data.max_vocab)")
    p.add_argument("--exp-dir", required=True, help="output folder; resumes from its last.pt")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--num-threads", type=int,
                   help="CPU threads for torch (default: torch's; use 1 per process when "
                        "several jobs share the CPU cores, e.g. a recipe's parallel $cmd jobs)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value, e.g. --set train.epochs=2 or "
                        "--set train.fpp.window=5 (repeatable; default: none)")
    p.set_defaults(func=run)


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Set ``section.key=value`` pairs in a raw config dict: the key is a dotted path of any
    depth (``train.fpp.window``), the value is parsed as YAML."""
    for item in overrides:
        key, sep, value = item.partition("=")
        *sections, name = key.split(".")
        if not sep or not sections or not all(sections) or not name:
            raise InputError(f"--set {item!r}: expected SECTION.KEY=VALUE")
        node = raw
        for section in sections:
            node = node.setdefault(section, {})
            if not isinstance(node, dict):
                raise InputError(f"--set {item!r}: {section} is a value, not a section")
        node[name] = yaml.safe_load(value)
    return raw


def corpus_files(args: argparse.Namespace, corpus: str) -> "CorpusFiles":
    """The texts named on the command line: a known corpus's folder, or the files."""
    from lmrescore.lm.corpus import CorpusFiles

    if (args.corpus_dir is None) == (args.train is None):
        raise InputError("give --corpus-dir, or --train and --valid (not both)")
    if args.corpus_dir is not None:
        if args.valid or args.test:
            raise InputError("--valid and --test go with --train, not --corpus-dir")
        files = CorpusFiles.known(args.corpus_dir, corpus)
    elif args.valid is None:
        raise InputError("--train needs --valid")
    else:
        splits = {"train": args.train, "valid": args.valid, "test": args.test}
        files = CorpusFiles({s: Path(p) for s, p in splits.items() if p is not None})
    vocab = None if args.vocab is None else Path(args.vocab)
    return CorpusFiles(files.splits, args.text_format, vocab)


def run(args: argparse.Namespace) -> int:
    from lmrescore.lm.config import ExperimentConfig
    from lmrescore.distributed import Dist
    from lmrescore.training.trainer import Trainer

    raw = ExperimentConfig.load(args.config).to_dict()
    config = ExperimentConfig.from_dict(apply_overrides(raw, args.set), args.config)
    files = corpus_files(args, config.data.corpus)
    dist = Dist.from_env(args.device)
    if not dist.is_main:  # one log and one result line for the job
        logging.getLogger().setLevel(logging.WARNING)
    else:
        for path in files.splits.values():
            warn_if_kaldi_text(str(path), files.text_format)
    try:
        results = Trainer(config, files, args.exp_dir, dist.device(args.device), dist).run()
    finally:
        dist.close()
    if dist.is_main:
        print(json.dumps(results))
    return 0
