"""Saving what a record's new and edit pages send: a new record, changes (its own fields too), own fields added and removed.

Each is one transaction through `runtime.records`, and each writes the record's contact history in words
people read (names, labels, amounts; never ids) besides the audit log the record service keeps. A change
made to a version someone else has changed meanwhile is refused (`records.Conflict`); `other_changes`
then says what they changed.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa

from engine.compiler import CompiledModel
from engine.model import Entity, Field
from forms import submit as forms
from forms import widgets
from runtime import records, words
from runtime import values as V
from runtime.history import add_history, list_audit

from .recordforms import OWN, Typed, own_field

UNKNOWN = object()  # a value the audit log cannot tell


class OwnFieldInvalid(Exception):
    """A field of its own that cannot be added: a message per input of the add form (label, type, value)."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(errors.values()))


def _text(value: Any, f: Field, names: widgets.Names) -> str:
    return widgets.text(value, f, names) if value not in (None, "", []) else "(empty)"


def _same(f: Field, before: Any, after: Any) -> bool:
    if f.type == "boolean":  # an unticked box on a record that never had the value changes nothing
        return bool(before) == bool(after)
    return (None if V.is_empty(before) else V.normalize(f.type, before)) == (None if V.is_empty(after) else V.normalize(f.type, after))


def create(conn: sa.Connection, compiled: CompiledModel, e: Entity, typed: Typed, user: dict) -> records.Record:
    """A new record from a new page (unticked boxes without a default are left out: nothing was said)."""
    by_name = {f.name: f for f in e.all_fields()}
    values = {k: v for k, v in typed.values.items() if v is not None and not (v is False and by_name[k].default is None)}
    return records.create_record(conn, compiled, e.name, values, user["id"], history=True)


def update(conn: sa.Connection, compiled: CompiledModel, e: Entity, record_id: int, typed: Typed, version: int, user: dict,
           names: widgets.Names) -> records.Record:
    """Apply an edit page to the version it showed (Conflict if someone changed it since), own fields included,
    with one history entry that says what changed."""
    current = records.get_record(conn, compiled, e.name, record_id)
    by_name = {f.name: f for f in e.all_fields()}
    changes = {k: v for k, v in typed.values.items() if not _same(by_name[k], current.data.get(k), v)}
    rec = records.update_record(conn, compiled, e.name, record_id, changes, user["id"], expected_version=version)
    starts = rec.starts  # the processes the change enqueued; the own fields' writes start none
    before = {k: current.data.get(k) for k in rec.changed}
    after = {k: rec.data.get(k) for k in rec.changed}
    parts = [f"{by_name[k].label}: {_text(before[k], by_name[k], names)} → {_text(after[k], by_name[k], names)}" for k in rec.changed]
    for name, value in typed.own.items():
        entry = rec.record_fields.get(name)
        f = own_field(name, entry or {})
        if entry is None or _same(f, entry.get("value"), value):
            continue
        try:
            rec = records.set_record_field(conn, compiled, e.name, record_id, name, value, user["id"])
        except records.RecordInvalid as exc:
            raise records.RecordInvalid(e.name, {OWN + k: v for k, v in exc.errors.items()}) from None
        before[f"{records.RECORD_FIELD_PREFIX}{name}"] = entry.get("value")
        after[f"{records.RECORD_FIELD_PREFIX}{name}"] = rec.record_fields[name].get("value")
        parts.append(f"{f.label} (this {e.label.lower()} only): {_text(entry.get('value'), f, names)} → "
                     f"{_text(rec.record_fields[name].get('value'), f, names)}")
    if parts:
        add_history(conn, e.name, record_id, "change", "Changed " + "; ".join(parts), {"before": before, "after": after}, user["id"])
    return replace(rec, starts=starts)


def own_field_name(label: str) -> str:
    """The stored name of a field of its own called `label` ('Parking bays' -> parking_bays)."""
    name = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")
    return name if not name or name[0].isalpha() else "f_" + name


def add_own_field(conn: sa.Connection, compiled: CompiledModel, e: Entity, record_id: int, label: str, ftype: str, text: str,
                  user: dict, names: widgets.Names) -> records.Record:
    """Give one record a field of its own with a first value; OwnFieldInvalid says what is wrong, per input."""
    label = label.strip()
    name = own_field_name(label)
    if not name:
        raise OwnFieldInvalid({"label": words.text(compiled.model.locale, "Give the field a name")})
    if ftype not in e.record_fields.types:
        raise OwnFieldInvalid({"type": words.text(compiled.model.locale, "Choose one of the kinds listed (%(kinds)s)", kinds=", ".join(e.record_fields.types))})
    f = own_field(name, {"type": ftype, "label": label})
    value = None
    if text.strip():
        try:
            value = widgets.get(ftype).parse(text, f, names.zone)
        except V.NotConvertible as exc:
            raise OwnFieldInvalid({"value": forms.field_message(f, str(exc))}) from None
    try:
        rec = records.add_record_field(conn, compiled, e.name, record_id, name, ftype, label, value, user["id"])
    except records.RecordInvalid as exc:
        message = "; ".join(exc.errors.values()) or "not accepted"
        raise OwnFieldInvalid({"value" if message.startswith(label) else "label": message}) from None
    add_history(conn, e.name, record_id, "change", f"Added a field of this {e.label.lower()} only: {label} = {_text(value, f, names)}",
                {"after": {name: dict(rec.record_fields[name])}}, user["id"])
    return rec


