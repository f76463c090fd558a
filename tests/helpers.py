"""Helpers for tests that run real processes: import them as `tests.helpers`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings

PROJECT_DIR = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def skip_or_fail(reason: str) -> None:
    """Skip a test the machine cannot run; under CI=true a missing tool is a failure."""
    if IN_CI:
        pytest.fail(f"{reason} (a skip is not allowed under CI=true)")
    pytest.skip(reason)


def redis_answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or 6379), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def database_url_for_subprocess() -> str:
    """The URL of the test database, so a worker subprocess sees what the test sees."""
    from django.db import connection

    config = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{config['NAME']}"
    user = config.get("USER") or "postgres"
    password = f":{config['PASSWORD']}" if config.get("PASSWORD") else ""
    host = config.get("HOST") or "127.0.0.1"
    port = config.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{config['NAME']}"


TEST_ONLY_VARIABLES = {"DJANGO_ALLOW_ASYNC_UNSAFE"}


def clean_environment() -> dict[str, str]:
    """This process's environment without what only the test process itself should have."""
    return {key: value for key, value in os.environ.items() if key not in TEST_ONLY_VARIABLES}


def subprocess_environment(**overrides: str) -> dict[str, str]:
    environment = clean_environment()
    environment.update(
        {
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": database_url_for_subprocess(),
            "SECRET_KEY": settings.SECRET_KEY,
            "CONNECTOR_ENCRYPTION_KEY": settings.CONNECTOR_ENCRYPTION_KEY,
            "PYTHONUNBUFFERED": "1",
        }
    )
    environment.update(overrides)
    return environment


class CeleryProcess:
    """A real `celery` subprocess (worker or beat), stopped when the test ends."""

    def __init__(self, arguments: list[str], environment: dict[str, str], log_path: Path):
        self.log_path = log_path
        self.log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "connector", *arguments],
            cwd=PROJECT_DIR,
            env=environment,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def wait_for(condition, timeout: float, interval: float = 0.25, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"Timed out after {timeout} s waiting for {message}")
