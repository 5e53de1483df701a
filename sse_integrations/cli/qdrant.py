"""``sse-integrations index``, ``search`` and ``demo``: documents into Qdrant and two-stage search.

The Qdrant package (and qdrant-client) is imported when a command runs, not when the parser
is built, so ``--help`` stays fast and names the extra only when it is needed.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..search_mode import SearchMode
from ._options import CommandOptions, FusionChoice, add_fusion_options, add_model_option

if TYPE_CHECKING:
    from qdrant_client import QdrantClient, models

    from ..documents import Document
    from ..qdrant import MatryoshkaIndex
    from ..qdrant.edge import EdgeClient

SAMPLE_CORPUS = Path(__file__).resolve().parent.parent / "assets" / "sample_corpus" / "corpus.jsonl"
DEMO_QUERIES = [
    "猫を飼っています",
    "明日は雨が降るらしい",
    "駅まで電車で行く",
    "病院で医者に診てもらった",
    "ピアノを習いたい",
    "空港から飛行機に乗る",
]


@dataclass(frozen=True)
class QdrantOptions(CommandOptions):
    """Where the collection lives: a server at ``qdrant_url``, else embedded storage at ``qdrant_path``."""

    collection: str
    qdrant_path: str
    qdrant_url: str | None
    api_key: str | None
    allow_model_change: bool
    tenant: str | None

    @property
    def location(self) -> str:
        return self.qdrant_url or self.qdrant_path

    def open_client(self) -> QdrantClient | EdgeClient:
        """A server client, else the embedded engine (Qdrant Edge) on the folder."""
        if self.qdrant_url:
            from qdrant_client import QdrantClient

            return QdrantClient(url=self.qdrant_url, api_key=self.api_key)
        from ..qdrant.edge import EdgeClient

        return EdgeClient(self.qdrant_path)


@dataclass(frozen=True)
class IndexCommandOptions(QdrantOptions):
    inputs: list[str]
    coarse_dim: int | None
    stages: str | None
    quantization: str
    text_field: str
    id_field: str | None
    lines: bool
    skip_existing: bool
    batch_size: int
    sparse: bool
    passages: bool
    no_progress: bool
    progress: bool
    skip_bad: bool
    tenant_field: str


@dataclass(frozen=True)
class SearchOptions(FusionChoice, QdrantOptions):
    queries: list[str]
    limit: int
    prefetch_limit: int | None
    single_stage: bool
    mode: SearchMode | str
    where: list[str]
    json: bool


@dataclass(frozen=True)
class DemoOptions(CommandOptions):
    queries: list[str]
    limit: int
    show: int
    coarse_dim: int | None
    prefetch_limit: int | None
    repeats: int


# Documents per add_texts of `index --sparse`: as many as start add_texts' encoding helper
# process (DEFAULT_ENCODE_PROCESS_FROM), so chunking keeps its speed-up.
SPARSE_CHUNK = 20_000


# --- parsers -------------------------------------------------------------------------------


def _add_qdrant_options(parser: Any) -> None:
    parser.add_argument("--collection", required=True, help="Qdrant collection name")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--qdrant-path",
        default="qdrant_storage",
        help="embedded Qdrant (Qdrant Edge, in-process) folder; the collection is the shard FOLDER/COLLECTION "
        "(default: ./qdrant_storage)",
    )
    where.add_argument("--qdrant-url", default=None, help="Qdrant server URL, e.g. http://localhost:6333")
    parser.add_argument("--api-key", default=None, help="Qdrant API key (server/cloud)")
    parser.add_argument("--tenant", default=None, help="the tenant written or searched (docs/tenancy.md)")
    add_model_option(parser)
    parser.add_argument(
        "--allow-model-change",
        action="store_true",
        help="accept a collection another model wrote (a deliberate migration; index then records the new model)",
    )


def add_parsers(subparsers: Any) -> None:
    demo = subparsers.add_parser(
        "demo", help="index the bundled Japanese corpus into embedded Qdrant; two-stage vs single-stage search"
    )
    add_model_option(demo)
    demo.add_argument("queries", nargs="*", help="queries to run (default: a few built-in Japanese ones)")
    demo.add_argument("--limit", type=int, default=10, help="hits per query")
    demo.add_argument("--show", type=int, default=3, help="hits to print per query")
    demo.add_argument("--coarse-dim", type=int, default=None, help="first-stage Matryoshka prefix (default: 64)")
    demo.add_argument("--prefetch-limit", type=int, default=None, help="first-stage candidates")
    demo.add_argument("--repeats", type=int, default=5, help="runs per query (the median time is shown)")
    demo.set_defaults(run=run_demo, options=DemoOptions)

    index = subparsers.add_parser(
        "index", help="embed JSONL, .txt/.md files or folders into a Qdrant collection (resumable)"
    )
    index.add_argument("inputs", nargs="+", metavar="INPUT", help=".jsonl files, .txt/.md files, or folders of them")
    _add_qdrant_options(index)
    index.add_argument(
        "--coarse-dim",
        type=int,
        default=None,
        help="first-stage Matryoshka prefix (default: an existing collection's, else 64)",
    )
    index.add_argument("--stages", default=None, help="all stage dims, coarsest first, e.g. 32,128,512")
    index.add_argument(
        "--quantization",
        choices=("binary", "scalar", "none"),
        default="scalar",
        help="quantize the coarse vector for its graph search (default: scalar int8; none keeps float only)",
    )
    index.add_argument("--text-field", default="text", help="JSONL field holding the text")
    index.add_argument("--id-field", default=None, help="JSONL field holding the id (default: id or _id)")
    index.add_argument("--lines", action="store_true", help="one document per line of .txt/.md files")
    index.add_argument(
        "--skip-existing", action="store_true", help="do not re-embed documents whose ids are already in the collection"
    )
    index.add_argument(
        "--batch-size", type=int, default=256, help="documents embedded and upserted per batch (default: 256)"
    )
    index.add_argument("--sparse", action="store_true", help="also store a BM25 sparse vector (for --mode hybrid)")
    index.add_argument(
        "--passages",
        action="store_true",
        help="also store each document's passages, so searches score a document by its best passage too "
        "(long documents; `search` follows the collection)",
    )
    index.add_argument(
        "--skip-bad",
        action="store_true",
        help="leave out files that cannot be read (not UTF-8, bad JSONL), naming each; default: refuse the run",
    )
    index.add_argument("--tenant-field", default="tenant", help="payload field of the tenant (with --tenant)")
    index.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    index.add_argument("--progress", action="store_true", help="draw the progress bar when stderr is no terminal")
    index.set_defaults(run=run_index, options=IndexCommandOptions)

    search = subparsers.add_parser("search", help="two-stage search of a Qdrant collection made by `index`")
    search.add_argument("queries", nargs="+", metavar="QUERY")
    _add_qdrant_options(search)
    search.add_argument("--limit", type=int, default=10, help="hits per query (default: 10)")
    search.add_argument("--prefetch-limit", type=int, default=None, help="first-stage candidates")
    search.add_argument("--single-stage", action="store_true", help="search the full vector only")
    search.add_argument(
        "--mode",
        choices=[mode.value for mode in SearchMode],
        default="dense",
        help="dense two-stage, BM25 sparse, or both fused (sparse/hybrid need `index --sparse`)",
    )
    add_fusion_options(search)
    search.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="payload filter (repeatable; VALUE parsed as JSON when it can be)",
    )
    search.add_argument("--json", action="store_true", help="one JSON line per query")
    search.set_defaults(run=run_search, options=SearchOptions)


# --- index ---------------------------------------------------------------------------------


def _existing_doc_ids(index: MatryoshkaIndex, documents: Sequence[Document], chunk: int = 1000) -> set[str]:
    if not index.exists():
        return set()
    present: set[str] = set()
    for start in range(0, len(documents), chunk):
        part = documents[start : start + chunk]
        point_ids = [index.point_id(d.id) for d in part]  # the tenant's with --tenant
        by_point = {str(point_id): d.id for point_id, d in zip(point_ids, part)}
        records = index.client.retrieve(collection_name=index.collection_name, ids=point_ids, with_payload=False)
        present.update(by_point[str(record.id)] for record in records if str(record.id) in by_point)
    return present


def run_index(options: IndexCommandOptions) -> int:
    """Read documents and upsert them; re-running resumes (ids are deterministic)."""
    from ..documents import read_documents
    from ..qdrant import IndexingError, MatryoshkaIndex

    encoder = options.load_encoder()
    skipped: list[str] | None = [] if options.skip_bad else None
    documents = read_documents(
        options.inputs, text_field=options.text_field, id_field=options.id_field, lines=options.lines, skipped=skipped
    )
    for problem in skipped or ():
        print(f"skipped {problem}", file=sys.stderr)
    client = options.open_client()
    try:
        stages = [int(dim) for dim in options.stages.split(",")] if options.stages else None
        index = MatryoshkaIndex(
            client,
            options.collection,
            encoder,
            coarse_dim=options.coarse_dim,
            stages=stages,
            quantization=None if options.quantization == "none" else options.quantization,
            batch_size=options.batch_size,
            # A bar's carriage returns only make sense on a terminal; files and pipes get none.
            show_progress=not options.no_progress and (options.progress or sys.stderr.isatty()),
            sparse=options.sparse,
            passages=options.passages,
            allow_model_change=options.allow_model_change,
            tenant_field=options.tenant_field if options.tenant else None,
            tenant=options.tenant,
        )
        todo = documents
        if options.skip_existing:
            present = _existing_doc_ids(index, documents)
            todo = [d for d in documents if d.id not in present]
            print(f"{len(present)} of {len(documents)} documents already indexed; adding {len(todo)}", file=sys.stderr)
        started = time.perf_counter()
        # With --sparse one add_texts counts the BM25 terms of all it is given before writing any
        # of it; in chunks, writing (so progress and resumability) starts with the first chunk.
        chunk = SPARSE_CHUNK if options.sparse else max(1, len(todo))
        try:
            for first in range(0, len(todo), chunk):
                part = todo[first : first + chunk]
                index.add_texts([d.text for d in part], ids=[d.id for d in part], payloads=[d.payload for d in part])
        except IndexingError as error:
            # Bad input fails the same way on every run; only other failures are worth a retry.
            bad_input = isinstance(error.__cause__, (ValueError, TypeError))
            print(
                f"sse-integrations index: {error}" + ("" if bad_input else "; run the same command again to resume"),
                file=sys.stderr,
            )
            return 2 if bad_input else 1
        _optimize(index, quiet=options.no_progress)
        elapsed = time.perf_counter() - started
        layout = " + ".join(f"{s.name} {s.dim}" for s in index.stages)
        if index.passages is not None:
            layout += f" + {index.passages.name} {index.passages.dim} ({index.passages.cut.describe()})"
        layout += " + sparse BM25" if index.sparse_encoder is not None else ""
        print(
            f"indexed {len(todo)} documents into {options.collection!r} at {options.location} in {elapsed:.2f} s "
            f"({layout}); {f'tenant {options.tenant!r}' if options.tenant else 'the collection'} holds {index.count()} points"
            + (f"; skipped {len(skipped)} unreadable files" if skipped else "")
        )
    finally:
        client.close()
    return 0


def _optimize(index: MatryoshkaIndex, *, quiet: bool) -> None:
    """Build the embedded shard's search indexes once, after the bulk load (a server does it on its own)."""
    if not index.embedded:
        return
    if not quiet:
        print(f"optimizing {index.collection_name!r} (building HNSW, merging segments)...", file=sys.stderr)
    started = time.perf_counter()
    index.optimize()  # also flushes: the folder reopens without replaying the WAL
    if not quiet:
        print(f"optimized in {time.perf_counter() - started:.2f} s", file=sys.stderr)


