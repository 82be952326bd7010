"""A user's program that reports to Monlight with the unmodified sentry-sdk.

The tests run it as a subprocess: `python shop_script.py MODE` with SENTRY_DSN set.
Nothing here knows about Monlight but the DSN.

  captured     ValueError raised `from` a KeyError, captured with capture_exception
  uncaught     the same error left uncaught: the SDK's excepthook reports it
  fingerprint  the same error captured with an explicit fingerprint
  message      a transaction (ignored by Monlight), then capture_message
"""

import os
import sys

import sentry_sdk

PRICES = {"sku-1": 1250, "sku-2": 480}


def load_price(sku):
    return PRICES[sku]


def checkout(cart):
    total = 0
    for sku, quantity in cart.items():
        try:
            total += load_price(sku) * quantity
        except KeyError as exc:
            raise ValueError(f"unknown product {sku!r} in cart") from exc
    return total


def main(mode):
    sentry_sdk.init(
        dsn=os.environ["SENTRY_DSN"],
        environment="staging",
        release="shop@1.2.3",
        # Only the message mode sends a transaction, to show it is accepted and ignored.
        traces_sample_rate=1.0 if mode == "message" else None,
    )
    sentry_sdk.set_user({"id": "u-42"})
    sentry_sdk.set_tag("shop.region", "eu-west")
    cart = {"sku-1": 2, "sku-9": 1}

    if mode == "captured":
        try:
            checkout(cart)  # mode: captured
        except ValueError as exc:
            sentry_sdk.capture_exception(exc)
    elif mode == "fingerprint":
        try:
            checkout(cart)  # mode: fingerprint
        except ValueError as exc:
            sentry_sdk.capture_exception(exc, fingerprint=["checkout", "unknown-product"])
    elif mode == "uncaught":
        checkout(cart)  # mode: uncaught
    elif mode == "message":
        with sentry_sdk.start_transaction(op="task", name="sync-inventory"):
            with sentry_sdk.start_span(op="db", name="select stock"):
                pass
        sentry_sdk.flush()
        sentry_sdk.capture_message("inventory sync finished with 3 warnings", level="warning")
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    sentry_sdk.flush()


if __name__ == "__main__":
    main(sys.argv[1])
