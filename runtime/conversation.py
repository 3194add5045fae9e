"""The conversation about a customer's request: replies between staff and the customer's people.

A reply is an entry in the record's contact history, written once per key (a double submit finds the
first one): `public` entries are the ones the customer's portal users see (their own replies and the
staff replies made public); an internal comment stays `public = false`. In the same transaction the
other side hears of it: a customer's reply notifies the staff working on the request, a public staff
reply notifies the company's portal users and is emailed (through the mail outbox, `runtime.mailbox`)
to the request's contact and the company's portal users who have an email address.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import sqlalchemy as sa

from engine.compiler import CompiledModel
from engine.model import Entity

from . import mailbox, parties, records
from .history import HistoryEntry, add_history
from .notifications import notify
from .schema import OPEN_STATUSES, contact_history, tasks, users

COMPANY = "company"  # the entity a portal user belongs to (users.company_id)
MAX_LENGTH = 5000
EXCERPT = 120
OPEN = OPEN_STATUSES  # tasks someone still has to act on


class ReplyRefused(ValueError):
    """A reply that cannot be written as it is (empty, too long); the message says so to the person who wrote it."""


@dataclass(frozen=True)
class Reply:
    entry: HistoryEntry
    new: bool  # False: this key had been used (a double submit); nothing was written or sent again


def excerpt(text: str, length: int = EXCERPT) -> str:
    """The start of a reply on one line, for summaries and notifications."""
    line = " ".join(text.split())
    return line if len(line) <= length else line[:length - 1].rstrip() + "…"


def clean(text: str) -> str:
    """The reply as it is kept: line endings made plain, blank lines at either end removed; refused if empty or too long."""
    text = str(text or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise ReplyRefused("Write your reply first: it is empty.")
    if len(text) > MAX_LENGTH:
        raise ReplyRefused(f"A reply can be at most {MAX_LENGTH:,} characters long; this one has {len(text):,}. Shorten it and send it again.")
    return text


def add_reply(conn: sa.Connection, compiled: CompiledModel, entity: str, record_id: int, text: str, user: dict, *, public: bool,
              key: str, customer: bool = False) -> Reply:
    """Write `user`'s reply on the record (once per `key` and text) and tell the other side; `customer`: written by one of
    the customer's people (always public). Raises ReplyRefused for an empty or too long text, RecordNotFound for no record."""
    text = clean(text)
    rec = records.get_record(conn, compiled, entity, record_id)
    public = public or customer
    # the same text sent again with the same key is a double submit; another text under a page's key (sent again after
    # going back to the page) is a new reply
    history_key = f"reply:u{user['id']}:{hashlib.sha256(text.encode()).hexdigest()[:16]}:{key}"[:300]
    first = conn.execute(sa.select(contact_history.c.id).where(contact_history.c.key == history_key)).first()
    if customer:
        kind, summary = "reply", f"{user['name']} (customer) replied: {excerpt(text, 300)}"
    elif public:
        kind, summary = "reply", f"Reply to the customer: {excerpt(text, 300)}"
    else:
        kind, summary = "note", f"Internal comment: {excerpt(text, 300)}"
    entry = add_history(conn, entity, rec.id, kind, summary, {"text": text, "from": "customer" if customer else "staff"}, user["id"],
                        key=history_key, public=public)
    if first is not None:
        return Reply(entry, new=False)
    if customer:
        _tell_staff(conn, compiled, rec, entry, user, text)
    elif public:
        _tell_customer(conn, compiled, rec, entry, user, text)
    return Reply(entry, new=True)


def portal_link(rec: records.Record) -> str:
    return f"/portal/requests/{rec.id}"


# -- who hears of it ---------------------------------------------------------------------


