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

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sse-integrations", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for group in (model, qdrant, evaluation):
        group.add_parsers(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = args.options.from_namespace(args)
    try:
        return args.run(options)
    except (FileNotFoundError, ValueError, TypeError) as error:
        print(f"sse-integrations {args.command}: {error}", file=sys.stderr)
        return 2