def remove_own_field(conn: sa.Connection, compiled: CompiledModel, e: Entity, record_id: int, name: str, version: int | None,
                     user: dict, names: widgets.Names) -> str:
    """Remove one of a record's own fields from the version shown (its last value stays in the audit log); its label."""
    current = records.get_record(conn, compiled, e.name, record_id)
    entry = current.record_fields.get(name)
    if entry is None:
        raise records.RecordInvalid(e.name, {"": f"this {e.label.lower()} has no field '{name}' of its own (it may have been removed already)"})
    records.remove_record_field(conn, compiled, e.name, record_id, name, user["id"], expected_version=version)
    f = own_field(name, entry)
    add_history(conn, e.name, record_id, "change", f"Removed the field {f.label} (was {_text(entry.get('value'), f, names)})",
                {"before": {name: dict(entry)}}, user["id"])
    return f.label


@dataclass
class OtherChange:
    """A field someone else changed since the page was opened."""

    name: str              # its input on the page (own fields: own-NAME)
    label: str
    now: str               # its value now, as people read it
    by: str                # who changed it
    before: Any = UNKNOWN  # its value when the page was opened
    mine: str | None = None  # what this person typed instead, where both changed it


def other_changes(conn: sa.Connection, compiled: CompiledModel, e: Entity, current: records.Record, version: int,
                  names: widgets.Names) -> list[OtherChange]:
    """What someone else changed since `version`: each field's label, its value now and then, and who changed it.

    Every write of a record adds one audit entry and one version, so the entries past the first `version` are
    the changes made since. Where the log does not line up (older data) the values then are unknown, and
    every field's typed input counts as a clash.
    """
    entries = list_audit(conn, e.name, current.id)
    by_name = {f.name: f for f in e.all_fields()}
    found: dict[str, dict] = {}
    if len(entries) == current.row_version:
        for entry in entries[version:]:
            author = names.user(entry.user_id) if entry.user_id else "the system"
            for key in {**(entry.before or {}), **(entry.after or {})}:
                if key in records.SYSTEM_COLUMNS:
                    continue
                then = (entry.before or {}).get(key)
                seen = found.setdefault(key, {"by": set(), "before": then.get("value") if isinstance(then, Mapping) else then})
                seen["by"].add(author)
                after = (entry.after or {}).get(key)
                if isinstance(after, Mapping) and "label" in after or isinstance(then, Mapping) and "label" in then:
                    seen["label"] = str((after if isinstance(after, Mapping) else then)["label"])  # an own field added or removed
    out = []
    for key, seen in found.items():
        by = ", ".join(sorted(seen["by"]))
        if key in by_name:
            f = by_name[key]
            out.append(OtherChange(key, f.label, _text(current.data.get(key), f, names), by, seen["before"]))
            continue
        entry = current.record_fields.get(key)
        f = own_field(key, entry or {"label": seen.get("label", key)})
        now = _text(entry.get("value"), f, names) if entry else "(removed)"
        out.append(OtherChange(OWN + key, f"{f.label} (this {e.label.lower()} only)", now, by, seen["before"]))
    return out


def keep_theirs(e: Entity, current: records.Record, typed: Typed, changes: list[OtherChange], names: widgets.Names) -> None:
    """Merge what someone else changed into what was typed: a field this person left as it was takes their value;
    where both changed a field, this person's input stays and `mine` says what it is."""
    by_name = {f.name: f for f in e.all_fields()}
    for change in changes:
        own = change.name.startswith(OWN)
        key = change.name.removeprefix(OWN)
        entry = current.record_fields.get(key) if own else None
        f = own_field(key, entry) if entry else by_name.get(key)
        typed_values = typed.own if own else typed.values
        if f is None or key not in typed_values:
            continue
        if change.before is not UNKNOWN and _same(f, change.before, typed_values[key]):
            typed_values.pop(key)
            typed.raw.pop(change.name, None)
        elif not _same(f, (entry or {}).get("value") if own else current.data.get(key), typed_values[key]):
            change.mine = _text(typed_values[key], f, names)
