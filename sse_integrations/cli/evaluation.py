"""``sse-integrations eval``: the model cards' retrieval metrics on BEIR folders, printed as markdown."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..search_mode import SearchMode
from ._options import CommandOptions, FusionChoice, add_fusion_options, add_model_option

if TYPE_CHECKING:
    from ..encoder import SSEEncoder
    from ..evaluation import BEIRDataset, EvalResult


@dataclass(frozen=True)
class EvalOptions(FusionChoice, CommandOptions):
    data: list[str]
    dims: list[int] | None
    two_stage: bool
    modes: list[SearchMode | str]
    coarse_dim: int
    prefetch_limit: int | None
    split: str
    strict: bool
    batch_size: int
    json_path: str | None
    no_progress: bool
    passages: bool

    @property
    def search_modes(self) -> list[SearchMode]:
        """Qdrant modes to evaluate, in order, once each (``--two-stage`` is ``--mode dense``)."""
        dense = [SearchMode.DENSE] if self.two_stage else []
        return list(dict.fromkeys(dense + [SearchMode(mode) for mode in self.modes]))


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def add_parsers(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "eval", help="retrieval metrics of the model cards on BEIR folders, per Matryoshka dim"
    )
    parser.add_argument("data", nargs="+", metavar="DATA", help="BEIR folder(s): corpus.jsonl, queries.jsonl, qrels/")
    add_model_option(parser)
    dims_help = "comma-separated Matryoshka dims, e.g. 32,64,128,256,512 (default: all)"
    parser.add_argument("--dims", type=_int_list, default=None, help=dims_help)
    parser.add_argument("--two-stage", action="store_true", help="also evaluate two-stage Qdrant search")
    parser.add_argument(
        "--mode",
        dest="modes",
        action="append",
        choices=[mode.value for mode in SearchMode],
        default=[],
        help="also evaluate this Qdrant search mode (repeatable; dense = --two-stage)",
    )
    add_fusion_options(parser)
    parser.add_argument("--coarse-dim", type=int, default=64, help="first-stage prefix for --two-stage")
    prefetch_help = "first-stage candidates for --two-stage (default: what a default search(limit=10) rescans)"
    parser.add_argument("--prefetch-limit", type=int, default=None, help=prefetch_help)
    parser.add_argument("--split", default="test", help="qrels/<split>.tsv to use (default: test)")
    parser.add_argument("--strict", action="store_true", help="fail on qrels that point at unknown ids")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--json", dest="json_path", default=None, help="also write every result to this JSON file")
    parser.add_argument(
        "--passages",
        action="store_true",
        help="evaluate each Qdrant mode a second time with the passage stage (a document scored by its best passage too)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(run=run_eval, options=EvalOptions)


def _load_datasets(options: EvalOptions) -> list[BEIRDataset]:
    """Every BEIR folder, with the loader's warnings printed on stderr."""
    from ..evaluation import load_beir

    datasets = []
    for folder in options.data:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            datasets.append(load_beir(folder, options.split, strict=options.strict))
        for warning in caught:
            print(f"warning: {warning.message}", file=sys.stderr)
    return datasets


def _evaluate(
    options: EvalOptions, encoder: SSEEncoder, datasets: list[BEIRDataset], dims: list[int]
) -> dict[str, list[EvalResult]]:
    """Results per variant (each dim, then each Qdrant mode), one per dataset, with a progress bar."""
    from tqdm.auto import tqdm

    from ..evaluation import evaluate_encoder, evaluate_two_stage

    by_variant: dict[str, list[EvalResult]] = {}
    modes = options.search_modes
    # Sparse search never reads the passages: it runs once.
    runs = [
        (mode, passages)
        for mode in modes
        for passages in (False, True)
        if not passages or (options.passages and mode != "sparse")
    ]
    steps = len(datasets) * (1 + len(dims) + len(runs))
    with tqdm(total=steps, desc="eval", unit="step", file=sys.stderr, disable=options.no_progress) as bar:
        for dataset in datasets:
            bar.set_postfix_str(f"{dataset.name} encode")

            def step(label: str, name: str = dataset.name) -> None:
                bar.set_postfix_str(f"{name} {label}")
                bar.update()

            for result in evaluate_encoder(
                encoder, dataset, dims, batch_size=options.batch_size, on_step=step
            ).values():
                by_variant.setdefault(result.variant, []).append(result)
            for mode, passages in runs:
                bar.set_postfix_str(f"{dataset.name} {mode}" + (" + passages" if passages else ""))
                result = evaluate_two_stage(
                    encoder,
                    dataset,
                    coarse_dim=options.coarse_dim,
                    prefetch_limit=options.prefetch_limit,
                    batch_size=options.batch_size,
                    mode=mode,
                    index_options={
                        **(options.fusion_keywords() if mode == "hybrid" else {}),
                        **({"passages": True} if passages else {}),
                    },
                )
                by_variant.setdefault(result.variant, []).append(result)
                bar.update()
    return by_variant


def run_eval(options: EvalOptions) -> int:
    """Markdown tables on stdout, progress and warnings on stderr, every result in ``--json``."""
    from ..evaluation import METRIC_NAMES, NDCG_AT_K, markdown_table, mean_metrics, summary_table

    encoder = options.load_encoder()
    dims = options.dims if options.dims is not None else list(encoder.matryoshka_dims)
    datasets = _load_datasets(options)
    by_variant = _evaluate(options, encoder, datasets, dims)

    print(f"# Retrieval evaluation: {encoder!r}, split {options.split!r}\n")
    for variant, results in by_variant.items():
        print(f"## {variant}\n\n{markdown_table(results)}\n")
    print(f"## NDCG@10 by variant\n\n{summary_table(by_variant, f'cosine_ndcg@{NDCG_AT_K}')}")

    if options.json_path:
        payload = {
            "model": options.model,
            "encoder": repr(encoder),
            "split": options.split,
            "metric_names": list(METRIC_NAMES),
            "results": [r.to_dict() for results in by_variant.values() for r in results],
            "mean": {v: mean_metrics(rs) for v, rs in by_variant.items()} if len(datasets) > 1 else {},
        }
        Path(options.json_path).write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"\nwrote {options.json_path}", file=sys.stderr)
    return 0
