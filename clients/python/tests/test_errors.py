"""ErrorClient: payloads, header filtering, failures swallowed, fire and forget."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time

import httpx
import pytest
from pytest_httpx import HTTPXMock

from monlight import ErrorClient, filter_headers

from .conftest import CaptureServer, wait_until

URL = "http://errors.test/api/errors"


def chained_error() -> RuntimeError:
    try:
        try:
            {}["missing"]
        except KeyError as inner:
            raise RuntimeError("checkout failed") from inner
    except RuntimeError as outer:
        return outer
    raise AssertionError("unreachable")


def sent_json(httpx_mock: HTTPXMock) -> dict[str, object]:
    [request] = httpx_mock.get_requests()
    body: dict[str, object] = json.loads(request.content)
    return body


def test_sync_payload_has_every_field(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=URL, method="POST", status_code=201, json={"status": "created"})
    client = ErrorClient("http://errors.test/", "k3y", project="shop", environment="staging")
    exc = chained_error()
    ok = client.report_error_sync(
        exc,
        {
            "request_url": "http://app/items/1?x=2",
            "request_method": "POST",
            "request_headers": {"Accept": "application/json"},
            "user_id": 42,
            "extra": {"order": 7},
        },
    )
    assert ok is True
    [request] = httpx_mock.get_requests()
    assert request.headers["X-API-Key"] == "k3y"
    body = json.loads(request.content)
    assert body["project"] == "shop"
    assert body["environment"] == "staging"
    assert body["exception_type"] == "RuntimeError"
    assert body["message"] == "checkout failed"
    tb = body["traceback"]
    assert tb.startswith("Traceback (most recent call last):")
    assert "KeyError: 'missing'" in tb
    assert "The above exception was the direct cause of the following exception" in tb
    assert tb.rstrip().endswith("RuntimeError: checkout failed")
    assert 'File "' in tb and "chained_error" in tb
    assert body["request_url"] == "http://app/items/1?x=2"
    assert body["request_method"] == "POST"
    assert body["request_headers"] == {"Accept": "application/json"}
    assert body["user_id"] == "42"
    assert body["extra"] == {"order": 7}
    client.close()


def test_payload_without_context_has_only_required_fields(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=URL, method="POST", status_code=201)
    client = ErrorClient("http://errors.test", "k")
    assert client.report_error_sync(ValueError("bad")) is True
    body = sent_json(httpx_mock)
    assert set(body) == {"project", "environment", "exception_type", "message", "traceback"}
    assert body["project"] == "default" and body["environment"] == "prod"
    # An exception never raised has no frames: the traceback is just its last line.
    assert body["traceback"] == "ValueError: bad\n"


def test_qualified_name_of_nested_exception_class(httpx_mock: HTTPXMock) -> None:
    class Outer:
        class Problem(Exception):
            pass

    httpx_mock.add_response(url=URL, method="POST", status_code=201)
    ErrorClient("http://errors.test", "k").report_error_sync(Outer.Problem("x"))
    assert sent_json(httpx_mock)["exception_type"].endswith("Outer.Problem")  # type: ignore[union-attr]


def test_headers_filtered_case_insensitively_with_excluded_headers(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=URL, method="POST", status_code=201)
    client = ErrorClient("http://errors.test", "k", excluded_headers=["X-Internal-Token"])
    headers = {
        "AUTHORIZATION": "Bearer secret",
        "Cookie": "session=1",
        "set-cookie": "a=b",
        "X-Api-Key": "other",
        "x-internal-token": "t",
        "User-Agent": "curl/8",
        "X-Request-Id": "abc",
    }
    client.report_error_sync(ValueError("x"), {"request_headers": headers})
    assert sent_json(httpx_mock)["request_headers"] == {"User-Agent": "curl/8", "X-Request-Id": "abc"}


def test_filter_headers_accepts_pairs_and_joins_repeats() -> None:
    pairs = [(b"accept", b"a"), (b"accept", b"b"), (b"cookie", b"c"), ("Authorization", "x")]
    assert filter_headers(pairs) == {"accept": "a, b"}
    assert filter_headers(None) == {}


def test_long_fields_are_cut_not_refused(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=URL, method="POST", status_code=201)
    client = ErrorClient("http://errors.test", "k", environment="e" * 50)
    client.report_error_sync(
        ValueError("m" * 70000), {"request_url": "/" + "u" * 3000, "request_method": "PROPFINDXXX"}
    )
    body = sent_json(httpx_mock)
    assert len(body["environment"]) == 20  # type: ignore[arg-type]
    assert len(body["message"]) == 64 * 1024  # type: ignore[arg-type]
    assert len(body["request_url"]) == 2000  # type: ignore[arg-type]
    assert len(body["request_method"]) == 10  # type: ignore[arg-type]


def test_non_2xx_is_a_warning_not_an_exception(
    httpx_mock: HTTPXMock, caplog: pytest.LogCaptureFixture
) -> None:
    httpx_mock.add_response(url=URL, method="POST", status_code=401, json={"detail": "Invalid API key"})
    with caplog.at_level(logging.WARNING, logger="monlight"):
        assert ErrorClient("http://errors.test", "bad").report_error_sync(ValueError("x")) is False
    assert "401" in caplog.text


def test_network_error_is_a_warning_not_an_exception(
    httpx_mock: HTTPXMock, caplog: pytest.LogCaptureFixture
) -> None:
    httpx_mock.add_exception(httpx.ConnectError("refused"), url=URL)
    with caplog.at_level(logging.WARNING, logger="monlight"):
        assert ErrorClient("http://errors.test", "k").report_error_sync(ValueError("x")) is False
    assert "refused" in caplog.text


async def test_async_network_error_is_swallowed(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_exception(httpx.ReadTimeout("slow"), url=URL)
    assert await ErrorClient("http://errors.test", "k").report_error(ValueError("x")) is False


async def test_async_reuses_one_client(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=URL, method="POST", status_code=201, is_reusable=True)
    client = ErrorClient("http://errors.test", "k", project="p")
    assert await client.report_error(ValueError("one")) is True
    first = client._async_client
    assert await client.report_error(ValueError("two")) is True
    assert client._async_client is first and first is not None
    messages = [json.loads(r.content)["message"] for r in httpx_mock.get_requests()]
    assert messages == ["one", "two"]
    await client.aclose()


def test_sync_reuses_one_client(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=URL, method="POST", status_code=201, is_reusable=True)
    client = ErrorClient("http://errors.test", "k")
    client.report_error_sync(ValueError("one"))
    first = client._sync_client
    client.report_error_sync(ValueError("two"))
    assert client._sync_client is first and first is not None
    assert len(httpx_mock.get_requests()) == 2


async def test_capture_returns_before_the_report_is_sent(httpx_mock: HTTPXMock) -> None:
    release = asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(201)

    httpx_mock.add_callback(slow, url=URL)
    client = ErrorClient("http://errors.test", "k")
    started = time.perf_counter()
    client.capture(ValueError("background"))
    assert time.perf_counter() - started < 0.5  # waiting would never end: nothing releases it
    await asyncio.sleep(0)  # let the task start its request
    assert len(client._tasks) == 1
    release.set()
    await client.wait_pending(5)
    assert json.loads(httpx_mock.get_requests()[0].content)["message"] == "background"
    await client.aclose()


def test_capture_without_event_loop_uses_a_thread(capture_server: CaptureServer) -> None:
    client = ErrorClient(capture_server.url, "k")
    client.capture(ValueError("from a thread"))
    [body] = wait_until(lambda: capture_server.posts("/api/errors"), what="the report")
    assert body["message"] == "from a thread"


async def test_capture_is_bounded_against_a_stalled_server(httpx_mock: HTTPXMock) -> None:
    release = asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(201)

    httpx_mock.add_callback(slow, url=URL, is_reusable=True)
    client = ErrorClient("http://errors.test", "k")
    client.MAX_PENDING = 3
    for i in range(5):
        client.capture(ValueError(str(i)))
    assert len(client._tasks) == 3 and client.dropped == 2
    release.set()
    await client.wait_pending(5)
    assert len(httpx_mock.get_requests()) == 3
    await client.aclose()


def test_capture_threads_are_bounded(stalled_server: object) -> None:
    url = stalled_server.url  # type: ignore[attr-defined]
    client = ErrorClient(url, "k", timeout=0.5)
    client.MAX_PENDING = 2
    client._threads = threading.BoundedSemaphore(2)
    for i in range(5):
        client.capture(ValueError(str(i)))
    assert client.dropped == 3
    stalled_server.close()  # type: ignore[attr-defined]
    for _ in range(2):  # both report threads end (and give their slot back)
        assert client._threads.acquire(timeout=5)
