"""Notification benchmark: how soon a new task reaches its assignee's open page, with 1,000 pages open on one server.

1. Tailor's app (the CRM pack, no process engine: the stream needs none) under uvicorn with the settings `tailor run`
   uses, in its own process, on a SQLite file (and on PostgreSQL with --postgres, or when it answers at the usual
   address). --pages users each get a session (written as the login form writes it) and one open page: a raw
   socket on GET /notifications/stream that reads its Server-Sent Events. Once every page has its first count,
   --assignments times: a random one of those users is assigned a new task by `runtime.tasks.create_task`, called
   here in this (the benchmark's) process as a worker process would call it, and the time from that call to the
   user's page receiving the new count is measured.
2. The bare baseline, in the same run: a minimal FastAPI app (the same EventSourceResponse, the same uvicorn) whose
   streams wait on an asyncio event per user; the benchmark's POST /poke/USER sets it. It is the floor: no
   session check, no database, no poller.

Also: the server's CPU while the pages sit idle (keep-alives, the poller), its memory, and how long opening every
page took. Prints a table and rewrites this benchmark's section of docs/benchmarks.md.

    .venv/bin/python bench/notify_bench.py [--pages 1000] [--assignments 50] [--postgres URL | --no-postgres] [--no-write]

The servers (internal):  notify_bench.py serve --db URL --port PORT --secret S  |  notify_bench.py bare --port PORT
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import os
import random
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # runnable from a checkout without `pip install -e .`
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa  # noqa: E402

from report import code_state, load_average, machine_basics, write_section  # noqa: E402

DOCS = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- notify-bench:start -->", "<!-- notify-bench:end -->"
CRM = ROOT / "definitions" / "crm"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
GOAL_P95 = 1.0
SECRET = "notify-bench-secret"


# -- the servers ----------------------------------------------------------------------------------------------------

def serve(db: str, port: int, secret: str) -> None:
    """Tailor's app under uvicorn as `tailor run` starts it (uvicorn.Config defaults, log level warning, 5 s to stop)."""
    import uvicorn

    from admin.app import create_app
    from engine.compiler import compile_model
    from engine.loader import load
    from runtime.db import make_engine

    from admin.run import GRACE_SECONDS

    app = create_app(make_engine(db), compile_model(load([CRM])), None, secret_key=secret)
    uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=GRACE_SECONDS)).run()


def bare(port: int) -> None:
    """The least an SSE endpoint can do: each stream waits on its user's asyncio event; POST /poke/USER sets it."""
    import uvicorn
    from fastapi import FastAPI
    from fastapi.sse import EventSourceResponse, ServerSentEvent

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    counts: dict[str, int] = {}
    waiting: dict[str, set[asyncio.Event]] = {}

    @app.get("/stream/{user}", response_class=EventSourceResponse)
    async def stream(user: str):
        event = asyncio.Event()
        waiting.setdefault(user, set()).add(event)
        try:
            seen = None
            while True:
                event.clear()
                if counts.get(user, 0) != seen:
                    seen = counts.get(user, 0)
                    yield ServerSentEvent(data=seen, event="unread")
                    continue
                await event.wait()
        finally:
            waiting[user].discard(event)

    @app.post("/poke/{user}")
    async def poke(user: str) -> dict:
        counts[user] = counts.get(user, 0) + 1
        for event in waiting.get(user, ()):
            event.set()
        return {"unread": counts[user]}

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")).run()


