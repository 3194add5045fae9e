"""Alert lateness: Tailor's escalation at a deadline next to a bare temporalio timer, in one run.

Tailor: a process whose one task is due at a set time, with an escalation `at: due` alerting a role (the
`raise_alert` local activity writes the alert row, its history entry, a notification and its email into the mail
outbox, which the worker's outbox sender, `runtime.mailbox.run`, sends beside it). Bare (`bench/bare_workflow.py` BareAlert): a workflow that sleeps until the same kind of deadline and then
writes one alert row with one local activity: the least any system on Temporal must do. Same dev server, same worker
settings (`runtime.worker.worker_options`), SQLite file databases opened by `runtime.db.make_engine`, writers taking
turns on a lock in the process, in the same run. Lateness is the row's `raised_at` minus its `due_at`.

Cases: deadlines spread over a while; a burst of 100 due in the same second; a burst of 1,000. Every start (and
Tailor's task row) is done before the deadline. For a sample of each side's workflows the history splits the
lateness: the server's timer (TimerFired - due), the wait for a poll (workflow task started - scheduled), and the
worker (raised_at - workflow task started). `--sample` also samples the Python stacks of this process (the worker and
the client) during the bursts.

Prints a table and rewrites this benchmark's section of docs/benchmarks.md.

    .venv/bin/python bench/lateness_bench.py [--quick] [--no-write] [--sample]
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from temporalio import activity  # noqa: E402
from temporalio.api.enums.v1 import EventType  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from admin.run import prepare  # noqa: E402
from bare_workflow import BareAlertWorkflow  # noqa: E402
from report import code_state, load_average, machine_basics, write_section  # noqa: E402
from runtime import mailbox, records  # noqa: E402
from runtime.db import make_engine  # noqa: E402
from runtime.devserver import DevServer  # noqa: E402
from runtime.mail import MailSettings  # noqa: E402
from runtime.schema import alerts, mail_outbox, tasks, users  # noqa: E402
from runtime.settings import Settings  # noqa: E402
from runtime.starter import start_process  # noqa: E402
from runtime.worker import WORKFLOW_CACHE, WORKFLOW_TASK_POLLS, make_worker, worker_options  # noqa: E402
from runtime_bench import INDUSTRIES, cpu_seconds, entity_yaml, free_port, pct, pooled, reader, wait_count, write_pack  # noqa: E402

DOCS = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- lateness-bench:start -->", "<!-- lateness-bench:end -->"
POOL = 8  # activity threads, for both workers (what `tailor run` uses)
CONCURRENCY = 50  # start requests in flight at once
HISTORY_SAMPLE = 200  # workflows per side and case whose history splits the lateness
GOALS = {"ratio": 1.2, "burst_1000": 1.0}
T0 = time.perf_counter()


def say(text: str) -> None:
    print(f"{time.perf_counter() - T0:6.1f}s {text}", flush=True)


@dataclass(frozen=True)
class Case:
    name: str
    n: int
    spread: float  # seconds over which the deadlines are spread (0: all in the same second)
    lead: float  # seconds from the first start to the (first) deadline: every start must be done before it


FULL = (Case("spread", 600, 60, 60), Case("burst 100", 100, 0, 20), Case("burst 1,000", 1000, 0, 60))
QUICK = (Case("spread", 20, 5, 8), Case("burst 100", 100, 0, 15))
TINY = (Case("spread", 3, 1, 6), Case("burst 5", 5, 0, 8))  # the smoke test's (tests/test_benches.py)


def alert_pack(root: Path) -> Path:
    return write_pack(root, "lateness", {"company.yaml": entity_yaml(), "roles.yaml": "kind: role\nname: director\npermissions: [access]\n",
                                         "alert.yaml": """\
        kind: process
        name: bench_alert
        entity: company
        steps:
          - id: call
            title: "Call {{ record.name }}"
            due: 3600 seconds
            escalate:
              - {at: due, alert: role:director}
        """})


# -- the bare side's row: an alert ------------------------------------------------------------

bare_meta = sa.MetaData()
bare_alerts = sa.Table(
    "bare_alerts", bare_meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(300), nullable=False, unique=True),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
)


class BareAlertActivities:
    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self.turn = threading.Lock()  # SQLite writers take turns in the process, as in runtime.activities

    @activity.defn(name="bare.raise_alert")
    def raise_alert(self, arg: dict) -> None:
        with self.turn, self.engine.begin() as conn:
            conn.execute(bare_alerts.insert().values(key=arg["key"], message=f"'{arg['key']}' is overdue",
                                                     due_at=dt.datetime.fromisoformat(arg["due_at"]),
                                                     raised_at=dt.datetime.now(dt.timezone.utc)))


# -- a poor man's py-spy: the Python stacks of every thread of this process, sampled -----------------------


class StackSampler:
    """Every `every` seconds, each thread's innermost frames (not this one's): where the Python time goes."""

    def __init__(self, every: float = 0.005):
        self.every, self.leaf, self.inclusive, self.samples = every, collections.Counter(), collections.Counter(), 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "StackSampler":
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = threading.get_ident()
        while not self._stop.wait(self.every):
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                seen, f, depth = set(), frame, 0
                leaf = _where(frame)
                if (frame.f_code.co_filename.endswith(("threading.py", "selectors.py", "queue.py", "thread.py"))
                        and frame.f_code.co_name in ("wait", "select", "get", "_worker")):
                    continue  # an idle thread
                self.samples += 1
                self.leaf[leaf] += 1
                while f is not None and depth < 60:
                    w = _where(f, line=False)
                    if w not in seen:
                        seen.add(w)
                        self.inclusive[w] += 1
                    f, depth = f.f_back, depth + 1

    def top(self, n: int = 25) -> list[tuple[str, int]]:
        return [(w, c) for w, c in self.inclusive.most_common(n)]


def _where(frame, line: bool = True) -> str:
    code = frame.f_code
    name = Path(code.co_filename).name
    return f"{name}:{code.co_name}" + (f":{frame.f_lineno}" if line else "")


# -- one case, one side ------------------------------------------------------------------------


def utc(x: dt.datetime) -> dt.datetime:
    return x if x.tzinfo else x.replace(tzinfo=dt.timezone.utc)


def summary(late: list[float]) -> dict:
    return {"p50": pct(late, 50), "p95": pct(late, 95), "p99": pct(late, 99), "max": max(late), "min": min(late)}


async def split(client: Client, workflow_ids: list[str], due: dict[str, dt.datetime], raised: dict[str, dt.datetime]) -> dict:
    """From the histories of up to HISTORY_SAMPLE workflows: timer (TimerFired - due), queued (workflow task started -
    scheduled), worker (raised_at - workflow task started); p50 and p99 of each."""
    step = max(1, len(workflow_ids) // HISTORY_SAMPLE)
    sample = workflow_ids[::step][:HISTORY_SAMPLE]
    parts: dict[str, list[float]] = {"timer": [], "woken": [], "queued": [], "worker": [], "armed": []}

    async def one(wid: str) -> None:
        history = await client.get_workflow_handle(wid).fetch_history()
        events = list(history.events)
        fired = next((i for i, e in enumerate(events) if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED), None)
        if fired is None:
            return
        at = lambda e: e.event_time.ToDatetime(tzinfo=dt.timezone.utc)  # noqa: E731
        sched = next((e for e in events[fired:] if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED), None)
        started = next((e for e in events[fired:] if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED), None)
        if sched is None or started is None or wid not in raised:
            return
        parts["timer"].append((at(events[fired]) - due[wid]).total_seconds())
        parts["woken"].append((at(sched) - at(events[fired])).total_seconds())
        parts["queued"].append((at(started) - at(sched)).total_seconds())
        armed = next((e for e in events if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED), None)
        if armed is not None:
            parts["armed"].append((due[wid] - at(armed)).total_seconds())
        parts["worker"].append((raised[wid] - at(started)).total_seconds())

    try:
        await pooled(len(sample), 20, lambda i: one(sample[i]))
    except Exception as exc:  # noqa: BLE001 - the dev server gone (seen once under a load of 10 on 2 cores): say so
        return {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    out = {k: {"p50": pct(v, 50), "p99": pct(v, 99)} for k, v in parts.items() if v and k != "armed"}
    out["armed_min"] = min(parts["armed"]) if parts["armed"] else None  # the least time a timer was started before its deadline
    return out


@dataclass
class Env:
    client: Client
    compiled: Any
    company: dict
    poll: sa.Engine
    bare_poll: sa.Engine
    server_pid: int
    sampler: bool
    rate: float | None = None  # processes/s the warm-up got ready (started, and Tailor's task row written): sets the leads


def lead(env: Env, case: Case) -> float:
    """Seconds from the first start to the first deadline: the case's, or longer when the warm-up says starting (and
    Tailor's first write) is too slow on this machine right now for every process to be ready before it."""
    if env.rate is None:
        return case.lead
    return max(case.lead, 1.5 * (case.n if not case.spread else CONCURRENCY) / env.rate + 10)


