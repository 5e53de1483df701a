"""Encode throughput and cold start: SSEEncoder vs sentence-transformers vs model2vec.

All three run the same embedding matrix and the same tokenizer (the bundled model's unless
``--model`` says otherwise) on Japanese sentences from the committed dev set. The
sentence-transformers and model2vec models hold the raw embedding rows (they have no DyT
step), which is what users of StaticEmbedding models such as static-embedding-japanese run.

Usage: python benchmarks/encode_speed.py [--model PATH] [--repeats 5]
Prints a markdown table and writes it to docs/benchmarks.md (section "encode_speed").
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import machine_line, markdown_table, write_section

ROOT = Path(__file__).resolve().parent.parent
DEV_CORPUS = ROOT / "tests" / "data" / "tatoeba_ja_dev" / "corpus.jsonl"


def load_sentences() -> list[str]:
    with open(DEV_CORPUS, encoding="utf-8") as handle:
        return [json.loads(line)["text"] for line in handle if line.strip()]


def median_rate(run, count: int, repeats: int) -> float:
    run()  # warm-up: first-call allocations and lazy initialisation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return count / statistics.median(times)


COLD_START = {
    "SSEEncoder (4-bit)": "from sse_integrations import SSEEncoder\nm = SSEEncoder.from_pretrained({sse!r})\nm.encode(['東京の天気を教えて'])",
    "model2vec StaticModel": "from model2vec import StaticModel\nm = StaticModel.from_pretrained({m2v!r})\nm.encode(['東京の天気を教えて'])",
    "sentence-transformers StaticEmbedding": "from sentence_transformers import SentenceTransformer\nm = SentenceTransformer({st!r}, device='cpu')\nm.encode(['東京の天気を教えて'])",
}

# Peak RSS from VmHWM: ru_maxrss would carry over the parent's high-water mark through fork+exec.
CHILD = """
import time
start = time.perf_counter()
{body}
elapsed = time.perf_counter() - start
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(elapsed, peak_kb / 1024)
"""


def cold_start(body: str, repeats: int) -> tuple[float, float, float]:
    """Median (in-process seconds, whole-process seconds, peak RSS MB) over fresh processes."""
    inner, outer, rss = [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", CHILD.format(body=body)], capture_output=True, text=True, check=True
        )
        outer.append(time.perf_counter() - start)
        seconds, peak = out.stdout.split()
        inner.append(float(seconds))
        rss.append(float(peak))
    return statistics.median(inner), statistics.median(outer), statistics.median(rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="SSE model folder (default: the bundled model)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    args = parser.parse_args()

    from model2vec import StaticModel
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding

    from sse_integrations import SSEEncoder

    encoder = SSEEncoder.from_pretrained(args.model)
    sentences = load_sentences()
    short = (sentences * (20_000 // len(sentences) + 1))[:20_000]
    docs = [" ".join(sentences[i : i + 8]) for i in range(0, len(sentences) - 8, 8)]
    docs = (docs * (4_000 // len(docs) + 1))[:4_000]
    tokenizer = encoder.tokenizer
    embedding = encoder.weights.embedding

    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        st_model = SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_weights=embedding)], device="cpu")
        st_model.save(str(work / "st"))
        m2v_model = StaticModel(vectors=embedding, tokenizer=tokenizer, normalize=True)
        m2v_model.save_pretrained(str(work / "m2v"))
        sse_dir = work / "sse"
        encoder.save_pretrained(sse_dir, quantize="q4")

        paths = {
            "tokenizer encode_batch_fast only (floor)": lambda texts: tokenizer.encode_batch_fast(
                texts, add_special_tokens=False
            ),
            "SSEEncoder.encode": lambda texts: encoder.encode(texts),
            "model2vec StaticModel.encode": lambda texts: m2v_model.encode(texts, use_multiprocessing=False),
            "sentence-transformers, batch 1024": lambda texts: st_model.encode(texts, batch_size=1024),
            "sentence-transformers, default batch 32": lambda texts: st_model.encode(texts),
        }
        rows, rates = [], {}
        for name, run in paths.items():
            rates[name] = (
                median_rate(lambda run=run: run(short), len(short), args.repeats),
                median_rate(lambda run=run: run(docs), len(docs), args.repeats),
            )
            print(f"{name}: {rates[name][0]:,.0f} sentences/s, {rates[name][1]:,.0f} docs/s", flush=True)
        ours = rates["SSEEncoder.encode"]
        for name, (sentence_rate, doc_rate) in rates.items():
            rows.append(
                [
                    name,
                    f"{sentence_rate:,.0f}",
                    f"{doc_rate:,.0f}",
                    f"{ours[0] / sentence_rate:.2f}x",
                    f"{ours[1] / doc_rate:.2f}x",
                ]
            )

        cold_rows = []
        for name, template in COLD_START.items():
            body = template.format(sse=str(sse_dir), m2v=str(work / "m2v"), st=str(work / "st"))
            inner, outer, rss = cold_start(body, args.repeats)
            cold_rows.append([name, f"{inner:.3f}", f"{outer:.3f}", f"{rss:.0f}"])
            print(
                f"cold start {name}: {inner:.3f} s in process, {outer:.3f} s whole process, {rss:.0f} MB peak",
                flush=True,
            )

    source = "the bundled model" if args.model is None else f"`{args.model}`"
    markdown = "\n\n".join(
        [
            "## Encode throughput and cold start (`benchmarks/encode_speed.py`)",
            f"Same {encoder.vocab_size:,} x {encoder.full_dim} weights and tokenizer ({source}) in every row; "
            f"{len(short):,} Japanese sentences and {len(docs):,} eight-sentence documents from the dev set; "
            f"medians of {args.repeats} runs. {machine_line()}",
            markdown_table(
                [
                    "path",
                    "sentences/s",
                    "8-sentence docs/s",
                    "SSEEncoder speed-up (sentences)",
                    "SSEEncoder speed-up (docs)",
                ],
                rows,
            ),
            "Cold start: a new Python process imports the library, loads the model from disk and encodes one query "
            "(in-process time from before the import; whole-process time includes interpreter start-up).",
            markdown_table(
                ["library", "import + load + first query (s)", "whole process (s)", "peak RSS (MB)"], cold_rows
            ),
        ]
    )
    print("\n" + markdown)
    if not args.no_write:
        print(f"\nwritten to {write_section('encode_speed', markdown)}")


if __name__ == "__main__":
    main()