def launch(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *args], cwd=ROOT, stdout=open(log, "ab"),
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def wait_up(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s:\n{log.read_text(errors='replace')[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    """Stop a server we started: SIGINT (uvicorn waits for open streams, so the pages are closed first), then kill."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# -- the database ------------------------------------------------------------------------------------------------------

def prepare(url: str, pages: int) -> tuple[sa.Engine, list[tuple[str, str]]]:
    """The platform tables and the CRM pack's, `pages` staff users each with a live session: [(username, cookie)]."""
    from itsdangerous import TimestampSigner

    from admin.sessions import open_session
    from engine.compiler import compile_model
    from engine.loader import load
    from runtime.db import make_engine, upgrade
    from runtime.plan import apply, plan
    from runtime.schema import users

    compiled = compile_model(load([CRM]))
    engine = make_engine(url)
    signer = TimestampSigner(SECRET)  # as starlette's SessionMiddleware signs the session cookie
    now = dt.datetime.now(dt.timezone.utc)
    people = []
    with engine.begin() as conn:
        upgrade(conn)
        apply(conn, compiled, plan(conn, compiled))
        ids = conn.execute(users.insert().returning(users.c.id, users.c.username),
                           [{"username": f"user{i:04d}", "name": f"User {i:04d}", "email": f"user{i:04d}@example.com", "roles": ["staff"],
                             "created_at": now} for i in range(pages)]).all()
        for uid, name in ids:
            data = base64.b64encode(json.dumps({"sid": open_session(conn, uid)}).encode())
            people.append((name, signer.sign(data).decode()))
    return engine, people


def assign(engine: sa.Engine, username: str, n: int) -> None:
    """A new task for `username`, written as the worker's create_task activity writes it (and notifies in it)."""
    from runtime import tasks as task_service

    from runtime.routing import Route
    from runtime.schema import users

    with engine.begin() as conn:
        holder = conn.execute(sa.select(users.c.id).where(users.c.username == username)).scalar_one()
        task_service.create_task(conn, f"bench-{uuid.uuid4().hex}:call", {
            "workflow_id": f"bench-{n}", "process": "bench", "step_id": "call", "title": f"Call customer {n}",
            "due_at": dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)}, lambda: Route(holder, None))


# -- an open page: one socket reading Server-Sent Events ----------------------------------------------------------------

@dataclass
class Page:
    user: str
    count: int | None = None
    waiting: tuple[int, asyncio.Future] | None = None
    first: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    task: asyncio.Task | None = None
    writer: asyncio.StreamWriter | None = None

    async def open(self, port: int, path: str, cookie: str | None) -> None:
        reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n"
        head += f"Cookie: tailor_session={cookie}\r\n" if cookie else ""
        self.writer.write((head + "\r\n").encode())
        status = await reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(f"{path} answered {status.decode().strip()}")
        while (await reader.readline()) not in (b"\r\n", b""):
            pass  # the headers (chunked, text/event-stream)
        self.task = asyncio.get_running_loop().create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        buffer, event, data = b"", None, None
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                return
            buffer += await reader.readexactly(size)
            await reader.readexactly(2)
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                line = line.rstrip(b"\r")
                if line.startswith(b"event:"):
                    event = line[6:].strip()
                elif line.startswith(b"data:"):
                    data = line[5:].strip()
                elif line == b"" and data is not None:
                    if event == b"unread":
                        self._heard(int(data), time.perf_counter())
                    event = data = None

    def _heard(self, count: int, at: float) -> None:
        self.count = count
        if not self.first.done():
            self.first.set_result(at)
        if self.waiting and count == self.waiting[0] and not self.waiting[1].done():
            self.waiting[1].set_result(at)

    def expect(self, count: int) -> asyncio.Future:
        self.waiting = (count, asyncio.get_running_loop().create_future())
        return self.waiting[1]

    async def close(self) -> None:
        if self.task:
            self.task.cancel()
        if self.writer:
            self.writer.close()


@dataclass
class Phase:
    """One side's figures."""

    name: str
    pages: int
    opened_s: float = 0.0
    idle_cpu: float = 0.0            # server CPU seconds per second with every page open and nothing happening
    rss_before: float = 0.0
    rss_open: float = 0.0
    latencies: list[float] = field(default_factory=list)
    missed: int = 0
    busy_cpu: float = 0.0            # server CPU seconds per second during the assignments

    def pct(self, p: float) -> float:
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs) + 0.5) - 1))] if xs else float("nan")


async def run_phase(name: str, pid: int, port: int, people: list[tuple[str, str | None]], path_of, trigger, assignments: int,
                    idle: float, seed: int) -> Phase:
    phase = Phase(name, len(people), rss_before=rss_mib(pid))
    pages = [Page(user) for user, _ in people]
    gate = asyncio.Semaphore(50)  # connections being opened at once (a browser opens its page's stream on load)

    async def open_one(page: Page, cookie: str | None) -> None:
        async with gate:
            await page.open(port, path_of(page.user), cookie)
            await asyncio.wait_for(page.first, 60)

    started = time.perf_counter()
    await asyncio.gather(*(open_one(page, cookie) for page, (_, cookie) in zip(pages, people)))
    phase.opened_s = time.perf_counter() - started
    await asyncio.sleep(1.0)
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    await asyncio.sleep(idle)
    phase.idle_cpu = (cpu_seconds(pid) - cpu0) / (time.perf_counter() - t0)
    phase.rss_open = rss_mib(pid)
    rng = random.Random(seed)
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    for n in range(assignments):
        await asyncio.sleep(rng.uniform(0.2, 0.6))  # not in step with the poller
        page = rng.choice(pages)
        heard = page.expect((page.count or 0) + 1)
        sent = time.perf_counter()
        await trigger(page.user, n)
        try:
            phase.latencies.append(await asyncio.wait_for(heard, 10) - sent)
        except TimeoutError:
            phase.missed += 1
    phase.busy_cpu = (cpu_seconds(pid) - cpu0) / (time.perf_counter() - t0)
    await asyncio.gather(*(p.close() for p in pages))
    return phase