async def run_side(env: Env, side: str, case: Case, tag: str) -> dict:
    """Start case.n workflows of one side, their deadlines `lead` s after the first start (spread over case.spread s),
    wait for every alert, and measure."""
    n = case.n
    base = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(seconds=1)
    case_lead = lead(env, case)
    first_due = base + dt.timedelta(seconds=case_lead)
    offsets = [i * case.spread / n for i in range(n)]
    spec = env.compiled.process_specs["bench_alert"]
    t0 = time.perf_counter()

    async def start(i: int) -> str:
        if case.spread:  # started one by one, as their deadlines come: each `lead` s before its deadline
            await asyncio.sleep(max(0.0, t0 + offsets[i] - time.perf_counter()))
        due_at = first_due + dt.timedelta(seconds=offsets[i])
        if side == "tailor":  # its step is due 3600 s after the process's start: start it as of an hour before the deadline
            h = await start_process(env.client, spec, key=f"{tag}-{i}", task_queue="lateness-tailor", entity="company",
                                    record_id=env.company["id"], record=env.company["data"],
                                    started_at=due_at - dt.timedelta(seconds=3600))
            return h.id
        wid = f"bare-alert/{tag}-{i}"
        await env.client.start_workflow(BareAlertWorkflow.run, {"key": wid, "due_at": due_at.isoformat()}, id=wid,
                                        task_queue="lateness-bare")
        return wid

    ids = await pooled(n, n if case.spread else CONCURRENCY, start)
    started_in = time.perf_counter() - t0
    starts_before = (first_due - dt.datetime.now(dt.timezone.utc)).total_seconds()  # >0: every start was in before the deadline
    if side == "tailor":  # and every task row written
        mine = tasks.c.workflow_id.like(f"bench_alert/{tag}-%")
        await wait_count(env.poll, sa.select(sa.func.count()).select_from(tasks).where(mine), n, case_lead + case.spread + 60, every=0.1)
        query = (sa.select(tasks.c.workflow_id, alerts.c.due_at, alerts.c.raised_at, tasks.c.created_at)
                 .join(tasks, tasks.c.id == alerts.c.task_id).where(mine))
        count = sa.select(sa.func.count()).select_from(alerts).join(tasks, tasks.c.id == alerts.c.task_id).where(mine)
        poll = env.poll
    else:
        mine = bare_alerts.c.key.like(f"bare-alert/{tag}-%")
        query = sa.select(bare_alerts.c.key.label("workflow_id"), bare_alerts.c.due_at, bare_alerts.c.raised_at).where(mine)
        count = sa.select(sa.func.count()).select_from(bare_alerts).where(mine)
        poll = env.bare_poll
    ready_in = time.perf_counter() - t0
    ready_before = (first_due - dt.datetime.now(dt.timezone.utc)).total_seconds()  # Tailor: every task row too
    cpu0 = (cpu_seconds(os.getpid()), cpu_seconds(env.server_pid))
    sampler = StackSampler() if env.sampler and not case.spread else None
    if sampler:
        await asyncio.sleep(max(0.0, ready_before - 0.5))
        sampler.__enter__()
    got = await wait_count(poll, count, n, case_lead + case.spread + 180, every=0.25)
    if sampler:
        sampler.__exit__(None, None, None)
    cpu = (cpu_seconds(os.getpid()) - cpu0[0], cpu_seconds(env.server_pid) - cpu0[1])
    with poll.connect() as conn:
        rows = conn.execute(query).all()
    late = [(utc(r.raised_at) - utc(r.due_at)).total_seconds() for r in rows]
    after_due = sum(1 for r in rows if side == "tailor" and utc(r.created_at) > utc(r.due_at))
    parts = await split(env.client, ids, {r.workflow_id: utc(r.due_at) for r in rows}, {r.workflow_id: utc(r.raised_at) for r in rows})
    return {"side": side, "n": n, "raised": got, "started_in": started_in, "ready_before": ready_before,
            "starts_before": starts_before, "ready_in": ready_in, "lead": case_lead, "created_after_due": after_due,
            **summary(late), "parts": parts, "cpu_self": cpu[0], "cpu_server": cpu[1],
            "stacks": sampler.top() if sampler else [], "samples": sampler.samples if sampler else 0}


