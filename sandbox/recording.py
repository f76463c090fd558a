"""What both simulators share: a log of the requests they answered and injectable faults."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, ClassVar


class RecordingSimulator:
    """Thread-safe request log and fault queue; subclasses name their `FAULT_KINDS`."""

    FAULT_KINDS: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._log: list[Any] = []
        self._faults: deque[str] = deque()
        self._always: str | None = None
        self._release = threading.Event()

    # -- the log ----------------------------------------------------------------------------

    @property
    def requests(self) -> list[Any]:
        with self._lock:
            return list(self._log)

    def calls(self, path_suffix: str, method: str | None = None) -> list[Any]:
        """The logged requests whose path (without the query) ends with `path_suffix`."""
        with self._lock:
            return [
                entry
                for entry in self._log
                if entry.path.split("?", 1)[0].lower().endswith(path_suffix.lower())
                and (method is None or entry.method == method.upper())
            ]

    def count(self, path_suffix: str, method: str | None = None) -> int:
        return len(self.calls(path_suffix, method))

    def reset_log(self) -> None:
        with self._lock:
            self._log.clear()

    # -- faults -----------------------------------------------------------------------------

    def fail_next(self, count: int = 1, kind: str = "503") -> None:
        """The next `count` requests fail as `kind` (one of FAULT_KINDS), then normal again."""
        self._check_kind(kind)
        with self._lock:
            self._faults.extend([kind] * count)

    def fail_always(self, kind: str) -> None:
        self._check_kind(kind)
        with self._lock:
            self._always = kind

    def heal(self) -> None:
        """No more faults; requests hanging now are let go."""
        with self._lock:
            self._faults.clear()
            self._always = None
        self.release_waiters()

    def release_waiters(self) -> None:
        """End every hang in progress (the server calls this when it stops)."""
        with self._lock:
            released, self._release = self._release, threading.Event()
        released.set()

    def _check_kind(self, kind: str) -> None:
        if kind not in self.FAULT_KINDS:
            raise ValueError(
                f"unknown fault kind {kind!r}; use one of {', '.join(self.FAULT_KINDS)}"
            )

    def _take_fault(self) -> str | None:
        with self._lock:
            if self._faults:
                return self._faults.popleft()
            return self._always
