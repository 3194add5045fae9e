"""Work in flight as a worker leaves it, for the task page, My work and team view tests and screenshots.

Two lead follow-ups on the CRM pack, written through runtime.tasks (the rows and history entries a worker's
activities write), then dated back so the timeline reads as days of work:
- `chase`: qualified by Bob (handed to him by Mia), proposal sent by Bob at a 10% discount (so the discount approval
  was skipped), the chase now with Ann, with two comments;
- `sent_back`: Bob proposed a 20% discount, Dave rejected it with a reason (Mia's approval task cancelled), the
  proposal is back with Bob in round 2.
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from runtime import records
from runtime import tasks as task_service
from runtime.schema import contact_history, process_instances, tasks


def _ago(now: dt.datetime, **delta) -> dt.datetime:
    return now - dt.timedelta(**delta)


def seed_work(conn: sa.Connection, compiled, people: dict[str, int], opportunity: int, person: int, company: int, *,
              now: dt.datetime | None = None) -> dict[str, int]:
    """The two processes' task rows and history (the second on a new opportunity of `company`); returns the task ids by
    name: "chase", "qualify_done", "sent_back", "approval_rejected"."""
    now = now or dt.datetime.now(dt.UTC)
    ids: dict[str, int] = {}

    def instance(wid: str, record: int, by: str, at: dt.datetime) -> None:
        conn.execute(process_instances.insert().values(workflow_id=wid, process="lead_follow_up", version="1", entity="opportunity",
                                                       record_id=record, status="running", inputs={}, started_by=people[by], started_at=at))

    def task(wid: str, step: str, title: str, record: int, at: dt.datetime, **values) -> int:
        row = {"key": f"{wid}:{step}:{values.pop('key_suffix', '')}", "workflow_id": wid, "process": "lead_follow_up", "step_id": step,
               "title": title, "entity": "opportunity", "record_id": record, "status": "open", "created_at": at, **values}
        return conn.execute(tasks.insert().values(**row)).inserted_primary_key[0]

    def dated(key: str, at: dt.datetime) -> None:
        conn.execute(contact_history.update().where(contact_history.c.key == key).values(occurred_at=at))

    def done(task_id: int, who: str, data: dict, at: dt.datetime, key: str, outcome: str = "done", status: str = "done") -> None:
        task_service.set_task_state(conn, task_id, status, people[who], outcome, data, key=key)
        conn.execute(tasks.update().where(tasks.c.id == task_id).values(completed_at=at))
        dated(f"task-state:{key}", at)

    # -- the chase: Ann has it now -----------------------------------------------------
    wid = "seed-chase"
    instance(wid, opportunity, "ann", _ago(now, days=4))
    q = task(wid, "qualify", "Qualify the enquiry: Acme Health – platform upgrade", opportunity, _ago(now, days=4), form="qualification",
             assignee_id=people["ann"], group_name="sales", due_at=_ago(now, days=2), created_by=people["ann"])
    task_service.reassign_task(conn, q, people["bob"], "sales", people["mia"], key="seed-chase-reassign")
    dated("task-reassigned:seed-chase-reassign", _ago(now, days=3, hours=6))
    done(q, "bob", {"outcome": "qualified", "owner": people["bob"], "budget_confirmed": True, "decision_maker": person, "probability": 60,
                    "notes": "40 seats from January.\nThey compare us with one other supplier."}, _ago(now, days=3), "seed-chase-q")
    p = task(wid, "proposal", "Send a proposal: Acme Health – platform upgrade", opportunity, _ago(now, days=3), form="proposal",
             assignee_id=people["bob"], due_at=_ago(now, days=1), created_by=people["ann"])
    done(p, "bob", {"proposal_value": "24000.00", "discount_percent": 10, "sent_on": (now - dt.timedelta(days=2)).date().isoformat(),
                    "stage": "proposal"}, _ago(now, days=2), "seed-chase-p")
    ids["chase"] = task(wid, "chase", "Chase the proposal: Acme Health – platform upgrade", opportunity, _ago(now, days=2),
                        assignee_id=people["ann"], group_name="sales", due_at=now + dt.timedelta(days=2), created_by=people["ann"],
                        description="Proposal for £24000.00 sent. Find out where it stands and update the opportunity's stage.")
    ids["qualify_done"] = q
    task_service.add_comment(conn, ids["chase"], people["mia"], "They asked for the case study too — send it with the chase.",
                             "seed-chase-c1")
    dated("comment:seed-chase-c1", _ago(now, days=1, hours=3))
    task_service.add_comment(conn, ids["chase"], people["ann"], "Will do. Calling them on Thursday.", "seed-chase-c2")
    dated("comment:seed-chase-c2", _ago(now, hours=20))

    # -- the proposal sent back: round 2 with Bob ----------------------------------------
    wid = "seed-discount"
    record = records.create_record(conn, compiled, "opportunity", {"name": "Globex – new depots", "company": company, "stage": "proposal",
                                                                   "owner": people["bob"]}, people["bob"]).id
    ids["globex_opportunity"] = record
    instance(wid, record, "bob", _ago(now, days=6))
    q2 = task(wid, "qualify", "Qualify the enquiry: Globex – new depots", record, _ago(now, days=6), form="qualification",
              assignee_id=people["bob"], group_name="sales", due_at=_ago(now, days=4), created_by=people["bob"])
    done(q2, "bob", {"outcome": "qualified", "owner": people["bob"], "probability": 40}, _ago(now, days=5), "seed-discount-q")
    p2 = task(wid, "proposal", "Send a proposal: Globex – new depots", record, _ago(now, days=5), form="proposal", assignee_id=people["bob"],
              due_at=now + dt.timedelta(hours=30), created_by=people["bob"])
    done(p2, "bob", {"proposal_value": "52000.00", "discount_percent": 20, "sent_on": (now - dt.timedelta(days=1)).date().isoformat(),
                     "stage": "negotiation"}, _ago(now, days=1, hours=2), "seed-discount-p")
    subject = {"of": "proposal", "task_id": p2, "show": ["record.amount", "proposal.discount_percent"]}
    dave = task(wid, "discount_approval", "Approve a 20% discount: Globex – new depots", record, _ago(now, days=1, hours=2),
                kind="approval", assignee_id=people["dave"], subject=subject, key_suffix="r1:dave", due_at=now + dt.timedelta(hours=6))
    mia = task(wid, "discount_approval", "Approve a 20% discount: Globex – new depots", record, _ago(now, days=1, hours=2),
               kind="approval", assignee_id=people["mia"], subject=subject, key_suffix="r1:mia", due_at=now + dt.timedelta(hours=6))
    reason = "20% is more than we give a first order. Offer 12% and free training."
    conn.execute(tasks.update().where(tasks.c.id == dave).values(reason=reason))
    done(dave, "dave", None, _ago(now, hours=5), "seed-discount-dave", outcome="rejected")
    task_service.set_task_state(conn, mia, "cancelled", None, key="seed-discount-mia")
    conn.execute(tasks.update().where(tasks.c.id == p2).values(status="open", round=2, reason=reason, completed_at=None, completed_by=None,
                                                               outcome=None))
    ids["sent_back"], ids["approval_rejected"] = p2, dave
    return ids
