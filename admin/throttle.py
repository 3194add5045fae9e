"""Failed logins per user name: after 5 within 5 minutes, refuse for the rest of the window."""
from __future__ import annotations

import time
from collections import defaultdict

MAX_FAILURES, LOCKOUT_SECONDS = 5, 300


class LoginThrottle:
    """Counts failures per user name in memory (one web process; a restart forgets, which only helps the user)."""

    def __init__(self) -> None:
        self.failures: dict[str, list[float]] = defaultdict(list)

    def blocked(self, username: str) -> bool:
        now = time.monotonic()
        self.failures[username] = [t for t in self.failures[username] if now - t < LOCKOUT_SECONDS]
        return len(self.failures[username]) >= MAX_FAILURES

    def failed(self, username: str) -> None:
        self.failures[username].append(time.monotonic())

    def succeeded(self, username: str) -> None:
        self.failures.pop(username, None)