def smtp_sink(port: int, timeout: float = 20.0) -> subprocess.Popen:
    """A mail server that accepts and drops every email, in a process of its own as a real one is (in this one, its
    event loop would take the worker's interpreter lock in turns with the alerts it measures)."""
    proc = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Sink"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the SMTP sink exited with {proc.returncode}: {proc.stderr.read().decode(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"the SMTP sink did not listen on port {port} within {timeout:.0f} s")


async def measure(tmp: Path, cases: tuple[Case, ...], sampler: bool) -> dict:
    smtp_port = free_port()
    smtp = smtp_sink(smtp_port)
    pack = alert_pack(tmp / "packs")
    engine, compiled = prepare(Settings.from_env({"TAILOR_DATA_DIR": str(tmp / "var"), "TAILOR_PACKS": str(pack)}), echo=lambda *_: None)
    with engine.begin() as conn:
        user_id = conn.execute(users.insert().values(username="dave", name="Dave", email="dave@example.com", roles=["director"],
                                                     created_at=dt.datetime.now(dt.timezone.utc)).returning(users.c.id)).scalar_one()
        rec = records.create_record(conn, compiled, "company", {"name": "Acme Ltd", "industry": INDUSTRIES[0]}, user_id)
    bare_engine = make_engine(f"sqlite:///{tmp / 'bare.db'}")
    bare_meta.create_all(bare_engine)
    server = DevServer(tmp / "temporal", port=free_port(), ui_port=free_port(), log=tmp / "temporal.log")
    await asyncio.to_thread(server.start)
    out: dict[str, Any] = {"cases": []}
    try:
        client = await Client.connect(server.address)
        env = Env(client, compiled, {"id": rec.id, "data": dict(rec.data)}, reader(str(engine.url)), reader(str(bare_engine.url)),
                  server.proc.pid, sampler)
        with ThreadPoolExecutor(POOL) as tpool, ThreadPoolExecutor(POOL) as bpool:
            bare = BareAlertActivities(bare_engine)
            tailor_mail = MailSettings(port=smtp_port)
            tailor_worker = make_worker(client, engine, compiled, "lateness-tailor", tailor_mail, tpool)
            sender = asyncio.create_task(mailbox.run(engine, tailor_mail))  # as `tailor worker` runs it beside its worker
            bare_worker = Worker(client, task_queue="lateness-bare", workflows=[BareAlertWorkflow], activities=[bare.raise_alert],
                                 **worker_options(bpool, workflows=(BareAlertWorkflow,)))
            async with tailor_worker, bare_worker:
                warm = Case("warm", min(20, max(c.n for c in cases)), 0, 6)
                say(f"warm-up ({warm.n} each) ...")
                warmed = [await run_side(env, side, warm, f"warm-{side}") for side in ("tailor", "bare")]
                env.rate = min(r["n"] / r["ready_in"] for r in warmed)
                say(f"      ready at {env.rate:.1f} processes/s: leads " + ", ".join(f"{c.name} {lead(env, c):.0f} s" for c in cases))
                for k, case in enumerate(cases):
                    sides = ("tailor", "bare") if k % 2 == 0 else ("bare", "tailor")  # each case starts with the other side
                    result = {"case": case}
                    for side in sides:
                        say(f"{case.name}: {side}, {case.n} deadlines {lead(env, case):.0f} s after the first start ...")
                        result[side] = await run_side(env, side, case, f"{case.name.replace(' ', '').replace(',', '')}-{side}")
                        r = result[side]
                        say(f"      {r['raised']}/{r['n']} raised; p50 {r['p50'] * 1000:.0f} ms, p99 {r['p99'] * 1000:.0f} ms, max "
                            f"{r['max'] * 1000:.0f} ms; split {r['parts']}")
                    out["cases"].append(result)
                await asyncio.sleep(2)
                with engine.connect() as conn:
                    out["emails"] = conn.execute(sa.select(sa.func.count()).where(mail_outbox.c.status == mailbox.SENT)).scalar_one()
            sender.cancel()
        env.poll.dispose()
        env.bare_poll.dispose()
    finally:
        await asyncio.to_thread(server.stop)
        smtp.terminate()
        smtp.wait(10)
        engine.dispose()
        bare_engine.dispose()
    return out


