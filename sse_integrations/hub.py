"""Resolve a Hugging Face hub id to a local folder holding just the files an SSE model needs."""

from __future__ import annotations

import os
from pathlib import Path

from .formats import CHECKSUM_FILE, FP32_FILE, MODULES_FILE, Q4_EMBEDDING_FILE, Q4_REST_FILE, TOKENIZER_FILE

# What a hub download fetches: the files of every layout formats.py reads, at the root or one folder
# down (sentence-transformers module folders), and nothing else.
HUB_ALLOW_PATTERNS = [
    pattern
    for name in (MODULES_FILE, TOKENIZER_FILE, FP32_FILE, Q4_REST_FILE, Q4_EMBEDDING_FILE, CHECKSUM_FILE)
    for pattern in (name, f"*/{name}")
]


def looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "~"))


def resolve_hub(
    repo_id: str,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool | None = None,
) -> Path:
    """Download (or find in the cache) only the files an SSE model needs; return the folder.

    ``local_files_only=None`` defers to ``HF_HUB_OFFLINE``, as huggingface_hub itself does.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    kwargs: dict = {
        "repo_id": repo_id,
        "revision": revision,
        "cache_dir": cache_dir,
        "allow_patterns": HUB_ALLOW_PATTERNS,
    }
    if local_files_only is not None:
        kwargs["local_files_only"] = local_files_only
    try:
        return Path(snapshot_download(**kwargs))
    except LocalEntryNotFoundError as error:
        raise FileNotFoundError(
            f"{repo_id}{'@' + revision if revision else ''} is not in the local Hugging Face cache"
            f"{' ' + str(cache_dir) if cache_dir else ''} and the hub could not be used "
            "(offline via HF_HUB_OFFLINE / local_files_only, or unreachable); "
            f"download it once with network access, or pass a local folder. Cause: {error}"
        ) from error
    except HfHubHTTPError as error:
        raise FileNotFoundError(f"could not fetch {repo_id} from the Hugging Face hub: {error}") from error
