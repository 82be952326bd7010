"""Per-request cost of MonlightMiddleware, measured in process (not a test).

Times N GET requests to a templated route through httpx.ASGITransport, on the same app
without and with the middleware (its MetricsClient never started: recording only, no
network), and, for scale, with a pass-through pure ASGI middleware (the cost of any extra
layer). Rounds alternate; each figure is the best round (least disturbed by noise).

    python clients/python/bench_middleware.py [N] [ROUNDS]
"""

from __future__ import annotations

import asyncio
import sys
import time

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from monlight import MetricsClient
from monlight.integrations.fastapi import MonlightMiddleware


class PassThrough:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def make_app(metrics: MetricsClient | None, passthrough: bool = False) -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    if metrics is not None:
        app.add_middleware(MonlightMiddleware, metrics_client=metrics)
    if passthrough:
        app.add_middleware(PassThrough)
    return app


async def per_request_us(app: FastAPI, n: int) -> float:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for i in range(200):  # warm up
            await client.get(f"/items/{i}")
        started = time.perf_counter()
        for i in range(n):
            await client.get(f"/items/{i}")
        return (time.perf_counter() - started) / n * 1e6


async def main(n: int, rounds: int) -> None:
    metrics = MetricsClient("http://127.0.0.1:9", "bench", max_buffer=10_000_000)
    plain, layer, instrumented = make_app(None), make_app(None, True), make_app(metrics)
    without: list[float] = []
    passthrough: list[float] = []
    with_: list[float] = []
    for _ in range(rounds):
        without.append(await per_request_us(plain, n))
        passthrough.append(await per_request_us(layer, n))
        with_.append(await per_request_us(instrumented, n))
        with metrics._lock:
            metrics._buffer.clear()
    metrics._closed = True  # nothing to send at exit
    base, empty, inst = min(without), min(passthrough), min(with_)
    print(f"{n} requests x {rounds} rounds, httpx.ASGITransport, Python {sys.version.split()[0]}")
    print(f"without middleware:       {base:8.1f} us/request (best round)")
    print(f"pass-through middleware:  {empty:8.1f} us/request")
    print(f"MonlightMiddleware:       {inst:8.1f} us/request")
    print(f"overhead:                 {inst - base:8.1f} us/request ({(inst - base) / base * 100:.1f} %)")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    asyncio.run(main(args[0] if args else 3000, args[1] if len(args) > 1 else 10))
