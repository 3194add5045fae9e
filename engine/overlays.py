"""Overlays: a pack changes definitions of the packs it extends without copying them.

Each operation names what it touches; adding what exists, or changing what does
not, is an error, and so is two unrelated packs touching the same thing.
"""
from __future__ import annotations

from dataclasses import fields as dataclass_fields, replace
from typing import Any, Callable

from .build import humanise
from .errors import Loc, Problem
from .model import ApprovalStep, Entity, Field, Form, Overlay, OverlayChange, ParallelStep, Party, Process, Role, Step, Template
from .reports import Chart, Dashboard, Report

OPS: dict[str, frozenset[str]] = {
    "entity": frozenset({"set", "add_fields", "change_fields", "replace_fields", "remove_fields", "add_groups", "add_group_fields", "add_links",
                         "remove_links", "record_fields", "add_to_sections"}),
    "form": frozenset({"set", "add_fields", "change_fields", "replace_fields", "remove_fields", "add_to_sections", "add_actions"}),
    "process": frozenset({"set", "insert_steps", "replace_steps", "remove_steps", "change_steps", "add_triggers"}),
    "role": frozenset({"set", "add_permissions", "remove_permissions"}),
    "group": frozenset({"set"}),
    "calendar": frozenset({"set"}),
    "report": frozenset({"set", "add_filters"}),
    "dashboard": frozenset({"set", "add_rows", "remove_reports"}),
}
#: what change_steps may change on an approval step (who approves, and what they see, take a replace_steps)
APPROVAL_CHANGES = frozenset({"title", "description", "when", "due", "reminders", "escalate"})
SETTABLE: dict[str, dict[str, Callable[[Any, Loc], Any]]] = {
    "entity": {"label": str, "plural": str, "description": str, "title": Template},
    "form": {"label": str, "description": str, "contact": bool, "portal": bool, "portal_description": str},
    "process": {"label": str, "description": str, "calendar": str, "fallback": Party},
    "role": {"label": str, "description": str},
    "group": {"label": str, "description": str, "calendar": str, "managers": str},
    "calendar": {"label": str, "timezone": str},
    "report": {"label": str, "description": str, "chart": Chart, "days": int},
    "dashboard": {"label": str, "description": str},
}


def _convert(kind: str, key: str, value: Any, loc: Loc) -> Any:
    conv = SETTABLE[kind][key]
    if conv is Template:
        return Template(value, loc)
    if conv is Party:  # which kinds of party fit is the checker's concern, as for a party written in the definition
        party, _, name = str(value).partition(":")
        return Party(party, name or None, loc)
    if conv is Chart:
        return Chart(value, loc) if isinstance(value, str) else Chart(value.get("type", "bar"), loc, value.get("measure"))
    return value


