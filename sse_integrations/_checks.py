"""Argument checks shared by the core and every adapter, so one mistake reads the same everywhere.

Only the standard library and numpy: the core imports this module too.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np


def as_text_list(texts: Any, *, name: str = "texts", hint: str = "wrap it: encode([text])") -> list[str]:
    """Accept any iterable of str; reject a bare string, non-str items and lone surrogates by index.

    Args:
        texts: what the caller passed.
        name: the argument's name in the messages.
        hint: what to do instead of passing a bare string.
    """
    if isinstance(texts, (str, bytes)):
        kind = "string" if isinstance(texts, str) else "bytes"
        raise TypeError(f"{name} must be a list of strings, got a bare {kind}; {hint}")
    if texts is None or not isinstance(texts, Iterable):
        raise TypeError(f"{name} must be a list of strings, got {type(texts).__name__}")
    items = list(texts)
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"{name}[{index}] must be a str, got {type(item).__name__}: {item!r:.60}")
        # isascii() is O(1) on CPython, so only non-ASCII texts pay for the UTF-8 check.
        if not item.isascii():
            check_unicode(item, f"{name}[{index}]")
    return items


def check_text(text: Any, name: str = "text") -> str:
    """``text`` itself when it is a str, else a TypeError naming what it was."""
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str, got {type(text).__name__}: {text!r:.60}")
    return text


def check_positive_int(value: Any, name: str) -> None:
    """Refuse anything but an int (numpy ints included, bools not) of at least 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def check_unicode(text: str, name: str = "text") -> None:
    """Refuse a str holding a lone surrogate (e.g. ``"\\ud800"``): it is not Unicode text, and
    tokenizers and stores reject it with messages that name neither the text nor the place."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(
            f"{name} holds a lone surrogate {text[error.start]!r} at character {error.start}, which is not "
            "valid Unicode; fix the source, or decode it with errors='replace'"
        ) from None


def check_payload_text(value: Any, name: str) -> None:
    """Refuse a lone surrogate anywhere in a payload (keys, str values, nested dicts and lists), naming its place.

    The engines reject one with a bare ``UnicodeEncodeError`` or a serialisation error that names no key.
    """
    if isinstance(value, str):
        if not value.isascii():
            check_unicode(value, name)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and not key.isascii():
                try:
                    key.encode("utf-8")
                except UnicodeEncodeError:
                    raise ValueError(
                        f"{name} has a key {key!r} that holds a lone surrogate, which is not valid Unicode"
                    ) from None
            if _may_hold_surrogates(item):
                check_payload_text(item, f"{name}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for position, item in enumerate(value):
            if _may_hold_surrogates(item):
                check_payload_text(item, f"{name}[{position}]")


def _may_hold_surrogates(value: Any) -> bool:
    # Skips building a name for every ASCII string and number of a bulk load's payloads.
    return not value.isascii() if isinstance(value, str) else isinstance(value, (Mapping, list, tuple))


def is_async_index(index: object) -> bool:
    """True for an index whose methods are awaited (``AsyncMatryoshkaIndex``), told by its ``search``."""
    return inspect.iscoroutinefunction(getattr(index, "search", None))