# -- reporting ------------------------------------------------------------------------------------


def ms(x: float) -> str:
    return f"{x * 1000:.0f} ms"


def rows(out: dict) -> list[tuple[str, str, str, str, str]]:
    """(case, Tailor, bare, ratio, goal/met)."""
    result = []
    for c in out["cases"]:
        case, t, b = c["case"], c["tailor"], c["bare"]
        what = f"{case.n} deadlines spread over {case.spread:.0f} s" if case.spread else f"{case.n:,} due in the same second"
        fig = lambda r: (f"p50 {ms(r['p50'])}, p95 {ms(r['p95'])}, p99 {ms(r['p99'])}, max {ms(r['max'])}"  # noqa: E731
                         + ("" if r["raised"] == r["n"] else f" (only {r['raised']} raised)"))
        ratio = t["p99"] / b["p99"] if b["p99"] > 0 else float("inf")
        goal = f"p99 ≤ {GOALS['ratio']}× bare" + (" and ≤ 1 s" if case.n >= 1000 and not case.spread else "")
        ok = ratio <= GOALS["ratio"] and (t["p99"] <= GOALS["burst_1000"] if case.n >= 1000 and not case.spread else True)
        result.append((f"alert lateness, {what}", fig(t), fig(b), f"{ratio:.2f}×", f"{goal}: {'met' if ok else 'NOT met'}"))
    return result


