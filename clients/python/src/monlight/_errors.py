"""ErrorClient: exception reports to the Monlight error-tracker."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Mapping
from typing import Any, TypedDict

import httpx

from ._common import cut, filter_headers, format_traceback, logger

# The error-tracker's field limits (characters); a longer value would get the whole
# report refused, so the client cuts it instead.
_LIMITS = {
    "project": 100,
    "exception_type": 200,
    "environment": 20,
    "request_url": 2000,
    "request_method": 10,
    "user_id": 200,
}
_MAX_MESSAGE = 64 * 1024
_MAX_TRACEBACK = 128 * 1024


class RequestContext(TypedDict, total=False):
    """What is known about the request an exception happened in (every key optional)."""

    request_url: str
    request_method: str
    request_headers: Mapping[str, str]
    user_id: Any
    extra: Any


class ErrorClient:
    """Posts exception reports to ``<base_url>/api/errors``.

    ``report_error`` (async) reuses one ``httpx.AsyncClient``, ``report_error_sync`` one
    ``httpx.Client``. Neither ever raises: a failure is logged as a warning on the
    ``monlight`` logger. ``capture(exc, ...)`` reports in the background (a task on the
    running event loop, or a daemon thread when there is none) and returns at once; at
    most ``MAX_PENDING`` such reports are in flight, beyond that they are dropped and
    counted in ``dropped`` (a burst against a stalled error-tracker stays bounded).
    """

    MAX_PENDING = 100

    def __init__(
        self,
        base_url: str,
        api_key: str,
        project: str = "default",
        environment: str = "prod",
        timeout: float = 5.0,
        excluded_headers: Iterable[str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/api/errors"
        self.api_key = api_key
        self.project = project
        self.environment = environment
        self.timeout = timeout
        self.excluded_headers: frozenset[str] = frozenset(h.lower() for h in excluded_headers or ())
        self._sync_client: httpx.Client | None = None
        self._async_client: httpx.AsyncClient | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._tasks: set[asyncio.Task[bool]] = set()
        self._threads = threading.BoundedSemaphore(self.MAX_PENDING)
        #: Background reports dropped because `MAX_PENDING` were already in flight.
        self.dropped = 0

    # -- payload ---------------------------------------------------------------------
    def build_payload(
        self, exc: BaseException, request_context: RequestContext | Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The JSON body for one report (headers filtered, long fields cut)."""
        payload: dict[str, Any] = {
            "project": cut(self.project, _LIMITS["project"]),
            "environment": cut(self.environment, _LIMITS["environment"]),
            "exception_type": cut(type(exc).__qualname__, _LIMITS["exception_type"]),
            "message": cut(_safe_str(exc), _MAX_MESSAGE),
            "traceback": cut(format_traceback(exc), _MAX_TRACEBACK),
        }
        ctx = request_context or {}
        if ctx.get("request_url") is not None:
            payload["request_url"] = cut(str(ctx["request_url"]), _LIMITS["request_url"])
        if ctx.get("request_method") is not None:
            payload["request_method"] = cut(str(ctx["request_method"]), _LIMITS["request_method"])
        if ctx.get("request_headers") is not None:
            payload["request_headers"] = filter_headers(
                ctx["request_headers"], self.excluded_headers
            )
        if ctx.get("user_id") is not None:
            payload["user_id"] = cut(str(ctx["user_id"]), _LIMITS["user_id"])
        if ctx.get("extra") is not None:
            payload["extra"] = ctx["extra"]
        return payload

    def _headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}

    # -- async -----------------------------------------------------------------------
    def _get_async_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        # An AsyncClient's connections belong to one event loop: a new loop gets a new client.
        if self._async_client is None or self._async_loop is not loop:
            self._async_client = httpx.AsyncClient(timeout=self.timeout)
            self._async_loop = loop
        return self._async_client

    async def report_error(
        self, exc: BaseException, request_context: RequestContext | Mapping[str, Any] | None = None
    ) -> bool:
        """Report `exc`; True when the error-tracker accepted it. Never raises."""
        try:
            payload = self.build_payload(exc, request_context)
            client = self._get_async_client()
            response = await client.post(self.url, json=payload, headers=self._headers())
            return self._check(response)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001 - telemetry must never break the host
            logger.warning("monlight: could not report error to %s: %r", self.url, err)
            return False

    def capture(
        self, exc: BaseException, request_context: RequestContext | Mapping[str, Any] | None = None
    ) -> None:
        """Report `exc` in the background and return at once (fire and forget)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        try:
            if loop is not None:
                if len(self._tasks) >= self.MAX_PENDING:
                    self._drop()
                    return
                task = loop.create_task(self.report_error(exc, request_context))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            else:
                if not self._threads.acquire(blocking=False):
                    self._drop()
                    return
                try:
                    threading.Thread(
                        target=self._report_in_thread,
                        args=(exc, request_context),
                        name="monlight-error-report",
                        daemon=True,
                    ).start()
                except BaseException:
                    self._threads.release()
                    raise
        except Exception as err:  # noqa: BLE001
            logger.warning("monlight: could not schedule an error report: %r", err)

    def _report_in_thread(
        self, exc: BaseException, request_context: RequestContext | Mapping[str, Any] | None
    ) -> None:
        try:
            self.report_error_sync(exc, request_context)
        finally:
            self._threads.release()

    def _drop(self) -> None:
        with self._lock:
            self.dropped += 1
            first = self.dropped == 1
        if first:
            logger.warning(
                "monlight: %d error reports already in flight, dropping more", self.MAX_PENDING
            )

    async def wait_pending(self, timeout: float | None = None) -> None:
        """Wait (at most `timeout` seconds) for reports started by `capture` on this loop."""
        tasks = [t for t in self._tasks if not t.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    async def aclose(self) -> None:
        """Close the async client (waits for pending background reports, up to `timeout`)."""
        await self.wait_pending(self.timeout)
        client, self._async_client = self._async_client, None
        if client is not None:
            try:
                await client.aclose()
            except Exception:  # noqa: BLE001
                pass

    # -- sync ------------------------------------------------------------------------
    def report_error_sync(
        self, exc: BaseException, request_context: RequestContext | Mapping[str, Any] | None = None
    ) -> bool:
        """Blocking variant of `report_error` (at most `timeout` seconds). Never raises."""
        try:
            payload = self.build_payload(exc, request_context)
            with self._lock:
                if self._sync_client is None:
                    self._sync_client = httpx.Client(timeout=self.timeout)
                client = self._sync_client
            response = client.post(self.url, json=payload, headers=self._headers())
            return self._check(response)
        except Exception as err:  # noqa: BLE001
            logger.warning("monlight: could not report error to %s: %r", self.url, err)
            return False

    def close(self) -> None:
        """Close the sync client."""
        with self._lock:
            client, self._sync_client = self._sync_client, None
        if client is not None:
            client.close()

    def _check(self, response: httpx.Response) -> bool:
        if response.is_success:
            return True
        logger.warning(
            "monlight: error-tracker answered %s to an error report: %s",
            response.status_code,
            response.text[:200],
        )
        return False


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # noqa: BLE001 - a broken __str__ must not lose the report
        return f"<unprintable {type(exc).__qualname__}>"
