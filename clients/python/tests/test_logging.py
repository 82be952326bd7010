"""MonlightHandler: logger.exception records become error reports, off the caller's thread."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from monlight import ErrorClient, MonlightHandler

from .conftest import CaptureServer, wait_until


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    log = logging.getLogger("monlight-test-app")
    log.propagate = False
    yield log
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()


def test_logger_exception_is_reported(capture_server: CaptureServer, logger: logging.Logger) -> None:
    handler = MonlightHandler(ErrorClient(capture_server.url, "k", project="worker"))
    logger.addHandler(handler)
    try:
        raise KeyError("sku-9")
    except KeyError:
        logger.exception(
            "payment %s failed",
            "p-1",
            extra={
                "request_url": "http://shop/pay",
                "request_method": "POST",
                "request_headers": {"Authorization": "x", "Accept": "*/*"},
                "user_id": 5,
                "monlight_extra": {"job": "billing"},
            },
        )
    handler.flush()
    [body] = capture_server.posts("/api/errors")
    assert body["project"] == "worker"
    assert body["exception_type"] == "KeyError"
    assert body["message"] == "'sku-9'"
    assert "raise KeyError" in body["traceback"]
    assert body["request_url"] == "http://shop/pay" and body["request_method"] == "POST"
    assert body["request_headers"] == {"Accept": "*/*"}
    assert body["user_id"] == "5"
    assert body["extra"] == {
        "logger": "monlight-test-app",
        "log_message": "payment p-1 failed",
        "job": "billing",
    }


def test_exc_info_records_reported_plain_errors_ignored(
    capture_server: CaptureServer, logger: logging.Logger
) -> None:
    handler = MonlightHandler(ErrorClient(capture_server.url, "k"))
    logger.addHandler(handler)
    logger.error("no exception here")
    logger.warning("not even an error", exc_info=ValueError("below level"))
    logger.error("explicit", exc_info=ZeroDivisionError("division by zero"))
    handler.flush()
    assert [b["exception_type"] for b in capture_server.posts("/api/errors")] == [
        "ZeroDivisionError"
    ]


def test_queue_bound_counts_drops(stalled_server: object, logger: logging.Logger) -> None:
    url = stalled_server.url  # type: ignore[attr-defined]
    handler = MonlightHandler(ErrorClient(url, "k", timeout=0.5), max_queue=2)
    logger.addHandler(handler)
    for i in range(10):
        logger.error("e%d", i, exc_info=ValueError(str(i)))
    # One is being sent (stalled), two wait; the rest were dropped, none blocked the caller.
    assert handler.dropped >= 7
    handler.flush(timeout=5)


def test_reports_queued_at_exit_are_sent(capture_server: CaptureServer) -> None:
    script = textwrap.dedent(
        f"""
        import logging
        from monlight import ErrorClient, MonlightHandler
        logging.getLogger().addHandler(MonlightHandler(ErrorClient({capture_server.url!r}, "k")))
        try:
            1 / 0
        except ZeroDivisionError:
            logging.getLogger("job").exception("job failed")
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30, capture_output=True)
    [body] = wait_until(lambda: capture_server.posts("/api/errors"), 5, "the report")
    assert body["exception_type"] == "ZeroDivisionError"
