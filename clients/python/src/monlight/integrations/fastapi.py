"""FastAPI / Starlette integration: request metrics, unhandled-exception reports, wiring.

Needs the ``fastapi`` extra: ``pip install "monlight[fastapi]"``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any, TypedDict

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._common import logger
from .._errors import ErrorClient
from .._metrics import MetricsClient

__all__ = [
    "MonlightMiddleware",
    "MonlightExceptionHandler",
    "MonlightClients",
    "setup_monlight",
]

REQUESTS_TOTAL = "http_requests_total"
REQUEST_DURATION = "http_request_duration_seconds"


class MonlightMiddleware:
    """Pure ASGI middleware: per HTTP request, counter ``http_requests_total`` and
    histogram ``http_request_duration_seconds`` (seconds) labelled ``method``,
    ``endpoint`` (the route template, e.g. ``/items/{item_id}``, or the raw path when no
    route matched) and ``status`` (a string; ``"500"`` when the app raised).

    The duration runs until the app returns, i.e. until a streaming response's last
    chunk was sent. Recording only appends to the metrics client's buffer.
    """

    def __init__(self, app: ASGIApp, metrics_client: MetricsClient) -> None:
        self.app = app
        self.metrics_client = metrics_client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        root_path: str = scope.get("root_path", "")
        status: int | None = None

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        label = "500"
        try:
            await self.app(scope, receive, send_wrapper)
            label = str(status) if status is not None else "500"
        except Exception:
            label = "500"
            raise
        except BaseException:
            # Cancelled (the client went away): not a server error.
            label = str(status) if status is not None else "499"
            raise
        finally:
            self._record(scope, root_path, scope.get("method", ""), label, start)

    def _record(self, scope: Scope, root_path: str, method: str, status: str, start: float) -> None:
        try:
            duration = time.perf_counter() - start
            labels = {"method": method, "endpoint": _endpoint(scope, root_path), "status": status}
            self.metrics_client.counter(REQUESTS_TOTAL, labels)
            self.metrics_client.histogram(REQUEST_DURATION, duration, labels)
        except Exception as err:  # noqa: BLE001 - never break a request over metrics
            logger.warning("monlight: request metrics not recorded: %r", err)


def _endpoint(scope: Scope, original_root_path: str) -> str:
    """The matched route's template (with any mount prefix), else the raw path."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) if route is not None else None
    if isinstance(template, str) and template:
        root_path = scope.get("root_path", "")
        prefix = ""
        if isinstance(root_path, str) and root_path.startswith(original_root_path):
            prefix = root_path[len(original_root_path) :]
        return prefix + template
    path = scope.get("path", "")
    return path if isinstance(path, str) else ""


async def MonlightExceptionHandler(request: Request, exc: Exception) -> Response:  # noqa: N802
    """Handler for unhandled exceptions (register it for ``Exception``): logs the
    exception, reports it in the background with the request's URL, method and filtered
    headers through ``app.state.monlight_error_client``, and answers
    ``500 {"detail": "Internal server error"}``. FastAPI's own ``HTTPException`` and
    validation handlers are more specific and keep answering as before."""
    try:
        logger.error(
            "Unhandled exception in %s %s", request.method, request.url.path, exc_info=exc
        )
        client = getattr(request.app.state, "monlight_error_client", None)
        if isinstance(client, ErrorClient):
            client.capture(
                exc,
                {
                    "request_url": str(request.url),
                    "request_method": request.method,
                    "request_headers": request.headers,
                },
            )
    except Exception as err:  # noqa: BLE001
        logger.warning("monlight: could not report an unhandled exception: %r", err)
    return JSONResponse({"detail": "Internal server error"}, status_code=500)


class MonlightClients(TypedDict):
    error_client: ErrorClient | None
    metrics_client: MetricsClient | None


def setup_monlight(
    app: FastAPI,
    *,
    error_tracker_url: str | None = None,
    metrics_collector_url: str | None = None,
    api_key: str,
    project: str = "default",
    environment: str = "prod",
    flush_interval: float = 10.0,
    timeout: float = 5.0,
    excluded_headers: Iterable[str] | None = None,
) -> MonlightClients:
    """Wire Monlight into `app` with one call (before the app starts).

    With ``error_tracker_url``: an :class:`ErrorClient` on
    ``app.state.monlight_error_client`` and :func:`MonlightExceptionHandler` for
    unhandled exceptions. With ``metrics_collector_url``: a :class:`MetricsClient`
    (flusher started now) and :class:`MonlightMiddleware`. On the app's shutdown
    (lifespan, which also runs the older ``on_event("shutdown")`` handlers) the metrics
    client flushes its last points and the clients close.
    """
    error_client: ErrorClient | None = None
    metrics_client: MetricsClient | None = None
    if error_tracker_url:
        error_client = ErrorClient(
            error_tracker_url,
            api_key,
            project=project,
            environment=environment,
            timeout=timeout,
            excluded_headers=excluded_headers,
        )
        app.state.monlight_error_client = error_client
        app.add_exception_handler(Exception, MonlightExceptionHandler)
    if metrics_collector_url:
        metrics_client = MetricsClient(
            metrics_collector_url,
            api_key,
            flush_interval=flush_interval,
            timeout=timeout,
            project=project,
        )
        app.state.monlight_metrics_client = metrics_client
        app.add_middleware(MonlightMiddleware, metrics_client=metrics_client)
        metrics_client.start()
    if error_client is not None or metrics_client is not None:
        _shutdown_on_lifespan_end(app, error_client, metrics_client)
    return {"error_client": error_client, "metrics_client": metrics_client}


def _shutdown_on_lifespan_end(
    app: FastAPI, error_client: ErrorClient | None, metrics_client: MetricsClient | None
) -> None:
    # Wrapping the router's lifespan context covers both styles: an app given
    # `lifespan=` and an app using on_startup/on_shutdown (whose handlers the default
    # lifespan runs). Our shutdown runs after the app's own.
    original = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(inner_app: Any) -> AsyncIterator[Any]:
        try:
            async with original(inner_app) as state:
                yield state
        finally:
            await _shutdown_clients(error_client, metrics_client)

    app.router.lifespan_context = lifespan


async def _shutdown_clients(
    error_client: ErrorClient | None, metrics_client: MetricsClient | None
) -> None:
    try:
        if metrics_client is not None:
            await asyncio.to_thread(metrics_client.shutdown)
        if error_client is not None:
            await error_client.aclose()
            await asyncio.to_thread(error_client.close)
    except Exception as err:  # noqa: BLE001
        logger.warning("monlight: shutdown failed: %r", err)
