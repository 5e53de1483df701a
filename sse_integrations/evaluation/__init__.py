"""Retrieval evaluation on BEIR-format data, with the metrics of the SSE model cards.

- :mod:`.beir`: loading a BEIR folder, reporting (never dropping) qrels that point at unknown ids;
- :mod:`.metrics`: the model cards' metrics (sentence-transformers' definitions, on numpy), the
  exact cosine ranking they are computed on, and markdown tables of results;
- :mod:`.run`: evaluating embeddings, an encoder at every Matryoshka dim, and the Qdrant
  pipeline (the only part that needs Qdrant, imported when it runs).

Importing this package loads numpy and no framework or database; printing is the CLI's job
(``sse-integrations eval``, :mod:`sse_integrations.cli.evaluation`).
"""

from .beir import BEIRDataset, BEIRFormatError, load_beir
from .metrics import (
    ACCURACY_AT_K,
    MAP_AT_K,
    MAX_K,
    METRIC_NAMES,
    MRR_AT_K,
    NDCG_AT_K,
    PRECISION_RECALL_AT_K,
    EvalResult,
    evaluate_rankings,
    markdown_table,
    mean_metrics,
    query_metrics,
    rank_by_cosine,
    rankings_from_scores,
    summary_table,
)
from .run import DEFAULT_SEARCH_LIMIT, evaluate_embeddings, evaluate_encoder, evaluate_two_stage

__all__ = [
    "ACCURACY_AT_K",
    "DEFAULT_SEARCH_LIMIT",
    "MAP_AT_K",
    "MAX_K",
    "METRIC_NAMES",
    "MRR_AT_K",
    "NDCG_AT_K",
    "PRECISION_RECALL_AT_K",
    "BEIRDataset",
    "BEIRFormatError",
    "EvalResult",
    "evaluate_embeddings",
    "evaluate_encoder",
    "evaluate_rankings",
    "evaluate_two_stage",
    "load_beir",
    "markdown_table",
    "mean_metrics",
    "query_metrics",
    "rank_by_cosine",
    "rankings_from_scores",
    "summary_table",
]
