"""MetricsClient: points, bounded buffer, batching, timer, shutdown, atexit."""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
import textwrap
import threading
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from monlight import MetricsClient

from .conftest import CaptureServer, wait_until

URL = "http://metrics.test/api/metrics"


def batches(httpx_mock: HTTPXMock) -> list[list[dict[str, Any]]]:
    return [json.loads(r.content) for r in httpx_mock.get_requests()]


def test_points_have_the_collector_shape(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=URL, method="POST", status_code=202)
    client = MetricsClient("http://metrics.test/", "k3y", project="shop")
    before = datetime.now(timezone.utc)
    client.counter("orders_total", {"plan": "pro"})
    client.counter("bytes_total", value=512)
    client.histogram("latency_seconds", 0.25, {"route": "/x", "ok": True, "n": 3})
    client.gauge("queue_depth", 7)
    assert client.flush() == 4
    [request] = httpx_mock.get_requests()
    assert request.headers["X-API-Key"] == "k3y"
    points = json.loads(request.content)
    assert [(p["name"], p["type"], p["value"]) for p in points] == [
        ("orders_total", "counter", 1),
        ("bytes_total", "counter", 512),
        ("latency_seconds", "histogram", 0.25),
        ("queue_depth", "gauge", 7),
    ]
    assert points[0]["labels"] == {"plan": "pro"}
    assert "labels" not in points[1]
    assert points[2]["labels"] == {"route": "/x", "ok": True, "n": 3}
    assert all(p["project"] == "shop" for p in points)
    stamp = datetime.fromisoformat(points[0]["timestamp"])
    assert stamp.tzinfo is not None and abs((stamp - before).total_seconds()) < 5
    assert client.buffered == 0


def test_no_project_key_without_project(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=URL, method="POST", status_code=202)
    client = MetricsClient("http://metrics.test", "k")
    client.counter("c")
    client.flush()
    assert "project" not in batches(httpx_mock)[0][0]


def test_flush_with_nothing_buffered_sends_nothing(httpx_mock: HTTPXMock) -> None:
    assert MetricsClient("http://metrics.test", "k").flush() == 0
    assert httpx_mock.get_requests() == []


def test_buffer_is_bounded_and_drops_oldest(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=URL, method="POST", status_code=202)
    client = MetricsClient("http://metrics.test", "k", max_buffer=5)
    for i in range(8):
        client.gauge("g", i)
    assert client.buffered == 5
    assert client.dropped == 3
    client.flush()
    assert [p["value"] for p in batches(httpx_mock)[0]] == [3, 4, 5, 6, 7]


def test_batches_of_at_most_1000(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=URL, method="POST", status_code=202, is_reusable=True)
    client = MetricsClient("http://metrics.test", "k")
    for i in range(2500):
        client.counter("c", value=i)
    assert client.flush() == 2500
    sent = batches(httpx_mock)
    assert [len(b) for b in sent] == [1000, 1000, 500]
    assert [p["value"] for b in sent for p in b] == list(range(2500))


def test_exactly_1000_is_one_batch(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=URL, method="POST", status_code=202)
    client = MetricsClient("http://metrics.test", "k")
    for _ in range(1000):
        client.counter("c")
    client.flush()
    assert [len(b) for b in batches(httpx_mock)] == [1000]


def test_failed_flush_drops_the_batch_and_warns(
    httpx_mock: HTTPXMock, caplog: pytest.LogCaptureFixture
) -> None:
    httpx_mock.add_response(url=URL, method="POST", status_code=503)
    httpx_mock.add_exception(httpx.ConnectError("refused"), url=URL)
    client = MetricsClient("http://metrics.test", "k")
    with caplog.at_level(logging.WARNING, logger="monlight"):
        client.counter("c")
        assert client.flush() == 0
        client.counter("c")
        assert client.flush() == 0
    assert client.buffered == 0 and client.failed == 2
    assert "503" in caplog.text and "refused" in caplog.text


def test_points_the_collector_would_refuse_are_not_recorded(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=URL, method="POST", status_code=202)
    client = MetricsClient("http://metrics.test", "k")
    client.histogram("h", math.nan)
    client.gauge("g", math.inf)
    client.counter("", {})
    client.counter("c", {f"k{i}": i for i in range(21)})
    client.histogram("h", "1.5")  # type: ignore[arg-type]
    assert client.invalid == 5 and client.buffered == 0
    client.counter("c", {"path": "x" * 500})
    client.flush()
    assert batches(httpx_mock)[0][0]["labels"]["path"] == "x" * 200


def test_recording_is_thread_safe() -> None:
    client = MetricsClient("http://metrics.test", "k", max_buffer=100_000)

    def work() -> None:
        for _ in range(2000):
            client.counter("c")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert client.buffered == 16_000 and client.dropped == 0
    client._closed = True  # nothing to send in this test


def test_flusher_sends_every_flush_interval(capture_server: CaptureServer) -> None:
    client = MetricsClient(capture_server.url, "k", flush_interval=0.05)
    client.start()
    client.start()  # idempotent: still one flusher
    flushers = [t for t in threading.enumerate() if t.name == "monlight-metrics-flusher"]
    assert len(flushers) == 1 and flushers[0].daemon
    client.counter("first")
    wait_until(lambda: capture_server.posts("/api/metrics"), 5, "the first timed flush")
    client.counter("second")
    wait_until(lambda: len(capture_server.posts("/api/metrics")) >= 2, 5, "a second timed flush")
    names = [p["name"] for b in capture_server.posts("/api/metrics") for p in b]
    assert names == ["first", "second"]
    client.shutdown()
    assert not flushers[0].is_alive()


def test_shutdown_flushes_once_and_is_safe_twice(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=URL, method="POST", status_code=202)
    client = MetricsClient("http://metrics.test", "k", flush_interval=3600)
    client.start()
    client.counter("last")
    client.shutdown()
    client.shutdown()
    assert [[p["name"] for p in b] for b in batches(httpx_mock)] == [["last"]]
    client.start()  # after shutdown: no new flusher
    assert client._thread is not None and not client._thread.is_alive()


def test_shutdown_without_start_flushes(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=URL, method="POST", status_code=202)
    client = MetricsClient("http://metrics.test", "k")
    client.gauge("g", 1)
    client.shutdown()
    client.shutdown()
    assert len(batches(httpx_mock)) == 1


def test_short_script_last_points_sent_at_exit(capture_server: CaptureServer) -> None:
    script = textwrap.dedent(
        f"""
        from monlight import MetricsClient
        m = MetricsClient({capture_server.url!r}, "k", flush_interval=3600)
        m.start()
        m.counter("script_runs_total", {{"script": "nightly"}})
        m.histogram("script_seconds", 1.5)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30)
    [batch] = capture_server.posts("/api/metrics")
    assert [p["name"] for p in batch] == ["script_runs_total", "script_seconds"]


def test_client_without_start_is_flushed_at_exit_too(capture_server: CaptureServer) -> None:
    script = f"from monlight import MetricsClient\nMetricsClient({capture_server.url!r}, 'k').gauge('g', 3)\n"
    # The client is garbage the moment the line ends: atexit holds only a weak reference,
    # so nothing is sent and nothing fails.
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30)
    script = f"from monlight import MetricsClient\nm = MetricsClient({capture_server.url!r}, 'k')\nm.gauge('g', 3)\n"
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30)
    assert [[p["value"] for p in b] for b in capture_server.posts("/api/metrics")] == [[3]]
