"""Structured edits of definitions, as the YAML a consultant would write.

Two halves, both pure:
- a typed definition back to YAML data (`entity_data`, `form_data`, `process_data`, and their parts), saying only
  what differs from the defaults, so an editor can start from what the packs define and show what it writes;
- the overlay that turns a base pack's definition into the one an editor wants (`entity_overlay`, `form_overlay`,
  `process_overlay`), from the two as YAML data, using only the operations of `engine.overlays`. A change no
  operation can make (a base pack's form gets a new section; a base group's condition changes) raises
  `CannotExpress` with what it is, in words.

The console's editors change the data of the draft's definition, write the overlay (or, for a definition of the
local pack itself, the whole definition) and check the draft: what the loader then makes of it must be what the
editor asked for (`differences`), so a change an overlay cannot carry is never lost silently.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .build import humanise
from .model import (
    Action,
    ApprovalStep,
    CreateAction,
    Entity,
    Escalation,
    Field,
    Form,
    FormTrigger,
    Group,
    ManualTrigger,
    Migration,
    ParallelStep,
    Process,
    RecordFieldRules,
    RecordTrigger,
    ScheduleTrigger,
    Section,
    Source,
    StartAction,
    Step,
    TaskStep,
    UpdateAction,
)

Data = dict[str, Any]


class CannotExpress(ValueError):
    """A change an overlay has no operation for (the message says which, in words)."""


# -- definitions as YAML data ---------------------------------------------------------------------
FIELD_KEYS = ("type", "label", "help", "required", "default", "placeholder", "min", "max", "min_length", "max_length", "pattern",
              "choices", "entity", "currency", "unique", "indexed", "column", "renamed_from")


def choices_data(choices) -> list:
    """Plain values where the label is the humanised value, else {value, label}."""
    return [c.value if c.label == humanise(str(c.value)) else {"value": c.value, "label": c.label} for c in choices]


def field_data(f: Field) -> Data:
    """A field as written: its type and the options that differ from the defaults."""
    out: Data = {"type": f.type}
    if f.label != humanise(f.name):
        out["label"] = f.label
    for key in ("help", "placeholder"):
        if getattr(f, key):
            out[key] = getattr(f, key)
    for key in ("required", "unique", "indexed", "column"):
        if getattr(f, key):
            out[key] = True
    for key in ("default", "min", "max", "min_length", "max_length", "pattern", "entity", "currency", "renamed_from"):
        if getattr(f, key) is not None:
            out[key] = getattr(f, key)
    if f.choices:
        out["choices"] = choices_data(f.choices)
    return {k: out[k] for k in FIELD_KEYS if k in out}


def fields_data(fields: Iterable[Field]) -> Data:
    return {f.name: field_data(f) for f in fields}


def group_data(g: Group) -> Data:
    out: Data = {}
    if g.label != humanise(g.name):
        out["label"] = g.label
    if g.description:
        out["description"] = g.description
    out["when"] = g.when.source
    out["fields"] = fields_data(g.fields)
    return out


def section_data(s: Section) -> Data:
    out: Data = {"section": s.title}
    if s.columns != 1:
        out["columns"] = s.columns
    if s.help:
        out["help"] = s.help
    out["fields"] = list(s.fields)
    return out


def record_fields_data(r: RecordFieldRules) -> Data:
    d = RecordFieldRules()
    return {k: (list(getattr(r, k)) if k == "types" else getattr(r, k)) for k in ("allowed", "types", "max") if getattr(r, k) != getattr(d, k)}


def entity_data(e: Entity) -> Data:
    """The whole entity definition, as a file of the local pack holds it."""
    out: Data = {"kind": "entity", "name": e.name}
    if e.label != humanise(e.name):
        out["label"] = e.label
    if e.plural != e.label + "s":
        out["plural"] = e.plural
    if e.description:
        out["description"] = e.description
    if e.title:
        out["title"] = e.title.source
    if e.customer:
        out["customer"] = True
    out["fields"] = fields_data(e.fields)
    if e.groups:
        out["groups"] = {g.name: group_data(g) for g in e.groups}
    if record_fields_data(e.record_fields):
        out["record_fields"] = record_fields_data(e.record_fields)
    if e.links:
        out["links"] = {link.name: {**({"label": link.label} if link.label != humanise(link.name) else {}), "url": link.url.source}
                        for link in e.links}
    pages = _pages_data(e)
    if pages:
        out["pages"] = pages
    return out


def _pages_data(e: Entity) -> Data:
    p = e.pages
    out: Data = {}
    if not p.navigation:
        out["navigation"] = False
    for key in ("columns", "filters", "search"):
        if getattr(p, key):
            out[key] = list(getattr(p, key))
    if p.sections:
        out["sections"] = [section_data(s) for s in p.sections]
    if p.stages:
        out["stages"] = p.stages
    return out


def source_data(s: Source) -> Any:
    if s.kind == "record":
        return "record"
    if s.kind == "created":
        return f"created.{s.value}"
    if s.kind in ("field", "template"):
        return s.value
    return s.value if isinstance(s.value, (bool, int, float)) else {"value": s.value}


def action_data(a: Action) -> Data:
    when = {"when": a.when.source} if a.when else {}
    if isinstance(a, CreateAction):
        return {"create": a.entity, **({"as": a.alias} if a.alias and a.alias != a.entity else {}),
                **({"match": a.match} if a.match else {}), **when, "set": {k: source_data(v) for k, v in a.set}}
    if isinstance(a, UpdateAction):
        return {"update": a.target, **when, "set": {k: source_data(v) for k, v in a.set}}
    assert isinstance(a, StartAction)
    return {"start": a.process, **when, **({"with": {k: source_data(v) for k, v in a.inputs}} if a.inputs else {})}


def default_layout(label: str, fields: Iterable[str]) -> list[Data]:
    """The layout of a form that gives none: one section, titled with the form's label, of all its fields."""
    return [{"section": label, "fields": list(fields)}]


