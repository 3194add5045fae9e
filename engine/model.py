"""Typed, frozen definition objects: what the loader turns YAML into.

Nothing past the loader sees raw dicts. Every object keeps the `Loc` it came
from so semantic checks can point at the right line, even after overlays.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Iterator, Literal, Mapping, Union

from .errors import Loc
from .reports import Dashboard, Report

# -- shared pieces -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Choice:
    value: str | int
    label: str


@dataclass(frozen=True, slots=True)
class Field:
    """A field of an entity, a form or a process's inputs."""

    name: str
    type: str
    loc: Loc
    label: str
    help: str = ""
    required: bool = False
    default: Any = None
    unique: bool = False
    indexed: bool = False
    column: bool = False
    min: float | None = None
    max: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    choices: tuple[Choice, ...] = ()
    entity: str | None = None
    currency: str | None = None
    placeholder: str = ""
    renamed_from: str | None = None
    scope: str = "all"  # "all" or "group:NAME"
    pack: str = ""


@dataclass(frozen=True, slots=True)
class Template:
    """A Jinja2 template or expression as written, with where it was written."""

    source: str
    loc: Loc


@dataclass(frozen=True, slots=True)
class Duration:
    """A length of time: calendar (timedelta seconds) or business (hours/days on a calendar)."""

    amount: int
    unit: Literal["seconds", "business_hours", "business_days"]
    text: str

    def to_json(self) -> dict:
        return {"amount": self.amount, "unit": self.unit, "text": self.text}


@dataclass(frozen=True, slots=True)
class Party:
    """Who: owner, assignee, manager, project_manager, role:X, group:X, user:X, completer:STEP."""

    kind: str
    name: str | None
    loc: Loc

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}" if self.name else self.kind


# -- pack --------------------------------------------------------------------

#: what a webhook receiver can subscribe to (the runtime sends exactly these)
WEBHOOK_EVENTS = ("submission.created", "task.created", "task.completed", "alert.raised")


@dataclass(frozen=True, slots=True)
class Webhook:
    """A receiver a pack declares: its events are POSTed to `url`, signed with the secret in env var `secret_env`."""

    name: str
    url: str
    events: tuple[str, ...]
    secret_env: str
    loc: Loc
    url_loc: Loc
    secret_loc: Loc
    pack: str = ""


@dataclass(frozen=True, slots=True)
class Pack:
    name: str
    version: str
    loc: Loc
    root: str
    label: str = ""
    description: str = ""
    extends: tuple[tuple[str, str, Loc], ...] = ()  # (pack, version range, where)
    webhooks: tuple[Webhook, ...] = ()
    currency: str | None = None  # of this pack's money fields that name none


# -- entity ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    label: str
    when: Template
    loc: Loc
    description: str = ""
    fields: tuple[Field, ...] = ()


@dataclass(frozen=True, slots=True)
class Link:
    name: str
    label: str
    url: Template
    loc: Loc


@dataclass(frozen=True, slots=True)
class RecordFieldRules:
    """Rules for single-record fields that staff add to one record at run time."""

    allowed: bool = True
    types: tuple[str, ...] = ("string", "text", "integer", "decimal", "money", "boolean", "date", "email", "phone", "url")
    max: int = 50
    loc: Loc | None = field(default=None, compare=False)  # where they are written (an overlay's, once one changed them)


@dataclass(frozen=True, slots=True)
class EntityPages:
    """What an entity's generated pages show, where it differs from the defaults (see `engine.pages`)."""

    loc: Loc | None = None
    navigation: bool = True               # listed in the main menu
    columns: tuple[str, ...] = ()         # directory columns (default: the first few fields)
    filters: tuple[str, ...] = ()         # directory filters offered first
    search: tuple[str, ...] = ()          # fields the directory's search box looks in (default: the title)
    sections: tuple["Section", ...] = ()  # the edit page's sections (default: one for all fields)
    stages: str | None = None             # a choice field whose values are the pipeline board's columns
    locs: tuple[tuple[str, Loc], ...] = ()  # ("columns/1", where it is written), for problems that point at the entry

    def loc_of(self, pointer: str) -> Loc | None:
        """Where the entry at `pointer` (e.g. "columns/1") is written; the `pages:` key when unknown."""
        return dict(self.locs).get(pointer, self.loc)


