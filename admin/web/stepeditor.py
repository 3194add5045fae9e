"""The process editor's step form: where a step comes (its list and the step it follows), and a task's title,
condition, assignee, due time, form, approval, reminders and escalation ladder rows, as typed and as the process's
YAML data. A parallel block can be moved, given a condition or removed; its branches' tasks are edited one by one.
"""
from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from engine import durations
from engine.build import humanise

from .fieldeditor import NAME

PARTY = re.compile(r"^(owner|assignee|manager|project_manager|(role|group|user|completer):[a-z][a-z0-9_]*)$")
STRATEGIES = {"round_robin": "In turn (round robin)", "least_busy": "Whoever has the fewest open tasks"}
MAX_ROWS = 20
#: the keys of a step's YAML the step form edits (an approval step's `approval` is its `approvers`)
FORM_KEYS = frozenset({"id", "title", "description", "when", "assign", "strategy", "due", "form", "approvers", "approval",
                       "reminders", "escalate"})


@dataclass
class EscalationRow:
    at: str = ""
    alert: str = ""
    reassign: str = ""
    message: str = ""
    remove: bool = False


@dataclass
class StepForm:
    """What the step form shows and what was typed into it."""

    original: str = ""     # the step's id when it is changed ('' for a new step)
    kind: str = "task"     # task, or parallel (an existing block)
    id: str = ""
    position: str = "|"    # "LIST|AFTER": LIST '' (the process) or 'block/branch'; AFTER '' for the start of the list
    title: str = ""
    description: str = ""
    when: str = ""
    assign: str = ""
    strategy: str = "round_robin"
    due_in: str = ""
    due_from: str = ""
    form: str = ""
    approval: str = ""
    reminders: list[str] = field(default_factory=list)
    escalations: list[EscalationRow] = field(default_factory=list)

    @classmethod
    def of(cls, step: dict, position: str) -> StepForm:
        """The form filled in with a step's YAML data."""
        if "parallel" in step:
            return cls(original=step["id"], kind="parallel", id=step["id"], position=position, when=step.get("when", ""))
        due = step.get("due")
        esc = [EscalationRow(e["at"], e["alert"] if isinstance(e.get("alert"), str) else ", ".join(e.get("alert", [])),
                             e.get("reassign", ""), e.get("message", "").strip()) for e in step.get("escalate", ())]
        return cls(original=step["id"], id=step["id"], position=position, title=step["title"], description=step.get("description", ""),
                   when=step.get("when", ""), assign=step.get("assign", ""), strategy=step.get("strategy", "round_robin"),
                   due_in=due if isinstance(due, str) else (due or {}).get("in", ""),
                   due_from=(due or {}).get("from", "") if isinstance(due, dict) else "",
                   form=step.get("form", ""), approval=_approvers(step),
                   reminders=list(step.get("reminders", ())), escalations=esc, kind="approval" if "approve" in step else "task")

    @classmethod
    def posted(cls, data: Mapping[str, Any]) -> StepForm:
        text = lambda key, most=2000: str(data.get(key, "")).replace("\r\n", "\n").strip()[:most]
        count = lambda key: max(0, min(_int(data.get(key)), MAX_ROWS))
        kind = data.get("kind") if data.get("kind") in ("parallel", "approval") else "task"
        return cls(original=text("original", 100), kind=kind, id=text("id", 100),
                   position=text("position", 300) or "|", title=text("title"), description=text("description", 4000), when=text("when"),
                   assign=text("assign", 200), strategy=text("strategy", 20) or "round_robin", due_in=text("due_in", 100),
                   due_from=text("due_from", 100), form=text("form", 100), approval=text("approval", 200),
                   reminders=[text(f"reminder-{i}", 100) for i in range(count("reminder_count"))],
                   escalations=[EscalationRow(text(f"esc-{i}-at", 100), text(f"esc-{i}-alert", 300), text(f"esc-{i}-reassign", 200),
                                              text(f"esc-{i}-message"), bool(data.get(f"esc-{i}-remove")))
                                for i in range(count("esc_count"))])

    def values(self) -> dict[str, Any]:
        return asdict(self)

    def step_data(self, current: dict | None, errors: dict[str, str], ids: set[str]) -> dict:
        """The step's YAML data (`current`: the draft's, for a parallel block, whose branches stay), with a message per
        wrong input."""
        if not self.original:
            if not NAME.match(self.id):
                errors["id"] = "Give the step an id of lower-case letters, digits and _, e.g. site_check."
            elif self.id in ids:
                errors["id"] = f"The process has a step {self.id} already."
        sid = self.original or self.id
        if self.kind == "parallel":
            out = copy.deepcopy(current or {})
            out.pop("when", None)
            if self.when:
                out = {"id": sid, "when": self.when, **{k: v for k, v in out.items() if k not in ("id", "when")}}
            return out
        out: dict[str, Any] = {"id": sid}
        # what the form does not edit stays as the step says it: an approval's step approved, how it decides and what it
        # shows, a step's fallback (and whatever a later option of steps is)
        kept = {k: v for k, v in (current or {}).items() if k not in FORM_KEYS}
        if "approve" in kept:
            out["approve"] = kept.pop("approve")
        if self.kind == "approval" and not self.approval:
            errors["approval"] = "Say who approves, e.g. role:sales_director."
        if not self.title:
            errors["title"] = "Give the task a title, e.g. Call {{ record.name }} back."
        out["title"] = self.title
        if self.description:
            out["description"] = self.description
        if self.when:
            out["when"] = self.when
        for key in ("assign", "approval"):
            for value in (getattr(self, key).split(",") if key == "approval" else [getattr(self, key)]):
                value = value.strip()
                if value and not PARTY.match(value):
                    errors[key] = (f"'{value}' is not someone Tailor knows: write owner, assignee, manager, project_manager, or role:NAME, "
                                   f"group:NAME, user:NAME, completer:STEP.")
        if self.assign and self.kind != "approval":
            out["assign"] = self.assign
        if self.strategy not in STRATEGIES:
            errors["strategy"] = "Choose how a person of the group or role is picked."
        elif self.strategy != "round_robin":
            out["strategy"] = self.strategy
        if self.due_in:
            _duration(self.due_in, "due_in", errors)
            out["due"] = {"in": self.due_in, "from": self.due_from} if self.due_from else self.due_in
        elif self.due_from:
            errors["due_in"] = "Say how long after that step it is due, e.g. 2 business days."
        if self.form and self.kind != "approval":
            out["form"] = self.form
        if self.approval and self.kind == "approval":
            people = [a.strip() for a in self.approval.split(",") if a.strip()]
            out["approvers"] = people[0] if len(people) == 1 else people
        elif self.approval:  # a task that is to be approved: the approval is a step of its own, after it
            errors["approval"] = "An approval is a step of its own: add a step after this one and choose who approves it there."
        reminders = [r for r in self.reminders if r]
        for i, r in enumerate(self.reminders):
            if r:
                _duration(r, f"reminder-{i}", errors)
        if reminders:
            out["reminders"] = reminders
        ladder = []
        for i, row in enumerate(self.escalations):
            if row.remove or not (row.at or row.alert or row.reassign or row.message):
                continue
            level: dict[str, Any] = {"at": row.at or "due"}
            try:
                durations.parse_after_due(level["at"])
            except durations.DurationError as exc:
                errors[f"esc-{i}-at"] = f"{str(exc)[:1].upper()}{str(exc)[1:]}, e.g. due + 1 business day."
            alerts = [a.strip() for a in row.alert.split(",") if a.strip()]
            for a in alerts:
                if not PARTY.match(a):
                    errors[f"esc-{i}-alert"] = f"'{a}' is not someone Tailor knows (owner, assignee, manager, role:NAME, group:NAME…)."
            if alerts:
                level["alert"] = alerts[0] if len(alerts) == 1 else alerts
            if row.reassign:
                if not PARTY.match(row.reassign):
                    errors[f"esc-{i}-reassign"] = f"'{row.reassign}' is not someone Tailor knows (manager, group:NAME…)."
                level["reassign"] = row.reassign
            if not alerts and not row.reassign:
                errors[f"esc-{i}-alert"] = "Say who is alerted, or who the task goes to (or both)."
            if row.message:
                level["message"] = row.message
            ladder.append(level)
        if ladder:
            if not self.due_in:
                errors["due_in"] = "Reminders and escalations count from the due time: give one."
            out["escalate"] = ladder
        elif reminders and not self.due_in:
            errors["due_in"] = "Reminders count back from the due time: give one."
        out.update(kept)
        return out

    def to_input(self, path: tuple, doc: dict, _problem) -> str | None:
        """The step form's input a problem at a path of the written YAML belongs to."""
        rest = _inside(path, doc, self.original or self.id)
        if rest is None:
            return None
        if not rest:
            return "title" if self.kind == "task" else "when"
        key = rest[0]
        if key == "due":
            return "due_from" if "from" in rest else "due_in"
        if key == "approval":
            return "approval"
        if key == "reminders":
            return f"reminder-{rest[1]}" if len(rest) > 1 else "reminder-0"
        if key == "escalate":
            if len(rest) > 2 and rest[2] in ("at", "alert", "reassign", "message"):
                return f"esc-{rest[1]}-{rest[2]}"
            return f"esc-{rest[1]}-at" if len(rest) > 1 else "due_in"
        return key if key in ("id", "title", "description", "when", "assign", "strategy", "form") else None


