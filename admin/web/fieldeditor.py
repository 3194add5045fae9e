"""The field editor: a field of an entity for all its records or for one of its groups (an existing group, or a new
one with its condition), and the rules for single-record fields, as typed into a form and as the entity's YAML data.

The form's inputs are named after the options they set (`label`, `max_length`, ...), so a problem the check finds at
an option written in the YAML goes back to the input of the same name.
"""
from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from engine import editing
from engine.build import humanise
from engine.model import Entity, Field, RecordFieldRules

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
TYPES = {"string": "Text, one line", "text": "Text, several lines", "integer": "Whole number", "decimal": "Number with a fraction",
         "money": "Amount of money", "boolean": "Yes or no", "date": "Date", "datetime": "Date and time", "email": "Email address",
         "phone": "Phone number", "url": "Web address", "choice": "One of a list", "multichoice": "Several of a list",
         "reference": "A record of another kind", "user": "One of our staff", "group": "A team"}
# which options mean something for which types (the form shows them all without scripts; editors.js hides the others)
FOR_TYPES = {
    "placeholder": ("string", "text", "integer", "decimal", "money", "email", "phone", "url"),
    "min": ("integer", "decimal", "money", "date"), "max": ("integer", "decimal", "money", "date"),
    "min_length": ("string", "text"), "max_length": ("string", "text"), "pattern": ("string",),
    "choices": ("choice", "multichoice"), "entity": ("reference",), "currency": ("money",),
    "default": ("string", "text", "integer", "decimal", "money", "boolean", "date", "email", "phone", "url", "choice"),
}
SIMPLE = ("string", "text", "integer", "decimal", "money", "boolean", "date", "email", "phone", "url")  # single-record field types


@dataclass
class FieldForm:
    """What the field editor shows and what was typed into it (text as typed; ticks as booleans)."""

    original: str = ""     # the field's name when it is changed ('' for a new field)
    scope: str = "all"     # 'all', 'group:NAME' or 'new-group'
    group_name: str = ""
    group_label: str = ""
    group_when: str = ""
    name: str = ""
    label: str = ""
    type: str = "string"
    help: str = ""
    required: bool = False
    placeholder: str = ""
    default: str = ""
    min: str = ""
    max: str = ""
    min_length: str = ""
    max_length: str = ""
    pattern: str = ""
    choices: str = ""
    entity: str = ""
    currency: str = ""
    indexed: bool = False
    unique: bool = False
    section: str = ""

    @classmethod
    def of(cls, f: Field, e: Entity) -> FieldForm:
        """The form filled in with a field as the draft defines it."""
        section = next((s.title for s in e.pages.sections if f.name in s.fields), "")
        text = lambda v: "" if v is None else str(v)
        return cls(original=f.name, scope=f.scope, name=f.name, label=f.label if f.label != humanise(f.name) else "", type=f.type,
                   help=f.help, required=f.required, placeholder=f.placeholder, default=text(f.default), min=text(f.min), max=text(f.max),
                   min_length=text(f.min_length), max_length=text(f.max_length), pattern=f.pattern or "",
                   choices="\n".join(str(c.value) if c.label == humanise(str(c.value)) else f"{c.value}: {c.label}" for c in f.choices),
                   entity=f.entity or "", currency=f.currency or "", indexed=f.indexed, unique=f.unique, section=section)

    @classmethod
    def posted(cls, data: Mapping[str, Any]) -> FieldForm:
        out = {}
        for f in fields(cls):
            if f.type == "bool" or isinstance(f.default, bool):
                out[f.name] = bool(data.get(f.name))
            else:
                out[f.name] = str(data.get(f.name, "")).replace("\r\n", "\n").strip()[:2000]
        return cls(**out)

    def values(self) -> dict[str, Any]:
        return asdict(self)