def split_text(r: dict) -> str:
    p = r["parts"]
    if "error" in p:
        return f"no split (the histories could not be read: {p['error']})"
    armed = f"; the last timer armed {p['armed_min']:.1f} s before its deadline" if p.get("armed_min") is not None else ""
    return ", ".join(f"{k} {ms(p[k]['p50'])} / {ms(p[k]['p99'])}" for k in ("timer", "queued", "worker") if k in p) + armed


def markdown(out: dict, quick: bool, note: str, when: str, elapsed: float) -> str:
    lines = [START, "## Alert lateness against a bare timer", "",
             "How late an alert is raised after its deadline (`raised_at - due_at`), Tailor's escalation next to a bare temporalio "
             "workflow that sleeps until its deadline and writes one alert row with one local activity, in one run on the same dev "
             "server with the same worker settings, measured by `bench/lateness_bench.py`"
             + (" **with `--quick`** (smaller sizes)" if quick else "") + ". " + note, "",
             "| case | Tailor | bare | Tailor p99 / bare p99 | goal |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows(out)]
    lines += ["", "Where the time goes, p50 / p99 over a sample of each side's histories (timer: the server's TimerFired after "
              "the deadline; queued: the woken workflow task waiting for a poll; worker: from the poll to the committed row), and "
              "CPU seconds over the case (this process, i.e. client + both workers / the dev server):", ""]
    for c in out["cases"]:
        case = c["case"]
        for side in ("tailor", "bare"):
            r = c[side]
            lines.append(f"- {case.name}, {side}: {split_text(r)}; CPU {r['cpu_self']:.1f} / {r['cpu_server']:.1f} s; started in "
                         f"{r['started_in']:.1f} s, the last start {r['starts_before']:.1f} s before the first deadline "
                         f"({r['lead']:.0f} s after the first start)"
                         + (f", every task row {r['ready_before']:.1f} s before it, {r['created_after_due']} written after their due time"
                            if side == "tailor" else "") + ".")
    lines += ["", "### How it is measured", "",
              f"- One dev server (`temporal server start-dev`, SQLite-backed, loopback). In one process: Tailor's worker "
              f"(`runtime.worker.make_worker`) and a bare temporalio worker, both with `runtime.worker.worker_options`: {POOL} "
              f"activity threads, {WORKFLOW_TASK_POLLS} workflow-task polls, a workflow cache of {WORKFLOW_CACHE:,}, the same "
              f"sandboxed runner, each passing its own workflow module through (`runtime.worker.workflow_runner`). Each on its own SQLite file database opened by `runtime.db.make_engine` (WAL, `BEGIN IMMEDIATE`), "
              f"writers taking turns on a lock in the process.",
              "- Tailor: a one-task process on a company record, the task due 3,600 s after the process's start with an escalation "
              "`at: due` alerting a role (one user, emailed through an SMTP sink in a process of its own, `aiosmtpd.handlers.Sink`: "
              f"{out['emails']} emails sent). Each process is started as of an hour before its deadline (`start_process(started_at=…)`), "
              "so the deadlines fall exactly where the case puts them, however long the starts take. At the deadline the timer "
              "wakes a workflow task that runs `raise_alert` (a local activity: reads the task, resolves the role, renders the "
              "message, writes the alert row, a history entry, a notification and the email into the mail outbox, in one "
              "transaction); the worker's outbox sender (`runtime.mailbox.run`, polling every second) sends the email.",
              "- Bare (`bench/bare_workflow.py` `BareAlert`): `workflow.sleep` until its deadline, then one local activity that "
              "inserts one alert row (key, message, due_at, raised_at).",
              f"- Spread: started one by one, each the case's lead before its deadline, the deadlines spread evenly. Bursts: "
              f"every deadline in the same second, started {CONCURRENCY} requests at a time from the lead before it. The lead is "
              f"the case's ({FULL[0].lead:.0f} s spread, {FULL[1].lead:.0f} s for 100, {FULL[2].lead:.0f} s for 1,000) or, when "
              f"the warm-up (20 each) got processes ready slower than that allows, 1.5 × the processes (spread: {CONCURRENCY}) / "
              f"that rate + 10 s, so that every start is in before the first deadline (the lines above give each lead). Each "
              f"case runs both sides one after the other (the first side alternates between cases). Nearest-rank percentiles.",
              "- The bare workflow's timer counts from its workflow task's start (`workflow.now()`), so it fires late by that "
              "task's own duration (the `timer` part); Tailor's counts from the commit time of its last write "
              "(docs/runtime.md, \"Due times\").",
              f"- The split uses up to {HISTORY_SAMPLE} histories per side and case (evenly sampled).",
              "", f"Measured {when} in {elapsed / 60:.1f} min on:", ""]
    lines += [f"- {k}: {v}" for k, v in {**machine_basics(), "code": code_state(("runtime", "bench")),
                                         "load average": load_average(", shared with other work")}.items()]
    lines += ["", "Run it again with `.venv/bin/python bench/lateness_bench.py` (about 8 minutes) — it rewrites this section.", END, ""]
    return "\n".join(lines)


async def main(argv: list[str] | None = None, cases: tuple[Case, ...] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes")
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    ap.add_argument("--note", default="", help="a sentence for the page about how the run went (what else ran meanwhile)")
    ap.add_argument("--tiny", action="store_true", help="a few processes per case: only to see that it runs")
    ap.add_argument("--sample", action="store_true", help="sample this process's Python stacks during the bursts")
    args = ap.parse_args(argv)
    began = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="tailor-lateness-bench-"))
    try:
        out = await measure(tmp, cases or (TINY if args.tiny else QUICK if args.quick else FULL), args.sample)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.perf_counter() - began
    for r in rows(out):
        print(" | ".join(r))
    if args.sample:
        for c in out["cases"]:
            for side in ("tailor", "bare"):
                if c[side]["stacks"]:
                    print(f"\n{c['case'].name} {side}: {c[side]['samples']} busy-thread samples, inclusive:")
                    for w, k in c[side]["stacks"]:
                        print(f"  {k:6d} {w}")
    if not args.no_write:
        write_section(DOCS, START, END, markdown(out, args.quick, args.note, dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), elapsed))
        print(f"wrote {DOCS.relative_to(ROOT)}")
    return out


if __name__ == "__main__":
    asyncio.run(main())
