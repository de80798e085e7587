"""The ``lmrescore`` command: one subcommand module per job, each thin over the library."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import traceback

from lmrescore.errors import InputError

# Each module defines ``register(subparsers)`` adding its subcommand with ``func=run``.
SUBCOMMANDS: tuple[str, ...] = ("train", "eval", "score", "tune", "convert", "info", "fpp")


def build_parser() -> argparse.ArgumentParser:
    from lmrescore.cli.options import HelpFormatter

    parser = argparse.ArgumentParser(prog="lmrescore", description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--log-level", default="INFO", help="logging level")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"lmrescore.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, run the subcommand. A user error (bad input, an OS error) prints one line
    and exits 1; anything else is a bug: one line saying so and exit 2 (the traceback with
    ``--log-level DEBUG``)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s [%(name)s] %(message)s")
    if getattr(args, "num_threads", None):
        import torch

        torch.set_num_threads(args.num_threads)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # the reader of stdout went away (| head): end as a killed tool does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except (InputError, OSError) as e:  # bad input, or a disk that is full, a missing file, ...
        print(f"lmrescore {args.command}: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 -- a bug: say so, not a bare traceback
        if args.log_level.upper() == "DEBUG":
            traceback.print_exc()
        print(f"lmrescore {args.command}: internal error: {type(e).__name__}: {_one_line(e)} "
              "(a bug: please report it to the lmrescore maintainers with the command line; "
              "--log-level DEBUG prints the traceback)", file=sys.stderr)
        return 2


def _one_line(e: Exception) -> str:
    """The exception's message on one line, at most 300 characters."""
    return " ".join(str(e).split())[:300]


if __name__ == "__main__":
    sys.exit(main())
