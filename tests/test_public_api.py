"""The public names stay importable from the paths they had before the layout changed (issue 33)."""

from __future__ import annotations

import importlib

import pytest

PUBLIC_NAMES = {
    "sse_integrations": ["MATRYOSHKA_DIMS", "ModelFormatError", "SSEEncoder", "SSEWeights", "__version__"],
    "sse_integrations.langchain": [
        "MatryoshkaQdrantRetriever",
        "MatryoshkaQdrantVectorStore",
        "RetrievalMode",
        "SSEEmbeddings",
        "dict_filter_to_qdrant",
    ],
    "sse_integrations.llama_index": [
        "MatryoshkaQdrantRetriever",
        "MatryoshkaQdrantVectorStore",
        "SSEEmbedding",
        "metadata_filters_to_qdrant",
    ],
    "sse_integrations.qdrant": [
        "AsyncMatryoshkaIndex",
        "COARSE_NAME",
        "CollectionMismatchError",
        "CorruptCollectionError",
        "DEFAULT_BATCH_SIZE",
        "DEFAULT_COARSE_DIM",
        "DEFAULT_FUSION_FACTOR",
        "DEFAULT_PREFETCH_FACTOR",
        "DenseStage",
        "DocId",
        "Document",
        "Execution",
        "FULL_NAME",
        "Fusion",
        "ID_KEY",
        "ID_NAMESPACE",
        "IndexOptions",
        "IndexingError",
        "MODEL_METADATA_KEY",
        "MatryoshkaIndex",
        "ModelMismatchError",
        "PASSAGES_METADATA_KEY",
        "PASSAGES_NAME",
        "PassageStage",
        "QuantizationOption",
        "SPARSE_METADATA_KEY",
        "SPARSE_NAME",
        "SearchMode",
        "TEXT_KEY",
        "TEXT_SUFFIXES",
        "build_points",
        "encode_stages",
        "layout_differences",
        "make_stages",
        "model_record",
        "passage_rescore_query",
        "prefetch_limits",
        "read_documents",
        "stages_from_collection",
        "to_point_id",
        "two_stage_query",
        "vectors_config",
    ],
    "sse_integrations.chroma": [
        "CONFIG_KEYS",
        "SSEEmbeddingFunction",
        "get_or_create_collection",
        "model_fingerprint",
        "update_embedding_function",
    ],
    "sse_integrations.evaluation": [
        "ACCURACY_AT_K",
        "BEIRDataset",
        "BEIRFormatError",
        "DEFAULT_SEARCH_LIMIT",
        "EvalResult",
        "MAP_AT_K",
        "MAX_K",
        "METRIC_NAMES",
        "MRR_AT_K",
        "NDCG_AT_K",
        "PRECISION_RECALL_AT_K",
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
    ],
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC_NAMES))
def test_public_names_import_from_their_paths(module_name):
    module = importlib.import_module(module_name)
    missing = [name for name in PUBLIC_NAMES[module_name] if not hasattr(module, name)]
    assert not missing, f"{module_name} lost {missing}"
    assert set(PUBLIC_NAMES[module_name]) <= set(module.__all__)