def form_layout(data: Data) -> list[Data]:
    """The sections of a form's YAML data: its `layout`, or the one a form without one has."""
    if "layout" in data:
        return data["layout"]
    return default_layout(data.get("label", humanise(data["name"])), data.get("fields") or {})


def form_data(f: Form) -> Data:
    """The whole form definition; `layout` where one is written or the sections differ from the one section a form
    without a layout has (`form_layout` reads either)."""
    out: Data = {"kind": "form", "name": f.name}
    if f.label != humanise(f.name):
        out["label"] = f.label
    if f.description:
        out["description"] = f.description
    if f.entity:
        out["entity"] = f.entity
    if f.contact:
        out["contact"] = True
    if f.portal:
        out["portal"] = True
    if f.portal_description:
        out["portal_description"] = f.portal_description
    out["fields"] = fields_data(f.fields)
    layout = [section_data(s) for s in f.layout]
    if f.layout_given or layout != default_layout(f.label, (x.name for x in f.fields)):
        out["layout"] = layout
    if f.actions:
        out["on_submit"] = [action_data(a) for a in f.actions]
    return out


def escalation_data(e: Escalation) -> Data:
    out: Data = {"at": f"due + {e.after_due.text}" if e.after_due else "due"}
    if e.alert:
        out["alert"] = str(e.alert[0]) if len(e.alert) == 1 else [str(p) for p in e.alert]
    if e.reassign:
        out["reassign"] = str(e.reassign)
    if e.message:
        out["message"] = e.message.source
    return out


def step_data(s: Step) -> Data:
    """A step as written: a task with the properties it sets, or a parallel block with its branches."""
    if isinstance(s, ParallelStep):
        return {"id": s.id, **({"when": s.when.source} if s.when else {}),
                "parallel": {name: [step_data(x) for x in branch] for name, branch in s.branches}}
    if isinstance(s, ApprovalStep):
        out: Data = {"id": s.id, "approve": s.approve, "title": s.title.source}
        if s.description:
            out["description"] = s.description.source
        if s.when:
            out["when"] = s.when.source
        out["approvers"] = str(s.approvers[0]) if len(s.approvers) == 1 else [str(a) for a in s.approvers]
        if s.decide != "any":
            out["decide"] = s.decide
        if s.show is not None:
            out["show"] = [path for path, _ in s.show]
        _timing_data(s, out)
        if s.fallback:
            out["fallback"] = str(s.fallback)
        return out
    assert isinstance(s, TaskStep)
    out = {"id": s.id, "title": s.title.source}
    if s.description:
        out["description"] = s.description.source
    if s.when:
        out["when"] = s.when.source
    if s.assign:
        out["assign"] = str(s.assign)
    if s.strategy != "round_robin":
        out["strategy"] = s.strategy
    if s.form:
        out["form"] = s.form
    _timing_data(s, out)
    if s.fallback:
        out["fallback"] = str(s.fallback)
    return out


