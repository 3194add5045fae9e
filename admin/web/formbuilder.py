"""The form builder: a form's properties, its sections, its fields in order (with help and the options of their kind)
and its actions on submit, as rows of one HTML form that comes back to the server on every button (add, move, remove,
show the YAML, save), so it works without scripts; and the form's YAML data from those rows.

A form of a base pack keeps its sections and its actions (an overlay places fields in the sections there are and adds
actions after the pack's own); a form of this installation is edited whole.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import yaml

from engine import editing
from engine.build import humanise
from engine.model import Form

from .fieldeditor import NAME, FieldForm, as_written, field_spec, option_input

FIELD_KEYS = [f.name for f in fields(FieldForm) if f.name not in ("scope", "group_name", "group_label", "group_when")]
ACTION_KINDS = {"create": "Create a record", "update": "Update a record", "start": "Start a process"}


@dataclass
class SectionRow:
    title: str = ""
    columns: str = "1"
    help: str = ""


@dataclass
class ActionRow:
    kind: str = "start"
    target: str = ""
    alias: str = ""
    when: str = ""
    values: str = ""  # one 'name: source' a line


@dataclass
class Builder:
    """What the builder shows and what was typed into it."""

    original: str = ""            # the form's name when it exists ('' for a new form)
    name: str = ""
    label: str = ""
    description: str = ""
    entity: str = ""
    contact: bool = True
    portal: bool = False
    sections: list[SectionRow] = field(default_factory=list)
    fields: list[FieldForm] = field(default_factory=list)     # each with `section`: the index of its section, as text
    actions: list[ActionRow] = field(default_factory=list)    # the actions that may be edited (after the pack's own)
    fixed: tuple = ()                                         # a base pack's form: its sections (title, columns, help) stay
    pack_actions: list[dict] = field(default_factory=list)    # a base pack's actions, shown as they are
    message: str = ""                                         # what the last button could not do
    was: list[str] = field(default_factory=list)              # the section each field row was shown in (a moved one goes last)

    # -- from a definition, and from what was posted -------------------------------------------------------------
    @classmethod
    def of(cls, form: Form, base: Form | None) -> Builder:
        """The builder filled in with a form of the draft (`base`: the base pack's form it is an overlay on, if any)."""
        by_name = {f.name: f for f in form.fields}
        rows = []
        for i, s in enumerate(form.layout):
            for n in s.fields:
                row = FieldForm.of(by_name[n], _NoSections)
                row.section = str(i)
                rows.append(row)
        own = form.actions[len(base.actions):] if base is not None else form.actions
        return cls(original=form.name, name=form.name, label=form.label if form.label != humanise(form.name) else "",
                   description=form.description, entity=form.entity or "", contact=form.contact, portal=form.portal,
                   sections=[SectionRow(s.title, str(s.columns), s.help) for s in form.layout], fields=rows,
                   actions=[_action_row(editing.action_data(a)) for a in own],
                   fixed=tuple((s.title, s.columns, s.help) for s in base.layout) if base is not None else (),
                   pack_actions=[editing.action_data(a) for a in base.actions] if base is not None else [])

    @classmethod
    def new(cls, entity: str) -> Builder:
        return cls(entity=entity, contact=True, sections=[SectionRow("Details")], fields=[FieldForm(section="0")])

    @classmethod
    def posted(cls, data: Mapping[str, Any], existing: Builder | None) -> Builder:
        """What was typed (a base pack's sections and actions come from the definition, not from the page)."""
        text = lambda key, most=2000: str(data.get(key, "")).replace("\r\n", "\n").strip()[:most]
        count = lambda key: min(_int(data.get(key)), 200)
        b = cls(original=text("original", 100), name=text("name", 100), label=text("label"), description=text("description"),
                entity=text("entity", 100), contact=bool(data.get("contact")), portal=bool(data.get("portal")))
        if existing is not None:
            b.original, b.fixed, b.pack_actions = existing.original, existing.fixed, existing.pack_actions
            if existing.original:
                b.name, b.entity = existing.name, existing.entity
        b.sections = [SectionRow(text(f"section-{i}-title", 200), text(f"section-{i}-columns", 2) or "1", text(f"section-{i}-help"))
                      for i in range(count("section_count"))]
        if b.fixed:
            b.sections = [SectionRow(t, str(c), h) for t, c, h in b.fixed]
        b.fields = [FieldForm.posted({k: data.get(f"field-{i}-{k}", "") for k in FIELD_KEYS}) for i in range(count("field_count"))]
        b.was = [text(f"field-{i}-was", 4) for i in range(len(b.fields))]
        b.actions = [ActionRow(text(f"action-{j}-kind", 10) or "start", text(f"action-{j}-target", 100), text(f"action-{j}-alias", 100),
                               text(f"action-{j}-when"), text(f"action-{j}-values", 4000)) for j in range(count("action_count"))]
        return b

    def values(self) -> dict[str, Any]:
        return asdict(self)

    # -- the buttons ------------------------------------------------------------------------------------------
    def apply(self, op: str) -> None:
        """Do what a button says (add, move or remove a row); `message` says why it could not."""
        verb, _, arg = op.partition(":")
        i = _int(arg) if arg else -1
        self.was = self.was[:len(self.fields)] + [f.section for f in self.fields[len(self.was):]]
        if verb == "add-field" and 0 <= i < len(self.sections):
            self.fields.append(FieldForm(section=str(i)))
            self.was.append(str(i))
        elif verb in ("up", "down") and 0 <= i < len(self.fields):
            same = [k for k, f in enumerate(self.fields) if f.section == self.fields[i].section]
            at = same.index(i)
            other = at - 1 if verb == "up" else at + 1
            if 0 <= other < len(same):
                j = same[other]
                self.fields[i], self.fields[j] = self.fields[j], self.fields[i]
                self.was[i], self.was[j] = self.was[j], self.was[i]
        elif verb == "remove-field" and 0 <= i < len(self.fields):
            del self.fields[i]
            del self.was[i]
        elif verb == "add-section" and not self.fixed:
            self.sections.append(SectionRow(f"Section {len(self.sections) + 1}"))
        elif verb in ("section-up", "section-down") and not self.fixed and 0 <= i < len(self.sections):
            j = i - 1 if verb == "section-up" else i + 1
            if 0 <= j < len(self.sections):
                self.sections[i], self.sections[j] = self.sections[j], self.sections[i]
                swap = {str(i): str(j), str(j): str(i)}
                for f in self.fields:
                    f.section = swap.get(f.section, f.section)
                self.was = [swap.get(w, w) for w in self.was]
        elif verb == "remove-section" and not self.fixed and 0 <= i < len(self.sections):
            if any(f.section == str(i) for f in self.fields):
                self.message = f"The section {self.sections[i].title or i + 1} still has fields: move them to another section or remove them first."
            elif len(self.sections) == 1:
                self.message = "A form has at least one section."
            else:
                del self.sections[i]
                for f in self.fields:
                    f.section = str(int(f.section) - 1) if _int(f.section) > i else f.section
                self.was = [str(int(w) - 1) if _int(w) > i else w for w in self.was]
        elif verb == "add-action":
            self.actions.append(ActionRow())
        elif verb == "remove-action" and 0 <= i < len(self.actions):
            del self.actions[i]
        self.order()

    def order(self) -> None:
        """Rows in the order of their sections (a field moved to another section goes to its end)."""
        for f in self.fields:
            if not (0 <= _int(f.section, -1) < len(self.sections)):
                f.section = str(max(len(self.sections) - 1, 0))
        was = self.was + [f.section for f in self.fields[len(self.was):]]
        keyed = sorted(range(len(self.fields)), key=lambda i: (_int(self.fields[i].section), self.fields[i].section != was[i], i))
        self.fields = [self.fields[i] for i in keyed]
        self.was = [f.section for f in self.fields]

    def rows(self, s: int) -> list[tuple[int, FieldForm]]:
        return [(i, f) for i, f in enumerate(self.fields) if f.section == str(s)]

    # -- the YAML data -----------------------------------------------------------------------------------------
    def data(self, current: dict | None, errors: dict[str, str], taken: set[str]) -> dict:
        """The form's YAML data from the rows (`current`: the draft's, which a base pack's form starts from), or {} with
        a message per wrong input. `taken`: the names of the other forms."""
        self.order()
        want: dict = copy.deepcopy(current) if current else {"kind": "form", "name": self.name}
        if not self.original:
            if not NAME.match(self.name):
                errors["name"] = "Give the form a name of lower-case letters, digits and _, e.g. site_visit."
            elif self.name in taken:
                errors["name"] = f"There is a form named {self.name} already."
            want["name"] = self.name
        before = dict(want)
        for key in ("label", "description"):
            want.pop(key, None)
            value = getattr(self, key)
            if value and not (key == "label" and value == humanise(self.name)):
                want[key] = value
        want.update(as_written({k: want[k] for k in ("label", "description") if k in want}, before))
        if not self.original:
            if not self.entity:
                errors["entity"] = "Choose what the form is filled in for."
            else:
                want["entity"] = self.entity
        for key in ("contact", "portal"):
            want.pop(key, None)
            if getattr(self, key):
                want[key] = True
        specs: dict[str, dict] = {}
        for i, row in enumerate(self.fields):
            if not row.original and not NAME.match(row.name):
                errors[f"field-{i}-name"] = "Give the field a name of lower-case letters, digits and _, e.g. visit_date."
                continue
            name = row.original or row.name
            if name in specs:
                errors[f"field-{i}-name"] = f"Two fields are named {name}."
                continue
            row.name = name
            mine: dict[str, str] = {}
            specs[name] = as_written(field_spec(row, mine), (current or {}).get("fields", {}).get(name))
            errors.update({f"field-{i}-{k}": v for k, v in mine.items()})
        if not specs:
            errors["fields"] = "A form has at least one field: add one."
        layout = []
        for s, section in enumerate(self.sections):
            if not section.title:
                errors[f"section-{s}-title"] = "Give the section a heading."
            names = [f.original or f.name for _, f in self.rows(s)]
            if not names:
                if not self.fixed:
                    errors[f"section-{s}-title"] = "This section has no fields: add one, or remove the section."
                continue
            old = next((x for x in (current or {}).get("layout", []) if x["section"] == section.title), None)
            layout.append(as_written({"section": section.title, **({"columns": _int(section.columns, 1)} if _int(section.columns, 1) != 1 else {}),
                                      **({"help": section.help} if section.help else {}), "fields": names}, old))
        want["fields"] = specs
        want["layout"] = layout
        actions = [copy.deepcopy(a) for a in self.pack_actions]
        for j, row in enumerate(self.actions):
            actions.append(_action_data(row, f"action-{j}", errors))
        want.pop("on_submit", None)
        if actions:
            want["on_submit"] = actions
        return {} if errors else want

    def to_input(self, path: tuple, _doc: dict, problem) -> str | None:
        """The builder's input a problem at a path of the written YAML belongs to."""
        if not path:
            return None
        head = path[0]
        names = [f.original or f.name for f in self.fields]
        if head in ("fields", "add_fields", "change_fields", "replace_fields") and len(path) > 1 and path[1] in names:
            return f"field-{names.index(path[1])}-{option_input(path[2:], problem)}"
        if head == "layout" and len(path) > 1 and isinstance(path[1], int):
            if len(path) > 3 and path[2] == "fields" and isinstance(path[3], int):
                named = _doc.get("layout", [])[path[1]]["fields"][path[3]] if _doc else None
                if named in names:
                    return f"field-{names.index(named)}-section"
            return f"section-{path[1]}-title"
        if head == "add_to_sections" and len(path) > 1:
            titles = [s.title for s in self.sections]
            return f"section-{titles.index(path[1])}-title" if path[1] in titles else None
        if head in ("on_submit", "add_actions") and len(path) > 1 and isinstance(path[1], int):
            j = path[1] - (len(self.pack_actions) if head == "on_submit" else 0)
            if not 0 <= j < len(self.actions):
                return None
            key = path[2] if len(path) > 2 else "create"
            part = {"set": "values", "with": "values", "match": "values", "as": "alias", "when": "when"}.get(key, "target")
            return f"action-{j}-{part}"
        if head == "set" and len(path) > 1:
            return str(path[1])
        return head if head in ("name", "label", "description", "entity", "contact", "portal") else None


class _NoSections:
    """An entity-like stand-in for FieldForm.of: a form's field has no edit section."""

    class pages:
        sections = ()


def _int(value, default: int = 0) -> int:
    try:
        return int(str(value))
    except ValueError:
        return default


def _source_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return yaml.safe_dump(value, default_flow_style=True, allow_unicode=True).strip()
    return str(value)


def _action_row(data: dict) -> ActionRow:
    kind = next(k for k in ("create", "update", "start") if k in data)
    mapping = data.get("set") or data.get("with") or {}
    return ActionRow(kind, str(data[kind]), str(data.get("as", "")), str(data.get("when", "")),
                     "\n".join(f"{k}: {_source_text(v)}" for k, v in mapping.items()))


def _action_data(row: ActionRow, prefix: str, errors: dict[str, str]) -> dict:
    """An action's YAML data from its row."""
    if row.kind not in ACTION_KINDS:
        errors[f"{prefix}-kind"] = "Choose what the action does."
        return {}
    if not row.target and row.kind != "update":
        errors[f"{prefix}-target"] = "Name the kind of record to create." if row.kind == "create" else "Name the process to start."
    mapping: dict[str, Any] = {}
    for line in row.values.splitlines():
        if not line.strip():
            continue
        key, colon, source = line.partition(":")
        key, source = key.strip(), source.strip()
        if not colon or not NAME.match(key) or not source:
            errors[f"{prefix}-values"] = f"Each line is a name, a colon and where its value comes from, e.g. topic: summary ('{line.strip()}' is not)."
            continue
        if "{{" in source or "{%" in source or source == "record" or source.startswith("created."):
            mapping[key] = source
            continue
        try:
            mapping[key] = yaml.safe_load(source)
        except yaml.YAMLError:
            errors[f"{prefix}-values"] = f"'{source}' is not a field name, record, created.NAME, a template with {{{{ }}}}, a number, " \
                                         f"true/false or {{value: …}}."
    out: dict[str, Any] = {row.kind: row.target or "record"}
    if row.kind == "create" and row.alias and row.alias != row.target:
        out["as"] = row.alias
    if row.when:
        out["when"] = row.when
    if row.kind == "start":
        if mapping:
            out["with"] = mapping
    else:
        out["set"] = mapping
        if not mapping:
            errors[f"{prefix}-values"] = "Say which fields it sets, one a line, e.g. status: {value: customer}."
    return out