async def tailor_phase(name: str, url: str, pages: int, assignments: int, idle: float, work: Path, seed: int) -> Phase:
    engine, people = await asyncio.to_thread(prepare, url, pages)
    port, log = free_port(), work / f"{name}.log"
    proc = launch(["serve", "--db", url, "--port", str(port), "--secret", SECRET], log)
    try:
        await asyncio.to_thread(wait_up, f"http://127.0.0.1:{port}/health", proc, log)

        async def trigger(user: str, n: int) -> None:
            await asyncio.to_thread(assign, engine, user, n)

        return await run_phase(name, proc.pid, port, people, lambda _: "/notifications/stream", trigger, assignments, idle, seed)
    finally:
        stop(proc)
        engine.dispose()


async def bare_phase(pages: int, assignments: int, idle: float, work: Path, seed: int) -> Phase:
    port, log = free_port(), work / "bare.log"
    proc = launch(["bare", "--port", str(port)], log)
    try:
        await asyncio.to_thread(wait_up, f"http://127.0.0.1:{port}/health", proc, log)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        async def trigger(user: str, n: int) -> None:  # one keep-alive connection, as the worker keeps its database one
            writer.write(f"POST /poke/{user} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n".encode())
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)

        people = [(f"user{i:04d}", None) for i in range(pages)]
        try:
            return await run_phase("bare", proc.pid, port, people, lambda user: f"/stream/{user}", trigger, assignments, idle, seed)
        finally:
            writer.close()
    finally:
        stop(proc)


def postgres_schema(url: str) -> tuple[str, callable] | None:
    """A fresh schema on PostgreSQL for the run: (its URL, drop it); None when the server does not answer."""
    try:
        admin = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), connect_args={"connect_timeout": 3})
        name = f"notify_bench_{uuid.uuid4().hex[:8]}"
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {name}")
    except Exception as exc:  # no PostgreSQL here: the run goes on with SQLite alone
        print(f"PostgreSQL at {url} does not answer ({type(exc).__name__}): SQLite only")
        return None

    def drop() -> None:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {name} CASCADE")
        admin.dispose()

    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{name}", drop


# -- the report ----------------------------------------------------------------------------------------------------------

def ms(x: float) -> str:
    return f"{x * 1000:.0f} ms" if x >= 0.01 else f"{x * 1000:.1f} ms"


def section(phases: list[Phase], args, took: float) -> str:
    bare_phase_ = next(p for p in phases if p.name == "bare")
    rows = []
    for p in phases:
        ratio = "" if p is bare_phase_ else f"{p.pct(50) / bare_phase_.pct(50):.0f}x / {p.pct(95) / bare_phase_.pct(95):.0f}x"
        met = "" if p is bare_phase_ else ("met" if p.pct(95) <= GOAL_P95 and not p.missed else "**not met**")
        rows.append(f"| {p.name} | {p.pages:,} | {len(p.latencies)}/{len(p.latencies) + p.missed} | {ms(p.pct(50))} | {ms(p.pct(95))} | "
                    f"{ms(p.pct(99))} | {ms(max(p.latencies))} | {ratio} | {met} |")
    load = [f"| {p.name} | {p.opened_s:.1f} s | {p.idle_cpu * 100:.1f}% | {p.busy_cpu * 100:.1f}% | "
            f"{p.rss_before:.0f} → {p.rss_open:.0f} MiB |" for p in phases]
    versions = ", ".join(f"{d} {metadata.version(d)}" for d in ("fastapi", "starlette", "uvicorn", "SQLAlchemy", "psycopg"))
    facts = {**machine_basics(), "libraries": f"{versions}, SQLite {sqlite3.sqlite_version} (uvicorn's h11 and asyncio loop: "
                                              "httptools and uvloop are not installed)",
             "engine": code_state(("admin", "runtime")), "load average": load_average(": the machine is shared; other work slows "
                                                                                       "every figure")}
    return "\n".join([
        START,
        "## Notification benchmark",
        "",
        f"How soon a new task reaches its assignee's open page, with {args.pages:,} pages open on one server process, measured by "
        "`bench/notify_bench.py`. **Goal** (from the issue): p95 ≤ 1 s.",
        "",
        "Seconds from the assignment (`runtime.tasks.create_task` called by the benchmark, in its own process, as the worker "
        "calls it: the task row and its notification in one transaction) to the assignee's page receiving the new count "
        "from `GET /notifications/stream`; "
        f"{args.assignments} assignments, each to a random user of the {args.pages:,} with a page open, 0.2–0.6 s apart. "
        "*bare* is the floor measured in the same run: a minimal FastAPI app with the same EventSourceResponse and uvicorn "
        "whose streams wait on an asyncio event per user, set by the benchmark's `POST /poke/USER` (no session, no "
        "database, no poller); *ratio* is Tailor's p50 / p95 over bare's. Nearest-rank percentiles.",
        "",
        "| server | open pages | delivered | p50 | p95 | p99 | max | ratio to bare (p50 / p95) | goal p95 ≤ 1 s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        "| server | opening every page (session check + first count) | server CPU, pages idle | server CPU, during assignments "
        "| server memory (RSS) before → with the pages open |",
        "| --- | ---: | ---: | ---: | ---: |",
        *load,
        "",
        "Why Tailor is slower than bare, and by design: the web process learns of a notification another process wrote "
        "by looking, not by being told. One poller per process (`runtime.notifications.UnreadWatch`) reads the "
        "notifications table's highest id every 250 ms (one index lookup), then the counts of the recipients of new rows "
        "(one grouped query), and wakes only their pages; so the wait is on average half the interval plus the queries. "
        "No page holds a database connection or a thread: an open page is a socket and a few asyncio tasks, waiting on "
        "an event. Opening a page costs one session lookup (the only database work per page); the idle CPU is the poller "
        "and FastAPI's keep-alive comment on each stream every 15 s.",
        "",
        "Server: `uvicorn.Config(app, host, port, log_level='warning', timeout_graceful_shutdown=5)` as `tailor run` starts "
        "it: one process, h11, no `limit_concurrency`. Each open page is one socket: the process's open-file limit must be above the pages it "
        "serves (here " + str(resource.getrlimit(resource.RLIMIT_NOFILE)[0]) + "; many systems start at 1,024).",
        "",
        f"Measured {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC in {took / 60:.1f} min on:",
        "",
        *(f"- {k}: {v}" for k, v in facts.items()),
        "",
        "Run it again with `.venv/bin/python bench/notify_bench.py` (rewrites this section).",
        END,
    ]) + "\n"