def _timing_data(s: TaskStep | ApprovalStep, out: Data) -> None:
    """A step's due time, reminders and escalation ladder, as written (key order: due, reminders, escalate)."""
    if s.due and s.due.duration:
        out["due"] = s.due.duration.text if s.due.start == "start" else {"in": s.due.duration.text, "from": s.due.start}
    if s.reminders:
        out["reminders"] = [r.text for r in s.reminders]
    if s.escalate:
        out["escalate"] = [escalation_data(e) for e in s.escalate]


def trigger_data(t) -> Data:
    if isinstance(t, FormTrigger):
        return {"form": t.form}
    if isinstance(t, RecordTrigger):
        return {"record": t.entity, **({"on": list(t.on)} if t.on != ("created", "changed") else {}),
                **({"when": t.when.source} if t.when else {})}
    if isinstance(t, ScheduleTrigger):
        return {"schedule": t.rrule, **({"starts": t.starts} if t.starts else {}), **({"for_each": t.for_each} if t.for_each else {}),
                **({"when": t.when.source} if t.when else {})}
    assert isinstance(t, ManualTrigger)
    return {"manual": True}


def process_data(p: Process) -> Data:
    """The whole process definition."""
    out: Data = {"kind": "process", "name": p.name}
    if p.label != humanise(p.name):
        out["label"] = p.label
    if p.description:
        out["description"] = p.description
    if p.entity:
        out["entity"] = p.entity
    if p.calendar:
        out["calendar"] = p.calendar
    if p.inputs:
        out["inputs"] = fields_data(p.inputs)
    if p.triggers:
        out["triggers"] = [trigger_data(t) for t in p.triggers]
    if p.project:
        out["project"] = {"title": p.project.title.source, **({"manager": str(p.project.manager)} if p.project.manager else {})}
    if p.fallback:
        out["fallback"] = str(p.fallback)
    if p.migrate:
        out["migrate"] = migration_data(p.migrate)
    out["steps"] = [step_data(s) for s in p.steps]
    return out


def migration_data(m: Migration) -> Data:
    """How running instances of earlier versions move to this one: the versions they come from and the steps renamed."""
    out: Data = {}
    if m.from_ != "any":
        out["from"] = m.from_
    if m.steps:
        out["steps"] = {old: new for old, new, _ in m.steps}
    return out


def data_of(definition) -> Data:
    """Any entity, form or process as YAML data."""
    return {"entity": entity_data, "form": form_data, "process": process_data}[definition.kind](definition)


# -- the overlay from a base definition to the one wanted -------------------------------------------
# options `change_fields` may set (engine.overlays); anything else, or an option taken away, replaces the field
CHANGEABLE_FIELD = frozenset({"label", "help", "required", "default", "indexed", "min", "max", "min_length", "max_length", "pattern",
                              "choices", "placeholder"})
UNSET_FIELD = {"help": "", "placeholder": "", "required": False, "indexed": False}  # an option taken away, as change_fields says it
CHANGEABLE_STEP = frozenset({"title", "description", "when", "assign", "strategy", "due", "form", "reminders", "escalate", "fallback"})
UNSET_STEP = {"strategy": "round_robin", "reminders": [], "escalate": []}
RULES = RecordFieldRules()  # the defaults of single-record fields


def _settable(base: Data, want: Data, keys: Iterable[str], defaults: dict[str, Any]) -> Data:
    out = {}
    for key in keys:
        a, b = base.get(key, defaults.get(key)), want.get(key, defaults.get(key))
        if a != b:
            out[key] = b
    return out


def _field_change(name: str, a: Data, b: Data, change: Data, replace: Data) -> None:
    if a == b:
        return
    if a.get("type") != b.get("type"):
        replace[name] = b
        return
    diff = {k for k in set(a) | set(b) if a.get(k) != b.get(k)}
    label_default = humanise(name)
    if diff <= CHANGEABLE_FIELD and all(k in b or k in UNSET_FIELD or k == "label" for k in diff) \
            and not any(k in ("min", "max") and not isinstance(b.get(k), (int, float)) for k in diff):
        change[name] = {k: b[k] if k in b else (label_default if k == "label" else UNSET_FIELD[k]) for k in sorted(diff, key=FIELD_KEYS.index)}
    else:
        replace[name] = b


