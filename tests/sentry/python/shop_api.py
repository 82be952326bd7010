"""A FastAPI app as its authors would write it: one `sentry_sdk.init(dsn=...)`, nothing else.

The SDK finds FastAPI and Starlette by itself (its auto-enabled integrations) and reports what
an endpoint raises. The tests serve it with uvicorn (`python -m uvicorn shop_api:app`).
"""

import os

import sentry_sdk
from fastapi import FastAPI

sentry_sdk.init(dsn=os.environ["SENTRY_DSN"])

app = FastAPI()

ORDERS = {7: {"items": [{"sku": "sku-1", "quantity": 0}]}}


def average_price(order):
    total = sum(item["quantity"] * 100 for item in order["items"])
    return total / sum(item["quantity"] for item in order["items"])


@app.get("/health")
def health():
    return {"status": "ok"}


@app.get("/orders/{order_id}/average")
def order_average(order_id: int):
    return {"average": average_price(ORDERS[order_id])}
