"""The unmodified sentry-sdk (PyPI) reporting to the real error-tracker, read back through its API.

Each test runs user code in a subprocess (a script, a uvicorn server) configured with nothing but
a DSN pointing at the error-tracker, then waits (with a deadline) for the group to appear.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import HERE, SEEDED, Tracker, line_of, run_python, wait_until

SCRIPT = HERE / "shop_script.py"
FRAME = re.compile(r'^  File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)$', re.M)
# The SDK does not say whether the chain was `raise ... from` or implicit (its exception items
# carry no __cause__/__context__ mark outside exception groups): either CPython sentence will do.
CAUSE = re.compile(r"\n\n(?:The above exception was the direct cause of the following exception|"
                   r"During handling of the above exception, another exception occurred):\n\n")
VALUE_ERROR = "unknown product 'sku-9' in cart"


def frames(traceback: str) -> list[tuple[str, int, str]]:
    """(basename, line, function) of every `File "...", line N, in f` line, in order."""
    return [(Path(m["file"]).name, int(m["line"]), m["func"]) for m in FRAME.finditer(traceback)]


def script_line(needle: str) -> int:
    return line_of(SCRIPT, needle)


def run_script(tracker: Tracker, project: str, mode: str, expect_exit: int = 0) -> subprocess.CompletedProcess[str]:
    done = run_python(tracker, SCRIPT, mode, env={"SENTRY_DSN": tracker.dsn(SEEDED[project], 42)})
    assert done.returncode == expect_exit, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def new_dsn(tracker: Tracker, project: str) -> str:
    """A key made through the admin API; the DSN for this tracker's address."""
    key = tracker.api("POST", "/api/sentry-keys", {"project": project})
    assert key["project"] == project and key["active"] is True, key
    assert len(key["public_key"]) >= 16 and key["public_key"] in key["dsn"], key
    assert re.fullmatch(r"https?://[0-9a-zA-Z]+@[^/]+/\d+", key["dsn"]), key
    return tracker.dsn(key["public_key"])


def is_checkout_error(group: dict) -> bool:
    return group["exception_type"] == "ValueError" and group["message"] == VALUE_ERROR


def test_chained_error_from_a_script_is_one_group_with_its_traceback_release_and_user(tracker: Tracker) -> None:
    run_script(tracker, "shop-py", "captured")
    run_script(tracker, "shop-py", "captured")
    detail = tracker.wait_for_group("shop-py", lambda g: is_checkout_error(g) and g["count"] == 2,
                                    "the checkout ValueError twice")
    assert [g["id"] for g in tracker.groups("shop-py") if is_checkout_error(g)] == [detail["id"]]

    assert detail["environment"] == "staging"
    traceback = detail["traceback"]
    assert traceback.startswith("Traceback (most recent call last):\n"), traceback
    assert traceback.rstrip().endswith(f"ValueError: {VALUE_ERROR}"), traceback
    # The cause first, as CPython prints it, then the error raised from it.
    assert "KeyError: 'sku-9'" in traceback, traceback
    parts = CAUSE.split(traceback)
    assert len(parts) == 2, traceback
    cause, error = parts
    assert frames(cause) == [
        ("shop_script.py", script_line("total += load_price(sku) * quantity"), "checkout"),
        ("shop_script.py", script_line("return PRICES[sku]"), "load_price"),
    ], traceback
    assert frames(error) == [
        ("shop_script.py", script_line("# mode: captured"), "main"),
        ("shop_script.py", script_line("raise ValueError("), "checkout"),
    ], traceback

    assert len(detail["occurrences"]) == 2, detail["occurrences"]
    for occurrence in detail["occurrences"]:
        assert occurrence["user_id"] == "u-42", occurrence
        extra = occurrence["extra"]
        assert extra["release"] == "shop@1.2.3", extra
        assert "eu-west" in json.dumps(extra.get("tags")), extra


def test_uncaught_error_is_reported_by_the_sdk_excepthook(tracker: Tracker) -> None:
    done = run_script(tracker, "shop-cli", "uncaught", expect_exit=1)
    assert f"ValueError: {VALUE_ERROR}" in done.stderr, done.stderr  # Python's own report still printed
    detail = tracker.wait_for_group("shop-cli", is_checkout_error, "the uncaught ValueError")
    assert detail["environment"] == "staging"
    _, error = CAUSE.split(detail["traceback"])
    assert frames(error) == [
        ("shop_script.py", script_line('main(sys.argv[1])'), "<module>"),
        ("shop_script.py", script_line("# mode: uncaught"), "main"),
        ("shop_script.py", script_line("raise ValueError("), "checkout"),
    ], detail["traceback"]
    assert detail["occurrences"][0]["user_id"] == "u-42"
    assert detail["occurrences"][0]["extra"]["release"] == "shop@1.2.3"