def _fields_ops(base: Data, want: Data, where: str) -> tuple[Data, Data, Data, list[str]]:
    """(add, change, replace, remove) of one mapping of fields."""
    add = {n: f for n, f in want.items() if n not in base}
    remove = [n for n in base if n not in want]
    change: Data = {}
    replace: Data = {}
    for n in base:
        if n in want:
            _field_change(n, base[n], want[n], change, replace)
    return add, change, replace, remove


def placements(start: list[tuple[str, list[str]]], want: list[tuple[str, list[str]]], what: str) -> Data:
    """`add_to_sections` that turn the sections `start` into `want` (the same sections, the fields placed anew).

    Each section keeps the longest start of its fields that is already in order; the rest are listed, in order, and
    so moved to its end (from wherever they are)."""
    titles = [t for t, _ in want]
    placed = {f for _, fs in want for f in fs}
    # a section may go when every field of it goes elsewhere (the overlay's placing leaves it empty, and empty sections go)
    if [t for t, _ in start if t in titles] != titles or any(t not in titles and set(fs) - placed for t, fs in start):
        raise CannotExpress(f"{what}: an overlay places fields in the sections there are; it cannot add, remove, rename or reorder "
                            f"sections (there: {', '.join(t for t, _ in start) or 'none'}; wanted: {', '.join(titles) or 'none'})")
    current = dict(start)
    out: Data = {}
    for title, fields in want:
        have = [f for f in current[title] if f in fields]
        k = 0
        while k < len(fields) and k < len(have) and fields[k] == have[k]:
            k += 1
        if fields[k:]:
            out[title] = list(fields[k:])
    return out


def _sections_of(data: Data, key: str) -> list[Data]:
    return form_layout(data) if key == "layout" else data.get(key) or []


def _layout(data: Data, key: str = "layout") -> list[tuple[str, list[str]]]:
    return [(s["section"], list(s["fields"])) for s in _sections_of(data, key)]


def _section_props(data: Data, key: str) -> list[tuple]:
    return [(s["section"], s.get("columns", 1), s.get("help", "")) for s in _sections_of(data, key)]


def _put(out: Data, key: str, value) -> None:
    if value:
        out[key] = value


def entity_overlay(base: Data, want: Data) -> Data:
    """The overlay operations that turn entity `base` into `want` (both `entity_data`)."""
    where = f"entity {base['name']}"
    ops: Data = {}
    _put(ops, "set", _settable(base, want, ("label", "plural", "description", "title"),
                               {"label": humanise(base["name"]), "description": ""} | {"plural": base.get("label", humanise(base["name"])) + "s"}))
    for key in ("customer",):
        if base.get(key) != want.get(key):
            raise CannotExpress(f"{where}: an overlay cannot change '{key}'")
    add, change, replace, remove = _fields_ops(base.get("fields") or {}, want.get("fields") or {}, where)
    base_groups, want_groups = base.get("groups") or {}, want.get("groups") or {}
    new_groups = {g: v for g, v in want_groups.items() if g not in base_groups}
    group_fields: Data = {}
    for g, a in base_groups.items():
        if g not in want_groups:
            raise CannotExpress(f"{where}: an overlay cannot remove the group {g}")
        b = want_groups[g]
        for key in ("label", "description", "when"):
            if a.get(key) != b.get(key):
                raise CannotExpress(f"{where}: the {key} of group {g} comes from its pack; an overlay cannot change it")
        g_add, g_change, g_replace, g_remove = _fields_ops(a.get("fields") or {}, b.get("fields") or {}, where)
        if g_remove:
            raise CannotExpress(f"{where}: an overlay cannot remove fields of group {g} ({', '.join(g_remove)})")
        change.update(g_change)
        replace.update(g_replace)
        _put(group_fields, g, g_add)
    _put(ops, "add_fields", add)
    _put(ops, "change_fields", change)
    _put(ops, "replace_fields", replace)
    _put(ops, "remove_fields", remove)
    _put(ops, "add_groups", new_groups)
    _put(ops, "add_group_fields", group_fields)
    base_pages, want_pages = dict(base.get("pages") or {}), dict(want.get("pages") or {})
    if _section_props(base_pages, "sections") or _section_props(want_pages, "sections"):
        start = [(t, [f for f in fs if f not in remove]) for t, fs in _layout(base_pages, "sections")]
        start = [(t, fs) for t, fs in start if fs]
        wanted = _layout(want_pages, "sections")
        if [p for p in _section_props(base_pages, "sections") if p[0] in {t for t, _ in wanted}] != _section_props(want_pages, "sections"):
            placements(start, wanted, where)  # says what cannot change
            raise CannotExpress(f"{where}: the columns and help of its edit sections come from its pack; an overlay cannot change them")
        _put(ops, "add_to_sections", placements(start, wanted, where))
    base_pages.pop("sections", None)
    want_pages.pop("sections", None)
    if base_pages != want_pages:
        raise CannotExpress(f"{where}: an overlay cannot change its pages (columns, filters, search, stages)")
    rules = _settable(base.get("record_fields") or {}, want.get("record_fields") or {}, ("allowed", "types", "max"),
                      {"allowed": RULES.allowed, "types": list(RULES.types), "max": RULES.max})
    _put(ops, "record_fields", rules)
    base_links, want_links = base.get("links") or {}, want.get("links") or {}
    for n in base_links:
        if n in want_links and base_links[n] != want_links[n]:
            raise CannotExpress(f"{where}: an overlay cannot change the link {n} (remove it and add one of another name)")
    _put(ops, "add_links", {n: v for n, v in want_links.items() if n not in base_links})
    _put(ops, "remove_links", [n for n in base_links if n not in want_links])
    return ops


