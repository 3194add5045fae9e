"""Turn schema-valid documents into typed, frozen definitions.

Shapes are already guaranteed by the kind's JSON Schema; what can still be wrong
in a single value (a duration, a party) is reported here, with its location.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Callable

from . import durations
from .errors import Loc, Problem
from .model import (
    ApprovalStep, Calendar, Choice, CreateAction, Due, Duration, Entity, EntityPages, Escalation, Field, Form, FormTrigger, Group, GroupDef, Link,
    ManualTrigger, Migration, Overlay, Pack, ParallelStep, Party, Process, ProjectSpec, RecordFieldRules, RecordTrigger, Role,
    ScheduleTrigger, Section, Source, StartAction, Step, TaskStep, Template, UpdateAction, Webhook, WorkingPeriod,
)
from .reports import Chart, Dashboard, Delivery, Measure, PipelineOptions, Report
from .source import Document, pointer_join as J

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FIELD_OPTIONS = frozenset({"help", "required", "default", "unique", "indexed", "column", "min", "max", "min_length", "max_length",
                            "pattern", "entity", "currency", "placeholder", "renamed_from"})  # given as written, when written


@lru_cache(maxsize=4096)  # the same few hundred names recur across a pack
def humanise(name: str) -> str:
    """'account_number' -> 'Account number'."""
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


class Builder:
    """Builds the typed definition of one document, collecting problems as it goes."""

    def __init__(self, doc: Document, pack: str, *, currency: str | None = None):
        self.doc = doc
        self.pack = pack
        self.currency = currency  # the pack's default, for money fields that name none
        self.problems: list[Problem] = []
        # where the value / the key at a JSON pointer is; bound once, as building asks ~30 times per definition
        self.loc: Callable[[str], Loc] = doc.loc
        self.key: Callable[[str], Loc] = doc.key_loc

    def problem(self, ptr: str, code: str, message: str) -> None:
        self.problems.append(Problem(self.loc(ptr), code, message, ptr))

    def template(self, value: Any, ptr: str) -> Template | None:
        return Template(value, self.loc(ptr)) if value is not None else None

    # -- values ------------------------------------------------------------
    def duration(self, text: str, ptr: str) -> Duration | None:
        try:
            return durations.parse_duration(text)
        except durations.DurationError as exc:
            self.problem(ptr, "duration.invalid", str(exc))
            return None

    def party(self, text: str | None, ptr: str) -> Party | None:
        if text is None:
            return None
        kind, _, name = text.partition(":")
        return Party(kind, name or None, self.loc(ptr))

    def fields(self, raw: dict | None, ptr: str, scope: str = "all") -> tuple[Field, ...]:
        return tuple(self.field(name, spec, J(ptr, name), scope) for name, spec in (raw or {}).items())

    def field(self, name: str, spec: Any, ptr: str, scope: str = "all") -> Field:
        if isinstance(spec, str):  # `phone: phone`, about half the fields of a pack
            return Field(name=name, type=spec, loc=self.key(ptr), label=humanise(name), scope=scope, pack=self.pack,
                         currency=self.currency if spec == "money" else None)
        choices = tuple(
            Choice(c["value"], c["label"] if "label" in c else humanise(str(c["value"]))) if isinstance(c, dict) else Choice(c, humanise(str(c)))
            for c in spec.get("choices", ())
        )
        kw = {k: spec[k] for k in spec.keys() & _FIELD_OPTIONS}
        if spec["type"] == "money" and "currency" not in kw and self.currency:
            kw["currency"] = self.currency
        return Field(name=name, type=spec["type"], loc=self.key(ptr), label=spec["label"] if "label" in spec else humanise(name),
                     choices=choices, scope=scope, pack=self.pack, **kw)

    def source(self, value: Any, ptr: str) -> Source:
        loc = self.loc(ptr)
        if isinstance(value, str):
            if "{{" in value or "{%" in value:
                return Source("template", value, loc)
            if value == "record":
                return Source("record", value, loc)
            if value.startswith("created."):
                return Source("created", value.split(".", 1)[1], loc)
            return Source("field", value, loc)
        if isinstance(value, dict) and set(value) == {"value"}:
            return Source("literal", value["value"], self.loc(f"{ptr}/value"))
        return Source("literal", value, loc)

    def mapping(self, raw: dict | None, ptr: str) -> tuple[tuple[str, Source], ...]:
        return tuple((k, self.source(v, J(ptr, k))) for k, v in (raw or {}).items())

    # -- kinds -------------------------------------------------------------
    def pack_def(self, root: str) -> Pack:
        d = self.doc.data
        extends = tuple((name, rng, self.loc(J("/extends", name))) for name, rng in (d.get("extends") or {}).items())
        webhooks = tuple(Webhook(w["name"], w["url"], tuple(w["events"]), w["secret_env"], self.loc(J(J("/webhooks", i), "name")),
                                 self.loc(J(J("/webhooks", i), "url")), self.loc(J(J("/webhooks", i), "secret_env")), d["name"])
                         for i, w in enumerate(d.get("webhooks") or ()))
        return Pack(d["name"], d["version"], self.loc("/name"), root, d.get("label", humanise(d["name"])),
                    d.get("description", ""), extends, webhooks, d.get("currency"))

    def entity(self) -> Entity:
        d = self.doc.data
        groups = tuple(
            Group(name=g, label=spec.get("label", humanise(g)), when=Template(spec["when"], self.loc(J(J("/groups", g), "when"))),
                  loc=self.key(J("/groups", g)), description=spec.get("description", ""),
                  fields=self.fields(spec.get("fields"), J(J("/groups", g), "fields"), scope=f"group:{g}"))
            for g, spec in (d.get("groups") or {}).items()
        )
        rf = d.get("record_fields") or {}
        defaults = RecordFieldRules()
        rules = RecordFieldRules(rf.get("allowed", defaults.allowed), tuple(rf.get("types", defaults.types)), rf.get("max", defaults.max),
                                 self.key("/record_fields") if "record_fields" in d else None)
        return Entity(name=d["name"], loc=self.loc("/name"), pack=self.pack, label=d.get("label", humanise(d["name"])),
                      plural=d.get("plural", d.get("label", humanise(d["name"])) + "s"),
                      fields=self.fields(d.get("fields"), "/fields"), description=d.get("description", ""),
                      title=self.template(d.get("title"), "/title"), customer=d.get("customer", False), groups=groups,
                      record_fields=rules, links=self.links(d.get("links"), "/links"), pages=self.pages(d.get("pages")))

    def pages(self, raw: dict | None) -> EntityPages:
        if not raw:
            return EntityPages()
        locs = tuple((f"{option}/{i}", self.loc(f"/pages/{option}/{i}")) for option in ("columns", "filters", "search")
                     for i in range(len(raw.get(option) or ())))
        if "stages" in raw:
            locs += (("stages", self.loc("/pages/stages")),)
        return EntityPages(loc=self.key("/pages"), navigation=raw.get("navigation", True), columns=tuple(raw.get("columns", ())),
                           filters=tuple(raw.get("filters", ())), search=tuple(raw.get("search", ())),
                           sections=self.sections(raw.get("sections"), "/pages/sections"), stages=raw.get("stages"), locs=locs)

    def links(self, raw: dict | None, ptr: str) -> tuple[Link, ...]:
        return tuple(Link(n, spec.get("label", humanise(n)), Template(spec["url"], self.loc(J(J(ptr, n), "url"))), self.key(J(ptr, n)))
                     for n, spec in (raw or {}).items())

    def action(self, raw: dict, ptr: str):
        loc = self.loc(ptr)
        when = self.template(raw.get("when"), f"{ptr}/when")
        if "create" in raw:
            return CreateAction(raw["create"], self.mapping(raw.get("set"), f"{ptr}/set"), loc, raw.get("as", raw["create"]),
                                raw.get("match"), self.loc(f"{ptr}/match") if "match" in raw else None, when)
        if "update" in raw:
            return UpdateAction(self.mapping(raw.get("set"), f"{ptr}/set"), loc, raw["update"], self.loc(f"{ptr}/update"), when)
        return StartAction(raw["start"], self.mapping(raw.get("with"), f"{ptr}/with"), loc, when)

    def sections(self, raw: list | None, ptr: str) -> tuple[Section, ...]:
        return tuple(Section(s["section"], tuple(s["fields"]), self.loc(f"{ptr}/{i}"), s.get("columns", 1), s.get("help", ""))
                     for i, s in enumerate(raw or ()))

    def form(self) -> Form:
        d = self.doc.data
        fields = self.fields(d.get("fields"), "/fields")
        layout = self.sections(d.get("layout"), "/layout")
        label = d.get("label", humanise(d["name"]))
        if not layout:
            layout = (Section(label, tuple(f.name for f in fields), self.loc("/fields")),)
        return Form(name=d["name"], loc=self.loc("/name"), pack=self.pack, label=label, fields=fields, layout=layout,
                    description=d.get("description", ""), entity=d.get("entity"),
                    entity_loc=self.loc("/entity") if "entity" in d else None, contact=d.get("contact", False),
                    portal=d.get("portal", False), layout_given="layout" in d, portal_description=d.get("portal_description", ""),
                    actions=tuple(self.action(a, f"/on_submit/{i}") for i, a in enumerate(d.get("on_submit") or ())))

    def due(self, raw: Any, ptr: str) -> Due | None:
        if raw is None:
            return None
        if isinstance(raw, str):
            return Due(self.duration(raw, ptr), self.loc(ptr))
        return Due(self.duration(raw["in"], f"{ptr}/in"), self.loc(ptr), raw.get("from", "start"))

    def escalation(self, raw: dict, ptr: str) -> Escalation:
        after = None
        try:
            after = durations.parse_after_due(raw["at"])
        except durations.DurationError as exc:
            self.problem(f"{ptr}/at", "duration.invalid", str(exc))
        alert = raw.get("alert", [])
        if isinstance(alert, str):
            alerts = (self.party(alert, f"{ptr}/alert"),)
        else:
            alerts = tuple(self.party(a, f"{ptr}/alert/{i}") for i, a in enumerate(alert))
        return Escalation(after, self.loc(ptr), alerts, self.party(raw.get("reassign"), f"{ptr}/reassign"),
                          self.template(raw.get("message"), f"{ptr}/message"))

    def steps(self, raw: list, ptr: str) -> tuple[Step, ...]:
        """The steps of a list as written (an old `approval:` on a task step gives two: see `step`)."""
        return tuple(s for i, r in enumerate(raw) for s in self.step(r, J(ptr, i)))

    def step(self, raw: dict, ptr: str) -> tuple[Step, ...]:
        """The step written at `ptr`: a parallel block, an approval or a task. A task step with the older
        `approval: {by: PARTY}` is the task followed by its approval step `<id>_approval`, so packs written
        before approval steps keep working (and say the same in one way to everything past the loader)."""
        if "parallel" in raw:
            branches = tuple((name, self.steps(steps, J(f"{ptr}/parallel", name))) for name, steps in raw["parallel"].items())
            return (ParallelStep(raw["id"], branches, self.loc(f"{ptr}/id"), self.template(raw.get("when"), f"{ptr}/when")),)
        if "approve" in raw:
            return (self.approval(raw, ptr),)
        task = self.task(raw, ptr)
        if "approval" not in raw:
            return (task,)
        where = self.key(f"{ptr}/approval")
        return (task, ApprovalStep(id=f"{task.id}_approval", approve=task.id, title=Template(f"Approve: {raw['title']}", task.title.loc),
                                   loc=where, approvers=(self.party(raw["approval"]["by"], f"{ptr}/approval/by"),), approve_loc=where))

    def _reminders(self, raw: dict, ptr: str) -> tuple[Duration, ...]:
        return tuple(r for r in (self.duration(t, f"{ptr}/reminders/{i}") for i, t in enumerate(raw.get("reminders", ()))) if r)

    def _escalations(self, raw: dict, ptr: str) -> tuple[Escalation, ...]:
        return tuple(self.escalation(e, f"{ptr}/escalate/{i}") for i, e in enumerate(raw.get("escalate", ())))

    def task(self, raw: dict, ptr: str) -> TaskStep:
        return TaskStep(
            id=raw["id"], title=Template(raw["title"], self.loc(f"{ptr}/title")), loc=self.loc(f"{ptr}/id"),
            description=self.template(raw.get("description"), f"{ptr}/description"),
            when=self.template(raw.get("when"), f"{ptr}/when"), assign=self.party(raw.get("assign"), f"{ptr}/assign"),
            strategy=raw.get("strategy", "round_robin"), due=self.due(raw.get("due"), f"{ptr}/due"),
            form=raw.get("form"), form_loc=self.loc(f"{ptr}/form") if "form" in raw else None,
            reminders=self._reminders(raw, ptr), escalate=self._escalations(raw, ptr),
            fallback=self.party(raw.get("fallback"), f"{ptr}/fallback"),
        )

    def approval(self, raw: dict, ptr: str) -> ApprovalStep:
        given = raw["approvers"]
        approvers = ((self.party(given, f"{ptr}/approvers"),) if isinstance(given, str)
                     else tuple(self.party(a, f"{ptr}/approvers/{i}") for i, a in enumerate(given)))
        show = tuple((path, self.loc(f"{ptr}/show/{i}")) for i, path in enumerate(raw["show"])) if "show" in raw else None
        return ApprovalStep(
            id=raw["id"], approve=raw["approve"], title=Template(raw["title"], self.loc(f"{ptr}/title")), loc=self.loc(f"{ptr}/id"),
            approvers=approvers, approve_loc=self.loc(f"{ptr}/approve"), decide=raw.get("decide", "any"), show=show,
            description=self.template(raw.get("description"), f"{ptr}/description"), when=self.template(raw.get("when"), f"{ptr}/when"),
            due=self.due(raw.get("due"), f"{ptr}/due"), reminders=self._reminders(raw, ptr), escalate=self._escalations(raw, ptr),
            fallback=self.party(raw.get("fallback"), f"{ptr}/fallback"),
        )

    def trigger(self, raw: dict, ptr: str):
        loc = self.loc(ptr)
        if "form" in raw:
            return FormTrigger(raw["form"], loc)
        if "record" in raw:
            return RecordTrigger(raw["record"], tuple(raw.get("on", ("created", "changed"))), loc, self.template(raw.get("when"), f"{ptr}/when"))
        if "schedule" in raw:
            return ScheduleTrigger(raw["schedule"], self.loc(f"{ptr}/schedule"), raw.get("for_each"), self.template(raw.get("when"), f"{ptr}/when"),
                                   str(raw["starts"]) if "starts" in raw else None, self.loc(f"{ptr}/starts") if "starts" in raw else None)
        return ManualTrigger(loc)

    def process(self) -> Process:
        d = self.doc.data
        proj = d.get("project")
        return Process(
            name=d["name"], loc=self.loc("/name"), pack=self.pack, label=d.get("label", humanise(d["name"])),
            steps=self.steps(d["steps"], "/steps"), description=d.get("description", ""),
            entity=d.get("entity"), entity_loc=self.loc("/entity") if "entity" in d else None,
            calendar=d.get("calendar"), calendar_loc=self.loc("/calendar") if "calendar" in d else None,
            inputs=self.fields(d.get("inputs"), "/inputs"),
            triggers=tuple(self.trigger(t, f"/triggers/{i}") for i, t in enumerate(d.get("triggers") or ())),
            project=ProjectSpec(Template(proj["title"], self.loc("/project/title")), self.loc("/project"),
                                self.party(proj.get("manager"), "/project/manager")) if proj else None,
            fallback=self.party(d.get("fallback"), "/fallback"),
            migrate=self.migration(d["migrate"]) if "migrate" in d else None,
        )

    def migration(self, raw: dict) -> Migration:
        return Migration(self.loc("/migrate"), str(raw.get("from", "any")), self.loc("/migrate/from") if "from" in raw else None,
                         tuple((old, new, self.loc(J("/migrate/steps", old))) for old, new in (raw.get("steps") or {}).items()))

    def role(self) -> Role:
        d = self.doc.data
        return Role(d["name"], self.loc("/name"), self.pack, d.get("label", humanise(d["name"])), tuple(d["permissions"]), d.get("description", ""))

    def group(self) -> GroupDef:
        d = self.doc.data
        return GroupDef(d["name"], self.loc("/name"), self.pack, d.get("label", humanise(d["name"])),
                        tuple((r, self.loc(f"/roles/{i}")) for i, r in enumerate(d.get("roles", ()))), d.get("calendar"),
                        d.get("description", ""), self.loc("/calendar"), d.get("managers", "take_turns"),
                        self.loc("/managers") if "managers" in d else None)

    def calendar(self) -> Calendar:
        d = self.doc.data
        periods: list[WorkingPeriod] = []
        for spec, hours in (d.get("working_hours") or {"mon-fri": "09:00-17:00"}).items():
            ptr = J("/working_hours", spec)
            days = self._days(spec, ptr)
            ranges = hours if isinstance(hours, list) else [hours]
            for i, text in enumerate(ranges):
                if text == "closed":
                    continue
                rng = self._hours(text, f"{ptr}/{i}" if isinstance(hours, list) else ptr)
                if rng:
                    periods.extend(WorkingPeriod(day, *rng) for day in days)
        hol = d.get("holidays") or {}
        return Calendar(d["name"], self.loc("/name"), self.pack, d.get("label", humanise(d["name"])), d["timezone"],
                        tuple(sorted(periods, key=lambda p: (p.weekday, p.start_minute))), hol.get("country"),
                        hol.get("subdivision"), tuple(hol.get("dates", ())), self.loc("/timezone"), self.loc("/holidays"))

    def _days(self, spec: str, ptr: str) -> list[int]:
        parts = spec.lower().split("-")
        if not all(p in DAYS for p in parts) or len(parts) > 2:
            self.problems.append(Problem(self.key(ptr), "calendar.days", f"expected a day or day range like 'mon' or 'mon-fri', found '{spec}'", ptr))
            return []
        a, b = DAYS.index(parts[0]), DAYS.index(parts[-1])
        return list(range(a, b + 1)) if a <= b else list(range(a, 7)) + list(range(0, b + 1))

    def _hours(self, text: str, ptr: str) -> tuple[int, int] | None:
        m = re.match(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$", str(text))
        if m:
            h1, m1, h2, m2 = map(int, m.groups())
            start, end = h1 * 60 + m1, h2 * 60 + m2
            if h1 < 24 and h2 <= 24 and m1 < 60 and m2 < 60 and start < end <= 24 * 60:
                return start, end
        self.problem(ptr, "calendar.hours", f"expected working hours like '09:00-17:30' (start before end) or 'closed', found '{text}'")
        return None

    # -- reports and dashboards ------------------------------------------------
    def audience(self, raw: list | None, ptr: str) -> tuple[tuple[str, str, Loc], ...]:
        """`for: [role:X, group:Y]` as (kind, name, where)."""
        return tuple((*text.partition(":")[::2], self.loc(f"{ptr}/{i}")) for i, text in enumerate(raw or ()))

    def report(self) -> Report:
        d = self.doc.data
        by = d.get("group_by")
        by_list = [by] if isinstance(by, str) else list(by or ())
        by_locs = tuple((name, self.loc("/group_by" if isinstance(by, str) else f"/group_by/{i}")) for i, name in enumerate(by_list))
        measures = []
        for i, m in enumerate(d.get("measures") or ()):
            if isinstance(m, str):
                measures.append(Measure(m, None, self.loc(f"/measures/{i}")))
            else:
                (agg, fname), = m.items()
                measures.append(Measure(agg, fname, self.loc(J(f"/measures/{i}", agg))))
        chart = d.get("chart")
        if isinstance(chart, str):
            chart_def: Chart | None = Chart(chart, self.loc("/chart"))
        elif isinstance(chart, dict):
            chart_def = Chart(chart["type"], self.loc("/chart"), chart.get("measure"))
        else:
            chart_def = None
        period = d.get("period") or {}
        if isinstance(period, str):
            period = {"default": period}
        pipe = d.get("pipeline") or {}
        options = PipelineOptions(tuple(pipe["won"]) if "won" in pipe else None, tuple(pipe["lost"]) if "lost" in pipe else None,
                                  pipe.get("value"), pipe.get("probability"), pipe.get("close"), self.key("/pipeline") if pipe else None)
        return Report(
            name=d["name"], loc=self.loc("/name"), pack=self.pack, label=d.get("label", humanise(d["name"])),
            description=d.get("description", ""), metric=d.get("metric"), entity=d.get("entity"),
            entity_loc=self.loc("/entity") if "entity" in d else None, group_by=by_locs, group_by_given="group_by" in d,
            measures=tuple(measures), filters=tuple((k, v, self.key(J("/filters", k))) for k, v in (d.get("filters") or {}).items()),
            viewer_filters=tuple((n, self.loc(f"/viewer_filters/{i}")) for i, n in enumerate(d.get("viewer_filters") or ())),
            period_field=period.get("field"), period_default=period.get("default"),
            period_loc=self.key("/period") if "period" in d else None, chart=chart_def,
            columns=tuple((n, self.loc(f"/columns/{i}")) for i, n in enumerate(d.get("columns") or ())),
            days=d.get("days"), audience=self.audience(d.get("for"), "/for"), pipeline=options,
            deliveries=tuple(Delivery(x["schedule"], self.audience(x["to"], f"/deliver/{i}/to"), self.loc(f"/deliver/{i}/schedule"),
                                      str(x["starts"]) if "starts" in x else None,
                                      self.loc(f"/deliver/{i}/starts") if "starts" in x else None)
                             for i, x in enumerate(d.get("deliver") or ())))

    def dashboard(self) -> Dashboard:
        d = self.doc.data
        rows = tuple(tuple((name, self.loc(f"/rows/{i}/{j}")) for j, name in enumerate(row)) for i, row in enumerate(d["rows"]))
        return Dashboard(d["name"], self.loc("/name"), self.pack, d.get("label", humanise(d["name"])), rows, d.get("description", ""),
                         self.audience(d.get("for"), "/for"),
                         tuple((r, self.loc(f"/home_for/{i}")) for i, r in enumerate(d.get("home_for") or ())))

    def overlay(self) -> Overlay:
        d = self.doc.data
        kind, _, name = d["target"].partition("/")
        ops = []
        for op, payload in d.items():
            if op in ("kind", "name", "target"):
                continue
            ptr = f"/{op}"
            ops.append((op, self._overlay_payload(op, payload, ptr, kind), self.key(ptr)))
        return Overlay(d["name"], self.pack, kind, name, self.loc("/name"), self.loc("/target"), tuple(ops))

    def _overlay_payload(self, op: str, payload: Any, ptr: str, kind: str) -> Any:
        if op in ("add_fields", "replace_fields"):
            return self.fields(payload, ptr)
        if op == "add_group_fields":
            return {g: self.fields(fs, J(ptr, g), scope=f"group:{g}") for g, fs in payload.items()}
        if op == "add_groups":
            return {g: Group(g, spec.get("label", humanise(g)), Template(spec["when"], self.loc(J(J(ptr, g), "when"))), self.key(J(ptr, g)),
                             spec.get("description", ""), self.fields(spec.get("fields"), J(J(ptr, g), "fields"), scope=f"group:{g}"))
                    for g, spec in payload.items()}
        if op == "add_links":
            return self.links(payload, ptr)
        if op == "add_actions":
            return tuple(self.action(a, f"{ptr}/{i}") for i, a in enumerate(payload))
        if op == "insert_steps":
            return tuple((("after", item["after"]) if "after" in item else ("before", item["before"]),
                          self.step(item["step"], f"{ptr}/{i}/step"), self.loc(f"{ptr}/{i}")) for i, item in enumerate(payload))
        if op == "replace_steps":
            return {sid: (self.step(s, J(ptr, sid)), self.key(J(ptr, sid))) for sid, s in payload.items()}
        if op == "change_steps":
            return {sid: (self._step_change(ch, J(ptr, sid)), self.key(J(ptr, sid))) for sid, ch in payload.items()}
        if op == "add_triggers":
            return tuple(self.trigger(t, f"{ptr}/{i}") for i, t in enumerate(payload))
        if op == "add_rows":
            return tuple(tuple((n, self.loc(f"{ptr}/{i}/{j}")) for j, n in enumerate(row)) for i, row in enumerate(payload))
        if op in ("change_fields", "remove_fields", "remove_steps", "add_to_sections", "add_permissions", "remove_permissions", "set",
                  "record_fields", "remove_links", "add_filters", "remove_reports"):
            keyed = {k: self.key(J(ptr, k)) for k in payload} if isinstance(payload, dict) else {k: self.loc(f"{ptr}/{i}") for i, k in enumerate(payload)}
            return (payload, keyed)
        return payload

    def _step_change(self, raw: dict, ptr: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in raw.items():
            p = J(ptr, k)
            if k in ("title", "description", "when"):
                out[k] = Template(v, self.loc(p))
            elif k == "due":
                out[k] = self.due(v, p)
            elif k in ("assign", "fallback"):
                out[k] = self.party(v, p)
            elif k == "reminders":
                out[k] = tuple(r for r in (self.duration(t, J(p, i)) for i, t in enumerate(v)) if r)
            elif k == "escalate":
                out[k] = tuple(self.escalation(e, J(p, i)) for i, e in enumerate(v))
            elif k == "form":
                out[k] = v
                out["form_loc"] = self.loc(p)
            else:
                out[k] = v
        return out


BUILDERS: dict[str, Callable[[Builder], Any]] = {
    "entity": Builder.entity, "form": Builder.form, "process": Builder.process, "role": Builder.role,
    "group": Builder.group, "calendar": Builder.calendar, "overlay": Builder.overlay,
    "report": Builder.report, "dashboard": Builder.dashboard,
}
