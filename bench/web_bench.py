"""Web benchmark: form submissions and directory searches through Tailor's whole web stack, next to bare baselines.

1. Submissions/s, latency and server CPU per request of POST /api/forms/call_note/submissions (a contact form
   that starts no process) on `tailor run` (uvicorn, SQLite file, the CRM pack), next to the same work written
   by hand in FastAPI + SQLAlchemy (bench/web_bare.py: token lookup, idempotency key, record read, history entry;
   its own uvicorn process, same uvicorn and SQLite settings), same client; and an endpoint that only inserts
   one row, for scale.
2. The same with lead_enquiry (creates an opportunity, starts lead_follow_up) on the dev server `tailor run`
   embeds, next to the bare temporalio start rate on that same dev server (bench/bare_workflow.py with its
   worker in its own process, bench/web_bare.py).
3. Directory search over 100,000 companies: p95 of GET /directory/company?f1=industry&o1=eq&v1=… (logged in
   through the login form) and of GET /api/records/company?industry=… (bearer token).

Everything runs on loopback: the servers are subprocesses, the client is an httpx.AsyncClient with a bounded
number of requests in flight. Prints a table and rewrites this benchmark's section of docs/benchmarks.md.

    .venv/bin/python bench/web_bench.py [--quick] [--no-write]
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Awaitable, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # runnable from a checkout without `pip install -e .`

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from argon2 import PasswordHasher  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from temporalio.client import Client  # noqa: E402

from admin.access import new_token  # noqa: E402
from admin.run import prepare  # noqa: E402
from bare_workflow import BareWorkflow  # noqa: E402
from engine.compiler import CompiledModel  # noqa: E402
from runtime import records  # noqa: E402
from runtime.schema import contact_history, tasks, users  # noqa: E402
from runtime.settings import Settings  # noqa: E402

DOCS = ROOT / "docs" / "benchmarks.md"
from report import code_state, load_average, machine_basics, write_section  # noqa: E402

START, END = "<!-- web-bench:start -->", "<!-- web-bench:end -->"
CRM = ROOT / "definitions" / "crm"
BIN = Path(sys.executable).parent
CONCURRENCY = 32  # requests in flight at once, for Tailor and the baselines alike
GOALS = {"plain": 0.70, "cpu": 0.90, "process": 0.80, "search_p95": 0.200}
INDUSTRIES = ["healthcare", "public_sector", "education", "finance", "manufacturing", "retail", "technology", "other"]
STATUSES = ["prospect", "customer", "former"]
console = Console(width=max(150, Console().width))
T0 = time.perf_counter()


def say(text: str) -> None:
    console.print(f"{time.perf_counter() - T0:6.1f}s {text}", highlight=False)


@dataclass
class Sizes:
    rounds: int            # alternating Tailor/bare rounds, both parts
    plain: int             # part 1: submissions per side per round
    process: int           # part 2: submissions (starts) per side per round
    companies: int         # part 3
    searches: int          # part 3: repetitions per kind of search


FULL = Sizes(rounds=3, plain=2000, process=200, companies=100_000, searches=200)
QUICK = Sizes(rounds=1, plain=400, process=60, companies=20_000, searches=60)


# -- helpers ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_temporal_port() -> int:
    """A port p with p + 1000 free too: `tailor run` puts the dev server's UI 1000 above its gRPC port."""
    for _ in range(100):
        p = free_port()
        if p + 1000 < 65536:
            try:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p + 1000))
                return p
            except OSError:
                continue
    raise RuntimeError("no free pair of ports")


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (not its children), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    out = []
    for t in Path(f"/proc/{pid}/task").iterdir():
        out += [int(x) for x in (t / "children").read_text().split()]
    return out


class CpuMeter:
    """CPU used by some processes (and this one, the client) between start() and stop(), as a share of one core."""

    def __init__(self, pids: dict[str, int]):
        self.pids = pids

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self.c0 = {k: cpu_seconds(p) for k, p in self.pids.items()}
        self.me0 = time.process_time()

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self.t0
        out = {k: (cpu_seconds(p) - self.c0[k]) / wall for k, p in self.pids.items()}
        out["client"] = (time.process_time() - self.me0) / wall
        out["wall"] = wall
        return out


def count(engine: sa.Engine, query: sa.Select) -> int:
    with engine.connect() as conn:
        return conn.execute(query).scalar()