def _number(text: str, what: str, errors: dict, key: str, *, whole: bool = False) -> int | float | None:
    if not text:
        return None
    try:
        value = float(text.replace(",", ""))
    except ValueError:
        errors[key] = f"Give {what} as a number, e.g. {'10' if whole else '0 or 12.5'}."
        return None
    if whole and not value.is_integer():
        errors[key] = f"Give {what} as a whole number, e.g. 10."
        return None
    return int(value) if value.is_integer() else value


def _date(text: str, errors: dict, key: str) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        errors[key] = "Give a date as year-month-day, e.g. 2026-03-31."
        return None


def choices(text: str, errors: dict) -> list:
    """The choices typed one per line, 'value' or 'value: Label', as the YAML writes them."""
    out: list = []
    for line in text.splitlines():
        if not line.strip():
            continue
        value, _, label = line.partition(":")
        value, label = value.strip(), label.strip()
        if not value:
            errors["choices"] = f"Each line is a value, or a value, a colon and its label; '{line.strip()}' has no value."
            continue
        out.append(value if not label or label == humanise(value) else {"value": value, "label": label})
    return out


def field_spec(form: FieldForm, errors: dict[str, str]) -> dict[str, Any]:
    """The field's YAML data from what was typed (only what differs from the defaults), with a message per wrong input."""
    t = form.type
    if t not in TYPES:
        errors["type"] = "Choose the kind of value."
        return {}
    spec: dict[str, Any] = {"type": t}
    if form.label and form.label != humanise(form.name):
        spec["label"] = form.label
    for key in ("help", "placeholder"):
        if getattr(form, key) and (key != "placeholder" or t in FOR_TYPES[key]):
            spec[key] = getattr(form, key)
    if form.required:
        spec["required"] = True
    if form.default and t in FOR_TYPES["default"]:
        if t == "integer":
            spec["default"] = _number(form.default, "the default", errors, "default", whole=True)
        elif t in ("decimal", "money"):
            spec["default"] = _number(form.default, "the default", errors, "default")
        elif t == "boolean":
            spec["default"] = form.default.lower() in ("yes", "true", "1", "ticked")
        elif t == "date":
            spec["default"] = _date(form.default, errors, "default")
        else:
            spec["default"] = form.default
    for key in ("min", "max"):
        if getattr(form, key) and t in FOR_TYPES[key]:
            spec[key] = _date(getattr(form, key), errors, key) if t == "date" else \
                _number(getattr(form, key), f"the {'smallest' if key == 'min' else 'largest'} value", errors, key, whole=t == "integer")
    for key in ("min_length", "max_length"):
        if getattr(form, key) and t in FOR_TYPES[key]:
            spec[key] = _number(getattr(form, key), "a length", errors, key, whole=True)
    if form.pattern and t == "string":
        spec["pattern"] = form.pattern
    if t in FOR_TYPES["choices"]:
        spec["choices"] = choices(form.choices, errors)
        if not spec["choices"] and "choices" not in errors:
            errors["choices"] = "Give the choices, one per line."
    if t == "reference":
        if not form.entity:
            errors["entity"] = "Choose the kind of record it refers to."
        spec["entity"] = form.entity
    if t == "money" and form.currency:
        if not re.fullmatch(r"[A-Z]{3}", form.currency):
            errors["currency"] = "Give a currency as its three-letter code, e.g. GBP or EUR."
        spec["currency"] = form.currency
    if form.unique:
        spec["unique"] = True
    if form.indexed:
        spec["indexed"] = True
    return {k: spec[k] for k in editing.FIELD_KEYS if k in spec and spec[k] is not None}