def form_overlay(base: Data, want: Data) -> Data:
    """The overlay operations that turn form `base` into `want` (both `form_data`)."""
    where = f"form {base['name']}"
    if base.get("entity") != want.get("entity"):
        raise CannotExpress(f"{where}: an overlay cannot change the record a form is filled in for")
    ops: Data = {}
    _put(ops, "set", _settable(base, want, ("label", "description", "contact", "portal", "portal_description"),
                               {"label": humanise(base["name"]), "description": "", "contact": False, "portal": False,
                                "portal_description": ""}))
    add, change, replace, remove = _fields_ops(base.get("fields") or {}, want.get("fields") or {}, where)
    _put(ops, "add_fields", add)
    _put(ops, "change_fields", change)
    _put(ops, "replace_fields", replace)
    _put(ops, "remove_fields", remove)
    # the layout the operations so far leave: removed fields gone (empty sections with them), added ones at the end
    start = [(t, [f for f in fs if f not in remove]) for t, fs in _layout(base)]
    start = [(t, fs) for t, fs in start if fs] or start[:1]
    if add and start:
        placed = {f for _, fs in start for f in fs}
        start[-1] = (start[-1][0], start[-1][1] + [n for n in add if n not in placed])
    kept = {t for t, _ in _layout(want)}
    if [p for p in _section_props(base, "layout") if p[0] in kept] != _section_props(want, "layout"):
        placements(start, _layout(want), where)  # says what cannot change, if it is the sections themselves
        raise CannotExpress(f"{where}: the columns and help of its sections come from its pack; an overlay cannot change them")
    _put(ops, "add_to_sections", placements(start, _layout(want), where))
    a, b = base.get("on_submit") or [], want.get("on_submit") or []
    if b[:len(a)] != a:
        raise CannotExpress(f"{where}: the actions on submit of its pack stay as they are; an overlay adds actions after them")
    _put(ops, "add_actions", b[len(a):])
    return ops


def process_overlay(base: Data, want: Data, moved: Iterable[str] = ()) -> Data:
    """The overlay operations that turn process `base` into `want` (both `process_data`). Of two ways to reorder
    steps that move as many, the one that moves the steps in `moved` (the one an editor moved) is taken."""
    where = f"process {base['name']}"
    for key in ("entity", "inputs", "project"):
        if base.get(key) != want.get(key):
            raise CannotExpress(f"{where}: an overlay cannot change its {key}")
    if base.get("migrate") != want.get("migrate"):
        raise CannotExpress(f"{where}: how running instances move to a new version (migrate) comes from its pack; an overlay cannot change it")
    for key in ("calendar", "fallback"):
        if key in base and key not in want:
            raise CannotExpress(f"{where}: an overlay cannot take its {key} away (set another instead)")
    ops: Data = {}
    _put(ops, "set", _settable(base, want, ("label", "description", "calendar", "fallback"), {"label": humanise(base["name"]), "description": ""}))
    steps = _StepOps(where, frozenset(moved))
    steps.lists(base["steps"], want["steps"], top=True)
    _put(ops, "remove_steps", steps.remove)
    _put(ops, "insert_steps", steps.insert)
    _put(ops, "replace_steps", steps.replace)
    _put(ops, "change_steps", steps.change)
    a, b = base.get("triggers") or [], want.get("triggers") or []
    if b[:len(a)] != a:
        raise CannotExpress(f"{where}: the triggers of its pack stay as they are; an overlay adds triggers after them")
    _put(ops, "add_triggers", b[len(a):])
    return ops


