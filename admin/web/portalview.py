"""What a customer's people see of their requests: only what is meant for them.

A request's page in the portal shows the fields the customer can tell us (those the portal forms set
when they create the request) and its status, by label; when its status changed (from the audit log,
in the viewer's time zone); and the conversation: the contact-history entries marked public (the
customer's own replies and the staff replies made public). Internal comments, the other fields (who
works on it, internal notes, tracker references) and the definitions' descriptions never appear.
Another company's request, or a record that is not a request, is 'not found' (never its content).
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from fastapi import HTTPException

from engine.compiler import CompiledModel
from engine.errors import Loc
from engine.model import CreateAction, Entity, Field
from forms import widgets
from runtime import records, words
from runtime.conversation import COMPANY, company_of
from runtime.history import list_audit, list_history

REQUEST = "support_request"  # the entity the portal calls "requests"
STATUS = "status"            # its choice field the customer follows
CONVERSATION_SHOWN = 200
_WHO = Field("user_id", "user", Loc("contact history"), "Who")
NOT_FOUND = "There is no request of yours with that number."


def request_entity(compiled: CompiledModel) -> Entity | None:
    return compiled.model.entities.get(REQUEST)


def is_request(compiled: CompiledModel, entity: str | None) -> bool:
    """Whether records of `entity` are customers' requests (their people follow them in the portal)."""
    return entity == REQUEST and request_entity(compiled) is not None


def request_or_404(conn: sa.Connection, compiled: CompiledModel, record_id, company_id: int) -> records.Record:
    """The request numbered `record_id` if it is the company's; anything else is 'not found', with the same words."""
    try:
        number = int(str(record_id))
    except ValueError:
        number = 0
    if request_entity(compiled) is None or not 0 < number < 2**63:
        raise HTTPException(404, NOT_FOUND)
    try:
        rec = records.get_record(conn, compiled, REQUEST, number)
    except records.RecordNotFound:
        raise HTTPException(404, NOT_FOUND) from None
    if company_of(compiled, rec) != company_id:
        raise HTTPException(404, NOT_FOUND)
    return rec


def status_field(ent: Entity) -> Field | None:
    f = ent.field(STATUS)
    return f if f is not None and f.type == "choice" else None


def customer_fields(compiled: CompiledModel, ent: Entity) -> list[Field]:
    """The fields a customer can see: those the portal forms fill in when they create a request (not its company:
    that is them), then the status; in the entity's order."""
    given = {name for form in compiled.model.forms.values() if form.portal for action in form.actions
             if isinstance(action, CreateAction) and action.entity == ent.name for name, _ in action.set}
    status = status_field(ent)
    return [f for f in ent.all_fields() if (f.name in given and not (f.type == "reference" and f.entity == COMPANY))
            or (status is not None and f.name == status.name)]


def status_text(ent: Entity, value) -> str:
    f = status_field(ent)
    if f is None or value in (None, ""):
        return ""
    return next((c.label for c in f.choices if c.value == value), str(value))


@dataclass(frozen=True)
class StatusChange:
    when: str
    status: str
    was: str  # '' for the first


def status_history(conn: sa.Connection, ent: Entity, rec: records.Record, zone, locale: str | None = None) -> list[StatusChange]:
    """When the request's status changed, oldest first: each status by its label, with the one before it."""
    f = status_field(ent)
    if f is None:
        return []
    changes: list[StatusChange] = []
    current = None
    for entry in list_audit(conn, ent.name, rec.id):
        after = entry.after or {}
        if f.name not in after or after[f.name] == current:
            continue
        value = after[f.name]
        changes.append(StatusChange(widgets.when_text(entry.at, zone, locale=locale), status_text(ent, value), status_text(ent, current)))
        current = value
    return changes


@dataclass(frozen=True)
class Message:
    when: str
    who: str
    text: str
    mine: bool
    ours: bool  # written by staff (the supplier's side)
    internal: bool = False  # an internal comment: staff see it among the replies, the customer never does


def _internal_comment(e) -> bool:
    return not e.public and e.kind == "note" and isinstance(e.data, dict) and e.data.get("from") == "staff" and "text" in e.data


def conversation(conn: sa.Connection, compiled: CompiledModel, rec: records.Record, viewer: dict, zone, locale: str | None = None, *,
                 internal: bool = False) -> list[Message]:
    """The public entries of the request's contact history, oldest first, as the customer's people read them;
    `internal`: with staff's internal comments among them (for staff only)."""
    if internal:
        entries = [e for e in list_history(conn, rec.entity, rec.id, kinds=("reply", "note"), limit=CONVERSATION_SHOWN)
                   if e.public or _internal_comment(e)][::-1]
    else:
        entries = list(reversed(list_history(conn, rec.entity, rec.id, public_only=True, limit=CONVERSATION_SHOWN)))
    names = widgets.Names(conn, compiled, zone)
    names.prefetch([_WHO], [{"user_id": e.user_id} for e in entries])
    out = []
    for e in entries:
        data = e.data if isinstance(e.data, dict) else {}
        text = data.get("text") if isinstance(data.get("text"), str) else e.summary
        mine = e.user_id is not None and e.user_id == viewer["id"]
        who = words.text(locale, "You") if mine else widgets.text(e.user_id, _WHO, names) if e.user_id else "Tailor"
        out.append(Message(widgets.when_text(e.occurred_at, zone, locale=locale), who, text, mine, data.get("from") != "customer", not e.public))
    return out


def details(conn: sa.Connection, compiled: CompiledModel, ent: Entity, rec: records.Record, zone) -> list[tuple[str, str]]:
    """(label, display text) of the request's customer-facing fields that have a value."""
    fields = [f for f in customer_fields(compiled, ent) if rec.data.get(f.name) not in (None, "", [])]
    names = widgets.Names(conn, compiled, zone)
    names.prefetch(fields, [rec.data])
    return [(f.label, widgets.text(rec.data[f.name], f, names)) for f in fields]


def company_requests(conn: sa.Connection, compiled: CompiledModel, company_id: int, zone) -> list[dict]:
    """The company's requests, newest first: title, status label, when raised and the address of each one's page."""
    ent = request_entity(compiled)
    if ent is None:
        return []
    company = next((f for f in ent.fields if f.type == "reference" and f.entity == COMPANY), None)
    if company is None:
        return []
    found = records.search_records(conn, compiled, ent.name, {company.name: company_id}, sort="-created_at", page_size=100)
    return [{"title": r.title, "status": status_text(ent, r.data.get(STATUS)), "created": widgets.when_text(r.created_at, zone, locale=compiled.model.locale),
             "url": f"/portal/requests/{r.id}"} for r in found.items]
