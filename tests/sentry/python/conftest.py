"""The real error-tracker on a free port in a temp dir, and helpers to read groups back.

MONLIGHT_ERROR_TRACKER_BIN picks the binary (default: target/release/error-tracker).
When a test fails, the tracker's log is printed (a failing test should explain itself).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent.parent
API_KEY = "sentry-e2e-admin-key"
# Seeded through SENTRY_KEYS: (project, key). Other keys are made through the admin API.
SEEDED = {"shop-py": "0123456789abcdef0123456789abcdef", "shop-cli": "fedcba9876543210fedcba9876543210"}


def wait_until(predicate: Callable[[], Any], timeout: float, what: str | Callable[[], str]) -> Any:
    """Polls `predicate` until it returns a truthy value; fails after `timeout` seconds, saying
    `what` (a callable is asked then, to describe the state it gave up on)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what() if callable(what) else what}")
        time.sleep(0.05)


class Tracker:
    """A running error-tracker: its URL, its admin API, its log."""

    def __init__(self, tmp: Path) -> None:
        binary = os.environ.get("MONLIGHT_ERROR_TRACKER_BIN", str(ROOT / "target/release/error-tracker"))
        if not os.path.exists(binary):
            raise RuntimeError(f"{binary} is missing: cargo build --release -p error-tracker")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PORT": "0",
            "BIND": "127.0.0.1",
            "API_KEY": API_KEY,
            "DATABASE_PATH": str(tmp / "errors.db"),
            "RATE_LIMIT": "0",
            "LOG_LEVEL": "info",
            "SENTRY_KEYS": ",".join(f"{p}:{k}" for p, k in SEEDED.items()),
        }
        self.proc = subprocess.Popen(
            [binary], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        # What the SDKs' programs printed (SENTRY_DEBUG=1: the SDK logs what it sent and what
        # it was answered), shown with the log when a test fails.
        self.programs: list[str] = []
        self.port: int | None = None
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            wait_until(lambda: self.port or self.proc.poll() is not None, 20, "the tracker to listen")
        except AssertionError:
            self.stop()
            raise
        if self.port is None:
            raise RuntimeError(f"error-tracker exited with {self.proc.returncode}:\n{self.log()}")
        self.url = f"http://127.0.0.1:{self.port}"

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(line)
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
            if m and self.port is None:
                self.port = int(m.group(1))

    def log(self) -> str:
        with self._lock:
            return "".join(self.lines)

    def dsn(self, key: str, project_id: int = 1) -> str:
        return f"http://{key}@127.0.0.1:{self.port}/{project_id}"

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                data: bytes | None = None) -> tuple[int, Any]:
        """One HTTP request; returns (status, parsed JSON body or text)."""
        all_headers = {"X-API-Key": API_KEY, **(headers or {})}
        if body is not None:
            data = json.dumps(body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        text = raw.decode("utf-8", "replace")
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, text

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """An admin API call that must succeed (2xx)."""
        status, answer = self.request(method, path, body)
        assert 200 <= status < 300, f"{method} {path} {body!r} → {status} {answer!r}"
        return answer

    def groups(self, project: str) -> list[dict[str, Any]]:
        return self.api("GET", f"/api/errors?project={project}&resolved=all&limit=100")["errors"]

    def wait_for_group(self, project: str, match: Callable[[dict[str, Any]], bool], what: str,
                       timeout: float = 15) -> dict[str, Any]:
        """Polls the list until a group of `project` satisfies `match`; returns its detail."""
        found = wait_until(lambda: next((g for g in self.groups(project) if match(g)), None), timeout,
                           lambda: f"{what} in project {project} (groups now: {self.groups(project)!r})")
        return self.api("GET", f"/api/errors/{found['id']}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)


@pytest.fixture(scope="session")
def tracker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tracker]:
    t = Tracker(tmp_path_factory.mktemp("error-tracker"))
    yield t
    t.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    t = item.funcargs.get("tracker") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(t, Tracker):
        report.sections.append(("error-tracker log", t.log()[-20000:]))
        report.sections.append(("SDK programs' output", "\n".join(t.programs)[-20000:]))


def run_python(tracker: Tracker, script: Path, *args: str, env: dict[str, str],
               timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Runs a Python program with this venv's interpreter, as a user would (SDK debug logs on)."""
    done = subprocess.run([sys.executable, str(script), *args], env={**os.environ, "SENTRY_DEBUG": "1", **env},
                          capture_output=True, text=True, timeout=timeout)
    tracker.programs.append(f"$ {script.name} {' '.join(args)} → exit {done.returncode}\n{done.stdout}{done.stderr}")
    return done


def line_of(path: Path, needle: str) -> int:
    """1-based line of the first `needle` in a file."""
    text = path.read_text()
    index = text.index(needle)
    return text[:index].count("\n") + 1
