"""MetricsClient: buffered counters, histograms and gauges for the metrics-collector."""

from __future__ import annotations

import atexit
import math
import threading
import weakref
from collections import deque
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Union

import httpx

from ._common import cut, logger

LabelValue = Union[str, int, float, bool]

#: Largest batch the collector takes in one POST.
MAX_BATCH = 1000
# The collector's limits: one point over them gets the whole batch refused, so the
# client cuts or drops such a point when it is recorded.
_MAX_NAME = 200
_MAX_LABELS = 20
_MAX_LABEL_KEY = 100
_MAX_LABEL_VALUE = 200
_MAX_PROJECT = 100


class MetricsClient:
    """Buffers metric points and sends them to ``<base_url>/api/metrics``.

    Recording (``counter``, ``histogram``, ``gauge``) only appends to an in-memory buffer
    under a lock: it never does I/O. ``start()`` runs a daemon thread that calls
    ``flush()`` every ``flush_interval`` seconds; ``shutdown()`` stops it and flushes once
    more. The buffer holds at most ``max_buffer`` points: beyond that the oldest are
    dropped and counted in ``dropped``. A failed flush is logged and its points are not
    retried. At interpreter exit the client shuts itself down, so a short script's last
    points are sent.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        flush_interval: float = 10.0,
        timeout: float = 5.0,
        project: str | None = None,
        max_buffer: int = 10000,
    ) -> None:
        if max_buffer < 1:
            raise ValueError("max_buffer must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/api/metrics"
        self.api_key = api_key
        self.flush_interval = flush_interval
        self.timeout = timeout
        self.project = cut(project, _MAX_PROJECT) if project is not None else None
        self.max_buffer = max_buffer
        #: Points dropped because the buffer was full (oldest first).
        self.dropped = 0
        #: Points that were not stored because their POST failed.
        self.failed = 0
        #: Points refused when recorded (non-finite value, bad name or labels).
        self.invalid = 0
        self._buffer: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._client: httpx.Client | None = None
        self._warned_invalid = False
        ref = weakref.ref(self)

        def _at_exit() -> None:
            client = ref()
            if client is not None:
                client.shutdown()

        self._atexit = _at_exit
        atexit.register(_at_exit)

    # -- recording -------------------------------------------------------------------
    def counter(
        self, name: str, labels: Mapping[str, LabelValue] | None = None, value: float = 1
    ) -> None:
        """Add `value` (default 1) to counter `name`."""
        self._record(name, "counter", value, labels)

    def histogram(
        self, name: str, value: float, labels: Mapping[str, LabelValue] | None = None
    ) -> None:
        """Record one observation of histogram `name` (e.g. a duration in seconds)."""
        self._record(name, "histogram", value, labels)

    def gauge(self, name: str, value: float, labels: Mapping[str, LabelValue] | None = None) -> None:
        """Record the current value of gauge `name`."""
        self._record(name, "gauge", value, labels)

    def _record(
        self, name: str, kind: str, value: float, labels: Mapping[str, LabelValue] | None
    ) -> None:
        try:
            point = self._point(name, kind, value, labels)
        except Exception as err:  # noqa: BLE001 - never raise into the host
            point = None
            reason: object = err
        else:
            reason = "invalid name, value or labels"
        if point is None:
            with self._lock:
                self.invalid += 1
                first = not self._warned_invalid
                self._warned_invalid = True
            if first:
                logger.warning("monlight: metric point %r not recorded: %s", name, reason)
            return
        with self._lock:
            if len(self._buffer) >= self.max_buffer:
                self._buffer.popleft()
                self.dropped += 1
            self._buffer.append(point)

    def _point(
        self, name: str, kind: str, value: float, labels: Mapping[str, LabelValue] | None
    ) -> dict[str, Any] | None:
        if not isinstance(name, str) or not 1 <= len(name) <= _MAX_NAME:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        number = float(value)
        if not math.isfinite(number):
            return None
        point: dict[str, Any] = {
            "name": name,
            "type": kind,
            "value": value,
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        }
        if labels:
            if len(labels) > _MAX_LABELS:
                return None
            clean: dict[str, LabelValue] = {}
            for key, label in labels.items():
                if not isinstance(key, str) or not 1 <= len(key) <= _MAX_LABEL_KEY:
                    return None
                if isinstance(label, float) and not math.isfinite(label):
                    return None
                if not isinstance(label, (str, int, float, bool)):
                    label = str(label)
                if isinstance(label, str):
                    label = cut(label, _MAX_LABEL_VALUE)
                clean[key] = label
            point["labels"] = clean
        if self.project is not None:
            point["project"] = self.project
        return point

    @property
    def buffered(self) -> int:
        """Points waiting for the next flush."""
        with self._lock:
            return len(self._buffer)

    # -- sending ---------------------------------------------------------------------
    def flush(self) -> int:
        """Send every buffered point now, in batches of at most 1000. Returns how many
        points the collector accepted. Never raises; failed batches are dropped."""
        with self._flush_lock:
            with self._lock:
                points = list(self._buffer)
                self._buffer.clear()
            sent = 0
            for start in range(0, len(points), MAX_BATCH):
                batch = points[start : start + MAX_BATCH]
                if self._send(batch):
                    sent += len(batch)
                else:
                    with self._lock:
                        self.failed += len(batch)
            return sent

    def _send(self, batch: list[dict[str, Any]]) -> bool:
        try:
            if self._client is None:
                self._client = httpx.Client(timeout=self.timeout)
            response = self._client.post(self.url, json=batch, headers={"X-API-Key": self.api_key})
        except Exception as err:  # noqa: BLE001
            logger.warning(
                "monlight: %d metric points not sent to %s: %r", len(batch), self.url, err
            )
            return False
        if response.is_success:
            return True
        logger.warning(
            "monlight: metrics-collector answered %s, %d points dropped: %s",
            response.status_code,
            len(batch),
            response.text[:200],
        )
        return False

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        """Start the background flusher (a daemon thread). Idempotent."""
        with self._lock:
            if self._thread is not None or self._closed:
                return
            self._thread = threading.Thread(
                target=self._run, name="monlight-metrics-flusher", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval):
            try:
                self.flush()
            except Exception as err:  # noqa: BLE001 - keep the flusher alive
                logger.warning("monlight: metrics flush failed: %r", err)

    def shutdown(self) -> None:
        """Stop the flusher and flush once more. Safe to call twice or without `start()`."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        atexit.unregister(self._atexit)
        self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            # A flush in progress ends within its timeout (per batch).
            thread.join(self.timeout + 1.0)
        self.flush()
        with self._flush_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
