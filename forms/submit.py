"""Form submissions: parse what a browser sent, validate it, record it and run its on-submit actions once.

`parse` turns the strings of an HTML form into typed values with a plain-language
message per bad field. `submit` writes the submission to the record's contact history,
runs create/update actions and enqueues the processes it starts (`runtime.outbox`) in
one transaction, keyed by the submission id, so a double click or a retried POST finds
the first result instead of doing it again. The caller starts the enqueued processes
after its commit (`runtime.starter.start_enqueued`); the worker's drainer starts any it
could not.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from jinja2 import TemplateError

from engine import expressions
from engine.compiler import CompiledModel
from engine.model import CreateAction, Field, Form, Source, StartAction, UpdateAction
from engine.sandbox import TemplateLimit
from runtime import outbox, records, values as V
from runtime.history import add_history
from runtime.schema import idempotency_keys
from runtime.triggers import form_starts, holds

from . import widgets


@dataclass
class Submission:
    """What a submission did: its history entry, records it created, processes it enqueued."""

    id: str
    history_id: int | None = None
    created: dict[str, list] = field(default_factory=dict)  # alias -> [entity, id]
    starts: list[str] = field(default_factory=list)  # workflow ids: its start actions, form triggers, its records' triggers
    replayed: bool = False
    updated: dict[str, list] = field(default_factory=dict)  # alias -> [entity, id]: records a find-or-create action found

    @property
    def records(self) -> dict[str, list]:
        """What `created.AS` names: the record each create action made or found, by its alias."""
        return {**self.created, **self.updated}

    @classmethod
    def stored(cls, done: Mapping[str, Any]) -> Submission:
        """A replayed submission from its stored result."""
        # Results stored before the outbox listed starts as dicts (and record events apart); they were started then.
        starts = [s if isinstance(s, str) else outbox.workflow_id(s["process"], s["key"]) for s in done.get("starts", [])]
        return cls(id=done["id"], history_id=done.get("history_id"), created=done.get("created", {}), starts=starts, replayed=True,
                   updated=done.get("updated", {}))


class SubmissionInvalid(Exception):
    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


def _raw(data: Mapping[str, Any], name: str) -> Any:
    getlist = getattr(data, "getlist", None)
    return getlist(name) if getlist else data.get(name)


def parse(form: Form, data: Mapping[str, Any], zone: ZoneInfo | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Typed values from submitted text, and a message per field that is wrong (keyed by field name)."""
    return parse_fields(form.fields, data, zone)


