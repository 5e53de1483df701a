"""Which exceptions are a user's mistake or situation (printed as one line, exit 2), and their message.

Anything not recognised here is a bug and keeps its traceback. Third-party exceptions are
recognised by class name so that this module imports no database client.
"""

from __future__ import annotations

from typing import Any

# Raised by qdrant-client (httpx, grpc) when no server answers at the URL.
_CONNECTION_ERRORS = {"ResponseHandlingException", "ConnectError", "ConnectTimeout", "_InactiveRpcError"}


def _chain(error: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def user_error_message(error: Exception, options: Any) -> str | None:
    """The one-line message for ``error``, or None when it is not a user error."""
    url = getattr(options, "qdrant_url", None)
    path = getattr(options, "qdrant_path", None)
    for link in _chain(error):
        names = {cls.__name__ for cls in type(link).__mro__}
        if url and (names & _CONNECTION_ERRORS or isinstance(link, ConnectionError)):
            return f"cannot reach a Qdrant server at {url} ({one_line(str(link)) or type(link).__name__})"
        if path and "FolderInUseError" in names:
            return (
                f"the Qdrant storage {path} is in use by another process; wait for it to finish, or use "
                "a Qdrant server (--qdrant-url) for concurrent access"
            )
    if isinstance(error, (FileNotFoundError, ValueError, TypeError)):
        return one_line(str(error))
    return None