def test_an_explicit_fingerprint_makes_its_own_group(tracker: Tracker) -> None:
    project = "shop-fp"
    dsn = new_dsn(tracker, project)
    for mode in ["captured", "fingerprint", "fingerprint"]:
        done = run_python(tracker, SCRIPT, mode, env={"SENTRY_DSN": dsn})
        assert done.returncode == 0, done.stderr
    # The same error from the same code: grouped by its stack, except where the fingerprint says.
    counts = wait_until(lambda: sorted(g["count"] for g in tracker.groups(project)) == [1, 2]
                        and sorted(g["count"] for g in tracker.groups(project)),
                        15, f"a group of 1 and a group of 2 in {project}")
    assert counts == [1, 2]
    for group in tracker.groups(project):
        assert is_checkout_error(group), group


def test_capture_message_is_a_group_and_the_transaction_before_it_is_ignored(tracker: Tracker) -> None:
    project = "shop-msg"
    done = run_python(tracker, SCRIPT, "message", env={"SENTRY_DSN": new_dsn(tracker, project)})
    assert done.returncode == 0, done.stderr
    detail = tracker.wait_for_group(project, lambda g: g["message"] == "inventory sync finished with 3 warnings",
                                    "the captured message")
    assert detail["environment"] == "staging"
    assert detail["occurrences"][0]["user_id"] == "u-42"
    # The SDK sent the transaction first (and flushed): by now it was handled, and made nothing.
    assert [g["message"] for g in tracker.groups(project)] == ["inventory sync finished with 3 warnings"]


@pytest.fixture
def shop_api(tracker: Tracker, tmp_path: Path) -> Iterator[str]:
    """shop_api.py served by uvicorn on a free port, its DSN from the admin API; yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log_path = tmp_path / "uvicorn.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "shop_api:app", "--host", "127.0.0.1", "--port", str(port)],
            cwd=HERE, env={**os.environ, "SENTRY_DEBUG": "1", "SENTRY_DSN": new_dsn(tracker, "shop-api")},
            stdout=log, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"uvicorn exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        wait_until(up, 20, "uvicorn to serve shop_api")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        tracker.programs.append(f"$ uvicorn shop_api:app → exit {proc.returncode}\n{log_path.read_text()}")


def test_fastapi_endpoint_error_has_the_request_without_secret_headers(tracker: Tracker, shop_api: str) -> None:
    secrets = ["Bearer s3cret-token-4f9a", "session=c00kie-value-77e1"]
    request = urllib.request.Request(shop_api + "/orders/7/average?currency=eur", headers={
        "Authorization": secrets[0], "Cookie": secrets[1], "X-Request-Id": "req-8812", "User-Agent": "e2e-client/1.0",
    })
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=10)
    assert answer.value.code == 500

    detail = tracker.wait_for_group("shop-api", lambda g: g["exception_type"] == "ZeroDivisionError",
                                    "the endpoint's ZeroDivisionError")
    assert detail["message"] == "division by zero"
    app = HERE / "shop_api.py"
    in_app = [f for f in frames(detail["traceback"]) if f[0] == "shop_api.py"]
    assert in_app == [
        ("shop_api.py", line_of(app, 'return {"average": average_price('), "order_average"),
        ("shop_api.py", line_of(app, "return total / sum("), "average_price"),
    ], detail["traceback"]
    assert detail["traceback"].rstrip().endswith("ZeroDivisionError: division by zero"), detail["traceback"]

    occurrence = detail["occurrences"][0]
    assert occurrence["request_method"] == "GET", occurrence
    assert occurrence["request_url"].startswith(shop_api + "/orders/7/average"), occurrence
    headers = {k.lower(): v for k, v in (occurrence["request_headers"] or {}).items()}
    assert headers.get("x-request-id") == "req-8812", headers
    assert headers.get("user-agent") == "e2e-client/1.0", headers
    stored = json.dumps(detail)
    for secret in secrets:
        assert secret.split(" ")[-1] not in stored, f"{secret!r} stored: {stored}"


def test_a_deleted_key_is_refused_and_a_live_one_answers_the_event_id(tracker: Tracker) -> None:
    key = tracker.api("POST", "/api/sentry-keys", {"project": "shop-keys"})
    assert any(k["id"] == key["id"] for k in tracker.api("GET", "/api/sentry-keys")["keys"])

    def send(public_key: str) -> tuple[int, object, str]:
        event_id = uuid.uuid4().hex
        header = json.dumps({"event_id": event_id, "sent_at": "2026-01-01T00:00:00Z"})
        event = json.dumps({"event_id": event_id, "platform": "python", "level": "error",
                            "exception": {"values": [{"type": "RuntimeError", "value": "raw envelope"}]}})
        body = gzip.compress(f'{header}\n{{"type":"event"}}\n{event}\n'.encode())
        status, answer = tracker.request("POST", "/api/1/envelope/", data=body, headers={
            "Content-Type": "application/x-sentry-envelope", "Content-Encoding": "gzip",
            "X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={public_key}, sentry_client=e2e/1.0",
        })
        return status, answer, event_id

    status, answer, event_id = send(key["public_key"])
    assert (status, answer) == (200, {"id": event_id})
    tracker.api("DELETE", f"/api/sentry-keys/{key['id']}")
    status, answer, _ = send(key["public_key"])
    assert status in (401, 403), (status, answer)
    status, answer, _ = send("0" * 32)
    assert status in (401, 403), (status, answer)
