"""The outbox drainer: starts the process starts the request path left behind.

A start is left behind when the web process died between its commit and the start, or
Temporal was briefly unreachable. Every worker (`tailor worker`, `tailor run`) runs one;
several may drain the same rows at once, since a start is keyed by its workflow id.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from temporalio.client import Client

from engine.compiler import CompiledModel
from . import outbox
from .starter import start_rows

POLL_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
BATCH = 100

log = logging.getLogger(__name__)


async def drain(client: Client, engine: sa.Engine, compiled: CompiledModel, task_queue: str, *, announce: Sequence[str] = (),
                now: dt.datetime | None = None, limit: int = BATCH) -> list[str]:
    """Start the pending starts whose turn has come (at `now`); returns the workflow ids started."""
    now = now or outbox.utcnow()

    def due() -> list[sa.Row]:
        with engine.connect() as conn:
            return outbox.due(conn, now, limit)

    return await start_rows(client, engine, compiled, task_queue, await asyncio.to_thread(due), announce=announce, now=now)


async def run(client: Client, engine: sa.Engine, compiled: CompiledModel | Callable[[], CompiledModel], task_queue: str, *,
              announce: Sequence[str] = (), poll: float = POLL_SECONDS) -> None:
    """Drain every `poll` seconds until cancelled; while the database fails, wait twice as long each time.

    `compiled` may be a function giving the configuration in force (a worker follows the active release)."""
    delay = poll
    while True:
        try:
            started = await drain(client, engine, compiled() if callable(compiled) else compiled, task_queue, announce=announce)
            if started:
                log.info("started from the outbox: %s", ", ".join(started))
            delay = poll
        except Exception:  # the database is down or refusing: try again later, never stop draining
            delay = min(delay * 2, MAX_BACKOFF_SECONDS)
            log.warning("draining the outbox failed; next try in %.0f s", delay, exc_info=True)
        await asyncio.sleep(delay)
