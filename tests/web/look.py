"""A running site for browser checks of every page: the CRM pack and its demo data on SQLite, some work in
flight (tasks, an approval, a project, alerts), served by uvicorn on a free port; and axe-core for the browser.

No process engine: the pages read tasks, alerts and projects from the database, so rows written here show
exactly what a worker's would. axe-core is the npm package, installed once into `.cache/npm/` (git-ignored).
"""
from __future__ import annotations

import datetime as dt
import fcntl
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
import uvicorn

from admin.demo import load_demo
from admin.app import create_app
from engine.compiler import compile_model
from engine.loader import load
from runtime.conversation import add_reply
from runtime.records import update_record
from runtime.schema import alerts, notifications, project_members, projects, tasks, users
from runtime.schema import metadata as platform
from tests.conftest import CRM, ROOT, free_port
from tests.web.work_seed import seed_work

AXE_VERSION = "4.14.1"
AXE_HOME = ROOT / ".cache" / "npm" / f"axe-core-{AXE_VERSION}"


def axe_script() -> Path:
    """axe.min.js of the pinned axe-core, installed with npm the first time (a clear failure without npm)."""
    script = AXE_HOME / "node_modules" / "axe-core" / "axe.min.js"
    if script.exists():
        return script
    AXE_HOME.mkdir(parents=True, exist_ok=True)
    with open(AXE_HOME / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs installing at once would trample each other
        if not script.exists():
            npm = shutil.which("npm")
            if not npm:
                raise RuntimeError("the accessibility checks need npm to install axe-core (Debian: apt-get install npm)")
            done = subprocess.run([npm, "install", "--prefix", str(AXE_HOME), "--no-audit", "--no-fund", "--loglevel=error",
                                   f"axe-core@{AXE_VERSION}"], capture_output=True, text=True, timeout=600, check=False)
            if done.returncode or not script.exists():
                raise RuntimeError(f"npm could not install axe-core {AXE_VERSION}:\n{done.stdout}\n{done.stderr}")
    return script


@dataclass
class Site:
    base: str
    engine: sa.Engine
    ids: dict[str, int]  # records, tasks, projects and users by a short name, for the pages' paths

    def url(self, path: str) -> str:
        return self.base + path.format(**self.ids)


def _seed(engine: sa.Engine, compiled) -> dict[str, int]:
    """The demo data, then the work a worker would have written: tasks (one overdue, one in a queue, one waiting
    for approval), a project with its team, alerts to Ann and Mia, and the support request's conversation."""
    load_demo(engine, compiled)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        people = dict(conn.execute(sa.select(users.c.username, users.c.id)).all())
        ids = {f"user_{k}": v for k, v in people.items()}
        for entity in ("company", "person", "opportunity", "contract", "support_request"):
            table = compiled.metadata.tables[entity]
            for rid, title in conn.execute(sa.select(table.c.id, table.c.title).order_by(table.c.id)).all():
                ids.setdefault(entity, rid)
                ids.setdefault(f"{entity}_{title.split()[0].lower()}", rid)
        project = conn.execute(projects.insert().values(key="look:onboarding", title="Onboarding: Acme Health Ltd", entity="company",
                                                        record_id=ids["company"], manager_id=people["pam"], status="open",
                                                        created_at=now - dt.timedelta(days=3))).inserted_primary_key[0]
        conn.execute(project_members.insert(), [{"project_id": project, "user_id": people[u]} for u in ("ann", "jane")])

        def task(step: str, **values) -> int:
            row = {"key": step, "workflow_id": f"look-{step}", "process": "lead_follow_up", "step_id": step, "status": "open",
                   "created_at": now - dt.timedelta(days=1), **values}
            return conn.execute(tasks.insert().values(**row)).inserted_primary_key[0]

        ids["task"] = task("qualify", title="Qualify the enquiry: Acme Health – platform upgrade", entity="opportunity",
                           record_id=ids["opportunity"], form="qualification", assignee_id=people["ann"], group_name="sales",
                           due_at=now - dt.timedelta(hours=3), created_by=people["ann"],
                           routed="Acme Health – platform upgrade has no owner, so it came to Ann Sales, who started the process.")
        ids["queued"] = task("call", title="Call Northwind Retail back about the pilot", entity="company", record_id=ids["company_northwind"],
                             group_name="sales", due_at=now + dt.timedelta(days=2))
        ids["approval"] = task("discount_approval", title="Approve a 15% discount for Acme Health", entity="opportunity",
                               record_id=ids["opportunity"], form="proposal", assignee_id=people["ann"], status="awaiting_approval",
                               approver={"kind": "role", "name": "sales_manager"}, due_at=now + dt.timedelta(hours=20))
        # an approval step's task for Dave, and a proposal he sent back to Ann (tasks/_decision.html)
        show = {"show": ["record.company", "proposal.proposal_value", "proposal.discount_percent", "proposal.sent_on"]}
        offer = {"proposal_value": "24000.00", "discount_percent": 20, "sent_on": "2026-03-02", "stage": "proposal"}
        work = task("proposal", key="look-deal:proposal", workflow_id="look-deal", title="Send a proposal: Acme Health – platform upgrade",
                    entity="opportunity", record_id=ids["opportunity"], form="proposal", assignee_id=people["bob"], status="done",
                    data=offer, completed_by=people["bob"], completed_at=now - dt.timedelta(hours=1))
        ids["approval_step"] = task("discount_approval", key=f"look-deal:discount_approval:r1:u{people['dave']}", workflow_id="look-deal",
                                    kind="approval", title="Approve a 20% discount: Acme Health – platform upgrade", entity="opportunity",
                                    record_id=ids["opportunity"], assignee_id=people["dave"], subject={"of": "proposal", "task_id": work, **show},
                                    due_at=now + dt.timedelta(hours=20))
        ids["sent_back"] = task("proposal", key="look-back:proposal", workflow_id="look-back", title="Send a proposal: Acme Health – upgrade",
                                entity="opportunity", record_id=ids["opportunity"], form="proposal", assignee_id=people["ann"], data=offer,
                                round=2, reason="Too steep for a first order: offer 15% at most.", due_at=now + dt.timedelta(days=2))
        ids["decided"] = task("discount_approval", key=f"look-back:discount_approval:r1:u{people['dave']}", workflow_id="look-back", kind="approval",
             title="Approve a 20% discount: Acme Health – upgrade", entity="opportunity", record_id=ids["opportunity"],
             assignee_id=people["dave"], subject={"of": "proposal", "task_id": ids["sent_back"], **show}, status="done", outcome="rejected",
             reason="Too steep for a first order: offer 15% at most.", completed_by=people["dave"], completed_at=now - dt.timedelta(hours=2))
        ids["project_task"] = task("kickoff", title="Run the onboarding kick-off", entity="company", record_id=ids["company"],
                                   project_id=project, form="onboarding_kickoff", assignee_id=people["pam"], process="onboarding",
                                   due_at=now + dt.timedelta(days=5))
        ids["project"] = project
        ids.update(seed_work(conn, compiled, people, ids["opportunity"], ids["person"], ids["company_globex"]))  # processes under way
        # the support request's conversation: triaged by Sue, who replied to Jane in public and noted something internal
        ids["triage"] = task("triage", title="Triage: Reports will not print", entity="support_request", record_id=ids["support_request"],
                             form="support_triage", assignee_id=people["sue"], group_name="support", process="support_sla",
                             due_at=now + dt.timedelta(hours=3))
        update_record(conn, compiled, "support_request", ids["support_request"], {"status": "in_progress"}, people["sue"])
        jane, sue = ({"id": people[u], "name": n} for u, n in (("jane", "Jane Doe"), ("sue", "Sue Support")))
        add_reply(conn, compiled, "support_request", ids["support_request"], "Is there any news? Month end is on Friday.", jane,
                  public=True, key="look-1", customer=True)
        add_reply(conn, compiled, "support_request", ids["support_request"], "We can reproduce it: the printer driver 4.2 stops at "
                  "80%.\nPlease install driver 4.3 from the downloads page and tell us whether the report prints.", sue,
                  public=True, key="look-2")
        add_reply(conn, compiled, "support_request", ids["support_request"], "Their contract covers a site visit if 4.3 does not help.",
                  sue, public=False, key="look-3")
        for n, (to, text) in enumerate([(["mia"], "Qualify the enquiry: Acme Health – platform upgrade was due yesterday and has not been done."),
                                        (["ann", "mia"], "SLA breach: Triage: Reports will not print was due this morning.")]):
            conn.execute(alerts.insert().values(key=f"look:alert:{n}", task_id=ids["task"], level=n + 1, recipients=[people[u] for u in to],
                                                message=text, entity="opportunity", record_id=ids["opportunity"], due_at=now,
                                                raised_at=now - dt.timedelta(hours=n)))
        # notifications: the bell shows a count, the list has read and unread ones
        for n, (to, kind, text, link, read) in enumerate([
                ("ann", "task", "New task for you: Qualify the enquiry: Acme Health – platform upgrade", f"/tasks/{ids['task']}", True),
                ("ann", "alert", "SLA breach: Triage: Reports will not print was due this morning.", f"/tasks/{ids['task']}", False),
                ("ann", "mention", "Mia Manager mentioned you on 'Call Northwind Retail back about the pilot': @ann can you take this?",
                 f"/tasks/{ids['queued']}", False),
                ("jane", "reply", "Pam replied to your request: Reports will not print", "/portal", False)]):
            conn.execute(notifications.insert().values(key=f"look:notification:{n}", user_id=people[to], kind=kind, text=text, link=link,
                                                       created_at=now - dt.timedelta(hours=3 - n), read_at=now if read else None))
    return ids


def start_site(tmp: Path) -> tuple[Site, uvicorn.Server, threading.Thread]:
    """The app over a seeded SQLite database, listening on a free port in a thread of this process."""
    compiled = compile_model(load([CRM]))
    engine = sa.create_engine(f"sqlite:///{tmp / 'look.db'}")
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    ids = _seed(engine, compiled)
    url, server, thread = serve(create_app(engine, compiled, None, secret_key="look-secret"))
    return Site(url, engine, ids), server, thread


def serve(app) -> tuple[str, uvicorn.Server, threading.Thread]:
    """`app` listening on a free port in a thread of this process: (its address, the server, its thread)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="look-site", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the web app did not start")
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server, thread
