"""MonlightHandler: a logging.Handler reporting exceptions to the error-tracker."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from ._errors import ErrorClient

_CONTEXT_ATTRS = ("request_url", "request_method", "request_headers", "user_id")


class MonlightHandler(logging.Handler):
    """Reports records that carry an exception (``logger.exception(...)``, or
    ``exc_info=True``) as errors; other records are ignored.

    ``emit`` only puts the report on a bounded queue: a daemon thread sends it, so
    logging never waits for the network. Request details can ride on the record:
    ``logger.exception("...", extra={"request_url": ..., "request_method": ...,
    "request_headers": ..., "user_id": ...})``. The logged message, the logger name and
    any ``extra={"monlight_extra": {...}}`` go into the report's ``extra``.
    """

    def __init__(
        self,
        client: ErrorClient,
        level: int = logging.ERROR,
        max_queue: int = 1000,
    ) -> None:
        super().__init__(level)
        self.client = client
        #: Reports dropped because the queue was full.
        self.dropped = 0
        self._queue: queue.Queue[tuple[BaseException, dict[str, Any]] | None] = queue.Queue(
            max_queue
        )
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if not record.exc_info or record.exc_info[1] is None:
                return
            if record.name == "monlight" or record.name.startswith("monlight."):
                return  # our own log lines (an integration already reported these)
            exc = record.exc_info[1]
            extra: dict[str, Any] = {"logger": record.name, "log_message": record.getMessage()}
            custom = getattr(record, "monlight_extra", None)
            if isinstance(custom, dict):
                extra.update(custom)
            context: dict[str, Any] = {"extra": extra}
            for attr in _CONTEXT_ATTRS:
                value = getattr(record, attr, None)
                if value is not None:
                    context[attr] = value
            self._ensure_thread()
            try:
                self._queue.put_nowait((exc, context))
            except queue.Full:
                self.dropped += 1
        except Exception:  # noqa: BLE001
            self.handleError(record)

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="monlight-log-handler", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self.client.report_error_sync(*item)
            finally:
                self._queue.task_done()

    def flush(self, timeout: float | None = None) -> None:
        """Wait until queued reports are sent, at most `timeout` seconds (default: the
        client's timeout plus one second)."""
        if self._thread is None:
            return
        wait = self.client.timeout + 1.0 if timeout is None else timeout
        with self._queue.all_tasks_done:
            self._queue.all_tasks_done.wait_for(lambda: self._queue.unfinished_tasks == 0, wait)

    def close(self) -> None:
        """Send what is queued (bounded wait), then stop the sender thread. Called by
        ``logging.shutdown()`` at interpreter exit."""
        try:
            self.flush()
            if self._thread is not None:
                try:
                    self._queue.put_nowait(None)
                except queue.Full:
                    pass
                self._thread = None
        finally:
            super().close()
