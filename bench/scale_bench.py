"""Scale: many open processes on one worker, and two workers sharing a task queue on PostgreSQL.

1. Open processes: processes with a task due in hours (a pending timer each) started against one `tailor worker`
   subprocess, next to a bare worker subprocess (`bench/bare_worker.py`: one local-activity row write, then a timer)
   started the same way through the same client on the same dev server. The start rate (every row written), the
   worker's and the dev server's RSS as the count grows.
2. PostgreSQL, one then two `tailor worker` subprocesses on one task queue: starts/s and completions/s, with the CPU
   each process used (client, each worker, dev server, PostgreSQL).

Prints what it measured and rewrites this benchmark's section of docs/benchmarks.md.

    .venv/bin/python bench/scale_bench.py [--quick] [--open N] [--bare N] [--budget S] [--skip-postgres] [--no-write]
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from temporalio.client import Client  # noqa: E402

from admin.run import prepare  # noqa: E402
from bare_workflow import BareWaitWorkflow  # noqa: E402
from report import code_state, load_average, machine_basics, write_section  # noqa: E402
from runtime import records  # noqa: E402
from runtime.db import make_engine  # noqa: E402
from runtime.devserver import DevServer  # noqa: E402
from runtime.schema import tasks, users  # noqa: E402
from runtime.settings import Settings  # noqa: E402
from runtime.starter import start_process  # noqa: E402
from runtime.worker import WORKFLOW_TASK_POLLS  # noqa: E402
from runtime.workflows import ProcessWorkflow, TaskAction  # noqa: E402
from runtime_bench import INDUSTRIES, _scalar, cpu_seconds, entity_yaml, free_port, pooled, reader, rss_kib, wait_count, write_pack  # noqa: E402

DOCS = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- scale-bench:start -->", "<!-- scale-bench:end -->"
PG_URL = os.environ.get("TAILOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_FLIGHT = 200  # start requests in flight at once
BACKLOG = 400  # started processes still without their row, at most
CONCURRENCY = 50  # part 2: requests in flight at once
CACHE = int(os.environ.get("TAILOR_WORKFLOW_CACHE") or Settings.workflow_cache)
GOALS = {"rss_mib": 1024, "ratio": 0.80}
T0 = time.perf_counter()


def say(text: str) -> None:
    print(f"{time.perf_counter() - T0:7.1f}s {text}", flush=True)


def pack(root: Path) -> Path:
    return write_pack(root, "scale", {"company.yaml": entity_yaml(), "roles.yaml": "kind: role\nname: director\npermissions: [access]\n",
                                      "one_task.yaml": """\
        kind: process
        name: bench_task
        entity: company
        steps:
          - {id: call, title: "Call {{ record.name }}"}
        """, "wait.yaml": """\
        kind: process
        name: bench_wait
        entity: company
        steps:
          - id: call
            title: "Call {{ record.name }}"
            due: 7200 seconds
            escalate:
              - {at: due, alert: role:director}
        """})


async def dev_server(tmp: Path, name: str) -> DevServer:
    server = DevServer(tmp / name, port=free_port(), ui_port=free_port(), log=tmp / f"{name}.log")
    await asyncio.to_thread(server.start)
    return server


class Child:
    """A worker subprocess, stopped (SIGTERM, then SIGKILL) on exit."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path):
        self.log = log
        self.proc = subprocess.Popen(argv, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True, cwd=str(ROOT))

    async def ready(self) -> None:
        deadline = time.monotonic() + 90
        while "worker running" not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start:\n{self.log.read_text(errors='replace')[-2000:]}")
            await asyncio.sleep(0.2)
        await asyncio.sleep(2)  # its first polls

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass


def tailor_env(tmp: Path, pack_dir: Path, server: DevServer, queue: str, database_url: str = "") -> dict[str, str]:
    env = {**os.environ, "TAILOR_DATA_DIR": str(tmp), "TAILOR_PACKS": str(pack_dir), "TAILOR_TEMPORAL_ADDRESS": server.address,
           "TAILOR_TASK_QUEUE": queue, "TAILOR_SMTP_PORT": str(free_port()), "TAILOR_WORKFLOW_CACHE": str(CACHE)}
    if database_url:
        env["TAILOR_DATABASE_URL"] = database_url
    return env


