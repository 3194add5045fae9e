"""The bare side of bench/scale_bench.py as a worker process of its own, beside `tailor worker`.

It runs `BareWait` (one local activity writes a row, then a timer for hours) with the tuning Tailor's workers use
(`runtime.worker.worker_options`) against its own SQLite file, so both sides are measured the same way: a process
each, started through the same client, their memory read from /proc.

    python bench/bare_worker.py ADDRESS TASK_QUEUE DATABASE_FILE CACHE
"""
from __future__ import annotations

import asyncio
import datetime as dt
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402
from temporalio import activity  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from bare_workflow import BareWaitWorkflow  # noqa: E402
from runtime.db import make_engine  # noqa: E402
from runtime.worker import worker_options  # noqa: E402

meta = sa.MetaData()
rows = sa.Table("bare_tasks", meta, sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                sa.Column("key", sa.String(300), nullable=False, unique=True),
                sa.Column("created_at", sa.DateTime(timezone=True), nullable=False))


class Rows:
    def __init__(self, engine: sa.Engine):
        self.engine, self.turn = engine, threading.Lock()  # writers take turns, as in runtime.activities

    @activity.defn(name="bare.create_row")
    def create_row(self, key: str) -> int:
        with self.turn, self.engine.begin() as conn:
            return conn.execute(rows.insert().values(key=key, created_at=dt.datetime.now(dt.timezone.utc)).returning(rows.c.id)).scalar_one()


async def main(address: str, queue: str, db: str, cache: int) -> None:
    engine = make_engine(f"sqlite:///{db}")
    meta.create_all(engine)
    client = await Client.connect(address)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    with ThreadPoolExecutor(8) as pool:
        async with Worker(client, task_queue=queue, workflows=[BareWaitWorkflow], activities=[Rows(engine).create_row],
                          **worker_options(pool, cache, (BareWaitWorkflow,))):
            print("worker running", flush=True)
            await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
