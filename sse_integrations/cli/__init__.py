"""The ``sse-integrations`` command line.

One module per command group, each holding its parsers, its typed options (a frozen
dataclass built from the parsed arguments) and its bodies: :mod:`.model` (``info``,
``encode``), :mod:`.qdrant` (``demo``, ``index``, ``search``) and :mod:`.evaluation`
(``eval``). Every body imports what it needs when it runs, so ``--help`` and ``encode``
stay fast. The CLI is the only place that prints; the library modules return values.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import evaluation, model, qdrant
from ._errors import one_line, user_error_message

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sse-integrations",
        description="Stable Static Embedding (SSE) models from the command line: describe, encode, index, search, evaluate.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for group in (model, qdrant, evaluation):
        group.add_parsers(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = args.options.from_namespace(args)
    try:
        return args.run(options)
    except KeyboardInterrupt:
        # Points are upserted batch by batch with deterministic ids, so nothing written is lost.
        hint = (
            "; the documents written so far are kept: run the same command again to resume"
            if args.command == "index"
            else ""
        )
        print(f"sse-integrations {args.command}: interrupted{hint}", file=sys.stderr)
        return 2
    except Exception as error:
        message = user_error_message(error, options)
        if message is None:
            raise
        print(f"sse-integrations {args.command}: {one_line(message)}", file=sys.stderr)
        return 2
