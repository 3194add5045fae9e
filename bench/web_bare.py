"""The bare baselines of the web benchmark, each run as its own process like Tailor's server.

    python bench/web_bare.py web --port PORT --db PATH --token TOKEN --record-id ID
                                                              FastAPI + SQLAlchemy endpoints for a call note: POST /note a
                                                              `def` route, POST /note-async an `async def` one, doing by hand
                                                              what Tailor's submission does; POST /submit-async inserts one row
    python bench/web_bare.py worker --address HOST:PORT --db PATH --queue QUEUE
                                                              a temporalio worker for bench/bare_workflow.py

Both open SQLite through `runtime.db.make_engine` (WAL, BEGIN IMMEDIATE, busy timeout), as Tailor does, and
the web app runs under uvicorn with the settings `tailor run` uses (uvicorn.Config defaults, log level warning).
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Literal

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import sqlalchemy as sa  # noqa: E402
from fastapi import Body, Depends, FastAPI, Header, HTTPException, Request  # noqa: E402  (module level: string annotations resolve here)
from pydantic import BaseModel, ConfigDict, Field  # noqa: E402
from starlette.concurrency import run_in_threadpool  # noqa: E402

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
# what a call note touches, as a hand-written app would keep it: who holds a token, the companies, their contact
# history (one entry per submission key) and the answers already given per Idempotency-Key
bare_users = sa.Table(
    "bare_users", meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("email", sa.String(300)),
    sa.Column("roles", sa.JSON, nullable=False),
    sa.Column("token_hash", sa.String(64), unique=True),
    sa.Column("active", sa.Boolean, nullable=False),
)
bare_companies = sa.Table(
    "bare_companies", meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("title", sa.String(500)),
    sa.Column("data", sa.JSON, nullable=False),
)
bare_history = sa.Table(
    "bare_history", meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(300), unique=True),
    sa.Column("record_id", sa.Integer, nullable=False),
    sa.Column("summary", sa.String(500), nullable=False),
    sa.Column("data", sa.JSON),
    sa.Column("user_id", sa.Integer),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
)
bare_keys = sa.Table(
    "bare_keys", meta,
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("result", sa.JSON, nullable=False),
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


class CallNote(BaseModel):
    """The call_note form's fields, as a hand-written app would declare them."""

    model_config = ConfigDict(extra="forbid")
    person: Annotated[int, Field(ge=1)] | None = None
    direction: Literal["inbound", "outbound"]
    subject: Annotated[str, Field(min_length=1, max_length=200)]
    notes: Annotated[str, Field(max_length=10_000)] | None = None
    minutes: Annotated[int, Field(ge=0)] | None = None


class NoteBody(BaseModel):
    record_id: Annotated[int, Field(strict=True, ge=1)]
    values: CallNote


_BY_TOKEN = sa.select(bare_users).where(bare_users.c.token_hash == sa.bindparam("token_hash"), bare_users.c.active)
_DONE = sa.select(bare_keys.c.result).where(bare_keys.c.key == sa.bindparam("key"))
_COMPANY = sa.select(bare_companies).where(bare_companies.c.id == sa.bindparam("id"))
_ADD_ENTRY = bare_history.insert().returning(bare_history.c.id)  # built once, values as parameters: compiled once
_KEEP = bare_keys.insert()


def token_user(conn: sa.Connection, authorization: str) -> dict:
    """The active user whose token the Authorization header carries (401 otherwise), allowed to submit forms (403)."""
    token = authorization[7:].strip() if authorization.lower().startswith("bearer ") else ""
    row = conn.execute(_BY_TOKEN, {"token_hash": hashlib.sha256(token.encode()).hexdigest()}).mappings().first() if token else None
    if row is None:
        raise HTTPException(401, "bad token", headers={"WWW-Authenticate": "Bearer"})
    if "staff" not in row["roles"]:
        raise HTTPException(403, "not allowed")
    return dict(row)


def record_note(engine: sa.Engine, user: dict, body: NoteBody, idempotency_key: str) -> dict:
    """One transaction: a repeat gets the first answer; else the company is read, the note added to its history,
    the answer kept under the key."""
    key = f"submission:api-{user['id']}-{idempotency_key}"
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as conn:
        done = conn.execute(_DONE, {"key": key}).scalar()
        if done is not None:
            return done
        company = conn.execute(_COMPANY, {"id": body.record_id}).mappings().first()
        if company is None:
            raise HTTPException(422, f"there is no company {body.record_id}")
        values = body.values.model_dump(exclude_none=True)
        entry = conn.execute(_ADD_ENTRY, {"key": key, "record_id": company["id"], "summary": "Phone call",
                                          "data": {"form": "call_note", "values": values}, "user_id": user["id"],
                                          "occurred_at": now}).scalar_one()
        result = {"submission_id": key, "history_id": entry, "created": {}, "processes": [], "replayed": False}
        conn.execute(_KEEP, {"key": key, "result": result, "created_at": now})
    return result