def as_written(new: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
    """`new` with the text of `old` wherever it differs only in the whitespace around it (a folded `>` text ends with a
    newline; the form's boxes do not keep it), so an option nobody changed is not written as changed."""
    if not old:
        return new
    return {k: old[k] if isinstance(v, str) and isinstance(old.get(k), str) and old[k].strip() == v.strip() else v for k, v in new.items()}


def _where(data: dict, name: str) -> dict | None:
    """The mapping of fields (for all records, or a group's) that holds `name`."""
    if name in data.get("fields", {}):
        return data["fields"]
    for g in (data.get("groups") or {}).values():
        if name in g.get("fields", {}):
            return g["fields"]
    return None


def with_field(e: Entity, form: FieldForm, errors: dict[str, str]) -> dict[str, Any]:
    """The entity's YAML data with the field as typed (added, or changed where it is), or {} with `errors`."""
    want = copy.deepcopy(editing.data_of(e))
    if not form.original:
        if not NAME.match(form.name):
            errors["name"] = "Give a name of lower-case letters, digits and _, starting with a letter, e.g. bed_count."
        elif _where(want, form.name) is not None:
            errors["name"] = f"{e.plural} already have a field named {form.name}."
    elif _where(want, form.original) is None:
        errors[""] = f"{e.plural} no longer have a field named {form.original}: someone removed it meanwhile."
        return {}
    spec = field_spec(form, errors)
    sections = want.get("pages", {}).get("sections")
    if form.scope == "new-group":
        if not NAME.match(form.group_name):
            errors["group_name"] = "Give the group a name of lower-case letters, digits and _, e.g. hospitals."
        elif form.group_name in (want.get("groups") or {}):
            errors["group_name"] = f"There is a group named {form.group_name} already: choose it above."
        if not form.group_when:
            errors["group_when"] = "Say which records are in the group, e.g. record.industry == 'healthcare'."
    elif form.scope.startswith("group:"):
        if form.scope[6:] not in (want.get("groups") or {}):
            errors["scope"] = "Choose one of the groups."
    elif form.scope != "all":
        errors["scope"] = "Choose who the field is for."
    if sections and form.scope == "all" and form.section not in {s["section"] for s in sections}:
        errors["section"] = "Choose the section of the edit page the field goes in."
    if errors:
        return {}
    if form.original:
        holder = _where(want, form.original)
        spec = as_written(spec, holder[form.original])
        holder.update({k: (spec if k == form.original else v) for k, v in holder.items()})
    elif form.scope == "all":
        want["fields"][form.name] = spec
    elif form.scope == "new-group":
        group = {**({"label": form.group_label} if form.group_label and form.group_label != humanise(form.group_name) else {}),
                 "when": form.group_when, "fields": {form.name: spec}}
        want.setdefault("groups", {})[form.group_name] = group
    else:
        want["groups"][form.scope[6:]]["fields"][form.name] = spec
    name = form.original or form.name
    if sections and form.scope == "all":
        current = next((s for s in sections if name in s["fields"]), None)
        if current is None or current["section"] != form.section:
            if current is not None:
                current["fields"].remove(name)
            next(s for s in sections if s["section"] == form.section)["fields"].append(name)
            want["pages"]["sections"] = [s for s in sections if s["fields"]]
    return want


def without_field(e: Entity, name: str) -> dict[str, Any]:
    """The entity's YAML data without a field (and out of its section)."""
    want = copy.deepcopy(editing.data_of(e))
    holder = _where(want, name)
    if holder is not None:
        del holder[name]
    for s in want.get("pages", {}).get("sections") or ():
        if name in s["fields"]:
            s["fields"].remove(name)
    if want.get("pages", {}).get("sections"):
        want["pages"]["sections"] = [s for s in want["pages"]["sections"] if s["fields"]]
    for g in list((want.get("groups") or {}).values()):
        if not g.get("fields"):
            g.pop("fields", None)
    return want


INPUTS = {f.name for f in fields(FieldForm)}


# a problem the check reports at a field's name, by its code: the option it is about
BY_CODE = {"field.pattern": "pattern", "field.default": "default", "field.choices": "choices", "field.entity": "entity",
           "field.reserved": "name", "field.duplicate": "name", "field.renamed": "name"}


def option_input(rest: tuple, problem) -> str:
    """The option input a problem belongs to, from the path written after the field's name (empty when the problem
    is at the name itself: then its code says which option it is about)."""
    key = next((p for p in rest if isinstance(p, str)), None)
    if key is not None:
        return key if key in INPUTS else "type"
    if problem.code == "field.option":
        opt = re.search(r"'([a-z_]+)' does not apply", problem.message)
        return opt.group(1) if opt and opt.group(1) in INPUTS else "type"
    if problem.code == "field.range":
        return "min_length" if "min_length" in problem.message else "min"
    return BY_CODE.get(problem.code, "name")


def field_input(name: str):
    """How a problem at a path of the written YAML leads to the field editor's input (for the field named `name`)."""

    def to_input(path: tuple, _doc: dict, problem) -> str | None:
        if "when" in path:
            return "group_when"
        if any(p in ("add_to_sections", "sections") for p in path if isinstance(p, str)):
            return "section"
        if name not in path:
            return None
        return option_input(path[path.index(name) + 1:], problem)

    return to_input


# -- the rules for single-record fields ------------------------------------------------------------
@dataclass
class RulesForm:
    allowed: bool = True
    types: tuple[str, ...] = ()
    max: str = ""

    @classmethod
    def of(cls, r: RecordFieldRules) -> RulesForm:
        return cls(r.allowed, tuple(r.types), str(r.max))

    @classmethod
    def posted(cls, data) -> RulesForm:
        return cls(bool(data.get("allowed")), tuple(t for t in data.getlist("types") if t in SIMPLE), str(data.get("max", "")).strip()[:20])


def with_rules(e: Entity, form: RulesForm, errors: dict[str, str]) -> dict[str, Any]:
    want = copy.deepcopy(editing.data_of(e))
    most = _number(form.max, "how many", errors, "max", whole=True)
    if most is None and "max" not in errors:
        errors["max"] = "Say how many fields one record may have, e.g. 20."
    elif most is not None and most < 1:
        errors["max"] = "At least 1 (untick the box above to allow none)."
    if form.allowed and not form.types:
        errors["types"] = "Tick at least one kind of value (or untick the box above)."
    if errors:
        return {}
    rules = RecordFieldRules(form.allowed, tuple(t for t in SIMPLE if t in form.types) or RecordFieldRules().types, most)
    data = editing.record_fields_data(rules)
    want.pop("record_fields", None)
    if data:
        want["record_fields"] = data
    return want


def rules_input(path: tuple, _doc: dict, _problem) -> str | None:
    return next((p for p in path if p in ("allowed", "types", "max")), None)


# -- a group: its heading, description and condition --------------------------------------------------
@dataclass
class GroupForm:
    name: str = ""
    label: str = ""
    description: str = ""
    when: str = ""

    @classmethod
    def posted(cls, data, name: str) -> GroupForm:
        text = lambda key: str(data.get(key, "")).replace("\r\n", "\n").strip()[:2000]
        return cls(name, text("label"), text("description"), text("when"))


def with_group(e: Entity, form: GroupForm, errors: dict[str, str]) -> dict[str, Any]:
    """The entity's YAML data with a group's heading, description and condition as typed."""
    want = copy.deepcopy(editing.data_of(e))
    group = (want.get("groups") or {}).get(form.name)
    if group is None:
        errors[""] = f"{e.plural} no longer have a group named {form.name}: someone removed it meanwhile."
        return {}
    if not form.when:
        errors["when"] = "Say which records are in the group, e.g. record.industry == 'healthcare'."
        return {}
    old = dict(group)
    group.clear()
    if form.label and form.label != humanise(form.name):
        group["label"] = form.label
    if form.description:
        group["description"] = form.description
    group["when"] = form.when
    group["fields"] = old.get("fields", {})
    group.update(as_written({k: group[k] for k in ("label", "description", "when") if k in group}, old))
    return want


def group_input(path: tuple, _doc: dict, _problem) -> str | None:
    return next((p for p in reversed(path) if p in ("label", "description", "when")), None)
