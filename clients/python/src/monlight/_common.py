"""Helpers shared by the clients: header filtering, tracebacks, limits."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable, Mapping
from typing import Any

logger = logging.getLogger("monlight")

#: Headers never sent to the error-tracker (compared case-insensitively).
SENSITIVE_HEADERS: frozenset[str] = frozenset({"authorization", "cookie", "set-cookie", "x-api-key"})


def filter_headers(
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
    excluded: Iterable[str] = (),
) -> dict[str, str]:
    """Return `headers` without the sensitive ones (and `excluded`), case-insensitively.

    Accepts a mapping (a ``dict``, Starlette ``Headers``) or ``(name, value)`` pairs.
    Repeated names are joined with ``", "``.
    """
    if headers is None:
        return {}
    drop = SENSITIVE_HEADERS | {name.lower() for name in excluded}
    items: Iterable[tuple[str, str]]
    if isinstance(headers, Mapping):
        multi = getattr(headers, "multi_items", None)
        items = multi() if callable(multi) else headers.items()
    else:
        items = headers
    out: dict[str, str] = {}
    for name, value in items:
        name_s = _text(name)
        if name_s.lower() in drop:
            continue
        value_s = _text(value)
        out[name_s] = f"{out[name_s]}, {value_s}" if name_s in out else value_s
    return out


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)


def format_traceback(exc: BaseException) -> str:
    """The full formatted traceback, chained causes and contexts included."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def cut(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters (the services count characters)."""
    return text if len(text) <= limit else text[:limit]