def caller(request: Request, authorization: Annotated[str, Header()] = "") -> dict:
    """The token's user; a plain `def` dependency, so FastAPI runs it in its thread pool, as the `def` route below."""
    with request.app.state.engine.connect() as conn:
        return token_user(conn, authorization)


def create_app(engine: sa.Engine):
    """FastAPI endpoints for a call note written by hand (the work Tailor's submission does, without a platform), and
    the least an endpoint can do for a submission: parse the JSON body, insert one row, answer 201."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.engine = engine

    @app.post("/note", status_code=201)
    def note(body: NoteBody, user: Annotated[dict, Depends(caller)], idempotency_key: Annotated[str, Header(min_length=1)]) -> dict:
        return record_note(engine, user, body, idempotency_key)

    @app.post("/note-async", status_code=201)
    async def note_async(body: NoteBody, idempotency_key: Annotated[str, Header(min_length=1)],
                         authorization: Annotated[str, Header()] = "") -> dict:
        # an `async def` route that keeps the database off the event loop, as Tailor must (a slow query never holds
        # other requests up): the token's lookup, then the transaction, each in the thread pool
        def lookup() -> dict:
            with engine.connect() as conn:
                return token_user(conn, authorization)

        user = await run_in_threadpool(lookup)
        return await run_in_threadpool(record_note, engine, user, body, idempotency_key)

    @app.post("/submit-async", status_code=201)
    async def submit_async(body: Annotated[dict, Body()], idempotency_key: Annotated[str, Header()]) -> dict:
        # for scale: what the HTTP stack and one insert cost, on the event loop
        with engine.begin() as conn:
            new_id = conn.execute(submissions.insert().values(key=idempotency_key, record_id=body.get("record_id"), payload=body,
                                                              created_at=dt.datetime.now(dt.timezone.utc))
                                  .returning(submissions.c.id)).scalar_one()
        return {"id": new_id}

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    return app


def seed(engine: sa.Engine, token: str, record_id: int) -> None:
    """The bench's user (its token stored as a digest, as Tailor stores it) and the company the notes are about."""
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(bare_users.insert().values(name="Bench User", email="bench@example.com", roles=["staff", "sales_manager"],
                                                token_hash=hashlib.sha256(token.encode()).hexdigest(), active=True))
        conn.execute(bare_companies.insert().values(id=record_id, title="Company 000000", data={"name": "Company 000000"}))


def serve_web(port: int, db: str, token: str, record_id: int) -> None:
    import uvicorn

    from admin.run import GRACE_SECONDS

    engine = make_engine(f"sqlite:///{db}")
    seed(engine, token, record_id)
    # as admin.run.serve_web: the same uvicorn.Config, served with `asyncio.run(server.serve())`, so both sides get the
    # same event loop and HTTP parser (uvicorn picks httptools if it is installed, for both)
    server = uvicorn.Server(uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning",
                                           timeout_graceful_shutdown=GRACE_SECONDS))
    asyncio.run(server.serve())


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
        # with the workflow's module passed through
        worker = Worker(client, task_queue=queue, workflows=[BareWorkflow], activities=[create_row, complete_row], activity_executor=pool,
                        max_concurrent_activities=POOL, max_concurrent_workflow_task_polls=WORKFLOW_TASK_POLLS,
                        workflow_runner=workflow_runner(BareWorkflow))
        async with worker:
            print("bare worker running", flush=True)
            await stop.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    web = sub.add_parser("web")
    web.add_argument("--port", type=int, required=True)
    web.add_argument("--db", required=True)
    web.add_argument("--token", required=True)
    web.add_argument("--record-id", type=int, required=True)
    wk = sub.add_parser("worker")
    wk.add_argument("--address", required=True)
    wk.add_argument("--db", required=True)
    wk.add_argument("--queue", required=True)
    args = ap.parse_args()
    if args.what == "web":
        serve_web(args.port, args.db, args.token, args.record_id)
    else:
        asyncio.run(serve_worker(args.address, args.db, args.queue))


if __name__ == "__main__":
    main()