@dataclass(frozen=True, slots=True)
class Entity:
    name: str
    loc: Loc
    pack: str
    label: str
    plural: str
    fields: tuple[Field, ...]
    description: str = ""
    title: Template | None = None
    customer: bool = False
    groups: tuple[Group, ...] = ()
    record_fields: RecordFieldRules = RecordFieldRules()
    links: tuple[Link, ...] = ()
    pages: EntityPages = EntityPages()
    kind: str = field(default="entity", init=False)

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    def all_fields(self) -> tuple[Field, ...]:
        """Fields for all records, then every group's fields."""
        return self.fields + tuple(f for g in self.groups for f in g.fields)


# -- form --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Section:
    title: str
    fields: tuple[str, ...]
    loc: Loc
    columns: int = 1
    help: str = ""


@dataclass(frozen=True, slots=True)
class Source:
    """Where a mapped value comes from: a form field, `record`, `created.X`, a template or a literal."""

    kind: Literal["field", "record", "created", "template", "literal"]
    value: Any
    loc: Loc


@dataclass(frozen=True, slots=True)
class CreateAction:
    """Make a record; with `match`, find the record whose unique field has the given value and update it instead."""

    entity: str
    set: tuple[tuple[str, Source], ...]
    loc: Loc
    alias: str = ""
    match: str | None = None  # find or create: a unique field of the entity, given in `set`
    match_loc: Loc | None = None
    when: Template | None = None  # run only when this condition holds
    kind: str = field(default="create", init=False)


@dataclass(frozen=True, slots=True)
class UpdateAction:
    """Change a record: the form's own (`record`), the one a reference field of the form names, or an earlier create's."""

    set: tuple[tuple[str, Source], ...]
    loc: Loc
    target: str = "record"  # "record", a reference field of the form, or the alias of an earlier create action
    target_loc: Loc | None = None
    when: Template | None = None
    kind: str = field(default="update", init=False)


@dataclass(frozen=True, slots=True)
class StartAction:
    process: str
    inputs: tuple[tuple[str, Source], ...]
    loc: Loc
    when: Template | None = None
    kind: str = field(default="start", init=False)


Action = Union[CreateAction, UpdateAction, StartAction]


@dataclass(frozen=True, slots=True)
class Form:
    name: str
    loc: Loc
    pack: str
    label: str
    fields: tuple[Field, ...]
    layout: tuple[Section, ...]
    description: str = ""  # for the people who maintain the definitions and for staff; never shown in the portal
    entity: str | None = None
    entity_loc: Loc | None = None
    contact: bool = False
    portal: bool = False
    actions: tuple[Action, ...] = ()
    portal_description: str = ""  # the intro customers read above the form in the portal
    layout_given: bool = False
    kind: str = field(default="form", init=False)

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)


# -- process -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Due:
    duration: Duration | None  # None: given but invalid (already reported)
    loc: Loc
    start: str = "start"  # "start" or an earlier step id


@dataclass(frozen=True, slots=True)
class Escalation:
    after_due: Duration | None
    loc: Loc
    alert: tuple[Party, ...] = ()
    reassign: Party | None = None
    message: Template | None = None


@dataclass(frozen=True, slots=True)
class TaskStep:
    id: str
    title: Template
    loc: Loc
    description: Template | None = None
    when: Template | None = None
    assign: Party | None = None
    strategy: str = "round_robin"
    due: Due | None = None
    form: str | None = None
    form_loc: Loc | None = None
    reminders: tuple[Duration, ...] = ()
    escalate: tuple[Escalation, ...] = ()
    fallback: Party | None = None  # who gets the task when `assign` names nobody who may hold it (wins over the process's)
    kind: str = field(default="task", init=False)