def _tell_staff(conn: sa.Connection, compiled: CompiledModel, rec: records.Record, entry: HistoryEntry, user: dict, text: str) -> None:
    """A customer's reply: the assignees of the request's open tasks (each linked to their task); with none, the members of
    the queue an open task waits in; with no open task, the request's owner, else its company's owner."""
    text_of = f"{user['name']} replied on {rec.title}: “{excerpt(text)}”"
    open_tasks = conn.execute(sa.select(tasks.c.id, tasks.c.assignee_id, tasks.c.group_name).where(
        tasks.c.entity == rec.entity, tasks.c.record_id == rec.id, tasks.c.status.in_(OPEN)).order_by(tasks.c.id)).all()
    told = False
    for t in open_tasks:
        holders = parties.active(conn, [t.assignee_id] if t.assignee_id else parties.group_users(conn, t.group_name) if t.group_name else [])
        if holders:
            notify(conn, f"reply:{entry.id}:t{t.id}", holders, "reply", text_of, f"/tasks/{t.id}")
            told = True
    if told:
        return
    owners = parties.active(conn, [u for u in (_owner(conn, compiled, rec),) if u])
    notify(conn, f"reply:{entry.id}", owners, "reply", text_of, f"/records/{rec.entity}/{rec.id}")


def _owner(conn: sa.Connection, compiled: CompiledModel, rec: records.Record) -> int | None:
    """The request's owner (its `owner` user field), else the owner of the company it is for."""
    if isinstance(rec.data.get("owner"), int):
        return rec.data["owner"]
    company = company_of(compiled, rec)
    if company is None:
        return None
    try:
        owner = records.get_record(conn, compiled, COMPANY, company).data.get("owner")
    except records.RecordNotFound:
        return None
    return owner if isinstance(owner, int) else None


def company_of(compiled: CompiledModel, rec: records.Record) -> int | None:
    """The company the record is for: the value of its reference to a company."""
    ent = compiled.model.entities[rec.entity]
    if rec.entity == COMPANY:
        return rec.id
    field = next((f for f in ent.all_fields() if f.type == "reference" and f.entity == COMPANY), None)
    value = rec.data.get(field.name) if field else None
    return value if isinstance(value, int) else None


def portal_users(conn: sa.Connection, compiled: CompiledModel, company_id: int | None) -> list[dict]:
    """The company's people with an active portal account (not staff linked to it), by id: id, name, email."""
    if company_id is None:
        return []
    roles = compiled.model.roles
    rows = conn.execute(sa.select(users.c.id, users.c.name, users.c.email, users.c.roles)
                        .where(users.c.company_id == company_id, users.c.active).order_by(users.c.id)).mappings()
    return [{"id": r["id"], "name": r["name"], "email": r["email"]} for r in rows
            if not {"access", "admin"} & {p for name in r["roles"] or [] if name in roles for p in roles[name].permissions}]


def contacts(conn: sa.Connection, compiled: CompiledModel, rec: records.Record) -> list[tuple[str, str]]:
    """(name, email) of whom a public reply is emailed to: the people the request names (a reference to a record with an
    email, such as 'Reported by'), then the company's portal users with an email address; each address once."""
    ent: Entity = compiled.model.entities[rec.entity]
    found: dict[str, str] = {}
    for f in ent.all_fields():
        target = compiled.model.entities.get(f.entity) if f.type == "reference" and f.entity != COMPANY else None
        email_field = next((x for x in target.all_fields() if x.type == "email"), None) if target else None
        if email_field is None or not isinstance(rec.data.get(f.name), int):
            continue
        try:
            person = records.get_record(conn, compiled, target.name, rec.data[f.name])
        except records.RecordNotFound:
            continue
        address = person.data.get(email_field.name)
        if isinstance(address, str) and address.strip():
            found.setdefault(address.strip().lower(), person.title)
    for u in portal_users(conn, compiled, company_of(compiled, rec)):
        if u["email"]:
            found.setdefault(u["email"].strip().lower(), u["name"])
    return [(name, address) for address, name in found.items()]


def _tell_customer(conn: sa.Connection, compiled: CompiledModel, rec: records.Record, entry: HistoryEntry, user: dict, text: str) -> None:
    """A public staff reply: the company's portal users are notified, and the request's contacts get it by email."""
    link = portal_link(rec)
    people = portal_users(conn, compiled, company_of(compiled, rec))
    notify(conn, f"reply:{entry.id}", [u["id"] for u in people], "reply", f"{user['name']} replied on your request {rec.title}", link)
    body = (f"{user['name']} replied to your request {rec.title}:\n\n{text}\n\n"
            "To answer, or to see the whole conversation and the request's status, open the request:")
    mailbox.enqueue(conn, f"reply-{entry.id}", [address for _, address in contacts(conn, compiled, rec)], f"Re: {rec.title}", body,
                    link=link)