async def wait_count(engine: sa.Engine, query: sa.Select, target: int, timeout: float, every: float = 0.05) -> int:
    deadline = time.monotonic() + timeout
    n = 0
    while time.monotonic() < deadline:
        n = await asyncio.to_thread(count, engine, query)
        if n >= target:
            return n
        await asyncio.sleep(every)
    return n


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:3]} exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s:\n{log.read_text(errors='replace')[-3000:]}")


def launch(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=open(log, "ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)


def stop(proc: subprocess.Popen | None, sig: int = signal.SIGINT) -> None:
    """Stop a server we started (its whole session: `tailor run` has the dev server as a child)."""
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# -- the database: users, companies --------------------------------------------------------


def company_data(i: int) -> dict:
    """What create_record stores in `data` for these values (checked against it for record 0)."""
    return {"name": f"Company {i:06d}", "status": STATUSES[i % 3], "industry": INDUSTRIES[i % len(INDUSTRIES)], "employees": i % 5000,
            "country": "United Kingdom"}


def seed(engine: sa.Engine, compiled: CompiledModel, n: int) -> dict:
    """A staff user with a password and an API token, and n companies (the first through create_record, the rest in bulk)."""
    token, digest = new_token()
    now = dt.datetime.now(dt.timezone.utc)
    table = compiled.metadata.tables["company"]
    with engine.begin() as conn:
        user_id = conn.execute(users.insert().values(username="bench", name="Bench User", email="bench@example.com",
                                                     roles=["staff", "sales_manager"], password_hash=PasswordHasher().hash("bench-pass"),
                                                     api_token_hash=digest, created_at=now).returning(users.c.id)).scalar_one()
        given = {k: v for k, v in company_data(0).items() if k != "country"}  # country is the entity's default
        first = records.create_record(conn, compiled, "company", given, user_id)
        stored = conn.execute(sa.select(table.c.data).where(table.c.id == first.id)).scalar_one()
        assert stored == company_data(0) and list(stored) == list(company_data(0)), (stored, company_data(0))
        for ix in table.indexes:  # building them once afterwards is much faster than n updates of each
            ix.drop(conn)
    t0 = time.perf_counter()
    with engine.begin() as conn:
        for start in range(1, n, 20_000):
            conn.execute(table.insert(), [{"title": (d := company_data(i))["name"], "data": d, "record_fields": {}, "row_version": 1,
                                           "created_at": now, "updated_at": now} for i in range(start, min(n, start + 20_000))])
        for ix in table.indexes:
            ix.create(conn)
        conn.exec_driver_sql("ANALYZE")
    return {"token": token, "user_id": user_id, "company": first.id, "seconds": time.perf_counter() - t0}


# -- part 1 and 2: submissions ------------------------------------------------------------------


@dataclass
class Side:
    """Requests of one side over all rounds."""

    n: int = 0
    seconds: float = 0.0       # until every response (part 1) / every response and task row (part 2)
    ack_seconds: float = 0.0   # part 2: until every response
    latencies: list[float] = field(default_factory=list)
    cpu: list[dict] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.n / self.seconds if self.seconds else 0.0

    @property
    def ack_rate(self) -> float:
        return self.n / self.ack_seconds if self.ack_seconds else 0.0

    def cpu_mean(self, key: str) -> float:
        return sum(c[key] for c in self.cpu) / len(self.cpu) if self.cpu else 0.0

    def cpu_per_request(self, key: str) -> float:
        """CPU seconds process `key` used over all rounds, per request answered."""
        return sum(c[key] * c["wall"] for c in self.cpu) / self.n if self.n else 0.0


async def post_all(http: httpx.AsyncClient, url: str, n: int, body: Callable[[int], dict], headers: dict, tag: str,
                   expect: int = 201) -> tuple[float, list[float], list[dict]]:
    """POST n requests (unique Idempotency-Key each), CONCURRENCY at a time: (seconds, latencies, response bodies)."""
    lat: list[float] = [0.0] * n

    async def one(i: int) -> dict:
        t0 = time.perf_counter()
        r = await http.post(url, json=body(i), headers={**headers, "Idempotency-Key": f"{tag}-{i}"})
        lat[i] = time.perf_counter() - t0
        if r.status_code != expect:
            raise RuntimeError(f"POST {url} answered {r.status_code}: {r.text[:500]}")
        return r.json()

    t0 = time.perf_counter()
    out = await pooled(n, CONCURRENCY, one)
    return time.perf_counter() - t0, lat, out


def call_note(company: int) -> Callable[[int], dict]:
    return lambda i: {"record_id": company, "values": {"direction": "outbound", "subject": f"Renewal call {i}",
                                                       "notes": "Spoke about the renewal; they want a quote by Friday.", "minutes": 12}}


def lead(company: int) -> Callable[[int], dict]:
    return lambda i: {"record_id": company, "values": {"channel": "phone", "source": "website", "summary": f"30 seats ({i})",
                                                       "requirements": "Two sites, single sign-on.", "budget": "9000"}}


async def submissions(tailor_url: str, bare_url: str, token: str, company: int, tailor_db: sa.Engine, bare_db: sa.Engine,
                      temporal: str, meter: CpuMeter, sizes: Sizes, run: str) -> dict:
    auth = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    out: dict[str, Side] = {k: Side() for k in ("tailor", "bare", "bare_async", "bare_insert", "tailor_process", "bare_process")}
    history = sa.select(sa.func.count()).select_from(contact_history).where(contact_history.c.kind == "submission")
    follow_ups = sa.select(sa.func.count()).select_from(tasks).where(tasks.c.process == "lead_follow_up")
    bare_rows = sa.text("SELECT count(*) FROM bare_tasks")
    async with httpx.AsyncClient(limits=limits, timeout=120) as http:
        async def tailor_plain(tag: str, n: int, acc: Side | None) -> None:
            before = await asyncio.to_thread(count, tailor_db, history)
            meter.start()
            seconds, lat, _ = await post_all(http, f"{tailor_url}/api/forms/call_note/submissions", n, call_note(company), auth, tag)
            cpu = meter.stop()
            got = await asyncio.to_thread(count, tailor_db, history)
            assert got == before + n, (got, before, n)  # each submission recorded once in the contact history
            if acc:
                acc.n += n
                acc.seconds += seconds
                acc.latencies += lat
                acc.cpu.append(cpu)

        async def bare_plain(tag: str, n: int, acc: Side | None, route: str = "/note") -> None:
            meter.start()
            seconds, lat, _ = await post_all(http, f"{bare_url}{route}", n, call_note(company), auth, f"{tag}{route}")
            cpu = meter.stop()
            if acc:
                acc.n += n
                acc.seconds += seconds
                acc.latencies += lat
                acc.cpu.append(cpu)

        say(f"[1/3] warm-up, then call_note submissions: Tailor vs the same work written by hand in FastAPI + SQLAlchemy, "
            f"{CONCURRENCY} in flight ...")
        await tailor_plain(f"{run}-warm", 100, None)
        for route in ("/note", "/note-async", "/submit-async"):
            await bare_plain(f"{run}-warm", 100, None, route)
        t, b, ba, bi = out["tailor"], out["bare"], out["bare_async"], out["bare_insert"]
        sides = [lambda tag: tailor_plain(tag, sizes.plain, t), lambda tag: bare_plain(tag, sizes.plain, b),
                 lambda tag: bare_plain(tag, sizes.plain, ba, "/note-async"), lambda tag: bare_plain(tag, sizes.plain, bi, "/submit-async")]
        for r in range(sizes.rounds):
            for k in range(len(sides)):  # each round starts with the next side
                await sides[(r + k) % len(sides)](f"{run}-r{r}")
            say(f"      round {r + 1}/{sizes.rounds}: Tailor {t.rate:.0f}/s {cpu_per(t, 'tailor')}; bare {b.rate:.0f}/s "
                f"{cpu_per(b, 'bare_web')} (`def` route), {ba.rate:.0f}/s {cpu_per(ba, 'bare_web')} (`async def` route); "
                f"one insert {bi.rate:.0f}/s {cpu_per(bi, 'bare_web')}")

        client = await Client.connect(temporal)

        async def tailor_process(tag: str, n: int, acc: Side | None) -> None:
            before = await asyncio.to_thread(count, tailor_db, follow_ups)
            meter.start()
            t0 = time.perf_counter()
            seconds, lat, bodies = await post_all(http, f"{tailor_url}/api/forms/lead_enquiry/submissions", n, lead(company), auth, tag)
            assert all(len(x["processes"]) == 1 and x["created"].get("opportunity") for x in bodies), bodies[:3]
            got = await wait_count(tailor_db, follow_ups, before + n, 180)
            total = time.perf_counter() - t0
            cpu = meter.stop()
            if got < before + n:
                raise RuntimeError(f"only {got - before} of {n} lead follow-up tasks appeared")
            if acc:
                acc.n += n
                acc.seconds += total
                acc.ack_seconds += seconds
                acc.latencies += lat
                acc.cpu.append(cpu)

        async def bare_process(tag: str, n: int, acc: Side | None) -> None:
            before = await asyncio.to_thread(count, bare_db, bare_rows)
            lat: list[float] = [0.0] * n

            async def one(i: int) -> None:
                t1 = time.perf_counter()
                await client.start_workflow(BareWorkflow.run, f"{tag}-{i}", id=f"bare/{tag}-{i}", task_queue="bench-bare")
                lat[i] = time.perf_counter() - t1

            meter.start()
            t0 = time.perf_counter()
            await pooled(n, CONCURRENCY, one)
            ack = time.perf_counter() - t0
            got = await wait_count(bare_db, bare_rows, before + n, 180)
            total = time.perf_counter() - t0
            cpu = meter.stop()
            if got < before + n:
                raise RuntimeError(f"only {got - before} of {n} bare rows appeared")
            if acc:
                acc.n += n
                acc.seconds += total
                acc.ack_seconds += ack
                acc.latencies += lat
                acc.cpu.append(cpu)

        say("[2/3] warm-up, then lead_enquiry submissions (each starts lead_follow_up) vs bare temporalio starts ...")
        await tailor_process(f"{run}-pwarm", 30, None)
        await bare_process(f"{run}-pwarm", 30, None)
        t, b = out["tailor_process"], out["bare_process"]
        for r in range(sizes.rounds):
            order = [tailor_process, bare_process] if r % 2 == 0 else [bare_process, tailor_process]
            for fn in order:
                await fn(f"{run}-p{r}", sizes.process, t if fn is tailor_process else b)
            say(f"      round {r + 1}/{sizes.rounds}: Tailor {t.rate:.1f}/s (responses {t.ack_rate:.1f}/s), bare {b.rate:.1f}/s "
                f"(starts {b.ack_rate:.1f}/s)")
    return out


# -- part 3: directory search -------------------------------------------------------------------


def login(http: httpx.Client, base: str) -> None:
    page = http.get(f"{base}/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = http.post(f"{base}/login", data={"csrf_token": csrf, "username": "bench", "password": "bench-pass"})
    assert r.status_code == 303 and r.headers["location"] == "/", (r.status_code, r.text[:300])


def timed_gets(http: httpx.Client, urls: list[str], check: Callable[[httpx.Response, str], None], warm: int = 5) -> list[float]:
    times = []
    for i, url in enumerate(urls):
        t0 = time.perf_counter()
        r = http.get(url)
        dt_ = time.perf_counter() - t0
        check(r, url)
        if i >= warm:
            times.append(dt_)
    return times


def directory(base: str, token: str, engine: sa.Engine, compiled: CompiledModel, sizes: Sizes) -> dict:
    values = [INDUSTRIES[(i * 3) % len(INDUSTRIES)] for i in range(sizes.searches + 5)]
    matches = -(-sizes.companies // len(INDUSTRIES))
    out: dict[str, dict] = {}
    with httpx.Client(timeout=60, follow_redirects=False) as http:
        login(http, base)

        labels = {c.value: c.label for c in compiled.model.entities["company"].field("industry").choices}

        def page_ok(r: httpx.Response, url: str) -> None:
            value = url.rsplit("=", 1)[1]
            assert r.status_code == 200, (r.status_code, r.text[:300])
            assert re.search(r'<p class="count">(More than [\d,]+|[\d,]+) found', r.text) and f"<td>{labels[value]}</td>" in r.text, \
                r.text[-2000:]

        times = timed_gets(http, [f"{base}/directory/company?f1=industry&o1=eq&v1={v}" for v in values], page_ok)
        out["page"] = {"p50": pct(times, 50), "p95": pct(times, 95), "max": max(times), "n": len(times)}
        api = {"Authorization": f"Bearer {token}"}

        def api_ok(r: httpx.Response, url: str) -> None:
            value = url.rsplit("=", 1)[1]
            body = r.json()
            assert r.status_code == 200 and len(body["items"]) == 50 and all(x["data"]["industry"] == value for x in body["items"]), body
            out.setdefault("api_total", body["total"])

        http.headers.update(api)
        times = timed_gets(http, [f"{base}/api/records/company?industry={v}" for v in values], api_ok)
        out["api"] = {"p50": pct(times, 50), "p95": pct(times, 95), "max": max(times), "n": len(times)}
    # The same searches in this process, without HTTP: how much of each figure is the database
    for name, sort in (("sort_title", "title"), ("sort_id", "id")):
        times = []
        for i, v in enumerate(values):
            t0 = time.perf_counter()
            with engine.connect() as conn:
                found = records.search_records(conn, compiled, "company", {"industry": v}, sort=sort, page_size=50)
            if i >= 5:
                times.append(time.perf_counter() - t0)
            assert len(found.items) == 50
        out[name] = {"p50": pct(times, 50), "p95": pct(times, 95), "max": max(times), "n": len(times)}
    out["matches"] = matches
    return out


# -- the run ----------------------------------------------------------------------------------


async def run_all(tmp: Path, sizes: Sizes) -> dict:
    data_dir = tmp / "var"
    settings = Settings(data_dir=data_dir, packs=(str(CRM),))
    engine, compiled = prepare(settings, echo=lambda *_: None)
    say(f"seeding {sizes.companies:,} companies ...")
    seeded = seed(engine, compiled, sizes.companies)
    say(f"      inserted and indexed in {seeded['seconds']:.1f} s")
    web_port, tport, bare_port = free_port(), free_temporal_port(), free_port()
    temporal = f"127.0.0.1:{tport}"
    env = {**os.environ, "TAILOR_DATA_DIR": str(data_dir), "TAILOR_PACKS": str(CRM), "TAILOR_TEMPORAL_ADDRESS": temporal,
           "TAILOR_TASK_QUEUE": "tailor", "TAILOR_SMTP_PORT": str(free_port()), "PYTHONUNBUFFERED": "1"}
    tailor = bare_web = bare_worker = None
    bare_db_path = tmp / "bare.db"
    reader = sa.create_engine(str(engine.url))  # a plain engine for polling (make_engine's begins IMMEDIATE: the write lock)
    bare_reader = sa.create_engine(f"sqlite:///{bare_db_path}")
    try:
        say("starting `tailor run` (dev server, worker, web app) and the bare web app ...")
        tailor = launch([str(BIN / "tailor"), "run", "--port", str(web_port)], env, tmp / "tailor.log")
        bare_web = launch([sys.executable, str(ROOT / "bench" / "web_bare.py"), "web", "--port", str(bare_port), "--db", str(bare_db_path),
                           "--token", seeded["token"], "--record-id", str(seeded["company"])], env, tmp / "bare-web.log")
        tailor_url, bare_url = f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{bare_port}"
        await asyncio.to_thread(wait_http, f"{tailor_url}/health", tailor, tmp / "tailor.log")
        await asyncio.to_thread(wait_http, f"{bare_url}/health", bare_web, tmp / "bare-web.log")
        bare_worker = launch([sys.executable, str(ROOT / "bench" / "web_bare.py"), "worker", "--address", temporal, "--db", str(bare_db_path),
                              "--queue", "bench-bare"], env, tmp / "bare-worker.log")
        deadline = time.monotonic() + 60
        while "bare worker running" not in (tmp / "bare-worker.log").read_text(errors="replace"):
            if bare_worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"bare worker did not start:\n{(tmp / 'bare-worker.log').read_text(errors='replace')[-3000:]}")
            await asyncio.sleep(0.2)
        deadline = time.monotonic() + 60
        while "[worker] worker running" not in (tmp / "tailor.log").read_text(errors="replace"):
            if tailor.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"tailor's worker did not start:\n{(tmp / 'tailor.log').read_text(errors='replace')[-3000:]}")
            await asyncio.sleep(0.2)
        pids = {"tailor": tailor.pid, "bare_web": bare_web.pid, "bare_worker": bare_worker.pid}
        for child in children(tailor.pid):  # the dev server and the worker process
            cmd = Path(f"/proc/{child}/cmdline").read_bytes()
            pids["temporal" if b"temporal" in cmd else "tailor_worker"] = child
        meter = CpuMeter(pids)
        out: dict[str, Any] = {"seeded": seeded}
        out["submissions"] = await submissions(tailor_url, bare_url, seeded["token"], seeded["company"], reader, bare_reader, temporal,
                                               meter, sizes, uuid.uuid4().hex[:8])
        say(f"[3/3] directory search over {sizes.companies:,} companies ...")
        out["search"] = await asyncio.to_thread(directory, tailor_url, seeded["token"], reader, compiled, sizes)
        return out
    finally:
        for p in (bare_worker, bare_web, tailor):
            stop(p)
        for e in (engine, reader, bare_reader):
            e.dispose()


# -- reporting -------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    try:
        temporal = subprocess.run([str(BIN / "temporal"), "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        temporal = "unknown"
    return {
        **machine_basics(),
        "libraries": ", ".join(f"{d} {metadata.version(d)}" for d in ("fastapi", "starlette", "uvicorn", "httpx", "SQLAlchemy", "temporalio"))
                     + f", SQLite {sqlite3.sqlite_version} ({http_stack()}, the same for both web apps)",
        "Temporal": temporal.splitlines()[0] if temporal else "unknown",
        "code": code_state(('runtime', 'engine', 'admin', 'forms')),
        "load average": load_average(': other work on the machine slows every figure and, on two cores, moves the ratios too'),
    }


def http_stack() -> str:
    """What uvicorn parses HTTP with: httptools if it is installed, else h11 (both sides run asyncio's own loop)."""
    import importlib.util

    parser = f"httptools {metadata.version('httptools')}" if importlib.util.find_spec("httptools") else "uvicorn's pure-Python h11"
    return f"{parser} and asyncio's event loop"


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def ms(x: float) -> str:
    return f"{x * 1000:.1f} ms"


def lat(side: Side) -> str:
    return f"p50 {ms(pct(side.latencies, 50))}, p99 {ms(pct(side.latencies, 99))}"


def bare_plain(s: dict) -> tuple[Side, str]:
    """The faster of the two bare routes: the baseline the throughput goal is judged against."""
    return (s["bare"], "`def` route") if s["bare"].rate >= s["bare_async"].rate else (s["bare_async"], "`async def` route")


def per_request(side: Side, key: str) -> float:
    """CPU seconds one process used per request answered."""
    return side.cpu_per_request(key)


def bare_cpu(s: dict) -> tuple[Side, str]:
    """The bare route that used less server CPU per request: the baseline the CPU goal is judged against."""
    return ((s["bare"], "`def` route") if per_request(s["bare"], "bare_web") <= per_request(s["bare_async"], "bare_web")
            else (s["bare_async"], "`async def` route"))


def summary_rows(res: dict, sizes: Sizes, cpu: bool = False) -> list[tuple[str, str, str, str]]:
    s, q = res["submissions"], res["search"]
    t, tp, bp = s["tailor"], s["tailor_process"], s["bare_process"]
    b, which = bare_plain(s)
    bc, cwhich = bare_cpu(s)
    bi = s["bare_insert"]
    n = f"{sizes.companies:,}"
    rows = [
        ("call_note submissions/s (no process)", f"Tailor {t.rate:.0f}, bare {b.rate:.0f}: {t.rate / b.rate:.0%} of bare (bare `def` route "
         f"{s['bare'].rate:.0f}, `async def` route {s['bare_async'].rate:.0f}; the faster counts)", "≥ 70% of bare",
         met(t.rate >= GOALS["plain"] * b.rate)),
        ("  latency, call_note", f"Tailor {lat(t)}; bare ({which}) {lat(b)}", "", ""),
        ("server CPU per call_note submission (the rate a saturated server core would allow)",
         f"Tailor {cpu_per(t, 'tailor')}; bare {cpu_per(bc, 'bare_web')} ({cwhich}; `def` route {cpu_per(s['bare'], 'bare_web')}, "
         f"`async def` route {cpu_per(s['bare_async'], 'bare_web')}; the lower counts): {per_ratio(t, 'tailor', bc, 'bare_web'):.0%} of bare",
         "≥ 90% of bare", met(per_ratio(t, 'tailor', bc, 'bare_web') >= GOALS["cpu"])),
        ("  for scale: a route that only inserts the body as one row", f"{bi.rate:.0f}/s, {cpu_per(bi, 'bare_web')}: Tailor's CPU per "
         f"submission is {per_ratio(t, 'tailor', bi, 'bare_web'):.0%} of it", "", ""),
        ("lead_enquiry submissions/s (response + follow-up task row)", f"Tailor {tp.rate:.1f}, bare temporalio starts (start + row) "
         f"{bp.rate:.1f}: {tp.rate / bp.rate:.0%} of bare", "≥ 80% of bare", met(tp.rate >= GOALS["process"] * bp.rate)),
        ("  responses/s only (workflow started, task not yet written)", f"Tailor {tp.ack_rate:.1f}, bare start_workflow calls "
         f"{bp.ack_rate:.1f}: {tp.ack_rate / bp.ack_rate:.0%}", "", ""),
        ("  latency, lead_enquiry", f"Tailor {lat(tp)}; bare start_workflow {lat(bp)}", "", ""),
        (f"directory page, {n} companies, filter industry ({q['matches']:,} matches, sorted by name)",
         f"p50 {ms(q['page']['p50'])}, p95 {ms(q['page']['p95'])}, max {ms(q['page']['max'])}", "p95 < 200 ms",
         met(q["page"]["p95"] < GOALS["search_p95"])),
        (f"GET /api/records/company?industry=…, {n} companies", f"p50 {ms(q['api']['p50'])}, p95 {ms(q['api']['p95'])}, "
         f"max {ms(q['api']['max'])}", "p95 < 200 ms", met(q["api"]["p95"] < GOALS["search_p95"])),
        ("  records.search_records in process (no HTTP)", f"sorted by title p95 {ms(q['sort_title']['p95'])}, by id p95 "
         f"{ms(q['sort_id']['p95'])}", "", ""),
    ]
    if cpu:  # on stdout only; the page says it in prose
        rows += [("CPU, share of one core: call_note", f"Tailor side: {cpu_text(t, ['tailor', 'client'])}; bare side: "
                  f"{cpu_text(b, ['bare_web', 'client'])}", "", ""),
                 ("CPU, share of one core: lead_enquiry", f"Tailor side: {cpu_text(tp, ['tailor', 'tailor_worker', 'temporal', 'client'])}; bare side: "
                  f"{cpu_text(bp, ['bare_worker', 'temporal', 'client'])}", "", "")]
    return rows


def cpu_per(side: Side, key: str) -> str:
    per = side.cpu_per_request(key)
    return f"{per * 1000:.2f} ms ({1 / per:.0f}/s per core)"


def per_ratio(a: Side, akey: str, b: Side, bkey: str) -> float:
    """Throughput ratio if each server were CPU-bound on one core (the GIL): bare's CPU per request over Tailor's."""
    return b.cpu_per_request(bkey) / a.cpu_per_request(akey)


def cpu_text(side: Side, keys: list[str]) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {side.cpu_mean(k):.0%}" for k in keys)


def markdown(res: dict, sizes: Sizes, quick: bool, info: dict[str, str], when: str, elapsed: float) -> str:
    s, q = res["submissions"], res["search"]
    t, tp, bp = s["tailor"], s["tailor_process"], s["bare_process"]
    b, which = bare_plain(s)
    _, cwhich = bare_cpu(s)
    lines = [START, "## Web benchmark", "",
             "Form submissions and directory searches through the whole web stack (`tailor run`: uvicorn, the CRM pack, a SQLite "
             "file, the embedded Temporal dev server and worker), next to bare baselines in the same run, measured by "
             "`bench/web_bench.py`" + (" **with `--quick`** (smaller sizes; run it without for the issue's sizes)" if quick else "") + ".",
             "", "| measure | figure | goal | |", "| --- | --- | --- | --- |"]
    lines += [f"| {m.strip()} | {f} | {g} | {ok} |" for m, f, g, ok in summary_rows(res, sizes)]
    lines += ["", "### How each figure is measured", "",
              f"- **Servers.** `tailor run --port …` as a subprocess (the web app in that process, the dev server and the worker "
              f"process its children; `TAILOR_DATA_DIR` a temporary folder, so SQLite through `runtime.db.make_engine`: WAL, `BEGIN IMMEDIATE`). "
              f"The bare web app (`bench/web_bare.py web`) is its own uvicorn process with the same uvicorn settings and the same "
              f"SQLite settings; the bare temporalio worker (`bench/web_bare.py worker`, `bench/bare_workflow.py`) its own process "
              f"with Tailor's worker settings (8 activity threads, the same sandboxed runner, its workflow module passed through) on the same dev server. The client is "
              f"this script: one `httpx.AsyncClient`, {CONCURRENCY} requests in flight for every side, a unique `Idempotency-Key` "
              f"per request; latency is per request as the client sees it (queueing included), nearest-rank percentiles.",
              f"- **Without a process.** `POST /api/forms/call_note/submissions` with a bearer token (API token lookup, form parse, "
              f"one transaction: the idempotency key looked up, the record read, a contact-history entry, the answer kept under the "
              f"key) against the same work written by hand (`bench/web_bare.py`): a pydantic model of the form's fields, the token's "
              f"user looked up by its SHA-256 digest and its role checked, then one transaction that looks the key up, reads the "
              f"company, inserts the history entry and keeps the answer — in `POST /note`, a plain `def` route with a `def` "
              f"dependency for the token (FastAPI's thread pool, the idiomatic way; {CONCURRENCY} threads then contend for SQLite's "
              f"write lock and wait in its busy handler), and in `POST /note-async`, an `async def` route that, as Tailor's, keeps the "
              f"database off the event loop so that a slow query never holds other requests up: the token lookup, then the "
              f"transaction, each through `run_in_threadpool`. (A route that queried SQLite on the event loop itself would use "
              f"less CPU, and stall every other request behind a slow one.) The faster ({which}) is the throughput baseline, the one that used less CPU per request "
              f"({cwhich}) the CPU baseline. `POST /submit-async` only inserts the body as one row: it shows what the HTTP stack "
              f"alone costs. {sizes.rounds} round(s) of {sizes.plain:,} per side, each round starting with the "
              f"next side, after 100 warm-up requests each; every Tailor submission is checked to appear once in the contact "
              f"history. Rates are totals over all rounds ({t.n:,} each; Tailor {t.seconds:.1f} s, bare {s['bare'].seconds:.1f} s and "
              f"{s['bare_async'].seconds:.1f} s). CPU while Tailor ran, as a share of one core: {cpu_text(t, ['tailor', 'client'])}; "
              f"while the bare baseline ran: {cpu_text(b, ['bare_web', 'client'])}. With two cores shared by the client, the "
              f"server and the idle dev server, the client (h11 in pure Python) is a large part of the cost, so the throughput "
              f"ratio understates the difference between the servers; the CPU each server process used per request "
              f"(`/proc/PID/stat`, user + system, over the requests it answered) is the ratio a saturated server would show.",
              f"- **With a process.** `POST /api/forms/lead_enquiry/submissions` (creates an opportunity, starts `lead_follow_up`, "
              f"whose first step writes a task row for the sales group), timed until every response has come back and every "
              f"follow-up task row exists, against `client.start_workflow` of the bare workflow (one activity inserts a row) until "
              f"every row exists — the start rate `bench/runtime_bench.py` calls bare. {sizes.rounds} round(s) of {sizes.process} per "
              f"side, alternating, after 30 warm-ups each ({tp.n} each; Tailor {tp.seconds:.1f} s, of which {tp.ack_seconds:.1f} s "
              f"until the last response; bare {bp.seconds:.1f} s, {bp.ack_seconds:.1f} s until the last start returned). CPU while "
              f"Tailor ran: {cpu_text(tp, ['tailor', 'tailor_worker', 'temporal', 'client'])}; while bare ran: "
              f"{cpu_text(bp, ['bare_worker', 'temporal', 'client'])}.",
              f"- **Directory search.** {sizes.companies:,} companies (the first through `records.create_record`, its stored `data` "
              f"checked, the rest bulk-inserted in {res['seeded']['seconds']:.1f} s with the entity's expression indexes built "
              f"afterwards, then `ANALYZE`), {len(INDUSTRIES)} industries, so about {q['matches']:,} match each search (counts stop "
              f"at 10,000). One logged-in session (GET /login for the CSRF token, POST /login; argon2 password hash) asks for "
              f"`/directory/company?f1=industry&o1=eq&v1=…` {q['page']['n']} times one after another after 5 warm-ups, cycling "
              f"through the industries: the count, the first page of 50 sorted by name (the directory's default) and the rendered "
              f"HTML. The same for `GET /api/records/company?industry=…` with the bearer token (sorted by id, JSON). The last row "
              f"is `records.search_records` called in this process on the same database: the part of each figure that is the "
              f"database."]
    lines += ["", f"Measured {when} in {elapsed / 60:.1f} min on:", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    lines += ["", "Run it again with `.venv/bin/python bench/web_bench.py` (about 4 minutes; `--quick` about 1) — it rewrites this section.",
              END, ""]
    return "\n".join(lines)


def write_docs(path: Path, section: str) -> None:
    write_section(path, START, END, section)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (20,000 companies, fewer requests): about 1 minute")
    ap.add_argument("--no-write", action="store_true", help="print the table only; leave docs/benchmarks.md alone")
    ap.add_argument("--rounds", type=int, help="alternating rounds of each part (3 by default, 1 with --quick)")
    args = ap.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.rounds:
        sizes = dataclasses.replace(sizes, rounds=args.rounds)
    began = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="tailor-web-bench-"))
    try:
        res = asyncio.run(run_all(tmp, sizes))
    except BaseException:
        console.print(f"logs kept in {tmp}")
        raise
    shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.perf_counter() - began
    table = Table(title=f"Web benchmark{' (--quick)' if args.quick else ''}, {elapsed / 60:.1f} min")
    for col in ("measure", "figure", "goal", ""):
        table.add_column(col)
    for row in summary_rows(res, sizes, cpu=True):
        table.add_row(*row, style="yellow" if row[3] == "NOT met" else None)
    console.print(table)
    if not args.no_write:
        when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        write_docs(DOCS, markdown(res, sizes, args.quick, machine(), when, elapsed))
        console.print(f"wrote {DOCS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
