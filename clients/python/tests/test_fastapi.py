"""FastAPI integration: middleware labels, exception handler, setup_monlight and lifespan."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient
from pytest_httpx import HTTPXMock

from monlight import ErrorClient, MetricsClient
from monlight.integrations.fastapi import (
    MonlightExceptionHandler,
    MonlightMiddleware,
    setup_monlight,
)


def points(client: MetricsClient) -> list[dict[str, Any]]:
    with client._lock:
        return list(client._buffer)


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    @app.get("/missing")
    async def missing() -> None:
        raise HTTPException(status_code=404, detail="Item not found")

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            for i in range(3):
                await asyncio.sleep(0.1)
                yield f"chunk {i}\n".encode()

        return StreamingResponse(body(), media_type="text/plain")

    return app


@pytest.fixture
def metrics() -> Iterator[MetricsClient]:
    client = MetricsClient("http://metrics.test", "k")
    yield client
    client._closed = True  # the buffer is inspected, never sent


def asgi_client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://app.test")


async def test_templated_route_label(metrics: MetricsClient) -> None:
    app = make_app()
    app.add_middleware(MonlightMiddleware, metrics_client=metrics)
    async with asgi_client(app) as client:
        assert (await client.get("/items/42")).json() == {"id": 42}
        await client.get("/items/43")
    counter, hist, counter2, _ = points(metrics)
    labels = {"method": "GET", "endpoint": "/items/{item_id}", "status": "200"}
    assert counter == {**counter, "name": "http_requests_total", "type": "counter", "value": 1}
    assert counter["labels"] == labels and counter2["labels"] == labels
    assert hist["name"] == "http_request_duration_seconds" and hist["type"] == "histogram"
    assert hist["labels"] == labels and 0 < hist["value"] < 1


async def test_unmatched_path_is_the_raw_path(metrics: MetricsClient) -> None:
    app = make_app()
    app.add_middleware(MonlightMiddleware, metrics_client=metrics)
    async with asgi_client(app) as client:
        assert (await client.post("/no/such/page")).status_code == 404
    assert points(metrics)[0]["labels"] == {
        "method": "POST",
        "endpoint": "/no/such/page",
        "status": "404",
    }


async def test_http_exception_and_validation_keep_their_status(metrics: MetricsClient) -> None:
    app = make_app()
    app.add_middleware(MonlightMiddleware, metrics_client=metrics)
    async with asgi_client(app) as client:
        assert (await client.get("/missing")).status_code == 404
        assert (await client.get("/items/not-a-number")).status_code == 422
    assert [(p["labels"]["endpoint"], p["labels"]["status"]) for p in points(metrics)[::2]] == [
        ("/missing", "404"),
        ("/items/{item_id}", "422"),
    ]


async def test_raised_exception_is_status_500(metrics: MetricsClient) -> None:
    app = make_app()
    app.add_middleware(MonlightMiddleware, metrics_client=metrics)
    async with asgi_client(app) as client:
        assert (await client.get("/boom")).status_code == 500
    assert points(metrics)[0]["labels"] == {"method": "GET", "endpoint": "/boom", "status": "500"}


async def test_streaming_response_measured_to_its_end(metrics: MetricsClient) -> None:
    app = make_app()
    app.add_middleware(MonlightMiddleware, metrics_client=metrics)
    async with asgi_client(app) as client:
        response = await client.get("/stream")
    assert response.text == "chunk 0\nchunk 1\nchunk 2\n"
    hist = points(metrics)[1]
    assert hist["labels"] == {"method": "GET", "endpoint": "/stream", "status": "200"}
    assert hist["value"] >= 0.3  # three chunks, 0.1 s apart


async def test_mounted_app_routes_keep_their_prefix(metrics: MetricsClient) -> None:
    app = FastAPI()
    sub = make_app()
    app.mount("/v2", sub)
    app.add_middleware(MonlightMiddleware, metrics_client=metrics)
    async with asgi_client(app) as client:
        assert (await client.get("/v2/items/5")).status_code == 200
    assert points(metrics)[0]["labels"]["endpoint"] == "/v2/items/{item_id}"


async def test_websocket_and_lifespan_scopes_pass_through(metrics: MetricsClient) -> None:
    seen: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    middleware = MonlightMiddleware(inner, metrics)
    await middleware({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    await middleware({"type": "websocket", "path": "/ws"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan", "websocket"] and points(metrics) == []


async def test_exception_handler_answers_500_and_reports_in_background(
    httpx_mock: HTTPXMock,
) -> None:
    httpx_mock.add_response(url="http://errors.test/api/errors", method="POST", status_code=201)
    app = make_app()
    errors = ErrorClient("http://errors.test", "k", project="shop")
    app.state.monlight_error_client = errors
    app.add_exception_handler(Exception, MonlightExceptionHandler)
    async with asgi_client(app) as client:
        response = await client.get(
            "/boom?q=1", headers={"Authorization": "Bearer s", "X-Request-Id": "r1"}
        )
        assert response.status_code == 500
        assert response.json() == {"detail": "Internal server error"}
        # FastAPI's own handlers are untouched, and nothing is reported for them.
        missing = await client.get("/missing")
        assert (missing.status_code, missing.json()) == (404, {"detail": "Item not found"})
        invalid = await client.get("/items/x")
        assert invalid.status_code == 422 and invalid.json()["detail"][0]["loc"] == ["path", "item_id"]
    await errors.wait_pending(5)
    [request] = httpx_mock.get_requests()
    body = json.loads(request.content)
    assert body["exception_type"] == "RuntimeError" and body["message"] == "kaboom"
    assert 'raise RuntimeError("kaboom")' in body["traceback"]
    assert body["request_url"] == "http://app.test/boom?q=1"
    assert body["request_method"] == "GET"
    headers = {k.lower(): v for k, v in body["request_headers"].items()}
    assert "authorization" not in headers and headers["x-request-id"] == "r1"
    await errors.aclose()


def test_setup_monlight_wires_both_and_flushes_on_lifespan_shutdown(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url="http://metrics.test/api/metrics", method="POST", status_code=202)
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, str]]:
        events.append("startup")
        yield {"db": "connected"}
        events.append("shutdown")

    app = FastAPI(lifespan=lifespan)

    @app.get("/state")
    async def state_route(request: Request) -> dict[str, str]:
        return {"db": request.state.db}

    clients = setup_monlight(
        app,
        error_tracker_url="http://errors.test/",
        metrics_collector_url="http://metrics.test",
        api_key="k",
        project="shop",
        flush_interval=3600,
    )
    assert app.state.monlight_error_client is clients["error_client"]
    metrics = clients["metrics_client"]
    assert metrics is not None and metrics._thread is not None and metrics._thread.is_alive()
    with TestClient(app) as client:
        assert events == ["startup"]
        # The app's own lifespan state still reaches its requests.
        assert client.get("/state").json() == {"db": "connected"}
        assert httpx_mock.get_requests() == []
    assert events == ["startup", "shutdown"]
    assert not metrics._thread.is_alive()
    [request] = httpx_mock.get_requests()
    [counter, _] = json.loads(request.content)
    assert counter["name"] == "http_requests_total" and counter["project"] == "shop"


def test_setup_monlight_with_on_event_handlers(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url="http://metrics.test/api/metrics", method="POST", status_code=202)
    events: list[str] = []
    app = FastAPI()
    app.router.on_startup.append(lambda: events.append("startup"))
    app.router.on_shutdown.append(lambda: events.append("shutdown"))

    @app.get("/")
    async def root() -> dict[str, bool]:
        return {"ok": True}

    clients = setup_monlight(app, metrics_collector_url="http://metrics.test", api_key="k")
    assert clients["error_client"] is None
    with TestClient(app) as client:
        assert client.get("/").status_code == 200
    assert events == ["startup", "shutdown"]
    [request] = httpx_mock.get_requests()
    assert json.loads(request.content)[0]["labels"]["endpoint"] == "/"


def test_setup_monlight_errors_only(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url="http://errors.test/api/errors", method="POST", status_code=201)
    app = make_app()
    clients = setup_monlight(app, error_tracker_url="http://errors.test", api_key="k")
    assert clients["metrics_client"] is None
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
        assert response.status_code == 500 and response.json() == {"detail": "Internal server error"}
    # Lifespan shutdown waited for the background report.
    [request] = httpx_mock.get_requests()
    assert json.loads(request.content)["message"] == "kaboom"
