"""Report benchmark: the SLA dashboard and the pipeline funnel over 1,000,000 tasks and 200,000 opportunities with two
years of stage history, on PostgreSQL and on a SQLite file.

1. The figures: `runtime.reports.run` of the support dashboard's SLA reports (per agent, per step, first response,
   breaches by escalation level, the queue) and of the pipeline funnel (last 90 days), as a director sees them.
2. The pages: GET /dashboards/support and GET /reports/pipeline_funnel through the whole web stack (Starlette's
   TestClient, a logged-in director), charts drawn every time (the drawing cache cleared before each request).

Data is bulk-inserted in the shape the runtime writes it: task rows with due times on the office calendar, alerts of
the late ones, opportunities with one audit-log row per stage change. Prints a table and rewrites this benchmark's
section of docs/benchmarks.md.

    .venv/bin/python bench/report_bench.py [--quick] [--dialect sqlite|postgresql|both] [--no-write]
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from admin.app import create_app
from engine.compiler import compile_model
from engine.loader import load
from runtime import charts, metrics, reports
from runtime.db import make_engine, upgrade
from runtime.plan import apply, plan
from runtime.schema import alerts, audit_log, group_members, tasks, users

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import code_state, load_average, machine_basics, write_section

DOCS = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- report-bench:start -->", "<!-- report-bench:end -->"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
SLA_REPORTS = ("sla_by_agent", "sla_by_step", "first_response", "breaches_by_level", "support_workload")
STEPS = [("support_sla", "triage", 4), ("support_sla", "resolve", 16), ("support_sla", "fix_defect", 80), ("lead_follow_up", "qualify", 16),
         ("lead_follow_up", "proposal", 40), ("lead_follow_up", "chase", 40), ("onboarding", "kickoff", 24),
         ("contract_renewal", "quote", 40), ("meeting_follow_up", "send_minutes", 8)]
GROUPS = ("support", "support_leads", "sales", "professional_services")
BATCH = 20_000


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p * len(ordered) + 0.5) - 1))]


def seed(engine: sa.Engine, compiled, n_tasks: int, n_opps: int, now: dt.datetime) -> dict:
    """The data set; returns what was made and how long it took."""
    rnd = random.Random(13)
    t0 = time.perf_counter()
    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    with engine.begin() as conn:
        upgrade(conn)
        apply(conn, compiled, plan(conn, compiled))
        staff = []
        for i in range(60):
            staff.append(conn.execute(users.insert().values(
                username=f"agent{i}", name=f"Agent {i:02d}", email=f"agent{i}@example.com", roles=["staff"],
                password_hash=hasher.hash("x"), created_at=now)).inserted_primary_key[0])
        conn.execute(users.insert().values(username="dave", name="Dave Director", email="dave@example.com", roles=["staff", "director"],
                                           password_hash=hasher.hash("dave"), created_at=now))
        conn.execute(group_members.insert(), [{"group_name": GROUPS[i % len(GROUPS)], "user_id": u, "manager": False}
                                             for i, u in enumerate(staff)])
        company = compiled.metadata.tables["company"]
        conn.execute(company.insert(), [{"title": f"Company {i}", "data": {"name": f"Company {i}", "status": "customer"},
                                         "record_fields": {}, "row_version": 1, "created_at": now, "updated_at": now} for i in range(2000)])
    span = 730 * 86400
    made_alerts = 0
    with engine.begin() as conn:
        first_task = (conn.execute(sa.select(sa.func.max(tasks.c.id))).scalar() or 0) + 1
        rows, late = [], []
        # rows arrive in the order they are made, as a worker writes them: a period's tasks sit together on disk
        starts = sorted(now - dt.timedelta(seconds=rnd.random() * span) for _ in range(n_tasks))
        # each done task carries its working seconds, as its completion stores them (runtime.metrics.WorkTime); one
        # working clock per calendar over the two years counts them with the same calendar code, in a fraction of the time
        work_time = metrics.WorkTime(compiled)
        clocks = {}
        for i in range(n_tasks):
            process, step, hours = STEPS[i % len(STEPS)]
            created = starts[i]
            due = created + dt.timedelta(hours=hours * 2.2)  # working hours stretched over nights and weekends
            opened = rnd.random() < 0.04 or created > now - dt.timedelta(days=3)
            took = dt.timedelta(hours=rnd.expovariate(1 / (hours * 1.6)))
            done = None if opened else created + took
            worker = staff[rnd.randrange(len(staff))]
            work = None
            if done is not None:
                calendar = work_time.calendar(process, step)
                if calendar is None:
                    work = took.total_seconds()
                else:
                    if calendar not in clocks:
                        clocks[calendar] = calendar.clock(now - dt.timedelta(seconds=span + 86400), now + dt.timedelta(days=60))
                    work = clocks[calendar].seconds_between(created, done)
            rows.append({"key": f"b{i}", "workflow_id": f"{process}/b{i // 3}", "process": process, "step_id": step,
                         "title": f"{step} {i}", "entity": "company", "record_id": 1 + i % 2000, "assignee_id": worker,
                         "group_name": GROUPS[i % len(GROUPS)], "status": "open" if opened else "done", "due_at": due,
                         "created_at": created, "completed_at": done, "completed_by": None if opened else worker, "kind": "task",
                         "round": 1, "work_seconds": work})
            if (done or now) > due:
                late.append((first_task + i, due))
            if len(rows) == BATCH:
                conn.execute(tasks.insert(), rows)
                rows = []
        if rows:
            conn.execute(tasks.insert(), rows)
        alert_rows = []
        for n, (task_id, due) in enumerate(late):
            alert_rows.append({"key": f"a{n}", "task_id": task_id, "level": 1, "recipients": [], "message": "late",
                               "raised_at": due, "acknowledged_at": due + dt.timedelta(hours=1) if n % 3 else None})
            if n % 4 == 0:
                alert_rows.append({"key": f"a{n}-2", "task_id": task_id, "level": 2, "recipients": [], "message": "later",
                                   "raised_at": due + dt.timedelta(hours=2), "acknowledged_at": None})
            if len(alert_rows) >= BATCH:
                conn.execute(alerts.insert(), alert_rows)
                made_alerts += len(alert_rows)
                alert_rows = []
        if alert_rows:
            conn.execute(alerts.insert(), alert_rows)
            made_alerts += len(alert_rows)
    opp = compiled.metadata.tables["opportunity"]
    stages = ["lead", "qualified", "proposal", "negotiation"]
    changes = 0
    with engine.begin() as conn:
        first = (conn.execute(sa.select(sa.func.max(opp.c.id))).scalar() or 0) + 1
        recs, audits = [], []
        opened = sorted(now - dt.timedelta(seconds=rnd.random() * span) for _ in range(n_opps))
        for i in range(n_opps):
            created = opened[i]
            at, path = created, ["lead"]
            moves = [(created, "lead")]
            for stage in stages[1:] + ["closed"]:
                at = at + dt.timedelta(days=rnd.expovariate(1 / 9))
                if at > now:
                    break
                if rnd.random() < 0.25:  # drops out here
                    path.append("lost")
                    moves.append((at, "lost"))
                    break
                final = ("won" if rnd.random() < 0.6 else "lost") if stage == "closed" else stage
                path.append(final)
                moves.append((at, final))
                if stage == "closed":
                    break
            value = f"{rnd.randrange(1, 200) * 500}.00"
            data = {"name": f"Deal {i}", "stage": path[-1], "value": value, "probability": rnd.choice([10, 20, 50, 80]),
                    "owner": staff[rnd.randrange(len(staff))],
                    "expected_close": (created + dt.timedelta(days=rnd.randrange(20, 200))).date().isoformat()}
            recs.append({"title": data["name"], "data": data, "record_fields": {}, "row_version": len(moves), "created_at": created,
                         "updated_at": moves[-1][0], "company": 1 + i % 2000})
            for j, (when, stage) in enumerate(moves):
                audits.append({"entity": "opportunity", "record_id": first + i, "action": "create" if j == 0 else "update",
                               "at": when, "after": {"stage": stage} if j else {"stage": stage, "name": data["name"], "value": value}})
            changes += len(moves)
            if len(recs) >= BATCH:
                conn.execute(opp.insert(), recs)
                recs = []
        if recs:
            conn.execute(opp.insert(), recs)
        audits.sort(key=lambda a: a["at"])  # the audit log is written as the changes happen
        for i in range(0, len(audits), BATCH):
            conn.execute(audit_log.insert(), audits[i:i + BATCH])
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    return {"seconds": time.perf_counter() - t0, "alerts": made_alerts, "changes": changes}


BARE = {"sla figures": "bare count", "funnel figures": "bare count", "sla page": "bare page", "funnel page": "bare page",
        "sla page, warm": "bare page", "funnel page, warm": "bare page"}


def measure(engine: sa.Engine, compiled, runs: int) -> dict[str, list[float]]:
    """Milliseconds per run of each measure, and of the bare baselines measured in the same runs: `bare count`, one
    count of the tasks completed in the SLA's 30 days and of the opportunities created in the funnel's 90 (the floor of
    reading a period: what any report of it must do); `bare page`, GET /reports (the list: the same web stack, login
    and layout, no figures)."""
    model = compiled.model
    with engine.connect() as conn:
        dave = dict(conn.execute(sa.select(users).where(users.c.username == "dave")).mappings().one())
    out: dict[str, list[float]] = {"sla figures": [], "funnel figures": [], "sla charts": [], "sla page": [], "funnel page": [],
                                   "sla page, warm": [], "funnel page, warm": [], "bare count": [], "bare page": []}
    app = create_app(engine, compiled, None, secret_key="bench-secret")
    client = TestClient(app)
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    assert client.post("/login", data={"csrf_token": token, "username": "dave", "password": "dave"}, follow_redirects=False).status_code == 303
    opp = compiled.metadata.tables["opportunity"]
    for i in range(runs + 3):
        now = dt.datetime.now(dt.UTC)
        with engine.connect() as conn:
            t = time.perf_counter()
            conn.execute(sa.select(sa.func.count()).where(tasks.c.status == "done", tasks.c.completed_at >= now - dt.timedelta(days=30)))
            conn.execute(sa.select(sa.func.count()).where(opp.c.created_at >= now - dt.timedelta(days=90)))
            bare = (time.perf_counter() - t) * 1000
            viewer = reports.viewer(conn, model, dave, monitor=True)
            t = time.perf_counter()
            results = []
            for name in SLA_REPORTS:
                r = model.reports[name]
                results.append(reports.run(conn, compiled, r, viewer, reports.read_ask(r, {}, dt.date.today())))
            sla = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            r = model.reports["pipeline_funnel"]
            reports.run(conn, compiled, r, viewer, reports.read_ask(r, {}, dt.date.today()))
            funnel = (time.perf_counter() - t) * 1000
        charts.forget_drawings()
        t = time.perf_counter()
        for result in results:
            charts.svg(result, reports.Drill.url)
        drawing = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        assert client.get("/reports").status_code == 200
        bare_page = (time.perf_counter() - t) * 1000
        charts.forget_drawings()
        t = time.perf_counter()
        assert client.get("/dashboards/support").status_code == 200
        sla_page = (time.perf_counter() - t) * 1000
        t = time.perf_counter()  # the same figures again: their drawings are remembered
        assert client.get("/dashboards/support").status_code == 200
        sla_warm = (time.perf_counter() - t) * 1000
        charts.forget_drawings()
        t = time.perf_counter()
        assert client.get("/reports/pipeline_funnel").status_code == 200
        funnel_page = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        assert client.get("/reports/pipeline_funnel").status_code == 200
        funnel_warm = (time.perf_counter() - t) * 1000
        if i >= 3:  # after the warm-up (the first drawing starts vl-convert's engine)
            for k, v in zip(out, (sla, funnel, drawing, sla_page, funnel_page, sla_warm, funnel_warm, bare, bare_page)):
                out[k].append(v)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="10,000 tasks and 2,000 opportunities")
    ap.add_argument("--dialect", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    n_tasks, n_opps = (10_000, 2_000) if args.quick else (1_000_000, 200_000)
    compiled = compile_model(load([ROOT / "definitions" / "crm"]))
    now = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    results = {}
    for dialect in (("sqlite", "postgresql") if args.dialect == "both" else (args.dialect,)):
        if dialect == "sqlite":
            folder = Path(tempfile.mkdtemp(prefix="report-bench-"))
            engine, drop = make_engine(f"sqlite:///{folder / 'bench.db'}"), None
        else:
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            admin = make_engine(PG_URL)
            with admin.begin() as conn:
                conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
            engine = make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
            drop = (admin, schema)
        try:
            made = seed(engine, compiled, n_tasks, n_opps, now)
            print(f"{dialect}: seeded {n_tasks:,} tasks, {made['alerts']:,} alerts, {n_opps:,} opportunities with {made['changes']:,} stage "
                  f"changes in {made['seconds']:.0f} s", flush=True)
            results[dialect] = (made, measure(engine, compiled, args.runs))
        finally:
            engine.dispose()
            if drop:
                with drop[0].begin() as conn:
                    conn.exec_driver_sql(f"DROP SCHEMA {drop[1]} CASCADE")
                drop[0].dispose()
    goals = {"postgresql": 500, "sqlite": 2000}
    lines = []
    for dialect, (made, figures) in results.items():
        for name, values in figures.items():
            if name.startswith("bare"):
                continue
            p50, p95 = percentile(values, 0.5), percentile(values, 0.95)
            goal = goals[dialect] if "page" in name else None
            verdict = "" if goal is None else ("met" if p95 <= goal else "missed")
            bare = percentile(figures[BARE[name]], 0.5) if name in BARE else None
            baseline = f"{bare:.0f} ms ({BARE[name]}) | {p50 / bare:.1f}x" if bare else " | "
            lines.append(f"| {dialect} | {name} | p50 {p50:.0f} ms, p95 {p95:.0f} ms, max {max(values):.0f} ms | {baseline} | "
                         f"{'p95 ≤ ' + str(goal) + ' ms' if goal else ''} | {verdict} |")
            print(f"{dialect:10} {name:17} p50 {p50:7.0f} ms  p95 {p95:7.0f} ms", flush=True)
    if args.no_write:
        return
    basics = machine_basics()
    section = "\n".join([
        START, "## Report benchmark", "",
        (f"The SLA dashboard and the pipeline funnel over {n_tasks:,} tasks and {n_opps:,} opportunities with two years of stage "
         "history, measured by `bench/report_bench.py`."), "",
        "| database | measure | figure | bare (p50) | ratio (p50) | goal | |", "| --- | --- | --- | --- | --- | --- | --- |", *lines, "",
        "### How each figure is measured", "",
        ("- **Data.** The CRM pack migrated (the reports' indexes: platform migration 0011's `ix_tasks_done` (status, completed_at), "
         "`ix_tasks_due` (status, due_at), `ix_alerts_raised`, `ix_contact_history_occurred`, `ix_audit_log_entity_at` (entity, at); "
         "the entity tables' `ix_ENTITY_created_at`); 60 staff in 4 groups, 2,000 companies; tasks of 9 steps of 5 processes "
         "created over two years (96 % done, a third of those late, each late one alerted at level 1, a quarter also at level 2), "
         "each done one with the working seconds its completion stores (`tasks.work_seconds`, migration 0012, counted on the "
         "process's calendar); opportunities created over two years, each moving through the stages with a stay of 9 days on "
         "average and a 25 % drop-out per stage, one audit-log row per change; bulk-inserted in time order (as the runtime writes "
         "them: a period's rows lie together on disk), then `ANALYZE`."),
        (f"- **Figures.** `runtime.reports.run` of the support dashboard's five task reports ({', '.join(SLA_REPORTS)}) together, "
         "and of `pipeline_funnel`, each with its own default period (30 days for the SLA, 90 for the funnel), for a director "
         "(everyone's tasks). *sla charts*: drawing those five reports' charts (`runtime.charts.svg`, the drawing cache cleared)."),
        ("- **Bare.** *bare count*: one count of the tasks completed in the last 30 days and one of the opportunities created in "
         "the last 90 (the floor of reading a period); *bare page*: `GET /reports`, the list (the same web stack, session and "
         "layout, no figures). Both measured in the same runs."),
        ("- **Pages.** `GET /dashboards/support` (the same five reports, each drawn as SVG) and `GET /reports/pipeline_funnel` "
         "through Starlette's TestClient in this process, logged in as the director; the chart drawing cache is cleared before each "
         "request so every chart is drawn (*warm*: the same page again, whose drawings `runtime.charts` remembers, as it does "
         f"while the figures do not change). {args.runs} runs after 3 warm-up runs; nearest-rank percentiles of wall time."),
        "", f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC in {(time.perf_counter() - started) / 60:.1f} min on:", "",
        *(f"- {k}: {v}" for k, v in basics.items()), f"- engine: {code_state(('engine', 'runtime', 'admin'))}",
        f"- load average: {load_average(': other work on the machine slows every figure')}", "",
        "Run it again with `.venv/bin/python bench/report_bench.py` (`--quick` for smaller sizes) — it rewrites this section.", END, ""])
    write_section(DOCS, START, END, section)


if __name__ == "__main__":
    main()