def table(phases: list[Phase]) -> str:
    lines = [f"{'server':<12} {'pages':>6} {'delivered':>10} {'p50':>9} {'p95':>9} {'p99':>9} {'max':>9} {'open':>7} {'idle cpu':>9}"]
    for p in phases:
        lines.append(f"{p.name:<12} {p.pages:>6} {len(p.latencies):>5}/{len(p.latencies) + p.missed:<4} {ms(p.pct(50)):>9} "
                     f"{ms(p.pct(95)):>9} {ms(p.pct(99)):>9} {ms(max(p.latencies) if p.latencies else float('nan')):>9} "
                     f"{p.opened_s:>6.1f}s {p.idle_cpu * 100:>8.1f}%")
    return "\n".join(lines)


async def measure(args) -> list[Phase]:
    work = Path(tempfile.mkdtemp(prefix="notify-bench-"))
    phases = [await tailor_phase("sqlite", f"sqlite:///{work / 'tailor.db'}", args.pages, args.assignments, args.idle, work, 1)]
    pg = None if args.no_postgres else postgres_schema(args.postgres)
    if pg is not None:
        url, drop = pg
        try:
            phases.append(await tailor_phase("postgresql", url, args.pages, args.assignments, args.idle, work, 2))
        finally:
            drop()
    phases.append(await bare_phase(args.pages, args.assignments, args.idle, work, 1))
    return phases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    s = sub.add_parser("serve")
    s.add_argument("--db", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--secret", required=True)
    b = sub.add_parser("bare")
    b.add_argument("--port", type=int, required=True)
    parser.add_argument("--pages", type=int, default=1000, help="open pages, one per user (default 1000)")
    parser.add_argument("--assignments", type=int, default=50, help="tasks assigned, one at a time (default 50)")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds to measure the idle server's CPU (default 5)")
    parser.add_argument("--postgres", default=PG_URL, help=f"PostgreSQL to measure too (default {PG_URL}; skipped if it does not answer)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.db, args.port, args.secret)
        return 0
    if args.command == "bare":
        bare(args.port)
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * args.pages + 200  # the benchmark's sockets; the servers (our children) inherit the limit
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    started = time.monotonic()
    phases = asyncio.run(measure(args))
    print(table(phases))
    tailor = [p for p in phases if p.name != "bare"]
    ok = all(p.latencies and not p.missed for p in phases)
    if not args.no_write:
        write_section(DOCS, START, END, section(phases, args, time.monotonic() - started))
        print(f"wrote {DOCS.relative_to(ROOT)}")
    return 0 if ok and all(p.pct(95) <= GOAL_P95 for p in tailor) else 1


if __name__ == "__main__":
    sys.exit(main())