# -- part 1: open processes ---------------------------------------------------------------------


async def fill(client: Client, worker: Child, server: DevServer, poll: sa.Engine, count: sa.Select, n: int, budget: float,
               start, checkpoints: int = 10) -> dict:
    """Start n processes (at most `budget` s of starting), IN_FLIGHT requests at once and at most BACKLOG without their
    row; sample RSS; the curve of (processes with their row, seconds, worker MiB, dev server MiB) at each checkpoint."""
    idle, server_idle = rss_kib(worker.proc.pid)[0], rss_kib(server.proc.pid)[0]
    t0 = time.perf_counter()
    stop_at = time.monotonic() + budget
    started = done = 0
    peak = idle
    curve: list[tuple[int, float, float, float]] = []
    marks = [n * (k + 1) // checkpoints for k in range(checkpoints)]

    async def watch() -> None:
        nonlocal done, peak
        while True:
            done = await asyncio.to_thread(lambda: _scalar(poll, count))
            w = rss_kib(worker.proc.pid)[0]
            peak = max(peak, w)
            if marks and done >= marks[0]:
                while marks and done >= marks[0]:
                    marks.pop(0)
                curve.append((done, time.perf_counter() - t0, w / 1024, rss_kib(server.proc.pid)[0] / 1024))
                say(f"      {done:,} with their row after {time.perf_counter() - t0:.0f} s; worker {w / 1024:.0f} MiB, "
                    f"dev server {curve[-1][3]:.0f} MiB")
            await asyncio.sleep(0.5)

    async def one(i: int) -> None:
        nonlocal started
        while started - done > BACKLOG and time.monotonic() <= stop_at:
            await asyncio.sleep(0.05)
        if time.monotonic() > stop_at:
            return
        started += 1
        await start(i)

    cpu0 = cpu_seconds(worker.proc.pid), cpu_seconds(server.proc.pid)
    watcher = asyncio.create_task(watch())
    await pooled(n, IN_FLIGHT, one)
    got = await wait_count(poll, count, started, 600, every=0.5)
    seconds = time.perf_counter() - t0
    await asyncio.sleep(1.5)
    watcher.cancel()
    cpu = cpu_seconds(worker.proc.pid) - cpu0[0], cpu_seconds(server.proc.pid) - cpu0[1]
    await asyncio.sleep(3)
    end, hwm = rss_kib(worker.proc.pid)
    return {"target": n, "started": started, "rows": got, "seconds": seconds, "rate": got / seconds, "idle_mib": idle / 1024,
            "end_mib": end / 1024, "peak_mib": max(peak, hwm) / 1024, "server_idle_mib": server_idle / 1024,
            "server_mib": rss_kib(server.proc.pid)[0] / 1024, "curve": curve, "worker_cpu_ms": cpu[0] / max(got, 1) * 1000,
            "server_cpu_ms": cpu[1] / max(got, 1) * 1000, "budget": budget}


class _Skip(Exception):
    pass


async def open_processes(tmp: Path, pack_dir: Path, n: int, n_bare: int, budget: float, tailor_budget: float,
                         stop_at: float | None = None) -> dict:
    server = await dev_server(tmp, "temporal-open")
    out: dict[str, Any] = {}
    try:
        client = await Client.connect(server.address)
        # bare first: its worker process alone, then stopped (--bare 0: Tailor only, the bare side from an earlier run)
        bare_db = tmp / "bare.db"
        bare = Child([sys.executable, str(ROOT / "bench" / "bare_worker.py"), server.address, "scale-bare", str(bare_db), str(CACHE)],
                     dict(os.environ), tmp / "bare-worker.log")
        try:
            await bare.ready()
            if not n_bare:
                raise _Skip
            poll = reader(f"sqlite:///{bare_db}")
            say(f"[1/2] {n_bare:,} bare open processes on one bare worker process ...")
            out["bare"] = await fill(client, bare, server, poll, sa.text("SELECT count(*) FROM bare_tasks"), n_bare, budget,
                                     lambda i: client.start_workflow(BareWaitWorkflow.run, f"open-{i}", id=f"bare-open/{i}",
                                                                     task_queue="scale-bare"))
            poll.dispose()
        except _Skip:
            pass
        finally:
            bare.stop()
        env = tailor_env(tmp / "open-var", pack_dir, server, "scale-tailor")
        engine, compiled = prepare(Settings.from_env(env), echo=lambda *_: None)
        with engine.begin() as conn:
            company = records.create_record(conn, compiled, "company", {"name": "Open Ltd", "industry": INDUSTRIES[0]}, None)
        url = str(engine.url)
        engine.dispose()
        worker = Child([str(Path(sys.executable).parent / "tailor"), "worker"], env, tmp / "tailor-worker.log")
        try:
            await worker.ready()
            poll = reader(url)
            spec = compiled.process_specs["bench_wait"]
            if stop_at:  # a wall-clock end for the whole run: what is left of it
                tailor_budget = min(tailor_budget, stop_at - time.time() - 120)
            say(f"[1/2] {n:,} Tailor open processes on one `tailor worker` (workflow cache {CACHE:,}) ...")
            out["tailor"] = await fill(client, worker, server, poll,
                                       sa.select(sa.func.count()).select_from(tasks).where(tasks.c.process == "bench_wait"), n, tailor_budget,
                                       lambda i: start_process(client, spec, key=f"open-{i}", task_queue="scale-tailor", entity="company",
                                                               record_id=company.id, record=dict(company.data)), checkpoints=20)
            poll.dispose()
        finally:
            worker.stop()
    finally:
        await asyncio.to_thread(server.stop)
    return out


# -- part 2: one and two workers on PostgreSQL -----------------------------------------------------


def postgres_cpu() -> dict[int, float]:
    """CPU seconds of each PostgreSQL process on this machine (other users' too), by pid."""
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "comm").read_text().strip() == "postgres":
                    out[int(d.name)] = cpu_seconds(int(d.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def postgres_delta(before: dict[int, float]) -> float:
    """CPU the PostgreSQL processes alive throughout used since `before` (the workers' pooled connections are; others'
    short-lived backends are left out, their long-lived ones not)."""
    now = postgres_cpu()
    return sum(max(0.0, now[pid] - t) for pid, t in before.items() if pid in now)


async def workers_on_postgres(tmp: Path, pack_dir: Path, n: int) -> dict:
    admin = make_engine(PG_URL, connect_args={"connect_timeout": 3})
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # noqa: BLE001
        return {"skipped": f"PostgreSQL at {PG_URL} is not reachable ({type(exc).__name__})"}
    server = await dev_server(tmp, "temporal-pg")
    out: dict[str, Any] = {"runs": []}
    schemas = []
    try:
        client = await Client.connect(server.address)
        for count in (1, 2):
            schema = f"bench_{uuid.uuid4().hex[:10]}"
            schemas.append(schema)
            with admin.begin() as conn:
                conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
            url = f"{PG_URL}?options=-csearch_path%3D{schema}"
            queue = f"scale-pg-{count}"
            env = tailor_env(tmp / f"pg-var-{count}", pack_dir, server, queue, url)
            engine, compiled = prepare(Settings.from_env(env), echo=lambda *_: None)
            with engine.begin() as conn:
                uid = conn.execute(users.insert().values(username="dave", name="Dave", email="dave@example.com", roles=["director"],
                                                         created_at=dt.datetime.now(dt.timezone.utc)).returning(users.c.id)).scalar_one()
                company = records.create_record(conn, compiled, "company", {"name": "Acme Ltd", "industry": INDUSTRIES[0]}, uid)
            workers: list[Child] = []
            try:
                for k in range(count):  # one after the other: each runs the start-up migrations check
                    workers.append(Child([str(Path(sys.executable).parent / "tailor"), "worker"], env, tmp / f"pg-worker-{count}-{k}.log"))
                    await workers[-1].ready()
                spec = compiled.process_specs["bench_task"]
                rows = sa.select(sa.func.count()).select_from(tasks).where(tasks.c.process == "bench_task")
                done = sa.select(sa.func.count()).select_from(tasks).where(tasks.c.process == "bench_task", tasks.c.status == "done")
                for phase in ("warm", "measure"):
                    m = 30 if phase == "warm" else n
                    before = _scalar(engine, rows)
                    cpu0 = {"client": cpu_seconds(os.getpid()), "server": cpu_seconds(server.proc.pid), "postgres": postgres_cpu(),
                            **{f"worker {k + 1}": cpu_seconds(w.proc.pid) for k, w in enumerate(workers)}}
                    t0 = time.perf_counter()
                    handles = await pooled(m, CONCURRENCY, lambda i: start_process(
                        client, spec, key=f"{count}-{phase}-{i}", task_queue=queue, entity="company", record_id=company.id,
                        record=dict(company.data)))
                    await wait_count(engine, rows, before + m, 300, every=0.05)
                    start_s = time.perf_counter() - t0
                    await asyncio.sleep(1)
                    before_done = _scalar(engine, done)
                    t0 = time.perf_counter()
                    await pooled(m, CONCURRENCY, lambda i: handles[i].execute_update(
                        ProcessWorkflow.complete, TaskAction(step="call", user_id=uid), id=f"done-{count}-{phase}-{i}"))
                    await wait_count(engine, done, before_done + m, 300, every=0.05)
                    complete_s = time.perf_counter() - t0
                    cpu = {"client": cpu_seconds(os.getpid()) - cpu0["client"], "server": cpu_seconds(server.proc.pid) - cpu0["server"],
                           "postgres": postgres_delta(cpu0["postgres"]),
                           **{f"worker {k + 1}": cpu_seconds(w.proc.pid) - cpu0[f"worker {k + 1}"] for k, w in enumerate(workers)}}
                    if phase == "measure":
                        wall = start_s + complete_s
                        out["runs"].append({"workers": count, "n": m, "start_rate": m / start_s, "complete_rate": m / complete_s,
                                            "wall": wall, "cpu": cpu, "cpu_ms": {k: v / m * 1000 for k, v in cpu.items()},
                                            "busy": sum(cpu.values()) / wall})
                        say(f"[2/2] {count} worker(s) on PostgreSQL: {m / start_s:.1f} starts/s, {m / complete_s:.1f} completions/s; CPU s "
                            + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items()) + f" over {wall:.1f} s")
            finally:
                for w in workers:
                    w.stop()
                engine.dispose()
    finally:
        await asyncio.to_thread(server.stop)
        with admin.begin() as conn:
            for schema in schemas:
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()
    return out


# -- reporting ----------------------------------------------------------------------------------------


def markdown(out: dict, args: argparse.Namespace, when: str, elapsed: float) -> str:
    lines = [START, "## Scale: open processes on one worker; two workers on PostgreSQL", "",
             "Measured by `bench/scale_bench.py`" + (" **with `--quick`** (smaller sizes)" if args.quick else "") + ". "
             + getattr(args, "note", ""), ""]
    o = out.get("open")
    if o:
        t, b = o["tailor"], o["bare"]
        ratio = t["rate"] / b["rate"]
        lines += ["| measure | Tailor | bare | goal | |", "| --- | --- | --- | --- | --- |",
                  f"| open processes with a pending deadline on one worker | {t['rows']:,} (of {t['target']:,}) | {b['rows']:,} (of "
                  f"{b['target']:,}) | 100,000 | {'met' if t['rows'] >= 100_000 else 'NOT met'} |",
                  f"| start rate, every row written | {t['rate']:.1f}/s ({t['seconds']:.0f} s) | {b['rate']:.1f}/s ({b['seconds']:.0f} s) | "
                  f"≥ 80% of bare | {ratio:.0%}: {'met' if ratio >= GOALS['ratio'] else 'NOT met'} |",
                  f"| worker RSS, idle → end (peak) | {t['idle_mib']:.0f} → {t['end_mib']:.0f} MiB ({t['peak_mib']:.0f}) | "
                  f"{b['idle_mib']:.0f} → {b['end_mib']:.0f} MiB ({b['peak_mib']:.0f}) | ≤ 1 GB | "
                  f"{'met' if t['peak_mib'] <= GOALS['rss_mib'] else 'NOT met'} |",
                  f"| dev server RSS, before → after | {t['server_idle_mib']:.0f} → {t['server_mib']:.0f} MiB | {b['server_idle_mib']:.0f} → "
                  f"{b['server_mib']:.0f} MiB | (reported) | |",
                  f"| CPU per process started: worker / dev server | {t['worker_cpu_ms']:.1f} / {t['server_cpu_ms']:.1f} ms | "
                  f"{b['worker_cpu_ms']:.1f} / {b['server_cpu_ms']:.1f} ms | | |", "",
                  "Tailor's worker as the count grew (processes with their task row: seconds, worker RSS, dev server RSS): "
                  + "; ".join(f"{c:,}: {s:.0f} s, {w:.0f} / {sv:.0f} MiB" for c, s, w, sv in t["curve"]) + ".", "",
                  "Bare: " + "; ".join(f"{c:,}: {s:.0f} s, {w:.0f} / {sv:.0f} MiB" for c, s, w, sv in b["curve"]) + ".", ""]
        same = next((s for c, s, _w, _sv in t["curve"] if c >= b["rows"]), None)
        if same and b["rows"] < t["rows"]:
            lines += [f"Over its first {b['rows']:,} (the bare run's size), Tailor started {b['rows'] / same:.1f}/s.", ""]
    p = out.get("postgres")
    if p and p.get("skipped"):
        lines += [f"PostgreSQL: skipped ({p['skipped']}).", ""]
    elif p:
        lines += ["| workers on PostgreSQL (one task queue) | starts/s | completions/s | CPU ms per process (start + completion) | "
                  "CPU busy (cores) |", "| --- | --- | --- | --- | --- |"]
        for r in p["runs"]:
            cpu = {k: v for k, v in r["cpu_ms"].items() if k != "postgres" or v >= 0}  # (a run before postgres_delta could go below 0)
            lines.append(f"| {r['workers']} | {r['start_rate']:.1f} | {r['complete_rate']:.1f} | "
                         + ", ".join(f"{k} {v:.0f}" for k, v in cpu.items())
                         + f" | {sum(v for v in r['cpu'].values() if v >= 0) / r['wall']:.2f} |")
        lines.append("")
        one, two = p["runs"][0], p["runs"][-1]
        server = one["cpu_ms"]["server"]
        worker = sum(v for k, v in one["cpu_ms"].items() if k.startswith("worker"))
        worker2 = sum(v for k, v in two["cpu_ms"].items() if k.startswith("worker"))
        client = one["cpu_ms"]["client"]
        total = server + worker + client
        busy = sum(v for v in one["cpu"].values() if v >= 0) / one["wall"]
        lines += [f"What bounds it, and what more cores buy. Each process (one start and one completion) cost the dev server "
                  f"{server:.0f} ms of CPU, the worker {worker:.0f} ms (two workers: {worker2:.0f} ms between them: the work "
                  f"divides, it does not grow) and the client {client:.0f} ms. Measured on {os.cpu_count()} cores (the processes "
                  f"measured were busy {busy:.2f} cores on average, the rest of the machine's work aside), the run reached "
                  f"{two['start_rate'] / one['start_rate']:.2f}× the starts and {two['complete_rate'] / one['complete_rate']:.2f}× "
                  f"the completions with a second worker: the cores, not the workers, were what ran out. On 2 free cores the "
                  f"ceiling is about 2,000 / {total:.0f} ≈ {2000 / total:.0f} processes/s whatever the number of workers, and "
                  f"the dev server takes {server / total:.0%} of it. With more cores, each added worker (a Python process, one "
                  f"core's worth) adds up to 1,000 / {worker:.0f} ≈ {1000 / worker:.0f} processes/s until the one dev server "
                  f"saturates near 1,000 / {server:.0f} ≈ {1000 / server:.0f}/s per core it can use: its SQLite store commits "
                  f"one transaction at a time, so it does not scale past a few cores. Beyond that point it is a Temporal "
                  f"cluster (history shards over several hosts, PostgreSQL or Cassandra persistence) that more cores are "
                  f"spent on, with workers added at one per ~{1000 / worker:.0f} processes/s.", ""]
    lines += ["### How it is measured", "",
              f"- Open processes: a fresh dev server (`temporal server start-dev`, SQLite-backed, loopback). Bare first: "
              f"`bench/bare_worker.py` in a process of its own (`BareWait`: one local activity writes a row to its own SQLite file, "
              f"then a 2-hour timer), then a `tailor worker` subprocess (its own SQLite database, TAILOR_WORKFLOW_CACHE={CACHE:,}) "
              f"with `bench_wait` processes (one task due in 2 hours, an escalation at due: open, with a pending timer). Both "
              f"workers run `runtime.worker.worker_options` (8 activity threads, {WORKFLOW_TASK_POLLS} workflow-task polls, the "
              f"workflow cache of {CACHE:,}). The same client loop starts both: {IN_FLIGHT} start requests in flight, at most "
              f"{BACKLOG} started processes without their row; the rate counts until every row is written. RSS from "
              f"`/proc/PID/status` (VmRSS; the peak is the larger of VmHWM and 0.5 s samples).",
              f"- PostgreSQL: a fresh dev server; for 1 then 2 `tailor worker` subprocesses on one task queue, each run in a schema "
              f"of its own at {PG_URL}: a warm-up of 30, then {p['runs'][0]['n'] if p and p.get('runs') else '?'} one-task processes "
              f"started ({CONCURRENCY} requests in flight) until every task row exists, then each completed through "
              f"`execute_update(complete)`. CPU is user + system seconds from `/proc/PID/stat` of this process (the client), "
              f"each worker, the dev server and every PostgreSQL process on the machine (other users' included), divided by the "
              f"processes; CPU busy is their sum over the wall time." if p and not p.get("skipped") else "",
              "", f"Measured {when} in {elapsed / 60:.1f} min on:", ""]
    lines += [f"- {k}: {v}" for k, v in {**machine_basics(), "code": code_state(("runtime", "bench")),
                                         "load average": load_average(", shared with other work")}.items()]
    lines += ["", "Run it again with `.venv/bin/python bench/scale_bench.py` (about an hour at 100,000) — it rewrites this section.", END, ""]
    return "\n".join(line for line in lines if line is not None)


async def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2,000 open processes, 100 on PostgreSQL")
    ap.add_argument("--open", type=int, help="Tailor open processes (default 100,000)")
    ap.add_argument("--bare", type=int, help="bare open processes (default 10,000)")
    ap.add_argument("--budget", type=float, default=3600, help="seconds of starting allowed per side")
    ap.add_argument("--tailor-budget", type=float, help="seconds of starting allowed for Tailor (default: --budget)")
    ap.add_argument("--stop-at", help="an ISO time (UTC) by which Tailor's starting must stop")
    ap.add_argument("--postgres", type=int, help="processes per PostgreSQL run (default 400)")
    ap.add_argument("--skip-open", action="store_true")
    ap.add_argument("--skip-postgres", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--save", help="also write what was measured to this JSON file")
    ap.add_argument("--render", nargs="+", metavar="JSON", help="write the page from saved runs (e.g. the open processes and the "
                    "PostgreSQL part run separately) instead of measuring; --minutes says how long they took")
    ap.add_argument("--minutes", type=float, default=0.0)
    ap.add_argument("--note", default="", help="a sentence for the page about how the run went (what else ran meanwhile)")
    args = ap.parse_args(argv)
    if args.render:
        out = {}
        for name in args.render:
            out.update(json.loads(Path(name).read_text()))
        write_section(DOCS, START, END, markdown(out, args, dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), args.minutes * 60))
        print(f"wrote {DOCS.relative_to(ROOT)}")
        return out
    n = args.open or (2000 if args.quick else 100_000)
    n_bare = args.bare if args.bare is not None else (1000 if args.quick else 10_000)
    began = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="tailor-scale-bench-"))
    out: dict[str, Any] = {}
    try:
        pack_dir = pack(tmp / "packs")
        if not args.skip_postgres:
            out["postgres"] = await workers_on_postgres(tmp, pack_dir, args.postgres or (100 if args.quick else 400))
        if not args.skip_open:
            out["open"] = await open_processes(tmp, pack_dir, n, n_bare, args.budget, args.tailor_budget or args.budget,
                                               dt.datetime.fromisoformat(args.stop_at).timestamp() if args.stop_at else None)
    except BaseException:
        for log in tmp.glob("temporal-*.log"):
            print(f"--- {log.name}:", log.read_text(errors="replace")[-3000:])
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.perf_counter() - began
    (Path(tempfile.gettempdir()) / "tailor-scale-bench-last.json").write_text(json.dumps(out, default=str))
    if args.save:
        Path(args.save).write_text(json.dumps(out, default=str))
    print(json.dumps(out, default=str, indent=1))
    if not args.no_write:
        write_section(DOCS, START, END, markdown(out, args, dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), elapsed))
        print(f"wrote {DOCS.relative_to(ROOT)}")
    return out


if __name__ == "__main__":
    asyncio.run(main())
