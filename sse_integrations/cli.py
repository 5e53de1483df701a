"""The ``sse-integrations`` command line.

Each subcommand registers itself in :func:`build_parser` through an ``_add_<name>`` function
and imports what it needs only when it runs, so ``--help`` and ``encode`` stay fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def _add_model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="model folder or hub id (default: the bundled model)")
    parser.add_argument("--revision", default=None, help="hub revision to pin (hub ids only)")


def _load_encoder(args: argparse.Namespace, **kwargs):
    from .encoder import SSEEncoder

    return SSEEncoder.from_pretrained(args.model, revision=args.revision, **kwargs)


# --- info --------------------------------------------------------------------------------


def _add_info(subparsers) -> None:
    parser = subparsers.add_parser("info", help="describe a model: layout, vocab, dims, size on disk")
    parser.add_argument("model", nargs="?", default=None, help="model folder or hub id (default: the bundled model)")
    parser.add_argument("--revision", default=None)
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(func=_run_info)


def _run_info(args: argparse.Namespace) -> int:
    encoder = _load_encoder(args)
    weight_bytes = sum(path.stat().st_size for path in encoder.weight_files)
    info = {
        "source": encoder.source,
        "layout": encoder.layout,
        "vocab_size": encoder.vocab_size,
        "dim": encoder.full_dim,
        "matryoshka_dims": list(encoder.matryoshka_dims),
        "normalisation": "SeparableDyT" if encoder.weights.has_dyt else "identity (StaticEmbedding)",
        "weight_files": {path.name: path.stat().st_size for path in encoder.weight_files},
        "weight_bytes": weight_bytes,
    }
    if args.json:
        print(json.dumps(info, ensure_ascii=False, indent=2))
        return 0
    for key, value in info.items():
        if key == "weight_files":
            for name, size in value.items():
                print(f"  {name}: {size:,} bytes")
        elif key == "weight_bytes":
            print(f"size on disk (weights): {value:,} bytes ({value / 2**20:.2f} MiB)")
        else:
            print(f"{key}: {value}")
    return 0


# --- encode ------------------------------------------------------------------------------


def _add_encode(subparsers) -> None:
    parser = subparsers.add_parser("encode", help="embed texts (arguments, or one per line on stdin) as JSON lines")
    parser.add_argument("texts", nargs="*", help="texts to embed; read stdin (one per line) when none are given")
    _add_model_option(parser)
    parser.add_argument("--dim", type=int, default=None, help="Matryoshka prefix to keep")
    parser.add_argument("--no-normalize", action="store_true", help="skip L2 normalisation")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.set_defaults(func=_run_encode)


def _run_encode(args: argparse.Namespace) -> int:
    texts = args.texts or [line.rstrip("\n") for line in sys.stdin]
    encoder = _load_encoder(args)
    vectors = encoder.encode(texts, truncate_dim=args.dim, normalize=not args.no_normalize, batch_size=args.batch_size)
    out = sys.stdout
    for text, vector in zip(texts, vectors):
        out.write(json.dumps({"text": text, "embedding": [round(float(x), 7) for x in vector]}, ensure_ascii=False))
        out.write("\n")
    return 0


# --- demo, index, search (Qdrant) ------------------------------------------------------


def _add_demo(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="index the bundled Japanese corpus into embedded Qdrant; two-stage vs single-stage search"
    )
    _add_model_option(parser)
    parser.add_argument("queries", nargs="*", help="queries to run (default: a few built-in Japanese ones)")
    parser.add_argument("--limit", type=int, default=10, help="hits per query")
    parser.add_argument("--show", type=int, default=3, help="hits to print per query")
    parser.add_argument("--coarse-dim", type=int, default=64)
    parser.add_argument("--prefetch-limit", type=int, default=None, help="first-stage candidates")
    parser.add_argument("--repeats", type=int, default=5, help="runs per query (the median time is shown)")
    parser.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from .qdrant import cli_demo

    return cli_demo(args, _load_encoder(args))


def _add_qdrant_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--collection", required=True, help="Qdrant collection name")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--qdrant-path", default="qdrant_storage",
                       help="embedded local Qdrant storage folder (default: ./qdrant_storage)")
    where.add_argument("--qdrant-url", default=None, help="Qdrant server URL, e.g. http://localhost:6333")
    parser.add_argument("--api-key", default=None, help="Qdrant API key (server/cloud)")
    _add_model_option(parser)


def _add_index(subparsers) -> None:
    parser = subparsers.add_parser(
        "index", help="embed JSONL, .txt/.md files or folders into a Qdrant collection (resumable)"
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help=".jsonl files, .txt/.md files, or folders of them")
    _add_qdrant_options(parser)
    parser.add_argument("--coarse-dim", type=int, default=64, help="first-stage Matryoshka prefix")
    parser.add_argument("--stages", default=None, help="all stage dims, coarsest first, e.g. 32,128,512")
    parser.add_argument("--quantization", choices=("binary", "scalar"), default=None,
                        help="quantize the coarse vector (applies on a Qdrant server)")
    parser.add_argument("--text-field", default="text", help="JSONL field holding the text")
    parser.add_argument("--id-field", default=None, help="JSONL field holding the id (default: id or _id)")
    parser.add_argument("--lines", action="store_true", help="one document per line of .txt/.md files")
    parser.add_argument("--skip-existing", action="store_true",
                        help="do not re-embed documents whose ids are already in the collection")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--sparse", action="store_true", help="also store a BM25 sparse vector (for --mode hybrid)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=_run_index)


def _run_index(args: argparse.Namespace) -> int:
    from .qdrant import cli_index

    return cli_index(args, _load_encoder(args))


def _fusion_weights(text: str) -> tuple[float, float]:
    try:
        weights = tuple(float(part) for part in text.split(","))
    except ValueError:
        weights = ()
    if len(weights) != 2:
        raise argparse.ArgumentTypeError(f"expected two comma-separated weights DENSE,SPARSE, got {text!r}")
    return weights  # type: ignore[return-value]


def _add_fusion_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fusion", choices=("rrf", "dbsf"), default="rrf", help="how --mode hybrid fuses the lists")
    parser.add_argument("--fusion-weights", type=_fusion_weights, default=None, metavar="DENSE,SPARSE",
                        help="weighted RRF, e.g. 1,0.3 (default: equal weights)")
    parser.add_argument("--rrf-k", type=int, default=None, help="RRF rank constant (default: Qdrant's, 2)")


def _add_search(subparsers) -> None:
    parser = subparsers.add_parser("search", help="two-stage search of a Qdrant collection made by `index`")
    parser.add_argument("queries", nargs="+", metavar="QUERY")
    _add_qdrant_options(parser)
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--prefetch-limit", type=int, default=None, help="first-stage candidates")
    parser.add_argument("--single-stage", action="store_true", help="search the full vector only")
    parser.add_argument("--mode", choices=("dense", "sparse", "hybrid"), default="dense",
                        help="dense two-stage, BM25 sparse, or both fused (sparse/hybrid need `index --sparse`)")
    _add_fusion_options(parser)
    parser.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                        help="payload filter (repeatable; VALUE parsed as JSON when it can be)")
    parser.add_argument("--json", action="store_true", help="one JSON line per query")
    parser.set_defaults(func=_run_search)


def _run_search(args: argparse.Namespace) -> int:
    from .qdrant import cli_search

    return cli_search(args, _load_encoder(args))


# --- eval --------------------------------------------------------------------------------


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _add_eval(subparsers) -> None:
    parser = subparsers.add_parser("eval", help="retrieval metrics of the model cards on BEIR folders, per Matryoshka dim")
    parser.add_argument("data", nargs="+", metavar="DATA", help="BEIR folder(s): corpus.jsonl, queries.jsonl, qrels/")
    _add_model_option(parser)
    parser.add_argument("--dims", type=_int_list, default=None,
                        help="comma-separated Matryoshka dims, e.g. 32,64,128,256,512 (default: all)")
    parser.add_argument("--two-stage", action="store_true", help="also evaluate two-stage Qdrant search")
    parser.add_argument("--mode", dest="modes", action="append", choices=("dense", "sparse", "hybrid"), default=[],
                        help="also evaluate this Qdrant search mode (repeatable; dense = --two-stage)")
    _add_fusion_options(parser)
    parser.add_argument("--coarse-dim", type=int, default=64, help="first-stage prefix for --two-stage")
    parser.add_argument("--prefetch-limit", type=int, default=None,
                        help="first-stage candidates for --two-stage (default: what a default search(limit=10) rescans)")
    parser.add_argument("--split", default="test", help="qrels/<split>.tsv to use (default: test)")
    parser.add_argument("--strict", action="store_true", help="fail on qrels that point at unknown ids")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--json", dest="json_path", default=None, help="also write every result to this JSON file")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=_run_eval)


def _run_eval(args: argparse.Namespace) -> int:
    from .evaluation import run_cli

    return run_cli(args, _load_encoder(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sse-integrations", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add in (_add_info, _add_encode, _add_demo, _add_index, _add_search, _add_eval):
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, TypeError) as error:
        print(f"sse-integrations {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
