"""``sse-integrations info`` and ``encode``: describe a model, embed texts as JSON lines."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

from ._options import CommandOptions, add_model_option


@dataclass(frozen=True)
class InfoOptions(CommandOptions):
    json: bool


@dataclass(frozen=True)
class EncodeOptions(CommandOptions):
    texts: list[str]
    dim: int | None
    no_normalize: bool
    batch_size: int


def add_parsers(subparsers: Any) -> None:
    info = subparsers.add_parser("info", help="describe a model: layout, vocab, dims, size on disk")
    info.add_argument("model", nargs="?", default=None, help="model folder or hub id (default: the bundled model)")
    info.add_argument("--revision", default=None, help="hub branch, tag or commit to pin (hub ids only)")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.set_defaults(run=run_info, options=InfoOptions)

    encode = subparsers.add_parser("encode", help="embed texts (arguments, or one per line on stdin) as JSON lines")
    encode.add_argument("texts", nargs="*", help="texts to embed; read stdin (one per line) when none are given")
    add_model_option(encode)
    encode.add_argument("--dim", type=int, default=None, help="Matryoshka prefix to keep")
    encode.add_argument("--no-normalize", action="store_true", help="skip L2 normalisation")
    encode.add_argument("--batch-size", type=int, default=1024, help="texts tokenised per step (default: 1024)")
    encode.set_defaults(run=run_encode, options=EncodeOptions)


def run_info(options: InfoOptions) -> int:
    encoder = options.load_encoder()
    weight_bytes = sum(path.stat().st_size for path in encoder.weight_files)
    info: dict[str, Any] = {
        "source": encoder.source,
        "layout": encoder.layout,
        "vocab_size": encoder.vocab_size,
        "dim": encoder.full_dim,
        "matryoshka_dims": list(encoder.matryoshka_dims),
        "normalisation": "SeparableDyT" if encoder.weights.has_dyt else "identity (StaticEmbedding)",
        "weight_files": {path.name: path.stat().st_size for path in encoder.weight_files},
        "weight_bytes": weight_bytes,
    }
    if options.json:
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


def read_stdin_lines() -> list[str]:
    """One text per line of stdin, decoded as UTF-8; a line ends with LF or CRLF (neither is kept)."""
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # a text stream put in place of stdin (tests, embedding hosts)
        return [line.removesuffix("\n").removesuffix("\r") for line in sys.stdin]
    texts = []
    for number, raw in enumerate(stream, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(
                f"stdin line {number}: not valid UTF-8 (byte {raw[error.start]:#04x} at offset {error.start})"
            ) from None
        texts.append(line.removesuffix("\n").removesuffix("\r"))
    return texts


def run_encode(options: EncodeOptions) -> int:
    texts = options.texts or read_stdin_lines()
    encoder = options.load_encoder()
    vectors = encoder.encode(
        texts, truncate_dim=options.dim, normalize=not options.no_normalize, batch_size=options.batch_size
    )
    out = sys.stdout
    for text, vector in zip(texts, vectors):
        out.write(json.dumps({"text": text, "embedding": [round(float(x), 7) for x in vector]}, ensure_ascii=False))
        out.write("\n")
    return 0
