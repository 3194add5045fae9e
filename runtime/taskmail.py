"""The emails processes send about tasks, written into the mail outbox (`runtime.mailbox`) in the transaction of what they tell.

An alert's emails go with the alert row, an approval request's with the approval task, a sent-back piece of work's with
the rejection that sent it back: what commits is emailed, once, by whichever worker's outbox sender comes first, and a
retried write finds its emails already there (each is keyed by the event, and by the recipient group for an alert).
Their words are `runtime.messages`': each recipient reads the times in their own zone and the titles in their language.

Emails are not workflow commands, so a burst of deadlines adds no activities to the task queue: the alerts' writes are
all the process does at a deadline (docs/runtime.md, "Processes", on escalations).
"""
from __future__ import annotations

import sqlalchemy as sa

from engine.model import Model

from . import mailbox, messages, notifications
from . import tasks as task_service
from .schema import alerts, users


def emails(conn: sa.Connection, user_ids: list[int]) -> list[str]:
    """The email addresses of `user_ids` (those who have one)."""
    if not user_ids:
        return []
    return [e for e in conn.execute(sa.select(users.c.email).where(users.c.id.in_(user_ids))).scalars() if e]


def alert(conn: sa.Connection, model: Model, alert_id: int, base_url: str) -> int:
    """Put an alert's emails in the outbox unless that was done: one per group of recipients who read the same text in the
    same zone and language (`messages.alert_mails`), keyed `alert-ID[-i]` (their Message-IDs, `tailor-alert-ID[-i]`, are
    those the alert emails always had), and mark the alert emailed; returns how many were added."""
    row = conn.execute(sa.select(alerts).where(alerts.c.id == alert_id)).mappings().one()
    task = task_service.get_task(conn, row["task_id"])
    if row["emailed_at"] is not None or task is None:
        return 0
    people = messages.recipients(conn, model, list(row["recipients"] or []))
    added = _alert_mails(conn, model, dict(row), task, notifications.texts(conn, f"alert:{row['key']}", row["recipients"] or []),
                         base_url, people)
    task_service.mark_emailed(conn, alert_id)
    return added


def new_alert(conn: sa.Connection, model: Model, alert: dict, task: dict, texts: dict[int, str], base_url: str,
              people: dict[int, messages.Recipient]) -> int:
    """`alert`'s emails, for the write that has just raised it (`tasks.raise_alert` returned it created, marked emailed,
    with the notifications of `texts`): as `alert` puts them, from what the write has in hand (`people`: its recipients,
    `messages.recipients`) rather than read back."""
    told = {uid: (texts.get(uid) or alert["message"])[:notifications.TEXT_LIMIT] for uid in alert["recipients"] or [] if uid}
    return _alert_mails(conn, model, alert, task, told, base_url, people)


def _alert_mails(conn: sa.Connection, model: Model, alert: dict, task: dict, told: dict[int, str], base_url: str,
                 people: dict[int, messages.Recipient]) -> int:
    readers = {uid: p.reader for uid, p in people.items()}
    mails = [([people[u].email for u in to if u in people and people[u].email], subject, body) for to, subject, body in
             messages.alert_mails(conn, model, alert, task, told, f"{base_url}/tasks/{task['id']}", readers)]
    return sum(mailbox.enqueue(conn, f"alert-{alert['id']}" + (f"-{i}" if i else ""), to, subject, body)
               for i, (to, subject, body) in enumerate(m for m in mails if m[0]))


def approval_requested(conn: sa.Connection, model: Model, key: str, task: dict, base_url: str) -> bool:
    """Email an approval task's approver that it waits for them (`key`: the task's own); False when it had been, or they have no address."""
    if not task.get("assignee_id"):
        return False
    subject, body = messages.approval_mail(conn, model, task, task_service.user_name(conn, task_service.requester(conn, task)),
                                           f"{base_url}/tasks/{task['id']}")
    return mailbox.enqueue(conn, f"approval-waiting-{key}", emails(conn, [task["assignee_id"]]), subject, body)


def sent_back(conn: sa.Connection, model: Model, key: str, task: dict, by: int, reason: str, base_url: str) -> bool:
    """Email whoever did a piece of work that `by` sent it back (`task`: as it is now, open again for them), with the reason."""
    if not task.get("assignee_id"):
        return False
    subject, body = messages.sent_back_mail(conn, model, task, task_service.user_name(conn, by), reason, f"{base_url}/tasks/{task['id']}")
    return mailbox.enqueue(conn, f"sent-back-{key}", emails(conn, [task["assignee_id"]]), subject, body)