# --- search --------------------------------------------------------------------------------


def parse_where(conditions: Sequence[str]) -> models.Filter | None:
    """A Qdrant filter from ``--where KEY=VALUE`` conditions (all must hold); VALUE is JSON when it parses."""
    from qdrant_client import models

    must: list[Any] = []
    for condition in conditions or ():
        key, sep, raw = condition.partition("=")
        if not sep or not key:
            raise ValueError(f"--where takes KEY=VALUE, got {condition!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        must.append(models.FieldCondition(key=key, match=models.MatchValue(value=value)))
    return models.Filter(must=must) if must else None


def run_search(options: SearchOptions) -> int:
    """Ranked hits with scores, two-stage unless ``--single-stage``."""
    from ..qdrant import SPARSE_NAME, MatryoshkaIndex, stages_from_collection

    if not options.qdrant_url and not Path(options.qdrant_path).exists():
        # Opening embedded storage creates the folder; a search must not leave one behind.
        raise FileNotFoundError(
            f"no Qdrant storage at {options.qdrant_path}: the folder does not exist; index documents there first (`index --qdrant-path`)"
        )
    encoder = options.load_encoder()
    client = options.open_client()
    try:
        if not client.collection_exists(options.collection):
            raise ValueError(f"collection {options.collection!r} does not exist at {options.location}")
        info = client.get_collection(options.collection)
        stages = stages_from_collection(info)
        has_sparse = SPARSE_NAME in (info.config.params.sparse_vectors or {})
        if options.mode != "dense" and not has_sparse:
            raise ValueError(
                f"--mode {options.mode} needs a collection indexed with --sparse; "
                f"{options.collection!r} has dense vectors only"
            )
        index = MatryoshkaIndex(
            client,
            options.collection,
            encoder,
            stages=stages,
            prefetch_limit=options.prefetch_limit,
            sparse=has_sparse,
            allow_model_change=options.allow_model_change,
            tenant=options.tenant,
            **options.fusion_keywords(),
        )
        results = index.search_batch(
            options.queries,
            limit=options.limit,
            filter=parse_where(options.where),
            two_stage=not options.single_stage,
            mode=options.mode,
        )
        for query, hits in zip(options.queries, results):
            _print_hits(query, hits, index, as_json=options.json)
    finally:
        client.close()
    return 0


def _print_hits(query: str, hits: Sequence[Any], index: MatryoshkaIndex, *, as_json: bool) -> None:
    if as_json:
        print(
            json.dumps(
                {
                    "query": query,
                    "hits": [
                        {
                            "rank": rank,
                            "score": round(hit.score, 6),
                            "id": hit.payload.get(index.id_key),
                            "text": hit.payload.get(index.text_key),
                        }
                        for rank, hit in enumerate(hits, start=1)
                    ],
                },
                ensure_ascii=False,
            )
        )
        return
    print(f"query: {query}")
    for rank, hit in enumerate(hits, start=1):
        snippet = _snippet(hit.payload.get(index.text_key, ""))
        print(f"  {rank:>3}  {hit.score:.4f}  {hit.payload.get(index.id_key)}  {snippet}")


def _snippet(text: str, width: int = 48) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


# --- demo ----------------------------------------------------------------------------------


def run_demo(options: DemoOptions) -> int:
    """Index the bundled corpus into embedded Qdrant, compare two-stage and single-stage search."""
    from ..documents import read_documents
    from ..qdrant import MatryoshkaIndex, prefetch_limits

    encoder = options.load_encoder()
    documents = read_documents([SAMPLE_CORPUS])
    repeats = max(1, options.repeats)
    print(f"model: {encoder.source} ({encoder.layout}, vocab {encoder.vocab_size:,}, {encoder.full_dim} dims)")
    with tempfile.TemporaryDirectory(prefix="sse-demo-") as folder:
        # A folder path: the index runs Qdrant's engine in-process (Qdrant Edge).
        index = MatryoshkaIndex(
            Path(folder) / "qdrant",
            "sample_corpus",
            encoder,
            coarse_dim=options.coarse_dim,
            prefetch_limit=options.prefetch_limit,
            show_progress=False,
        )
        try:
            started = time.perf_counter()
            index.add_texts(
                [d.text for d in documents], ids=[d.id for d in documents], payloads=[d.payload for d in documents]
            )
            index.optimize()
            elapsed = time.perf_counter() - started
            layout = " + ".join(f"{s.name} {s.dim}" for s in index.stages)
            print(
                f"indexed {len(documents)} Japanese documents (Tatoeba, CC-BY 2.0 FR) into embedded Qdrant "
                f"({layout}) in {elapsed:.2f} s"
            )
            candidates = prefetch_limits(len(index.stages), options.limit, index.prefetch_limit, index.prefetch_factor)[
                0
            ]
            print(
                f"search: limit {options.limit}, {index.coarse.dim}-dim prefetch of {candidates}"
                f" candidates, rescoring with {index.full.dim} dims (median of {repeats} runs per query)\n"
            )
            overlaps: list[float] = []
            totals: dict[str, list[float]] = {"two-stage": [], "single-stage": []}
            for query in options.queries or DEMO_QUERIES:
                overlaps.append(_demo_query(index, query, options, repeats, totals))
            two, one = (statistics.median(totals[k]) for k in ("two-stage", "single-stage"))
            print(
                f"median per query: two-stage {two * 1000:.2f} ms, single-stage {one * 1000:.2f} ms; "
                f"mean top-{options.limit} overlap {statistics.mean(overlaps):.2f}"
            )
            print(
                f"(at {len(documents)} documents a full 512-dim scan is already sub-millisecond, so two-stage "
                "saves nothing here; it pays off on large collections: benchmarks/scale.py measures "
                "10k to 1M documents, see docs/scale.md)"
            )
        finally:
            index.close()
    return 0


def _demo_query(
    index: MatryoshkaIndex, query: str, options: DemoOptions, repeats: int, totals: dict[str, list[float]]
) -> float:
    """Time one query both ways and print the hits; returns the share of single-stage hits two-stage found."""
    runs = {}
    for label, two_stage in (("two-stage", True), ("single-stage", False)):
        timings = []
        for _ in range(repeats):
            hits = index.search(query, limit=options.limit, two_stage=two_stage)
            timings.append(dict(index.last_timings))
        steps = {step: statistics.median(t[step] for t in timings) for step in timings[0]}
        total = statistics.median(sum(t.values()) for t in timings)
        runs[label] = (hits, steps, total)
        totals[label].append(total)
    print(f"query: {query}")
    for label, (_, steps, total) in runs.items():
        parts = " | ".join(f"{step} {seconds * 1000:.2f} ms" for step, seconds in steps.items())
        print(f"  {label:<12} {total * 1000:6.2f} ms  ({parts})")
    hits = runs["two-stage"][0]
    for rank, hit in enumerate(hits[: options.show], start=1):
        payload = hit.payload or {}
        print(f"    {rank}. {hit.score:.3f}  {payload[index.id_key]:<14} {_snippet(payload[index.text_key])}")
    single_ids = {hit.id for hit in runs["single-stage"][0]}
    overlap = len({hit.id for hit in hits} & single_ids)
    print(f"    top-{options.limit} shared with single-stage: {overlap}/{len(single_ids)}\n")
    return overlap / max(1, len(single_ids))