def _inside(path: tuple, doc: Any, sid: str) -> tuple | None:
    """The part of `path` inside the step `sid` of a written document (None: the path is not in that step)."""
    node = doc
    for k, part in enumerate(path):
        if isinstance(node, dict) and node.get("id") == sid:
            return path[k:]
        if k > 0 and path[k - 1] in ("change_steps", "replace_steps") and part == sid:
            return path[k + 1:]
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return () if isinstance(node, dict) and node.get("id") == sid else None


def _int(value, default: int = 0) -> int:
    try:
        return int(str(value))
    except ValueError:
        return default


def _duration(text: str, key: str, errors: dict[str, str]) -> None:
    try:
        durations.parse_duration(text)
    except durations.DurationError as exc:
        errors[key] = f"{str(exc)[:1].upper()}{str(exc)[1:]}."


# -- where steps are ----------------------------------------------------------------------------
def lists(process: dict) -> list[tuple[str, str, list[dict]]]:
    """Every list of steps of a process: (its path, its name in words, its steps): the process's own, then each branch."""
    out = [("", "the process", process["steps"])]

    def walk(steps: list[dict]) -> None:
        for s in steps:
            for branch, inner in (s.get("parallel") or {}).items():
                out.append((f"{s['id']}/{branch}", f"branch {humanise(branch)} of {humanise(s['id'])}", inner))
                walk(inner)

    walk(process["steps"])
    return out