def parse_fields(fields: Iterable[Field], data: Mapping[str, Any], zone: ZoneInfo | None = None, *,
                 names: Mapping[str, str] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Typed values of `fields` from what a browser (or an API client) sent, each through its widget, which checks
    every constraint of the field (the field's schema, money bounds included): a message per wrong field, keyed
    by field name. `names` maps a field to the input it was sent in, where that differs (a record's own fields)."""
    out: dict[str, Any] = {}
    errors: dict[str, str] = {}
    posted = hasattr(data, "getlist")  # an HTML form gives every field as a list; JSON gives each value as it is
    for f in fields:
        raw = _raw(data, (names or {}).get(f.name, f.name))
        if f.type != "multichoice" and isinstance(raw, list) and posted:
            raw = raw[0] if raw else None
        if f.type == "multichoice":
            raw = [x for x in (raw if isinstance(raw, list) else [raw] if raw is not None else []) if x != ""]
        if f.type == "boolean":
            if isinstance(raw, (list, dict)):
                errors[f.name] = f"{f.label} must be yes or no"
            else:
                out[f.name] = widgets.get("boolean").parse(raw, f, zone)
            continue
        if V.is_empty(raw) or (isinstance(raw, str) and not raw.strip()):
            if f.required:
                errors[f.name] = f"{f.label} is required"
            continue
        try:
            value = widgets.get(f.type).parse(raw, f, zone)
        except V.NotConvertible as exc:
            errors[f.name] = field_message(f, str(exc))
            continue
        out[f.name] = value
    return out, errors


EXPECTED = {**V.PATTERN_WORDS, "integer": "a whole number", "decimal": "a number", "reference": "one of the listed records",
            "user": "one of the listed people"}


def field_message(f: Field, problem: str) -> str:
    """'Budget must be an amount like 1250.00' rather than the converter's terse reason."""
    if problem.startswith(("must ", "is ", "lists ")):  # the validator's words read on from the label
        return f"{f.label} {problem}"
    if f.type in EXPECTED:
        return f"{f.label} must be {EXPECTED[f.type]}"
    return f"{f.label}: {problem}"


def _value(src: Source, target: Field, form_values: Mapping[str, Any], form: Form, context: dict, created: dict) -> Any:
    if src.kind == "field":
        value = form_values.get(src.value)
        return None if value is None else V.convert(value, target)
    if src.kind == "record":
        return context["record_id"]
    if src.kind == "created":  # None (left out) when that create action did not run
        return created[src.value][1] if src.value in created else None
    if src.kind == "template":
        try:
            return expressions.render(src.value, context["template"])
        except (TemplateLimit, TemplateError) as exc:  # what was typed into the form may take a template past its limits
            raise SubmissionInvalid({"": f"could not fill in {target.label}: {exc}"}) from exc
    return src.value


def _mapped(pairs, targets: Mapping[str, Field], form_values, form, context, created, what: str) -> dict[str, Any]:
    out = {}
    errors: dict[str, str] = {}
    for name, src in pairs:
        try:
            value = _value(src, targets[name], form_values, form, context, created)
        except V.NotConvertible as exc:
            errors[name] = field_message(targets[name], str(exc))
            continue
        if value is not None:
            out[name] = value
    if errors:
        raise SubmissionInvalid(_on_form_fields(form, pairs, targets, errors, what))
    return out


def _on_form_fields(form: Form, pairs, targets: Mapping[str, Field], errors: Mapping[str, str], what: str) -> dict[str, str]:
    """Problems of the record an action writes, each on the form field its value came from (what the person typed),
    worded with that field's label; the rest, on no field, say which record they are about."""
    fields = {f.name: f for f in form.fields}
    source = {name: fields[src.value] for name, src in pairs if src.kind == "field" and src.value in fields}
    out: dict[str, str] = {}
    rest = []
    for name, message in errors.items():
        typed = source.get(name)
        if typed is None:
            rest.append(message)
            continue
        label = targets[name].label if name in targets else name
        out.setdefault(typed.name, typed.label + message[len(label):] if message.startswith(label) else f"{typed.label}: {message}")
    if rest:
        out[""] = f"could not {what}: " + "; ".join(rest)
    return out


# built once: every submission runs them, and SQLAlchemy then finds their compiled form at once
_DONE = sa.select(idempotency_keys.c.result).where(idempotency_keys.c.key == sa.bindparam("key"))
_RECORD_DONE = idempotency_keys.insert()


def submit(conn: sa.Connection, compiled: CompiledModel, form_name: str, form_values: Mapping[str, Any], *, submission_id: str,
           user: dict, record_id: int | None) -> Submission:
    """Record a valid submission and run its record actions, once per submission id."""
    key = f"submission:{submission_id}"
    done = conn.execute(_DONE, {"key": key}).scalar()
    if done is not None:
        return Submission.stored(done)
    form = compiled.model.forms[form_name]
    result = Submission(submission_id)
    context: dict[str, Any] = {}
    if form.actions:  # their values and conditions may name the record's fields, the user, today
        record = records.get_record(conn, compiled, form.entity, record_id).data if form.entity and record_id else {}
        context = {"record_id": record_id, "template": {"form": dict(form_values), "record": dict(record), "today": dt.date.today(),
                                                        "user": {k: user.get(k) for k in ("id", "name", "email")},
                                                        "now": dt.datetime.now(dt.timezone.utc)}}
    elif form.entity and record_id:
        records.require_record(conn, compiled, form.entity, record_id)  # it must exist; nothing reads it
    if form.entity and record_id:
        entry = add_history(conn, form.entity, record_id, "submission", form.label, {"form": form.name, "values": jsonable(form_values)},
                            user["id"], key=key)
        result.history_id = entry.id
    for i, action in enumerate(form.actions):
        if action.when is not None and not holds(action.when.source, context["template"]):
            continue
        if isinstance(action, CreateAction):
            _create(conn, compiled, form, action, form_values, context, result, user)
        elif isinstance(action, UpdateAction):
            _update(conn, compiled, form, action, form_values, context, result, user, record_id)
        elif isinstance(action, StartAction):
            proc = compiled.model.processes[action.process]
            given = dict(action.inputs)
            target = given.pop("record", None)
            inputs = _mapped(tuple(given.items()), {f.name: f for f in proc.inputs}, form_values, form, context, result.records,
                             f"start {proc.label.lower()}")
            if target is not None and target.kind == "created":
                if target.value not in result.records:
                    continue  # the create action it runs on did not run (its `when` did not hold)
                entity, rid = result.records[target.value]
            else:
                entity, rid = form.entity, record_id
            result.starts.append(outbox.enqueue(conn, action.process, f"{submission_id}-{i}", entity=entity, record_id=rid,
                                                inputs=jsonable(inputs), started_by=user["id"]))
    for name in form_starts(compiled, form_name):
        result.starts.append(outbox.enqueue(conn, name, f"{submission_id}-form", entity=form.entity, record_id=record_id,
                                            started_by=user["id"]))
    stored = {k: v for k, v in vars(result).items() if k != "replayed"}
    conn.execute(_RECORD_DONE, {"key": key, "scope": "submission", "result": stored, "created_at": dt.datetime.now(dt.timezone.utc)})
    return result


def _create(conn: sa.Connection, compiled: CompiledModel, form: Form, action: CreateAction, form_values: Mapping[str, Any],
            context: dict, result: Submission, user: dict) -> None:
    """A create action; with `match`, the record whose unique field has the value is updated instead, if there is one."""
    entity = compiled.model.entities[action.entity]
    targets = {f.name: f for f in entity.all_fields()}
    values = _mapped(action.set, targets, form_values, form, context, result.records, f"create the {entity.label.lower()}")
    found = records.find_unique(conn, compiled, action.entity, action.match, values.get(action.match)) if action.match else None
    what = f"{'update' if found else 'create'} the {entity.label.lower()}"
    try:
        if found is None:
            rec = records.create_record(conn, compiled, action.entity, values, user["id"], history=f"Created from {form.label}")
        else:
            rec = records.update_record(conn, compiled, action.entity, found.id, values, user["id"], history=f"Updated by {form.label}")
    except records.RecordInvalid as exc:
        raise SubmissionInvalid(_on_form_fields(form, action.set, targets, exc.errors, what)) from exc
    (result.updated if found else result.created)[action.alias] = [action.entity, rec.id]
    result.starts += rec.starts


def _update(conn: sa.Connection, compiled: CompiledModel, form: Form, action: UpdateAction, form_values: Mapping[str, Any],
            context: dict, result: Submission, user: dict, record_id: int | None) -> None:
    """An update action: of the form's record, of the record a reference field of the form names, or of an earlier create's."""
    if action.target == "record":
        entity_name, rid = form.entity, record_id
    elif action.target in result.records:
        entity_name, rid = result.records[action.target]
    else:
        ref = form.field(action.target)  # a reference field of the form (engine.checks.update_target)
        entity_name, rid = (ref.entity, form_values.get(action.target)) if ref is not None else (None, None)
    if not entity_name or rid is None:
        return  # no record to update: the form has none, the reference was left empty, or its create did not run
    entity = compiled.model.entities[entity_name]
    targets = {f.name: f for f in entity.all_fields()}
    what = f"update the {entity.label.lower()}"
    changes = _mapped(action.set, targets, form_values, form, context, result.records, what)
    try:
        rec = records.update_record(conn, compiled, entity_name, rid, changes, user["id"], history=f"Updated by {form.label}")
    except records.RecordNotFound as exc:  # a reference typed into the form that names no record
        raise SubmissionInvalid({action.target if action.target in form_values else "": f"there is no {entity.label.lower()} {rid}"}) from exc
    except records.RecordInvalid as exc:
        raise SubmissionInvalid(_on_form_fields(form, action.set, targets, exc.errors, what)) from exc
    result.starts += rec.starts


def jsonable(values: Mapping[str, Any]) -> dict:
    """Form values as JSON can carry them (dates as ISO text)."""
    return {k: (v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else v) for k, v in values.items()}


def choices_for(compiled: CompiledModel, conn: sa.Connection, f: Field, users: Iterable[dict]) -> list[tuple[Any, str]]:
    """Options of a select: choices, records of a referenced entity, users or groups."""
    if f.choices:
        return [(c.value, c.label) for c in f.choices]
    if f.type == "reference":
        table = compiled.metadata.tables[f.entity]
        return [(r.id, r.title or f"#{r.id}") for r in conn.execute(sa.select(table.c.id, table.c.title).order_by(table.c.title).limit(500))]
    if f.type == "user":
        return [(u["id"], u["name"]) for u in users]
    if f.type == "group":
        return [(g.name, g.label) for g in compiled.model.groups.values()]
    return []
