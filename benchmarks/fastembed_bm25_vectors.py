"""fastembed's BM25 sparse vectors of the texts in a JSON file, written as JSON.

Runs in a separate environment that has fastembed (``pip install fastembed`` there: it pins
huggingface-hub below 2, which this project's environment is past). The model ``Qdrant/bm25``
is on the Hugging Face hub, which is out of reach here; its only files are stopword lists, so
``--model-dir`` may name an empty folder: fastembed's own BM25 code (its tokenizer, Snowball
stemmer, k=1.2, b=0.75, avg_len=256) then runs without stopwords.

Input: ``{"documents": [text, ...], "queries": [text, ...]}``; output: the same keys, each a list
of ``[indices, values]`` (documents by ``embed``, queries by ``query_embed``).

Usage (benchmarks/anchor_stores.py runs it):
  FASTEMBED_PYTHON benchmarks/fastembed_bm25_vectors.py TEXTS.json OUT.json [--model-dir DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("texts", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--model-dir", default=None, help="a local Qdrant/bm25 folder (may be empty)")
    args = parser.parse_args()
    from fastembed import SparseTextEmbedding

    options = {"specific_model_path": args.model_dir} if args.model_dir else {}
    model = SparseTextEmbedding("Qdrant/bm25", **options)
    texts = json.loads(args.texts.read_text(encoding="utf-8"))
    out = {
        "documents": [[v.indices.tolist(), v.values.tolist()] for v in model.embed(texts["documents"])],
        "queries": [[v.indices.tolist(), v.values.tolist()] for v in model.query_embed(texts["queries"])],
    }
    args.out.write_text(json.dumps(out), encoding="utf-8")


if __name__ == "__main__":
    main()