@dataclass(frozen=True, slots=True)
class ApprovalStep:
    """A decision on an earlier task step's work: one task per approver, who approves or rejects with a reason.

    `approve` names the task step whose work (its form's data) is approved; a rejection sends that step's task
    back to whoever completed it, and their next completion starts a new round. An old `approval: {by: PARTY}`
    on a task step is built as the task step plus one of these (`<id>_approval`)."""

    id: str
    approve: str
    title: Template
    loc: Loc
    approvers: tuple[Party, ...]
    approve_loc: Loc
    decide: Literal["any", "all"] = "any"  # any: the first decision counts; all: each approver must approve
    show: tuple[tuple[str, Loc], ...] | None = None  # "record.FIELD" / "STEP.FIELD" paths; None: the approved form's fields
    description: Template | None = None
    when: Template | None = None
    due: Due | None = None
    reminders: tuple[Duration, ...] = ()
    escalate: tuple[Escalation, ...] = ()
    fallback: Party | None = None  # who decides when the approvers name nobody but the requester
    kind: str = field(default="approval", init=False)


@dataclass(frozen=True, slots=True)
class ParallelStep:
    id: str
    branches: tuple[tuple[str, tuple["Step", ...]], ...]
    loc: Loc
    when: Template | None = None
    kind: str = field(default="parallel", init=False)


Step = Union[TaskStep, ApprovalStep, ParallelStep]


def walk(steps: tuple[Step, ...]) -> Iterator[Step]:
    """Every step, a parallel block's branches' steps included, in the order written."""
    for s in steps:
        yield s
        if isinstance(s, ParallelStep):
            for _, branch in s.branches:
                yield from walk(branch)


@dataclass(frozen=True, slots=True)
class FormTrigger:
    form: str
    loc: Loc
    kind: str = field(default="form", init=False)


@dataclass(frozen=True, slots=True)
class RecordTrigger:
    entity: str
    on: tuple[str, ...]
    loc: Loc
    when: Template | None = None
    kind: str = field(default="record", init=False)


@dataclass(frozen=True, slots=True)
class ScheduleTrigger:
    rrule: str
    loc: Loc
    for_each: str | None = None
    when: Template | None = None
    starts: str | None = None  # DTSTART, local to the process calendar
    starts_loc: Loc | None = None
    kind: str = field(default="schedule", init=False)


@dataclass(frozen=True, slots=True)
class ManualTrigger:
    loc: Loc
    kind: str = field(default="manual", init=False)


Trigger = Union[FormTrigger, RecordTrigger, ScheduleTrigger, ManualTrigger]


@dataclass(frozen=True, slots=True)
class Migration:
    """An instance migration: running instances of the versions `from_` names move to this version, their steps mapped
    (`steps`: old id -> new id, each with where the new id is written; a step whose id both versions have maps to itself)."""

    loc: Loc
    from_: str = "any"  # "any", or a version range of the pack the process is in (e.g. "1.0.0", ">=1.0,<1.1")
    from_loc: Loc | None = None
    steps: tuple[tuple[str, str, Loc], ...] = ()


@dataclass(frozen=True, slots=True)
class ProjectSpec:
    title: Template
    loc: Loc
    manager: Party | None = None


@dataclass(frozen=True, slots=True)
class Process:
    name: str
    loc: Loc
    pack: str
    label: str
    steps: tuple[Step, ...]
    description: str = ""
    entity: str | None = None
    entity_loc: Loc | None = None
    calendar: str | None = None
    calendar_loc: Loc | None = None
    inputs: tuple[Field, ...] = ()
    triggers: tuple[Trigger, ...] = ()
    project: ProjectSpec | None = None
    fallback: Party | None = None  # who gets a task whose step names nobody who may hold it (a step's own fallback wins)
    migrate: Migration | None = None  # moves running instances of an earlier version to this one (none: they stay)
    kind: str = field(default="process", init=False)


# -- people and time ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    loc: Loc
    pack: str
    label: str
    permissions: tuple[str, ...]
    description: str = ""
    kind: str = field(default="role", init=False)