class Applier:
    """Applies one overlay to one definition."""

    def __init__(self, overlay: Overlay, touch: Callable[[str, Loc], None], changes: list[OverlayChange] | None = None):
        self.overlay = overlay
        self._touch = touch
        self.changes = changes  # where each change is recorded, if the caller keeps them
        self.op = ""
        self.problems: list[Problem] = []

    def touch(self, item: str, loc: Loc) -> None:
        """Note that this overlay changes `item` of its target (two unrelated packs changing one item conflict)."""
        self._touch(item, loc)
        self.note(item, loc)

    def note(self, item: str, loc: Loc) -> None:
        """Record a change for whoever keeps them (`Model.changes`)."""
        if self.changes is not None:
            ov = self.overlay
            self.changes.append(OverlayChange(f"{ov.target_kind}/{ov.target_name}", item, self.op, ov.pack, ov.name, loc))

    def problem(self, loc: Loc, code: str, msg: str) -> None:
        self.problems.append(Problem(loc, code, msg))

    @property
    def target(self) -> str:
        return f"{self.overlay.target_kind} '{self.overlay.target_name}'"

    def apply(self, definition: Any) -> Any:
        kind = self.overlay.target_kind
        for op, payload, loc in self.overlay.ops:
            if op not in OPS[kind]:
                self.problem(loc, "overlay.operation", f"'{op}' cannot change a {kind} (possible: {', '.join(sorted(OPS[kind]))})")
                continue
            self.op = op
            definition = getattr(self, op)(definition, payload, loc)
        return definition

    # -- common ------------------------------------------------------------
    def set(self, d: Any, payload: tuple[dict, dict], loc: Loc) -> Any:
        values, locs = payload
        allowed = SETTABLE[self.overlay.target_kind]
        changes = {}
        for key, value in values.items():
            if key not in allowed:
                self.problem(locs[key], "overlay.set", f"'{key}' cannot be set on a {self.overlay.target_kind} by an overlay "
                                                       f"(possible: {', '.join(sorted(allowed))})")
                continue
            self.touch(f"set:{key}", locs[key])
            changes[key] = _convert(self.overlay.target_kind, key, value, locs[key])
            if f"{key}_loc" in {f.name for f in dataclass_fields(d)}:  # problems with the new value point at the overlay
                changes[f"{key}_loc"] = locs[key]
        return replace(d, **changes)

    # -- fields ------------------------------------------------------------
    def _fields(self, d: Entity | Form) -> dict[str, Field]:
        return {f.name: f for f in d.fields}

    def _all_names(self, d: Any) -> dict[str, Field]:
        names = self._fields(d)
        if isinstance(d, Entity):
            for g in d.groups:
                names.update({f.name: f for f in g.fields})
        return names

    def add_fields(self, d, fields: tuple[Field, ...], loc: Loc):
        existing = self._all_names(d)
        added = []
        for f in fields:
            if f.name in existing:
                self.problem(f.loc, "overlay.exists", f"{self.target} already has a field '{f.name}' (from pack '{existing[f.name].pack}', "
                                                      f"{existing[f.name].loc}); use change_fields or replace_fields")
                continue
            self.touch(f"field:{f.name}", f.loc)
            added.append(f)
        d = replace(d, fields=d.fields + tuple(added))
        if isinstance(d, Form) and added:
            placed = {n for s in d.layout for n in s.fields}
            rest = tuple(f.name for f in added if f.name not in placed)
            last = d.layout[-1]
            d = replace(d, layout=d.layout[:-1] + (replace(last, fields=last.fields + rest),))
        return d

    def _named(self, fields: dict[str, Field], name: str) -> str | None:
        """The field an overlay names: by its name, else the one its pack renamed from that name (`renamed_from`), so an
        overlay written for a base's older version follows the rename."""
        if name in fields:
            return name
        return next((f.name for f in fields.values() if f.renamed_from == name), None)

    def _swap(self, d, name: str, fn: Callable[[Field], Field]):
        """`d` with its field `name` (for all records, or of one of an entity's groups) replaced by `fn(field)`."""
        if any(f.name == name for f in d.fields):
            return replace(d, fields=tuple(fn(f) if f.name == name else f for f in d.fields))
        return replace(d, groups=tuple(replace(g, fields=tuple(fn(f) if f.name == name else f for f in g.fields)) for g in d.groups))

    def change_fields(self, d, payload: tuple[dict, dict], loc: Loc):
        changes, locs = payload
        fields = self._all_names(d)
        for written_name, change in changes.items():
            name = self._named(fields, written_name)
            if name is None:
                self._missing("field", written_name, locs[written_name], fields)
                continue
            locs = {**locs, name: locs[written_name]}
            for key in change:
                self.touch(f"field:{name}:{key}", locs[name])
            kw = dict(change)
            if "choices" in kw:
                from .model import Choice
                kw["choices"] = tuple(Choice(c["value"], c.get("label", humanise(str(c["value"])))) if isinstance(c, dict)
                                      else Choice(c, humanise(str(c))) for c in kw["choices"])
            d = self._swap(d, name, lambda f, kw=kw: replace(f, **kw))
        return d

    def replace_fields(self, d, fields: tuple[Field, ...], loc: Loc):
        current = self._all_names(d)
        for f in fields:
            if f.name not in current:
                self._missing("field", f.name, f.loc, current)
                continue
            self.touch(f"field:{f.name}", f.loc)
            d = self._swap(d, f.name, lambda old, new=f: replace(new, scope=old.scope))
        return d

    def remove_fields(self, d, payload: tuple[list, dict], loc: Loc):
        names, locs = payload
        current = self._fields(d)
        gone = set()
        for written_name in names:
            name = self._named(current, written_name)
            if name is None:
                self._missing("field", written_name, locs[written_name], current)
                continue
            self.touch(f"field:{name}", locs[written_name])
            gone.add(name)
        d = replace(d, fields=tuple(f for f in d.fields if f.name not in gone))
        if isinstance(d, Form):
            layout = tuple(replace(s, fields=tuple(n for n in s.fields if n not in gone)) for s in d.layout)
            d = replace(d, layout=tuple(s for s in layout if s.fields) or layout[:1])
        elif d.pages.sections:  # an entity's edit sections lose the field too
            sections = tuple(replace(s, fields=tuple(n for n in s.fields if n not in gone)) for s in d.pages.sections)
            d = replace(d, pages=replace(d.pages, sections=tuple(s for s in sections if s.fields)))
        return d

    def _missing(self, what: str, name: str, loc: Loc, known) -> None:
        self.problem(loc, "overlay.missing", f"{self.target} has no {what} '{name}' (known: {', '.join(sorted(known)) or 'none'})")

    # -- entity parts ------------------------------------------------------
    def add_groups(self, d: Entity, groups: dict, loc: Loc):
        existing = {g.name for g in d.groups}
        names = self._all_names(d)
        added = []
        for name, g in groups.items():
            if name in existing:
                self.problem(g.loc, "overlay.exists", f"{self.target} already has a group '{name}'; use add_group_fields")
                continue
            for f in g.fields:
                if f.name in names:
                    self.problem(f.loc, "overlay.exists", f"{self.target} already has a field '{f.name}'")
            self.touch(f"group:{name}", g.loc)
            added.append(replace(g, fields=tuple(replace(f, pack=self.overlay.pack) for f in g.fields)))
        return replace(d, groups=d.groups + tuple(added))

    def add_group_fields(self, d: Entity, payload: dict, loc: Loc):
        groups = {g.name: g for g in d.groups}
        names = self._all_names(d)
        out = list(d.groups)
        for gname, fields in payload.items():
            if gname not in groups:
                self._missing("group", gname, loc, groups)
                continue
            fresh = []
            for f in fields:
                if f.name in names:
                    self.problem(f.loc, "overlay.exists", f"{self.target} already has a field '{f.name}' ({names[f.name].loc})")
                    continue
                self.touch(f"field:{f.name}", f.loc)
                fresh.append(f)
            idx = next(i for i, g in enumerate(out) if g.name == gname)
            out[idx] = replace(out[idx], fields=out[idx].fields + tuple(fresh))
        return replace(d, groups=tuple(out))

    def add_links(self, d: Entity, links, loc: Loc):
        existing = {link.name for link in d.links}
        added = []
        for link in links:
            if link.name in existing:
                self.problem(link.loc, "overlay.exists", f"{self.target} already has a link '{link.name}'")
                continue
            self.touch(f"link:{link.name}", link.loc)
            added.append(link)
        return replace(d, links=d.links + tuple(added))

    def remove_links(self, d: Entity, payload: tuple[list, dict], loc: Loc):
        names, locs = payload
        existing = {link.name for link in d.links}
        gone = set()
        for name in names:
            if name not in existing:
                self._missing("link", name, locs[name], existing)
                continue
            self.touch(f"link:{name}", locs[name])
            gone.add(name)
        return replace(d, links=tuple(link for link in d.links if link.name not in gone))

    def record_fields(self, d: Entity, payload: tuple[dict, dict], loc: Loc):
        """Change the rules for single-record fields: whether staff may add them, of which types, how many."""
        values, locs = payload
        for key in values:
            self.touch(f"record_fields:{key}", locs[key])
        changes = {k: tuple(v) if k == "types" else v for k, v in values.items()}
        return replace(d, record_fields=replace(d.record_fields, **changes, loc=loc))

    # -- form parts (and an entity's edit sections) --------------------------
    def add_to_sections(self, d: Form | Entity, payload: tuple[dict, dict], loc: Loc):
        """Place fields at the end of a section: a form's layout, or an entity's `pages: sections:` (its fields for all
        records: group fields have sections of their own)."""
        placement, locs = payload
        if isinstance(d, Entity):
            if not d.pages.sections:
                self.problem(loc, "overlay.missing", f"{self.target} has no pages.sections: its edit page shows every field for all "
                                                     f"records in one section")
                return d
            layout = self._place(list(d.pages.sections), placement, locs, self._fields(d))
            return replace(d, pages=replace(d.pages, sections=layout))
        return replace(d, layout=self._place(list(d.layout), placement, locs, self._fields(d)))

    def _place(self, layout: list, placement: dict, locs: dict, fields: dict) -> tuple:
        titles = {s.title for s in layout}
        for title, names in placement.items():
            if title not in titles:
                self._missing("section", title, locs[title], titles)
                continue
            for written_name in names:
                name = self._named(fields, written_name)
                if name is None:
                    self._missing("field", written_name, locs[title], fields)
                    continue
                self.touch(f"layout:{name}", locs[title])
                layout = [replace(s, fields=tuple(n for n in s.fields if n != name)) for s in layout]
                idx = next(i for i, s in enumerate(layout) if s.title == title)
                layout[idx] = replace(layout[idx], fields=layout[idx].fields + (name,))
        return tuple(s for s in layout if s.fields)

    def add_actions(self, d: Form, actions, loc: Loc):
        return replace(d, actions=d.actions + tuple(actions))

    # -- process parts -----------------------------------------------------
    def _ids(self, steps: tuple[Step, ...]) -> set[str]:
        out = set()
        for s in steps:
            out.add(s.id)
            if isinstance(s, ParallelStep):
                for _, branch in s.branches:
                    out |= self._ids(branch)
        return out

    def _edit(self, steps: tuple[Step, ...], sid: str, fn: Callable[[Step], tuple[Step, ...]]) -> tuple[Step, ...]:
        out: list[Step] = []
        for s in steps:
            if s.id == sid:
                out.extend(fn(s))
                continue
            if isinstance(s, ParallelStep):
                s = replace(s, branches=tuple((n, self._edit(b, sid, fn)) for n, b in s.branches))
            out.append(s)
        return tuple(out)

    def insert_steps(self, p: Process, items, loc: Loc):
        steps = p.steps
        for (where, anchor), new, iloc in items:  # `new`: the step written, with its approval step if it has `approval:`
            ids = self._ids(steps)
            if anchor not in ids:
                self._missing("step", anchor, iloc, ids)
                continue
            taken = [s for s in new if s.id in ids]
            if taken:
                self.problem(taken[0].loc, "overlay.exists", f"{self.target} already has a step '{taken[0].id}'")
                continue
            self.touch(f"step:{anchor}:{where}", iloc)
            for step in new:
                self.note(f"step:{step.id}", step.loc)
            steps = self._edit(steps, anchor, (lambda s, new=new: (s, *new)) if where == "after" else (lambda s, new=new: (*new, s)))
        return replace(p, steps=steps)

    def replace_steps(self, p: Process, payload: dict, loc: Loc):
        steps = p.steps
        for sid, (new, sloc) in payload.items():
            if sid not in self._ids(steps):
                self._missing("step", sid, sloc, self._ids(steps))
                continue
            self.touch(f"step:{sid}", sloc)
            steps = self._edit(steps, sid, lambda s, new=new: new)
        return replace(p, steps=steps)

    def remove_steps(self, p: Process, payload: tuple[list, dict], loc: Loc):
        names, locs = payload
        steps = p.steps
        for sid in names:
            if sid not in self._ids(steps):
                self._missing("step", sid, locs[sid], self._ids(steps))
                continue
            self.touch(f"step:{sid}", locs[sid])
            steps = self._edit(steps, sid, lambda s: ())
        return replace(p, steps=steps)

    def change_steps(self, p: Process, payload: dict, loc: Loc):
        steps = p.steps
        for sid, (change, sloc) in payload.items():
            if sid not in self._ids(steps):
                self._missing("step", sid, sloc, self._ids(steps))
                continue
            for key in change:
                if key != "form_loc":
                    self.touch(f"step:{sid}:{key}", sloc)

            def patch(s: Step, change=change, sloc=sloc) -> tuple[Step, ...]:
                if isinstance(s, ParallelStep):
                    self.problem(sloc, "overlay.step-kind", f"step '{s.id}' is a parallel block; only tasks can be changed (use replace_steps)")
                    return (s,)
                if isinstance(s, ApprovalStep) and (other := sorted(set(change) - APPROVAL_CHANGES)):
                    self.problem(sloc, "overlay.step-kind", f"step '{s.id}' is an approval step: '{other[0]}' does not apply to it "
                                                            f"(it can change {', '.join(sorted(APPROVAL_CHANGES - {'form_loc'}))}; use replace_steps for more)")
                    return (s,)
                return (replace(s, **change),)

            steps = self._edit(steps, sid, patch)
        return replace(p, steps=steps)

    def add_triggers(self, p: Process, triggers, loc: Loc):
        return replace(p, triggers=p.triggers + tuple(triggers))

    # -- reports and dashboards ----------------------------------------------
    def add_filters(self, r: Report, payload: tuple[dict, dict], loc: Loc):
        values, locs = payload
        existing = {name for name, _, _ in r.filters}
        added = []
        for name, value in values.items():
            if name in existing:
                self.problem(locs[name], "overlay.exists", f"{self.target} already filters on '{name}'")
                continue
            self.touch(f"filter:{name}", locs[name])
            added.append((name, value, locs[name]))
        return replace(r, filters=r.filters + tuple(added))

    def add_rows(self, d: Dashboard, rows, loc: Loc):
        return replace(d, rows=d.rows + tuple(rows))

    def remove_reports(self, d: Dashboard, payload: tuple[list, dict], loc: Loc):
        names, locs = payload
        for name in names:
            if name not in d.reports:
                self._missing("report", name, locs[name], d.reports)
            self.touch(f"report:{name}", locs[name])
        rows = tuple(tuple(x for x in row if x[0] not in names) for row in d.rows)
        return replace(d, rows=tuple(row for row in rows if row))

    # -- role --------------------------------------------------------------
    def add_permissions(self, r: Role, payload, loc: Loc):
        names, locs = payload
        for n in names:
            self.touch(f"permission:{n}", locs[n])
        return replace(r, permissions=r.permissions + tuple(n for n in names if n not in r.permissions))

    def remove_permissions(self, r: Role, payload, loc: Loc):
        names, locs = payload
        for n in names:
            if n not in r.permissions:
                self._missing("permission", n, locs[n], r.permissions)
            self.touch(f"permission:{n}", locs[n])
        return replace(r, permissions=tuple(p for p in r.permissions if p not in names))


