"""The new and edit pages of a record, built from its entity (like Django admin's ModelAdmin forms, from our YAML).

A page shows the entity's edit sections (`engine.pages.edit_sections`), then a section per group, shown
while the group's condition holds on the values as typed, then the record's own fields. Every input is a
widget of `forms.widgets`, described as the dict `fields.html` draws (the shape of a form layout's field).
Reference pickers are scoped: a reference to an entity that itself refers to something this record
refers to lists only the records that match (an opportunity's contact: people of its company).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from engine import pages
from engine.compiler import CompiledModel
from engine.errors import NOWHERE
from engine.model import Entity, Field, Model
from forms import submit as forms
from forms import widgets
from runtime import records
from runtime.schema import users

from ..access import allowed

OWN = "own-"  # inputs of a record's own fields are named own-NAME (entity field names have no '-')
PICKER_LIMIT = 200  # options a picker lists at once; typing narrows them


@dataclass
class PageSection:
    """One fieldset of the page: its title, columns and the widgets of its fields."""

    title: str
    columns: int
    fields: list[dict]
    group: str | None = None  # a group's section: shown while the group's condition holds
    shown: bool = True
    help: str = ""


@dataclass
class Typed:
    """What a new or edit page sent: typed values, a message per wrong input, and the text as typed."""

    values: dict[str, Any]        # entity fields on the page (None: emptied)
    own: dict[str, Any]           # the record's own fields, by name (None: emptied)
    errors: dict[str, str]        # input name -> message
    raw: dict[str, Any]           # input name -> the text as typed (shown again when the page is refused)
    holding: set[str] = field(default_factory=set)  # groups whose condition holds on the typed values
    shown: set[str] = field(default_factory=set)    # groups whose section the page showed


# -- the widgets -------------------------------------------------------------------------


def spec(f: Field, entity: Entity, model: Model, record_id: int | None = None) -> dict:
    """The dict `fields.html` draws for field `f` of `entity` (the shape of a form layout's field)."""
    out = {"name": f.name, "label": f.label, "type": f.type, "widget": widgets.get(f.type).input, "required": f.required,
           "help": f.help, "placeholder": f.placeholder, "entity": f.entity, "currency": f.currency, "default": f.default}
    if f.type in ("reference", "user"):
        out["lookup"] = f"/records/{entity.name}/pick/{f.name}" + (f"?id={record_id}" if record_id else "")
        out["scope"] = sorted({source for _, source in scope_pairs(model, entity, f) if source != "id"})
    return out


def own_field(name: str, entry: Mapping[str, Any]) -> Field:
    """A record's own field as a Field, so its widget parses and shows it like any other."""
    return Field(name=name, type=str(entry.get("type", "string")), loc=NOWHERE, label=str(entry.get("label") or name))


def _section_fields(e: Entity, names: Iterable[str]) -> list[Field]:
    by_name = {f.name: f for f in e.all_fields()}
    return [by_name[n] for n in names if n in by_name]


def holding_groups(e: Entity, values: Mapping[str, Any], record: records.Record | None = None,
                   today: dt.date | None = None) -> set[str]:
    """The groups whose condition holds on these values (the record's other fields filled in from `record`)."""
    context: dict[str, Any] = record.context(e) if record else {f.name: None for f in e.all_fields()}
    context.update(values)
    return records.groups_holding(e, context, today or dt.date.today())


def sections(e: Entity, model: Model, holding: set[str], record_id: int | None = None) -> list[PageSection]:
    """The page's sections: the entity's edit sections, then one per group (hidden while it does not hold)."""
    out = [PageSection(s.title, s.columns, [spec(f, e, model, record_id) for f in _section_fields(e, s.fields)], help=s.help)
           for s in pages.edit_sections(e)]
    for g in e.groups:
        out.append(PageSection(g.label, 2, [spec(f, e, model, record_id) for f in g.fields], group=g.name,
                               shown=g.name in holding, help=g.description))
    return out


def _main_fields(e: Entity) -> list[Field]:
    return _section_fields(e, [n for s in pages.edit_sections(e) for n in s.fields])


# -- reading what was typed ----------------------------------------------------------------


def _raw(data: Mapping[str, Any], f: Field, name: str) -> Any:
    getlist = getattr(data, "getlist", None)
    if f.type == "multichoice":
        return getlist(name) if getlist else data.get(name)
    return data.get(name)


def read(e: Entity, data: Mapping[str, Any], zone: ZoneInfo, record: records.Record | None = None) -> Typed:
    """The typed values of a posted new or edit page, each through its widget, with a message per wrong input.

    Fields of a group are read while the group's section was on the page and its condition still holds;
    a group whose condition holds only now keeps its values (the person has not seen its section yet).
    """
    shown = set(str(data.get("groups", "")).split()) & {g.name for g in e.groups}
    main = _main_fields(e)
    values, errors = forms.parse_fields(main, data, zone)
    holding = holding_groups(e, values, record)
    read_fields = list(main)
    for g in e.groups:
        if g.name in holding and g.name in shown:
            more, problems = forms.parse_fields(g.fields, data, zone)
            values.update(more)
            errors.update(problems)
            read_fields += g.fields
    typed = Typed(values={f.name: values.get(f.name) for f in read_fields}, own={}, errors=errors,
                  raw={f.name: _raw(data, f, f.name) for f in read_fields}, holding=holding, shown=shown)
    if record is not None:
        own = [own_field(n, entry) for n, entry in record.record_fields.items() if OWN + n in data]
        values, problems = forms.parse_fields(own, data, zone, names={f.name: OWN + f.name for f in own})
        typed.own = {f.name: values.get(f.name) for f in own}
        typed.errors.update({OWN + k: v for k, v in problems.items()})
        typed.raw.update({OWN + f.name: data.get(OWN + f.name) for f in own})
    return typed


def read_query(e: Entity, query: Mapping[str, str], zone: ZoneInfo) -> dict[str, Any]:
    """The values a link gives a new page (`?company=5`): those that parse; anything else is left out."""
    wanted = [f for f in e.all_fields() if query.get(f.name, "") != ""]
    values, _ = forms.parse_fields(wanted, query, zone)
    return values


# -- what the inputs show ------------------------------------------------------------------


def input_values(e: Entity, values: Mapping[str, Any], names: widgets.Names) -> dict[str, Any]:
    """Stored (typed) values as the page's inputs show them."""
    by_name = {f.name: f for f in e.all_fields()}
    return {k: widgets.get(by_name[k].type).input_value(v, by_name[k], names) for k, v in values.items()
            if k in by_name and v is not None}


def defaults(e: Entity, holding: set[str]) -> dict[str, Any]:
    """The defaults a new record starts with: of every field, and of the fields of groups that hold."""
    fields = list(e.fields) + [f for g in e.groups if g.name in holding for f in g.fields]
    return {f.name: f.default for f in fields if f.default is not None}


def own_inputs(record: records.Record, names: widgets.Names) -> list[dict]:
    """The record's own fields as inputs: their widget, label and value."""
    out = []
    for name, entry in record.record_fields.items():
        f = own_field(name, entry)
        out.append({"name": name, "input": OWN + name, "label": f.label, "type": f.type,
                    "value": widgets.get(f.type).input_value(entry.get("value"), f, names),
                    "spec": {"name": OWN + name, "label": f.label, "type": f.type, "widget": widgets.get(f.type).input,
                             "required": False}})
    return out


# -- pickers -------------------------------------------------------------------------------


def scope_pairs(model: Model, e: Entity, f: Field) -> list[tuple[str, str]]:
    """How the records a reference `f` of `e` may pick are narrowed: (their field, this record's field or 'id').

    A target that refers back to this entity is narrowed to this record (a company's contact: its people);
    a target that refers to what this record also refers to, to that (an opportunity's contact: the people
    of the opportunity's company). In the order of the target's fields; the first that has a value applies.
    """
    if f.type != "reference" or f.entity not in model.entities:
        return []
    pairs = []
    for g in model.entities[f.entity].fields:
        if g.type != "reference":
            continue
        if g.entity == e.name:
            pairs.append((g.name, "id"))
        pairs += [(g.name, h.name) for h in e.all_fields() if h is not f and h.type == "reference" and h.entity == g.entity]
    return pairs


def scope_of(model: Model, e: Entity, f: Field, values: Mapping[str, Any], record_id: int | None) -> dict[str, Any]:
    """The filter that narrows reference `f`'s picker for a record with these values; {} when nothing is chosen."""
    for theirs, ours in scope_pairs(model, e, f):
        value = record_id if ours == "id" else values.get(ours)
        if isinstance(value, int) and not isinstance(value, bool):
            return {theirs: value}
    return {}


def record_options(conn: sa.Connection, compiled: CompiledModel, e: Entity, f: Field, values: Mapping[str, Any],
                   record_id: int | None, typed: str = "", names: widgets.Names | None = None) -> list[tuple[int, str]]:
    """The records reference `f` offers (scoped, titles containing `typed`), the chosen one always among them."""
    filters: dict[str, Any] = dict(scope_of(compiled.model, e, f, values, record_id))
    if typed.strip():
        filters["title"] = {"contains": typed.strip()}
    found = records.search_records(conn, compiled, f.entity, filters, sort="title", page_size=PICKER_LIMIT)
    options = [(r.id, r.title) for r in found.items]
    chosen = values.get(f.name)
    if isinstance(chosen, int) and chosen not in {i for i, _ in options} and not typed.strip():
        options.insert(0, (chosen, (names or widgets.Names(conn, compiled)).title(f.entity, chosen)))
    return options


def staff_options(conn: sa.Connection, model: Model, typed: str = "", chosen: Any = None) -> list[tuple[int, str]]:
    """Active staff to pick as a user value: people who log in (API-only accounts have no password)
    and whose roles let them work here (never portal users)."""
    q = (sa.select(users.c.id, users.c.name, users.c.roles)
         .where(users.c.active, users.c.password_hash.is_not(None), users.c.company_id.is_(None)).order_by(users.c.name))
    if typed.strip():
        q = q.where(users.c.name.ilike(f"%{typed.strip()}%"))
    options = [(r.id, r.name) for r in conn.execute(q) if allowed(model, {"roles": r.roles}, "access")]
    if isinstance(chosen, int) and chosen not in {i for i, _ in options} and not typed.strip():
        name = conn.execute(sa.select(users.c.name).where(users.c.id == chosen)).scalar()
        options.insert(0, (chosen, name or "a former user"))  # someone no longer pickable stays until changed
    return options


def options(conn: sa.Connection, compiled: CompiledModel, e: Entity, values: Mapping[str, Any], record_id: int | None,
            names: widgets.Names) -> dict[str, list]:
    """The options of every select of the page: choice labels, scoped records, active staff, groups."""
    out: dict[str, list] = {}
    for f in e.all_fields():
        if f.choices:
            out[f.name] = [(c.value, c.label) for c in f.choices]
        elif f.type == "reference":
            out[f.name] = record_options(conn, compiled, e, f, values, record_id, names=names)
        elif f.type == "user":
            out[f.name] = staff_options(conn, compiled.model, chosen=values.get(f.name))
        elif f.type == "group":
            out[f.name] = [(g.name, g.label) for g in compiled.model.groups.values()]
    return out


# -- the whole page ----------------------------------------------------------------------------


def page(conn: sa.Connection, compiled: CompiledModel, user: dict, e: Entity, record: records.Record | None, *,
         values: Mapping[str, Any], inputs: Mapping[str, Any] | None = None, errors: Mapping[str, str] | None = None,
         conflict: list[dict] | None = None, version: int | None = None, add: Mapping[str, Any] | None = None) -> dict:
    """What `records/edit.html` shows: sections with the groups that hold on `values` (typed values, for the
    groups and the pickers' scope), what each input shows (`inputs`: as typed when the page is shown again),
    the record's own fields, and the add-a-field form."""
    names = widgets.Names(conn, compiled, widgets.zone_of(compiled.model, user))
    names.prefetch(e.all_fields(), [values])
    holding = holding_groups(e, values, record)
    shown = {**input_values(e, values, names), **(inputs or {})}
    own = own_inputs(record, names) if record else []
    for o in own:
        o["value"] = shown.get(o["input"], o["value"])
    record_id = record.id if record else None
    return {"entity": e, "record": record, "sections": sections(e, compiled.model, holding, record_id), "values": shown,
            "errors": dict(errors or {}), "options": options(conn, compiled, e, values, record_id, names), "own": own,
            "row_version": version if version is not None else (record.row_version if record else None),
            "groups_shown": " ".join(sorted(holding)), "conflict": conflict,
            "can_add_field": record is not None and e.record_fields.allowed and allowed(compiled.model, user, "add_record_fields"),
            "field_types": e.record_fields.types, "add": dict(add or {})}
