"""A Monlight that accepts connections and never answers adds no latency to the app."""

from __future__ import annotations

import logging
import time

import httpx
from fastapi import FastAPI

from monlight import ErrorClient, MonlightHandler
from monlight.integrations.fastapi import setup_monlight

from .conftest import StalledServer, UvicornThread, wait_until


def timed_requests(base: str, paths: list[str]) -> list[float]:
    times = []
    # No keep-alive: uvicorn closes a connection after an app raised, without saying so.
    limits = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=base, timeout=10, limits=limits) as client:
        for path in paths:
            started = time.perf_counter()
            client.get(path, headers={"Authorization": "Bearer x"})
            times.append(time.perf_counter() - started)
    return times


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError("crash")

    return app


def test_stalled_monlight_adds_no_latency(stalled_server: StalledServer) -> None:
    timeout = 1.0
    paths = ["/items/1", "/crash"] * 10
    # Baseline: the same app without Monlight.
    with UvicornThread(make_app()) as base:
        timed_requests(base, ["/items/0"])  # warm up
        baseline = timed_requests(base, paths)

    app = make_app()
    clients = setup_monlight(
        app,
        error_tracker_url=stalled_server.url,
        metrics_collector_url=stalled_server.url,
        api_key="k",
        flush_interval=0.05,
        timeout=timeout,
    )
    with UvicornThread(app) as base:
        timed_requests(base, ["/items/0"])
        instrumented = timed_requests(base, paths)
        # The telemetry did try to talk to the stalled server (reports and flushes).
        wait_until(lambda: len(stalled_server.connections) >= 2, 10, "connections to the stalled server")
    assert clients["metrics_client"] is not None

    # Each report or flush hangs for `timeout` seconds; none of that shows in a request.
    assert max(instrumented) < timeout / 2, instrumented
    assert sum(instrumented) < sum(baseline) + 0.5, (sum(baseline), sum(instrumented))


def test_logging_handler_with_stalled_server_does_not_block(stalled_server: StalledServer) -> None:
    log = logging.getLogger("monlight-stalled-test")
    log.propagate = False
    handler = MonlightHandler(ErrorClient(stalled_server.url, "k", timeout=1.0))
    log.addHandler(handler)
    try:
        started = time.perf_counter()
        for i in range(20):
            log.error("failed %d", i, exc_info=ValueError(str(i)))
        assert time.perf_counter() - started < 0.5  # sending them one by one: 20 s
        wait_until(lambda: stalled_server.connections, 5, "a report to reach the stalled server")
    finally:
        log.removeHandler(handler)
        stalled_server.close()  # what is still queued now fails fast
        handler.close()