def apply_overlays(definitions: dict[str, dict[str, Any]], overlays: list[Overlay], ancestors: dict[str, set[str]],
                   changes: list[OverlayChange] | None = None) -> list[Problem]:
    """Apply overlays in order (packs base-first), changing `definitions` in place; what each changed goes into `changes`."""
    problems: list[Problem] = []
    touched: dict[tuple[str, str], tuple[str, Loc]] = {}
    for ov in overlays:
        table = definitions.get(ov.target_kind, {})
        target = table.get(ov.target_name)
        if target is None:
            known = ", ".join(sorted(table)) or "none"
            problems.append(Problem(ov.target_loc, "overlay.target", f"overlay '{ov.name}' targets {ov.target_kind} '{ov.target_name}', "
                                                                     f"which no pack defines (known {ov.target_kind}s: {known})"))
            continue
        if target.pack == ov.pack:
            problems.append(Problem(ov.target_loc, "overlay.own-pack", f"overlay '{ov.name}' changes {ov.target_kind} '{ov.target_name}' "
                                                                       f"of its own pack '{ov.pack}'; edit the definition instead"))
            continue
        if target.pack not in ancestors.get(ov.pack, set()):
            problems.append(Problem(ov.target_loc, "overlay.not-extended", f"overlay '{ov.name}' changes {ov.target_kind} '{ov.target_name}' "
                                                                           f"of pack '{target.pack}', which pack '{ov.pack}' does not extend"))
            continue

        def touch(item: str, loc: Loc, ov=ov) -> None:
            key = (f"{ov.target_kind}/{ov.target_name}", item)
            prev = touched.get(key)
            if prev and (prev[0] == ov.pack or prev[0] not in ancestors.get(ov.pack, set())):
                problems.append(Problem(loc, "overlay.conflict", f"conflicting overlays: {item.replace(':', ' ')} of {ov.target_kind} "
                                                                 f"'{ov.target_name}' is also changed at {prev[1]} (pack '{prev[0]}')"))
            touched[key] = (ov.pack, loc)

        applier = Applier(ov, touch, changes)
        table[ov.target_name] = applier.apply(target)
        problems.extend(applier.problems)
    return problems