def locate(process: dict, sid: str) -> tuple[str, int] | None:
    """(the path of its list, its index) of step `sid`."""
    for path, _, steps in lists(process):
        for i, s in enumerate(steps):
            if s["id"] == sid:
                return path, i
    return None


def position_of(process: dict, sid: str) -> str:
    found = locate(process, sid)
    if found is None:
        return "|"
    path, i = found
    steps = {p: s for p, _, s in lists(process)}[path]
    return f"{path}|{steps[i - 1]['id'] if i else ''}"


def positions(process: dict, sid: str = "") -> list[tuple[str, str]]:
    """Where a step may go: the start of each list, or after each of its steps (but itself and its own branches)."""
    out = []
    for path, words, steps in lists(process):
        if sid and (path == sid or path.startswith(f"{sid}/")):
            continue
        out.append((f"{path}|", f"First in {words}"))
        out += [(f"{path}|{s['id']}", f"After {humanise(s['id'])} ({words})") for s in steps if s["id"] != sid]
    return out


def all_ids(process: dict) -> set[str]:
    return {s["id"] for _, _, steps in lists(process) for s in steps}


def with_step(process: dict, form: StepForm, errors: dict[str, str]) -> dict:
    """The process's YAML data with the step as typed, where the form says it goes (or {} with `errors`)."""
    want = copy.deepcopy(process)
    sid = form.original or form.id
    current = None
    if form.original:
        found = locate(want, form.original)
        if found is None:
            errors[""] = f"The process no longer has a step {form.original}: someone removed it meanwhile."
            return {}
        path, i = found
        current = {p: s for p, _, s in lists(want)}[path][i]
    step = form.step_data(current, errors, all_ids(process) - {form.original})
    path, _, after = form.position.partition("|")
    targets = {p: s for p, _, s in lists(want)}
    if path not in targets or (path and (path == sid or path.startswith(f"{sid}/"))):
        errors["position"] = "Choose where the step goes."
    if errors:
        return {}
    if form.original:
        found = locate(want, form.original)
        p, i = found
        {q: s for q, _, s in lists(want)}[p].pop(i)
    targets = {p: s for p, _, s in lists(want)}
    steps = targets[path]
    ids = [s["id"] for s in steps]
    if after and after not in ids:
        errors["position"] = "The step it should follow is no longer there: choose again."
        return {}
    steps.insert(ids.index(after) + 1 if after else 0, step)
    return want


def without_step(process: dict, sid: str) -> dict:
    want = copy.deepcopy(process)
    found = locate(want, sid)
    if found is not None:
        path, i = found
        {p: s for p, _, s in lists(want)}[path].pop(i)
    return want


def _approvers(step: dict) -> str:
    """Who approves, as the form's input shows it: an approval step's approvers, comma-separated."""
    given = step.get("approvers") or ""
    return given if isinstance(given, str) else ", ".join(given)
