"""End to end: the release error-tracker and metrics-collector binaries, a FastAPI app under
uvicorn, a real HTTP client; what the client sent is read back through the services' APIs.

The binaries come from MONLIGHT_ERROR_TRACKER_BIN and MONLIGHT_METRICS_COLLECTOR_BIN
(test.sh builds them and sets both). Without them these tests are skipped, unless
MONLIGHT_REQUIRE_E2E=1, when they fail.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from monlight.integrations.fastapi import setup_monlight

from .conftest import UvicornThread, wait_until

API_KEY = "e2e-test-key-0123456789"


@dataclass
class Service:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-API-Key": API_KEY}, timeout=10)


def _binary(var: str) -> str:
    path = os.environ.get(var)
    if not path:
        message = f"{var} is not set (run clients/python/test.sh)"
        if os.environ.get("MONLIGHT_REQUIRE_E2E") == "1":
            pytest.fail(message)
        pytest.skip(message)
    assert os.access(path, os.X_OK), f"{var}={path} is not an executable"
    return path


def _start(binary: str, tmp: Path, name: str, extra_env: dict[str, str]) -> Iterator[Service]:
    log = tmp / f"{name}.log"
    env = {
        **os.environ,
        "API_KEY": API_KEY,
        "PORT": "0",
        "BIND": "127.0.0.1",
        "DATABASE_PATH": str(tmp / f"{name}.db"),
        "RATE_LIMIT": "0",
        **extra_env,
    }
    with open(log, "wb") as out:
        process = subprocess.Popen([binary], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:

        def port() -> str | None:
            assert process.poll() is None, f"{name} exited:\n{log.read_text()}"
            match = re.search(r"listening on 127\.0\.0\.1:(\d+)", log.read_text())
            return match.group(1) if match else None

        url = f"http://127.0.0.1:{wait_until(port, 20, f'{name} to listen')}"
        wait_until(lambda: httpx.get(f"{url}/health").status_code == 200, 10, f"{name} /health")
        yield Service(url, process, log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def error_tracker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    binary = _binary("MONLIGHT_ERROR_TRACKER_BIN")
    yield from _start(binary, tmp_path_factory.mktemp("et"), "error-tracker", {})


@pytest.fixture(scope="module")
def metrics_collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    binary = _binary("MONLIGHT_METRICS_COLLECTOR_BIN")
    yield from _start(
        binary, tmp_path_factory.mktemp("mc"), "metrics-collector", {"AGGREGATION_INTERVAL": "1"}
    )


def make_app(error_tracker: Service, metrics_collector: Service, project: str, flush: float) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.get("/checkout")
    async def checkout() -> None:
        try:
            {}["cart"]
        except KeyError as err:
            raise RuntimeError("checkout failed") from err

    @app.get("/export")
    async def export() -> StreamingResponse:
        async def rows() -> AsyncIterator[bytes]:
            for i in range(3):
                await asyncio.sleep(0.05)
                yield b"row\n"

        return StreamingResponse(rows())

    setup_monlight(
        app,
        error_tracker_url=error_tracker.url,
        metrics_collector_url=metrics_collector.url,
        api_key=API_KEY,
        project=project,
        environment="e2e",
        flush_interval=flush,
    )
    return app


def app_client(base: str) -> httpx.Client:
    # No keep-alive: uvicorn closes a connection after an app raised.
    return httpx.Client(base_url=base, timeout=10, limits=httpx.Limits(max_keepalive_connections=0))


def series_totals(collector: httpx.Client, name: str, project: str, **labels: str) -> tuple[float, int]:
    """(Σ sum, Σ count) over every bucket of the last hour for `name` with `labels`."""
    query = {"name": name, "period": "1h", "project": project}
    if labels:
        query["labels"] = ",".join(f"{k}:{v}" for k, v in labels.items())
    response = collector.get("/api/metrics", params=query)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return sum(b["sum"] or 0 for b in data), sum(b["count"] or 0 for b in data)


def test_errors_and_metrics_reach_the_services(
    error_tracker: Service, metrics_collector: Service
) -> None:
    project = "e2e-shop"
    app = make_app(error_tracker, metrics_collector, project, flush=0.2)
    with UvicornThread(app) as base, app_client(base) as client:
        for i in range(5):
            assert client.get(f"/items/{i}").json() == {"id": i}
        assert client.get("/nowhere/7").status_code == 404
        assert client.get("/export").text == "row\nrow\nrow\n"
        crash = client.get(
            "/checkout?step=pay",
            headers={"Authorization": "Bearer user-secret", "X-Request-Id": "req-77"},
        )
        assert crash.status_code == 500
        assert crash.json() == {"detail": "Internal server error"}

        # The error, listed and with its details.
        with error_tracker.api() as errors:

            def listed() -> list[dict[str, Any]]:
                response = errors.get("/api/errors", params={"project": project})
                assert response.status_code == 200, response.text
                items: list[dict[str, Any]] = response.json()["errors"]
                return items

            [group] = wait_until(listed, 10, "the error to be listed")
            assert group["exception_type"] == "RuntimeError"
            assert group["message"] == "checkout failed"
            assert group["environment"] == "e2e" and group["count"] == 1
            detail = errors.get(f"/api/errors/{group['id']}").json()
        tb = detail["traceback"]
        assert "KeyError: 'cart'" in tb
        assert "The above exception was the direct cause" in tb
        assert tb.rstrip().endswith("RuntimeError: checkout failed")
        [occurrence] = detail["occurrences"]
        assert occurrence["request_url"] == f"{base}/checkout?step=pay"
        assert occurrence["request_method"] == "GET"
        headers = {k.lower(): v for k, v in occurrence["request_headers"].items()}
        assert "authorization" not in headers
        assert headers["x-request-id"] == "req-77"
        assert "Bearer user-secret" not in str(detail)

        # The request metrics, live from the current minute's raw points.
        with metrics_collector.api() as collector:
            ok_labels = {"method": "GET", "endpoint": "/items/{item_id}", "status": "200"}
            wait_until(
                lambda: series_totals(collector, "http_requests_total", project, **ok_labels)
                == (5, 5),
                10,
                "5 requests counted for /items/{item_id}",
            )
            health = collector.get("/health").json()
            first_aggregation = health["last_aggregation"]
            # ...and once more after the collector's aggregation thread ran again.
            wait_until(
                lambda: collector.get("/health").json()["last_aggregation"] != first_aggregation,
                10,
                "an aggregation run",
            )
            assert series_totals(collector, "http_requests_total", project, **ok_labels) == (5, 5)
            total, count = series_totals(
                collector, "http_request_duration_seconds", project, **ok_labels
            )
            assert count == 5 and 0 < total < 5
            for labels, expected in [
                ({"endpoint": "/checkout", "status": "500"}, 1),
                ({"endpoint": "/nowhere/7", "status": "404"}, 1),
                ({"endpoint": "/export", "status": "200"}, 1),
            ]:
                assert series_totals(collector, "http_requests_total", project, **labels) == (
                    expected,
                    expected,
                ), labels
            export_total, _ = series_totals(
                collector, "http_request_duration_seconds", project, endpoint="/export"
            )
            assert export_total >= 0.15  # timed to the stream's end
            grouped = collector.get(
                "/api/metrics",
                params={"name": "http_requests_total", "period": "1h", "project": project,
                        "group_by": "endpoint"},
            ).json()
            endpoints = {s["labels"]["endpoint"] for s in grouped["series"]}
            assert endpoints == {"/items/{item_id}", "/checkout", "/nowhere/7", "/export"}
            names = {m["name"] for m in collector.get("/api/metrics/names", params={"project": project}).json()["metrics"]}
            assert {"http_requests_total", "http_request_duration_seconds"} <= names


def test_last_points_flushed_on_app_shutdown(
    error_tracker: Service, metrics_collector: Service
) -> None:
    project = "e2e-shutdown"
    # The timer never fires in this test: only the lifespan shutdown can send the points.
    app = make_app(error_tracker, metrics_collector, project, flush=3600)
    server = UvicornThread(app)
    with server as base, app_client(base) as client:
        for i in range(3):
            client.get(f"/items/{i}")
        with metrics_collector.api() as collector:
            assert series_totals(collector, "http_requests_total", project) == (0, 0)
            server.stop()
            assert series_totals(collector, "http_requests_total", project) == (3, 3)
