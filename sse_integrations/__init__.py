"""Stable Static Embedding (SSE) models for RAG stacks.

Importing the package never imports a framework (nor torch): adapters live in their own
modules (``sse_integrations.langchain``, ``.llama_index``, ``.chroma``, ``.qdrant``).
"""

from .encoder import SSEEncoder
from .formats import ModelFormatError, SSEWeights
from .matryoshka import MATRYOSHKA_DIMS

__version__ = "0.1.0"

__all__ = ["MATRYOSHKA_DIMS", "ModelFormatError", "SSEEncoder", "SSEWeights", "__version__"]
