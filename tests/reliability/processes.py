"""Real processes a fault test starts, breaks and stops: each in its own process group, so
`kill()` is a `kill -9` of that process and its children (a worker's pool) and nothing else."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
from pathlib import Path

from tests.helpers import PROJECT_DIR, redis_answers, wait_for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class ChildProcess:
    """A subprocess in its own process group, with its output in a log file."""

    def __init__(self, arguments: list[str], environment: dict[str, str], log_path: Path):
        self.arguments = arguments
        self.log_path = log_path
        self.log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            arguments,
            cwd=PROJECT_DIR,
            env=environment,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._group_killed = False

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _signal_group(self, signal_number: int) -> None:
        try:
            os.killpg(self.process.pid, signal_number)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """`kill -9` the process and its children (a worker's pool): no goodbye."""
        self._signal_group(signal.SIGKILL)
        self.process.wait(timeout=10)
        self._group_killed = True

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s; pool children left behind go with the group."""
        if not self._group_killed:
            if self.alive:
                self._signal_group(signal.SIGTERM)
                try:
                    self.process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    pass
            self.kill()
        if not self.log.closed:
            self.log.close()


class RedisServer:
    """A private `redis-server` on a free port: the broker a test may kill and bring back."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.server: ChildProcess | None = None

    def start(self) -> None:
        self.server = ChildProcess(
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--daemonize", "no",
                "--dir", str(self.directory),
            ],
            dict(os.environ),
            self.directory / "redis.log",
        )
        wait_for(lambda: redis_answers(self.url), timeout=10, message="redis-server to answer")

    def kill(self) -> None:
        """The broker goes away at once (and with it every queued Celery message)."""
        if self.server is not None:
            self.server.kill()
            self.server.stop()
            self.server = None
        assert not redis_answers(self.url)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


def wait_until_ready(worker: ChildProcess, timeout: float = 60) -> None:
    """A Celery worker is connected to its broker and consuming."""
    wait_for(
        lambda: " ready." in worker.output() or not worker.alive,
        timeout=timeout,
        interval=0.2,
        message=f"the worker to be ready; its log:\n{worker.output()}",
    )
    assert worker.alive, worker.output()


def finished_tasks(worker: ChildProcess, task_name: str) -> list[str]:
    """How each finished run of `task_name` ended, from the worker's log: "succeeded" or
    "raised unexpected: <error>"."""
    return re.findall(
        rf"Task {re.escape(task_name)}\[[^\]]+\] (succeeded|raised unexpected: \w+)",
        worker.output(),
    )
