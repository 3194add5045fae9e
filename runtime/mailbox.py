"""The mail outbox: emails written in the transaction of what they tell, sent by the worker.

The web app has no mail server of its own, and an email sent from a request could be lost (the
process dies after the commit) or sent twice (a retried request). So what a request wants emailed
(a staff reply to a customer), and what a process's write tells of (an alert, an approval request, work sent
back: `runtime/taskmail.py`), is a row here, keyed by the event and written with the event itself;
every worker runs `run`, which sends the rows whose turn has come. A row is claimed before it is
sent (its next turn moved past the sending time), so two workers do not send it together; the
Message-ID comes from the key, so a send repeated after a crash between sending and marking it
sent is the same message again, as for alerts (see `runtime/mail.py`).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Iterable

import sqlalchemy as sa

from . import db
from .keyed import insert_new
from .mail import MailSession, MailSettings
from .schema import mail_outbox

PENDING, SENT, FAILED = "pending", "sent", "failed"
POLL_SECONDS = 1.0
LEASE = dt.timedelta(minutes=2)          # a claimed row waits this long before another sender may try it
MAX_RETRY_DELAY = dt.timedelta(minutes=30)
MAX_ATTEMPTS = 40                        # with the growing delays, about a day of trying; then the row is marked failed
BATCH = 50

log = logging.getLogger(__name__)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def enqueue(conn: sa.Connection, key: str, recipients: Iterable[str], subject: str, body: str, *, link: str | None = None,
            at: dt.datetime | None = None) -> bool:
    """Add an email to the caller's transaction, once per `key`; False when it had been added already or has nobody to go to.

    `link` is a path on the site ("/portal/requests/3"): the sender writes it with the site's address at the end of the body.
    """
    to = sorted({r.strip() for r in recipients if r and r.strip()})
    if not to:
        return False
    now = at or utcnow()
    row = insert_new(conn, mail_outbox, {"key": key[:300], "recipients": to, "subject": subject[:500], "body": body, "link": link,
                                         "status": PENDING, "created_at": now, "next_attempt_at": now, "attempts": 0}, ("key",))
    return row is not None


def message_key(key: str) -> str:
    """What names the email in its Message-ID (and its .eml file in the development outbox)."""
    return f"tailor-{key}"


def _claim(engine: sa.Engine, now: dt.datetime, limit: int) -> list[sa.Row]:
    """The due rows this sender takes: each one's turn moved past the lease, so no other sender takes it meanwhile
    (a claim counts an attempt, so of two senders that read the same row only the first one's claim matches)."""
    with db.writing(engine) as conn:
        due = list(conn.execute(sa.select(mail_outbox).where(mail_outbox.c.status == PENDING, mail_outbox.c.next_attempt_at <= now)
                                .order_by(mail_outbox.c.id).limit(limit)))
        taken = []
        for row in due:
            won = conn.execute(mail_outbox.update().where(mail_outbox.c.id == row.id, mail_outbox.c.status == PENDING,
                                                          mail_outbox.c.attempts == row.attempts)
                               .values(next_attempt_at=now + LEASE, attempts=mail_outbox.c.attempts + 1)).rowcount
            if won:
                taken.append(row)
        return taken


def body_of(row, base_url: str) -> str:
    """The email's text: its body, then the address of what it is about."""
    return row.body + (f"\n\n{base_url.rstrip('/')}{row.link}\n" if row.link else "")


def send_due(engine: sa.Engine, mail: MailSettings, *, now: dt.datetime | None = None, limit: int = BATCH) -> int:
    """Send the emails whose turn has come; returns how many went out. A failed one waits 2 s, 4 s, ... (at most 30 min)."""
    now = now or utcnow()
    claimed = _claim(engine, now, limit)
    if not claimed:
        return 0
    with mail.session() as post:  # one connection to the mail server for the batch
        return sum(_send(engine, post, mail.base_url, row, now) for row in claimed)


def _send(engine: sa.Engine, post: MailSession, base_url: str, row: sa.Row, now: dt.datetime) -> bool:
    """Send one claimed email and mark it sent; if it fails, give it its next turn (or give it up) and return False."""
    try:
        post.send(row.recipients, row.subject, body_of(row, base_url), key=message_key(row.key))
    except Exception as exc:  # the mail server refused or is down: the row waits for its next turn
        attempts = row.attempts + 1
        given_up = attempts >= MAX_ATTEMPTS
        delay = min(dt.timedelta(seconds=2 ** min(attempts, 20)), MAX_RETRY_DELAY)
        with db.writing(engine) as conn:
            conn.execute(mail_outbox.update().where(mail_outbox.c.id == row.id, mail_outbox.c.status == PENDING)
                         .values(status=FAILED if given_up else PENDING, next_attempt_at=now + delay,
                                 last_error=f"{type(exc).__name__}: {exc}"[:2000]))
        (log.error if given_up else log.warning)("email %s not sent (attempt %d%s): %s", row.key, attempts,
                                                 ", given up" if given_up else "", exc)
        return False
    with db.writing(engine) as conn:
        conn.execute(mail_outbox.update().where(mail_outbox.c.id == row.id).values(status=SENT, sent_at=utcnow(), last_error=None))
    return True


async def run(engine: sa.Engine, mail: MailSettings, *, poll: float = POLL_SECONDS) -> None:
    """Send due emails every `poll` seconds until cancelled; while the database fails, wait twice as long each time."""
    delay = poll
    while True:
        try:
            await asyncio.to_thread(send_due, engine, mail)
            delay = poll
        except Exception:  # the database is down: try again later, never stop sending
            delay = min(delay * 2, 30.0)
            log.warning("sending the mail outbox failed; next try in %.0f s", delay, exc_info=True)
        await asyncio.sleep(delay)
