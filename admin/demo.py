"""Demo data for `tailor run --demo`: each active pack's `demo/*.yaml` (users, groups, records, contact history,
process starts), checked all at once and then loaded in pack order (bases first), each pack's once.

A pack's demo is loaded once per version (a marker `demo:NAME:VERSION` in `idempotency_keys`, holding the records it
made by their keys). A later version of a pack loads what its demo adds: users that exist already, and records whose
key an earlier version made, are not made again. Names a demo uses (users, roles, groups, entities, fields, forms,
processes, record keys) are checked against the model and against what the earlier packs' demos made before anything
is written: every problem at its `file:line:column`, and nothing is loaded while there is one.

The format (`docs/packs.md`):

    users:     [{username, name, email, password, roles, company: KEY, person: KEY}]
    groups:    {GROUP: {members: [USERNAME], managers: [USERNAME]}}
    records:   {ENTITY: [{key: KEY, FIELD: VALUE}]}     # a user field names a username, a reference field a key
    contacts:  [{record: KEY, summary, form: FORM, by: USERNAME, days: N}]   # contact history, N days ago
    processes: [{process, record: KEY, started_by: USERNAME}]
    past:      the CRM pack's pipeline history (admin/demohistory.py), in the crm pack's demo only
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher

from engine.compiler import CompiledModel
from engine.errors import DefinitionError, Problem
from engine.model import Model
from engine.packs import DEMO
from engine.source import Document, read_file
from runtime import outbox, records
from runtime.history import add_history
from runtime.records import RecordInvalid
from runtime.schema import group_members, idempotency_keys, users

from . import demohistory

SCOPE = "demo"
SECTIONS = ("users", "groups", "records", "contacts", "processes", "past")
# Packs whose demo has a past written by code: {pack: (check, load)}. Only the CRM pack's pipeline, for its reports.
PASTS: dict[str, tuple[Callable[..., list[Problem]], Callable[..., None]]] = {"crm": (demohistory.check_past, demohistory.load_past)}


class DemoError(DefinitionError):
    """A demo file has problems; all of them are in `problems`, and nothing was loaded."""


@dataclass(frozen=True)
class PackDemo:
    """The demo files of one pack, read with the place of every value."""

    pack: str
    version: str
    docs: tuple[Document, ...]

    @property
    def marker(self) -> str:
        return f"{SCOPE}:{self.pack}:{self.version}"


@dataclass
class Known:
    """What the demos loaded before (and those checked so far) made: usernames, and records by key."""

    users: set[str] = field(default_factory=set)
    keys: dict[str, tuple[str, int | None, str]] = field(default_factory=dict)  # key: (entity, id, pack)
    loaded: set[str] = field(default_factory=set)  # markers
    packs: set[str] = field(default_factory=set)   # packs some version of whose demo is loaded


@dataclass(frozen=True)
class Loaded:
    packs: list[str]   # 'crm 1.0.0', … the demos loaded now
    starts: list[str]  # workflow ids of the processes they enqueued


# -- reading ------------------------------------------------------------------------------------------
def read(model: Model) -> tuple[list[PackDemo], list[Problem]]:
    """The demo of every pack of the model that has one, in pack order; problems of files that are not YAML."""
    out, problems = [], []
    for pack in model.packs:
        folder = Path(pack.root) / DEMO
        docs: list[Document] = []
        for path in sorted(folder.glob("*.y*ml")) if folder.is_dir() else []:
            found, errs = read_file(path, str(Path(pack.root, DEMO, path.name)))
            problems += errs
            for doc in found:
                if doc.data is None:
                    continue
                if not isinstance(doc.data, dict):
                    problems.append(Problem(doc.loc(), "demo.shape", f"a demo file is a mapping of {', '.join(SECTIONS)}"))
                    continue
                docs.append(doc)
        if docs:
            out.append(PackDemo(pack.name, pack.version, tuple(docs)))
    return out, problems


# -- checking (pure) ----------------------------------------------------------------------------------
def _list(doc: Document, pointer: str, value: Any, what: str, problems: list[Problem]) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(Problem(doc.loc(pointer), "demo.shape", f"{what}: expected a list, found {_what(value)}"))
        return []
    return value


def _what(value: Any) -> str:
    return "a mapping" if isinstance(value, dict) else "text" if isinstance(value, str) else "a number" \
        if isinstance(value, (int, float)) and not isinstance(value, bool) else f"'{value}'"


def _items(doc: Document, pointer: str, value: Any, what: str, problems: list[Problem]):
    """(pointer, item) of a list of mappings; other items are problems."""
    for i, item in enumerate(_list(doc, pointer, value, what, problems)):
        if isinstance(item, dict):
            yield f"{pointer}/{i}", item
        else:
            problems.append(Problem(doc.loc(f"{pointer}/{i}"), "demo.shape", f"each of {what} is a mapping"))


def _need(doc: Document, pointer: str, item: dict, keys: tuple[str, ...], problems: list[Problem]) -> bool:
    missing = [k for k in keys if item.get(k) in (None, "")]
    for k in missing:
        problems.append(Problem(doc.loc(pointer), "demo.missing", f"'{k}' is missing"))
    return not missing


def _has(names, name: Any) -> bool:
    return isinstance(name, str) and name in names


def _unknown(kind: str, name: Any, known) -> str:
    return f"no {kind} '{name}' (known: {', '.join(sorted(known)) or 'none'})"


class _Checker:
    def __init__(self, demo: PackDemo, model: Model, known: Known):
        self.demo, self.model, self.known = demo, model, known
        self.problems: list[Problem] = []
        self.customers: list[tuple[Document, str, dict]] = []
        self.seen: dict[str, Any] = {}  # the keys of this demo's records, where each is first given

    def problem(self, doc: Document, pointer: str, code: str, message: str, *, key: bool = False) -> None:
        """A problem at the value at `pointer` (at its key, for a name that is a key: an entity, a field, a group)."""
        self.problems.append(Problem(doc.loc(pointer, key=key), code, message, pointer))

    def user(self, doc: Document, pointer: str, name: Any) -> None:
        if not _has(self.known.users, name):
            self.problem(doc, pointer, "demo.user", _unknown("user", name, self.known.users) + " (users come from this or an earlier pack's demo)")

    def key(self, doc: Document, pointer: str, key: Any, entity: str | None = None) -> None:
        found = self.known.keys.get(key) if isinstance(key, str) else None
        if found is None:
            keys = sorted(k for k, (e, _, _) in self.known.keys.items() if entity in (None, e))
            what = f"{entity} record" if entity else "record"
            self.problem(doc, pointer, "demo.key", f"no {what} with key '{key}' made before this (keys: {', '.join(keys) or 'none'})")
        elif entity and found[0] != entity:
            self.problem(doc, pointer, "demo.key", f"'{key}' is a {found[0]}, not a {entity}")

    def run(self) -> list[Problem]:
        for doc in self.demo.docs:
            for name in doc.data:
                if name not in SECTIONS:
                    self.problem(doc, f"/{name}", "demo.section", f"unknown section '{name}' (expected {', '.join(SECTIONS)})", key=True)
        for part in ("users", "groups", "records", "past", "contacts", "processes"):  # in the order they are loaded
            for doc in self.demo.docs:
                if part in doc.data:
                    getattr(self, part)(doc, f"/{part}", doc.data[part])
            if part == "records":  # a customer's person: their company, and their own record in it
                for doc, p, u in self.customers:
                    for key in ("company", "person"):
                        if u.get(key) is not None:
                            self.key(doc, f"{p}/{key}", u[key], key)
        return self.problems

    def users(self, doc: Document, pointer: str, value: Any) -> None:
        for p, u in _items(doc, pointer, value, "users", self.problems):
            if not _need(doc, p, u, ("username", "roles"), self.problems):
                continue
            if not isinstance(u["username"], str):
                self.problem(doc, f"{p}/username", "demo.shape", "a username is text")
                continue
            for name in ("name", "email", "password", "time_zone"):
                if u.get(name) is not None and not isinstance(u[name], str):
                    self.problem(doc, f"{p}/{name}", "demo.shape", f"{name}: expected text, found {_what(u[name])}")
            for i, role in enumerate(_list(doc, f"{p}/roles", u["roles"], "roles", self.problems)):
                if not _has(self.model.roles, role):
                    self.problem(doc, f"{p}/roles/{i}", "demo.role", _unknown("role", role, self.model.roles))
            self.known.users.add(str(u["username"]))
            self.customers.append((doc, p, u))

    def groups(self, doc: Document, pointer: str, value: Any) -> None:
        if not isinstance(value, dict):
            self.problem(doc, pointer, "demo.shape", "groups is a mapping of group names to their members and managers")
            return
        for name, spec in value.items():
            p = f"{pointer}/{name}"
            if not _has(self.model.groups, name):
                self.problem(doc, p, "demo.group", _unknown("group", name, self.model.groups), key=True)
            if not isinstance(spec, dict):
                self.problem(doc, p, "demo.shape", "a group is {members: [...], managers: [...]}")
                continue
            for part in spec:
                if part not in ("members", "managers"):
                    self.problem(doc, f"{p}/{part}", "demo.section", f"unknown key '{part}' (expected members, managers)", key=True)
            for part in ("members", "managers"):
                for i, who in enumerate(_list(doc, f"{p}/{part}", spec.get(part), part, self.problems)):
                    self.user(doc, f"{p}/{part}/{i}", who)

    def records(self, doc: Document, pointer: str, value: Any) -> None:
        if not isinstance(value, dict):
            self.problem(doc, pointer, "demo.shape", "records is a mapping of entity names to lists of records")
            return
        for entity, rows in value.items():
            ent = self.model.entities.get(entity)
            if ent is None:
                self.problem(doc, f"{pointer}/{entity}", "demo.entity", _unknown("entity", entity, self.model.entities), key=True)
                continue
            fields = {f.name: f for f in ent.all_fields()}
            for p, row in _items(doc, f"{pointer}/{entity}", rows, f"the {entity} records", self.problems):
                if not _need(doc, p, row, ("key",), self.problems):
                    continue
                for name, v in row.items():
                    f = fields.get(name)
                    if name == "key":
                        continue
                    if f is None:
                        self.problem(doc, f"{p}/{name}", "demo.field", f"{entity} has no field '{name}' (fields: {', '.join(fields)})", key=True)
                    elif f.type == "user":
                        self.user(doc, f"{p}/{name}", v)
                    elif f.type == "reference":
                        self.key(doc, f"{p}/{name}", v, f.entity)
                key, before = str(row["key"]), self.known.keys.get(str(row["key"]))
                if key in self.seen:
                    self.problem(doc, f"{p}/key", "demo.duplicate", f"the key '{key}' is given twice (first at {self.seen[key]})")
                elif before is not None and before[2] != self.demo.pack:
                    self.problem(doc, f"{p}/key", "demo.duplicate", f"the key '{key}' is a record of {before[2]}'s demo already")
                elif before is None:
                    self.known.keys[key] = (entity, None, self.demo.pack)
                self.seen.setdefault(key, doc.loc(f"{p}/key"))

    def contacts(self, doc: Document, pointer: str, value: Any) -> None:
        for p, c in _items(doc, pointer, value, "contacts", self.problems):
            if not _need(doc, p, c, ("record", "summary", "by"), self.problems):
                continue
            self.key(doc, f"{p}/record", c["record"])
            self.user(doc, f"{p}/by", c["by"])
            if c.get("form") is not None and not _has(self.model.forms, c["form"]):
                self.problem(doc, f"{p}/form", "demo.form", _unknown("form", c["form"], self.model.forms))
            if not isinstance(c.get("days", 0), int) or c.get("days", 0) < 0:
                self.problem(doc, f"{p}/days", "demo.days", "days is how many days ago, a whole number from 0")

    def processes(self, doc: Document, pointer: str, value: Any) -> None:
        for p, s in _items(doc, pointer, value, "processes", self.problems):
            if not _need(doc, p, s, ("process", "record", "started_by"), self.problems):
                continue
            if not _has(self.model.processes, s["process"]):
                self.problem(doc, f"{p}/process", "demo.process", _unknown("process", s["process"], self.model.processes))
            self.key(doc, f"{p}/record", s["record"])
            self.user(doc, f"{p}/started_by", s["started_by"])

    def past(self, doc: Document, pointer: str, value: Any) -> None:
        if self.demo.pack not in PASTS:
            self.problem(doc, pointer, "demo.past", f"only the demo of {', '.join(sorted(PASTS))} has a past; write what happened "
                                                    f"as records and contacts")
            return
        self.problems += PASTS[self.demo.pack][0](doc, pointer, value, self.model, self.known)


def check(demos: list[PackDemo], model: Model, known: Known) -> list[Problem]:
    """Every problem of the demos not loaded yet, in pack order (a pack's demo may use what earlier packs' demos made)."""
    problems: list[Problem] = []
    for demo in demos:
        if demo.marker not in known.loaded:
            problems += _Checker(demo, model, known).run()
    return problems


# -- loading ------------------------------------------------------------------------------------------
def _known(conn: sa.Connection) -> Known:
    """What is in the database already: users, and the records earlier demos made (from their markers)."""
    known = Known(users=set(conn.execute(sa.select(users.c.username)).scalars()))
    for key, result in conn.execute(sa.select(idempotency_keys.c.key, idempotency_keys.c.result).where(idempotency_keys.c.scope == SCOPE)):
        if key == "demo:crm":  # the marker of the one demo there was before demos came per pack
            key, result = "demo:crm:1.0.0", {"pack": "crm", "keys": {}}
        known.loaded.add(key)
        known.packs.add(result.get("pack", ""))
        for k, (entity, rid) in (result.get("keys") or {}).items():
            known.keys[k] = (entity, rid, result.get("pack", ""))
    return known


class _Writer:
    def __init__(self, conn: sa.Connection, compiled: CompiledModel, demo: PackDemo, known: Known, now: dt.datetime):
        self.conn, self.compiled, self.demo, self.known, self.now = conn, compiled, demo, known, now
        self.ids = dict(conn.execute(sa.select(users.c.username, users.c.id)).all())
        self.made: dict[str, tuple[str, int]] = {}  # the records this load made
        self.starts: list[str] = []
        self.problems: list[Problem] = []
        self.hasher = PasswordHasher()

    def key_id(self, key: str) -> int | None:
        return (self.made.get(key) or self.known.keys.get(key) or (None, None))[1]

    def users(self, doc: Document, u: dict) -> None:
        if u["username"] in self.ids:
            return  # an earlier pack's demo (or an earlier version of this one) made them
        self.ids[u["username"]] = self.conn.execute(users.insert().values(
            username=u["username"], name=u.get("name") or str(u["username"]).capitalize(), email=u.get("email") or f"{u['username']}@example.com",
            password_hash=self.hasher.hash(str(u["password"])) if u.get("password") else None, roles=list(u["roles"]),
            time_zone=u.get("time_zone"), created_at=self.now)).inserted_primary_key[0]

    def groups(self, group: str, spec: dict) -> None:
        managers = set(spec.get("managers") or [])
        for name in dict.fromkeys([*(spec.get("members") or []), *managers]):
            uid = self.ids[name]
            row = self.conn.execute(sa.select(group_members.c.manager).where(group_members.c.group_name == group,
                                                                            group_members.c.user_id == uid)).first()
            if row is None:
                self.conn.execute(group_members.insert().values(group_name=group, user_id=uid, manager=name in managers))
            elif name in managers and not row.manager:
                self.conn.execute(group_members.update().where(group_members.c.group_name == group, group_members.c.user_id == uid)
                                  .values(manager=True))

    def record(self, doc: Document, pointer: str, entity: str, row: dict) -> None:
        key = str(row["key"])
        if key in self.known.keys and self.known.keys[key][1] is not None:
            return  # an earlier version of this pack's demo made it
        fields = {f.name: f for f in self.compiled.model.entities[entity].all_fields()}
        values: dict[str, Any] = {}
        for name, value in row.items():
            if name == "key":
                continue
            f = fields[name]
            if f.type == "user":
                value = self.ids[value]
            elif f.type == "reference":
                value = self.key_id(value)
                if value is None:
                    return  # the record it names could not be made: that one's problem is reported
            values[name] = value
        try:
            rec = records.create_record(self.conn, self.compiled, entity, values, self.ids.get("admin"), history="Created by the demo data")
        except RecordInvalid as exc:
            for name, message in exc.errors.items():
                at = f"{pointer}/{name}" if name in row else pointer
                self.problems.append(Problem(doc.loc(at), "demo.value", f"{entity} '{key}': {name}: {message}", at))
            return
        self.made[key] = (entity, rec.id)
        self.starts += rec.starts  # what the records' triggers start

    def customers(self, u: dict) -> None:
        if u.get("company") and u["username"] in self.ids:
            self.conn.execute(users.update().where(users.c.id == self.ids[u["username"]]).values(
                company_id=self.key_id(u["company"]), person_id=self.key_id(u["person"]) if u.get("person") else None))

    def contact(self, c: dict) -> None:
        if c["record"] not in self.made:
            return  # loaded with the record by an earlier version of this demo
        entity, rid = self.made[c["record"]]
        form = c.get("form")
        morning = self.now.replace(hour=10, minute=0, second=0, microsecond=0)
        add_history(self.conn, entity, rid, "submission" if form else "note", c["summary"], {"form": form} if form else {},
                    self.ids[c["by"]], form=form, at=morning - dt.timedelta(days=c.get("days", 0)))

    def process(self, s: dict) -> None:
        entity, rid = self.made.get(s["record"]) or self.known.keys[s["record"]][:2]
        self.starts.append(outbox.enqueue(self.conn, s["process"], f"demo:{s['process']}:{s['record']}", entity=entity, record_id=rid,
                                          started_by=self.ids[s["started_by"]]))

    def run(self) -> None:
        docs = self.demo.docs
        sections = lambda name: [(d, d.data[name]) for d in docs if d.data.get(name)]  # checked: of the right shape, or empty
        for doc, rows in sections("users"):
            for u in rows:
                self.users(doc, u)
        for doc, groups in sections("groups"):
            for group, spec in groups.items():
                self.groups(group, spec or {})
        for doc, by_entity in sections("records"):
            for entity, rows in by_entity.items():
                for i, row in enumerate(rows or []):
                    self.record(doc, f"/records/{entity}/{i}", entity, row)
        for doc, rows in sections("users"):
            for u in rows:
                self.customers(u)
        if self.demo.pack not in self.known.packs:  # the past happened once, whichever version first loaded it
            keys = {**{k: (e, i) for k, (e, i, _) in self.known.keys.items() if i is not None}, **self.made}
            for doc, past in sections("past"):
                try:
                    PASTS[self.demo.pack][1](self.conn, self.compiled, past, self.ids, keys, self.now)
                except RecordInvalid as exc:
                    self.problems.append(Problem(doc.loc("/past"), "demo.value", f"the past: {exc}", "/past"))
                self.made.update({k: v for k, v in keys.items() if k not in self.known.keys})
        for doc, rows in sections("contacts"):
            for c in rows:
                self.contact(c)
        for doc, rows in sections("processes"):
            for s in rows:
                self.process(s)


def load_demo(engine: sa.Engine, compiled: CompiledModel, *, demos: list[PackDemo] | None = None) -> Loaded:
    """Load the demo of every pack of the model not loaded yet (at this version), in pack order, in one transaction.

    Raises `DemoError` with every problem (nothing loaded) if a demo file does not fit the model."""
    if demos is None:
        demos, problems = read(compiled.model)
        if problems:
            raise DemoError(problems)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        known = _known(conn)
        problems = check(demos, compiled.model, _copy(known))
        if problems:
            raise DemoError(problems)
        loaded, starts = [], []
        for demo in demos:
            if demo.marker in known.loaded:
                continue
            writer = _Writer(conn, compiled, demo, known, now)
            writer.run()
            if writer.problems:
                raise DemoError(writer.problems)  # the transaction goes back: nothing is loaded
            conn.execute(idempotency_keys.insert().values(key=demo.marker, scope=SCOPE, created_at=now, result={
                "pack": demo.pack, "version": demo.version, "processes": writer.starts,
                "keys": {k: list(v) for k, v in writer.made.items()}}))
            known.loaded.add(demo.marker)
            known.packs.add(demo.pack)
            known.users |= set(writer.ids)
            known.keys.update({k: (e, i, demo.pack) for k, (e, i) in writer.made.items()})
            loaded.append(f"{demo.pack} {demo.version}")
            starts += writer.starts
        return Loaded(loaded, starts)


def _copy(known: Known) -> Known:
    return Known(set(known.users), dict(known.keys), set(known.loaded), set(known.packs))

