"""The bare baselines of the web benchmark, each run as its own process like Tailor's server.

    python bench/web_bare.py web --port PORT --db PATH       FastAPI + SQLAlchemy endpoints that insert one row
                                                              (POST /submit a `def` route, POST /submit-async an `async def` one)
    python bench/web_bare.py worker --address HOST:PORT --db PATH --queue QUEUE
                                                              a temporalio worker for bench/bare_workflow.py

Both open SQLite through `runtime.db.make_engine` (WAL, BEGIN IMMEDIATE, busy timeout), as Tailor does, and
the web app runs under uvicorn with the settings `tailor run` uses (uvicorn.Config defaults, log level warning).
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import sqlalchemy as sa  # noqa: E402
from fastapi import Body, FastAPI, Header  # noqa: E402  (at module level: the route's string annotations are resolved here)

from runtime.db import make_engine  # noqa: E402

POOL = 8  # activity threads, as `tailor run` gives Tailor's worker

meta = sa.MetaData()
submissions = sa.Table(
    "bare_submissions", meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(300), nullable=False, unique=True),
    sa.Column("record_id", sa.Integer),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
tasks = sa.Table(
    "bare_tasks", meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(300), nullable=False, unique=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("completed_at", sa.DateTime(timezone=True)),
    sa.Column("completed_by", sa.Integer),
)


def create_app(engine: sa.Engine):
    """The least a FastAPI endpoint can do for a submission: parse the JSON body, insert one row, answer 201."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/submit", status_code=201)
    def submit(body: Annotated[dict, Body()], idempotency_key: Annotated[str, Header()]) -> dict:
        # a plain `def` route: FastAPI runs it in its thread pool, the idiomatic way to call a blocking driver
        with engine.begin() as conn:
            new_id = conn.execute(submissions.insert().values(key=idempotency_key, record_id=body.get("record_id"), payload=body,
                                                              created_at=dt.datetime.now(dt.timezone.utc))
                                  .returning(submissions.c.id)).scalar_one()
        return {"id": new_id}

    @app.post("/submit-async", status_code=201)
    async def submit_async(body: Annotated[dict, Body()], idempotency_key: Annotated[str, Header()]) -> dict:
        # the same work on the event loop, as Tailor's submission route does it: one SQLite writer at a time, so
        # no thread ever waits on SQLite's busy handler for the write lock
        with engine.begin() as conn:
            new_id = conn.execute(submissions.insert().values(key=idempotency_key, record_id=body.get("record_id"), payload=body,
                                                              created_at=dt.datetime.now(dt.timezone.utc))
                                  .returning(submissions.c.id)).scalar_one()
        return {"id": new_id}

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    return app


def serve_web(port: int, db: str) -> None:
    import uvicorn

    engine = make_engine(f"sqlite:///{db}")
    meta.create_all(engine)
    uvicorn.Server(uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning")).run()


async def serve_worker(address: str, db: str, queue: str) -> None:
    from temporalio import activity
    from temporalio.client import Client
    from temporalio.worker import Worker

    from bare_workflow import BareWorkflow
    from runtime.worker import WORKFLOW_TASK_POLLS, workflow_runner

    engine = make_engine(f"sqlite:///{db}")
    meta.create_all(engine)

    @activity.defn(name="bare.create_row")
    def create_row(key: str) -> int:
        with engine.begin() as conn:
            return conn.execute(tasks.insert().values(key=key, status="open", created_at=dt.datetime.now(dt.timezone.utc))
                                .returning(tasks.c.id)).scalar_one()

    @activity.defn(name="bare.complete_row")
    def complete_row(arg: list) -> None:
        key, user_id = arg
        with engine.begin() as conn:
            conn.execute(tasks.update().where(tasks.c.key == key)
                         .values(status="done", completed_at=dt.datetime.now(dt.timezone.utc), completed_by=user_id))

    client = await Client.connect(address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with ThreadPoolExecutor(POOL) as pool:
        # the same settings as runtime.worker.make_worker: 8 activity threads, as many workflow-task polls, the same sandboxed runner
        worker = Worker(client, task_queue=queue, workflows=[BareWorkflow], activities=[create_row, complete_row], activity_executor=pool,
                        max_concurrent_activities=POOL, max_concurrent_workflow_task_polls=WORKFLOW_TASK_POLLS,
                        workflow_runner=workflow_runner())
        async with worker:
            print("bare worker running", flush=True)
            await stop.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    web = sub.add_parser("web")
    web.add_argument("--port", type=int, required=True)
    web.add_argument("--db", required=True)
    wk = sub.add_parser("worker")
    wk.add_argument("--address", required=True)
    wk.add_argument("--db", required=True)
    wk.add_argument("--queue", required=True)
    args = ap.parse_args()
    if args.what == "web":
        serve_web(args.port, args.db)
    else:
        asyncio.run(serve_worker(args.address, args.db, args.queue))


if __name__ == "__main__":
    main()