class _StepOps:
    """remove_steps, insert_steps, replace_steps and change_steps, collected over the lists of steps of a process."""

    def __init__(self, where: str, moved: frozenset[str] = frozenset()):
        self.where, self.moved = where, moved
        self.remove: list[str] = []
        self.insert: list[Data] = []
        self.replace: Data = {}
        self.change: Data = {}

    def lists(self, base: list[Data], want: list[Data], top: bool = False) -> None:
        base_ids, want_ids = [s["id"] for s in base], [s["id"] for s in want]
        a, b = [i for i in base_ids if i in want_ids], [i for i in want_ids if i in base_ids]
        stable = set(_lcs(a, b))
        if stable & self.moved:  # as many steps stay put if the moved ones move: move those
            other = set(_lcs([i for i in a if i not in self.moved], [i for i in b if i not in self.moved]))
            if len(other) == len(stable):
                stable = other
        if not stable and want:
            raise CannotExpress(f"{self.where}: every step of a list would be new; keep one of its steps" if top
                                else f"{self.where}: a branch whose steps are all new")
        self.remove += [i for i in base_ids if i not in stable]
        first = next((i for i in want_ids if i in stable), None)
        previous = None
        for s in want:
            if s["id"] not in stable:
                self.insert.append({"after": previous, "step": s} if previous else {"before": first, "step": s})
            previous = s["id"]
        by_id = {s["id"]: s for s in base}
        for s in want:
            if s["id"] in stable:
                self.step(by_id[s["id"]], s)

    def step(self, a: Data, b: Data) -> None:
        if a == b:
            return
        sid = a["id"]
        if ("parallel" in a) != ("parallel" in b):
            self.replace[sid] = b
            return
        if "parallel" in a:
            if a.get("when") != b.get("when") or list(a["parallel"]) != list(b["parallel"]):
                self.replace[sid] = b
                return
            inner = _StepOps(self.where, self.moved)
            try:
                for name in a["parallel"]:
                    inner.lists(a["parallel"][name], b["parallel"][name])
            except CannotExpress:
                self.replace[sid] = b
                return
            self.remove += inner.remove
            self.insert += inner.insert
            self.replace.update(inner.replace)
            self.change.update(inner.change)
            return
        diff = {k for k in set(a) | set(b) if a.get(k) != b.get(k)}
        if diff <= CHANGEABLE_STEP and all(k in b or k in UNSET_STEP for k in diff):
            self.change[sid] = {k: b.get(k, UNSET_STEP.get(k)) for k in b if k in diff} | {k: UNSET_STEP[k] for k in diff if k not in b}
        else:
            self.replace[sid] = b


def _lcs(a: list[str], b: list[str]) -> list[str]:
    """The longest common subsequence of two lists of distinct ids (the steps that keep their order)."""
    n, m = len(a), len(b)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            table[i][j] = table[i + 1][j + 1] + 1 if a[i] == b[j] else max(table[i + 1][j], table[i][j + 1])
    out, i, j = [], 0, 0
    while i < n and j < m:
        if a[i] == b[j]:
            out.append(a[i])
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return out


OVERLAYS = {"entity": entity_overlay, "form": form_overlay, "process": process_overlay}


def overlay(kind: str, base: Data, want: Data, moved: Iterable[str] = ()) -> Data:
    """The operations that turn `base` into `want`, for an entity, form or process (`moved`: see `process_overlay`)."""
    return process_overlay(base, want, moved) if kind == "process" else OVERLAYS[kind](base, want)


def differences(want: Data, got: Data, path: str = "") -> list[str]:
    """Where `got` (what the loader made of the written YAML) differs from `want` (what the editor asked for), as
    JSON pointers: empty when the YAML says exactly what was wanted (a form's layout written out or left to its
    default is the same layout)."""
    if not path and isinstance(want, dict) and isinstance(got, dict) and want.get("kind") == got.get("kind") == "form":
        want, got = {**want, "layout": form_layout(want)}, {**got, "layout": form_layout(got)}
    if isinstance(want, dict) and isinstance(got, dict):
        out = []
        for key in list(want) + [k for k in got if k not in want]:
            out += differences(want.get(key), got.get(key), f"{path}/{key}")
        return out
    if isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        return [d for i, (x, y) in enumerate(zip(want, got)) for d in differences(x, y, f"{path}/{i}")]
    return [] if want == got else [path or "/"]