@dataclass(frozen=True, slots=True)
class GroupDef:
    """A team of users (sales, support) that tasks can be assigned to."""

    name: str
    loc: Loc
    pack: str
    label: str
    roles: tuple[tuple[str, Loc], ...] = ()
    calendar: str | None = None
    description: str = ""
    calendar_loc: Loc | None = None
    managers: str = "take_turns"  # take_turns: managers are handed tasks in turn with the members; skip: never by turns
    managers_loc: Loc | None = None
    kind: str = field(default="group", init=False)


@dataclass(frozen=True, slots=True)
class WorkingPeriod:
    weekday: int  # Monday = 0
    start_minute: int
    end_minute: int


@dataclass(frozen=True, slots=True)
class Calendar:
    name: str
    loc: Loc
    pack: str
    label: str
    timezone: str
    working_hours: tuple[WorkingPeriod, ...]
    country: str | None = None
    subdivision: str | None = None
    dates: tuple[str, ...] = ()
    timezone_loc: Loc | None = None
    holidays_loc: Loc | None = None
    kind: str = field(default="calendar", init=False)


Definition = Union[Entity, Form, Process, Role, GroupDef, Calendar, Report, Dashboard]


@dataclass(frozen=True, slots=True)
class Translation:
    """What definitions are called in one language (a `kind: labels` document, engine.labels): entries by key (see
    `labels.Key`), and where each named thing is written."""

    locale: str
    pack: str
    loc: Loc
    language: str = ""
    entries: Mapping[tuple[str, ...], str] = field(default_factory=lambda: MappingProxyType({}))
    #: the key of every named thing the document translates (an entity, a field, a choice...) and where it is written
    names: Mapping[tuple[str, ...], Loc] = field(default_factory=lambda: MappingProxyType({}), compare=False)

    @property
    def title(self) -> str:
        """The language's own name, for the language picker."""
        return self.language or self.locale


@dataclass(frozen=True, slots=True)
class Overlay:
    """Changes, by a pack, to a definition of a pack it extends. Operations stay raw-but-located."""

    name: str
    pack: str
    target_kind: str
    target_name: str
    loc: Loc
    target_loc: Loc
    ops: tuple[tuple[str, Any, Loc], ...]  # (operation, typed payload, where)


@dataclass(frozen=True, slots=True)
class OverlayChange:
    """One thing an overlay changed: `item` ('field:beds', 'field:phone:label', 'step:qualify:due', 'set:label',
    'step:qualify:after' for a step inserted after qualify) of `target` ('process/lead_follow_up'), by operation `op`."""

    target: str
    item: str
    op: str
    pack: str
    overlay: str
    loc: Loc


@dataclass(frozen=True, slots=True)
class Model:
    """All definitions after overlays: the input of the compiler."""

    packs: tuple[Pack, ...]
    entities: dict[str, Entity]
    forms: dict[str, Form]
    processes: dict[str, Process]
    roles: dict[str, Role]
    groups: dict[str, GroupDef]
    calendars: dict[str, Calendar]
    changes: tuple[OverlayChange, ...] = ()  # what each overlay changed, in the order applied (base packs' overlays first)
    reports: Mapping[str, Report] = field(default_factory=lambda: MappingProxyType({}))
    dashboards: Mapping[str, Dashboard] = field(default_factory=lambda: MappingProxyType({}))
    #: the packs' label translations by locale, merged (engine.labels): the model reads as defined; `labels.translate` gives it in a language
    translations: Mapping[str, Translation] = field(default_factory=lambda: MappingProxyType({}))
    locale: str = ""  # the language its labels are in: "" as written, else the translation `labels.translate` gave it

    def __hash__(self) -> int:  # dict fields: identity hash is enough
        return id(self)

    @property
    def webhooks(self) -> tuple[Webhook, ...]:
        """Every pack's webhook receivers, base packs first (a client pack adds its own)."""
        return tuple(w for p in self.packs for w in p.webhooks)
