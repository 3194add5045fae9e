"""The 3-way merge of an upgrade: the old version of a base pack, its new version, and what the client's overlays change.

Overlays are re-applied to the new base by the loader, so whatever they change that the new base left alone carries
over as it is. What cannot carry over is a conflict, reported with both places before anything changes:
- an overlay changes something the new base removed (a field, a step, a link, the definition itself), or inserts a
  step after one the new base removed;
- the overlay and the new base both change the same option (a step's `due`, a field's `label`, a `set:` value);
- the overlay adds a field, step, group or link the new base now adds too.
A field the new base renamed with `renamed_from` is followed through: the overlay's change applies to the new name.
Anything else that keeps the new set of packs from loading is a conflict at the problem's own place.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from engine.build import humanise
from engine.errors import Loc, Problem
from engine.model import Model, OverlayChange, ParallelStep

from .changes import plain, shown, walk_steps


@dataclass(frozen=True)
class Conflict:
    """Something a client changes that the new base changes too, or takes away."""

    what: str          # "option due of step qualify of process lead_follow_up"
    base: str          # "crm 1.1.0 changes it from 2 business days to 3 business days"
    base_loc: Loc | None  # where the new base says so; for a removal, where the old base had it
    client: str        # "acme sets it to 1 business day"
    client_loc: Loc | None
    removed: bool = False

    def lines(self, where: Callable[[Loc | None], str] = str) -> list[str]:
        """The conflict in words, each side with its place: 'crm 1.1.0 removes it (it was at crm-1.0.0/processes/x.yaml:34:5)'."""
        out = [f"{self.what}:"]
        if self.base:
            place = f" ({'it was at ' if self.removed else ''}{where(self.base_loc)})" if self.base_loc else ""
            out.append(f"    {self.base}{place}")
        if self.client:
            out.append(f"    {self.client}" + (f" ({where(self.client_loc)})" if self.client_loc else ""))
        return out


@dataclass(frozen=True)
class Carried:
    """A client's change that carries over to the new base (`note` says how, when it is not as written)."""

    change: OverlayChange
    note: str = ""


_LABEL = {"entity": "entity", "form": "form", "process": "process", "role": "role", "group": "group", "calendar": "calendar"}


class _Side:
    """One version of the base, asked about the things overlays touch."""

    def __init__(self, model: Model):
        self.model = model

    def definition(self, target: str) -> Any:
        kind, name = target.split("/", 1)
        table = {"entity": self.model.entities, "form": self.model.forms, "process": self.model.processes, "role": self.model.roles,
                 "group": self.model.groups, "calendar": self.model.calendars}[kind]
        return table.get(name)

    def fields(self, target: str) -> dict[str, Any]:
        d = self.definition(target)
        if d is None:
            return {}
        return {f.name: f for f in (d.all_fields() if hasattr(d, "all_fields") else getattr(d, "fields", ()))}

    def steps(self, target: str) -> dict[str, Any]:
        d = self.definition(target)
        return {s.id: s for s in walk_steps(d.steps)} if d is not None and hasattr(d, "steps") else {}

    def links(self, target: str) -> dict[str, Any]:
        d = self.definition(target)
        return {link.name: link for link in getattr(d, "links", ())} if d is not None else {}

    def groups(self, target: str) -> dict[str, Any]:
        d = self.definition(target)
        return {g.name: g for g in getattr(d, "groups", ())} if d is not None else {}


def _loc_of(value: Any, fallback: Loc | None) -> Loc | None:
    loc = getattr(value, "loc", None)
    return loc if isinstance(loc, Loc) and loc.line else fallback


def merge(old: Model, new: Model, client: Model, changes: Iterable[OverlayChange], names: Mapping[str, str]
          ) -> tuple[list[Conflict], list[Carried]]:
    """Conflicts of the client's `changes` with the move from the base packs `old` to `new`, and what carries over.
    `client` is the installation as it was (`old` with the client's packs): what the client's changes made of it;
    `names` says each base pack's new version in words ({'crm': 'crm 1.1.0'})."""
    a, b, z = _Side(old), _Side(new), _Side(client)
    conflicts: list[Conflict] = []
    carried: list[Carried] = []
    for c in changes:
        defined = a.definition(c.target)
        found = _one(a, b, z, c, names.get(getattr(defined, "pack", ""), "the new version"))
        if isinstance(found, Conflict):
            conflicts.append(found)
        else:
            carried.append(found)
    return conflicts, carried


def _one(a: _Side, b: _Side, z: _Side, c: OverlayChange, new_name: str) -> Conflict | Carried:
    kind, name = c.target.split("/", 1)
    target = f"{_LABEL[kind]} {name}"
    by = c.pack
    before, after = a.definition(c.target), b.definition(c.target)
    if before is None:
        return Carried(c)  # not the base's: a client pack's own definition, which the upgrade does not touch
    if after is None:
        return Conflict(target, f"{new_name} removes it", before.loc, f"{by} changes it", c.loc, removed=True)
    part, _, rest = c.item.partition(":")
    if part == "set":
        x, y = getattr(before, rest, None), getattr(after, rest, None)
        if plain(x) != plain(y):
            return Conflict(f"{rest} of {target}", f"{new_name} changes it from {shown(x)} to {shown(y)}", _loc_of(y, after.loc),
                            f"{by} sets it to {shown(getattr(z.definition(c.target), rest, None))}", c.loc)
        return Carried(c)
    if part == "field":
        return _field(a, b, z, c, target, by, new_name)
    if part == "step":
        return _step(a, b, z, c, target, by, new_name)
    if part in ("link", "group"):
        sub = rest
        have_a = (a.links if part == "link" else a.groups)(c.target)
        have_b = (b.links if part == "link" else b.groups)(c.target)
        if c.op.startswith("add") and sub in have_b and sub not in have_a:
            return Conflict(f"{part} {sub} of {target}", f"{new_name} adds a {part} '{sub}' too", have_b[sub].loc, f"{by} adds it", c.loc)
        if not c.op.startswith("add") and sub in have_a and sub not in have_b:
            return Conflict(f"{part} {sub} of {target}", f"{new_name} removes it", have_a[sub].loc,
                            f"{by} {c.op.split('_')[0]}s it", c.loc, removed=True)
        return Carried(c)
    if part == "record_fields":
        x, y = getattr(before.record_fields, rest, None), getattr(after.record_fields, rest, None)
        if plain(x) != plain(y):
            return Conflict(f"record_fields {rest} of {target}", f"{new_name} changes it from {shown(x)} to {shown(y)}", after.loc,
                            f"{by} sets it", c.loc)
    return Carried(c)


def _field(a: _Side, b: _Side, z: _Side, c: OverlayChange, target: str, by: str, new_name: str) -> Conflict | Carried:
    fname, _, option = c.item.split(":", 1)[1].partition(":")
    old_fields, new_fields = a.fields(c.target), b.fields(c.target)
    if c.op in ("add_fields", "add_group_fields", "add_groups"):
        if fname in new_fields and fname not in old_fields:
            return Conflict(f"field {fname} of {target}", f"{new_name} adds a field '{fname}' too", new_fields[fname].loc, f"{by} adds it", c.loc)
        return Carried(c)
    if fname not in old_fields:
        return Carried(c)  # a field a client pack added: the base has nothing to say about it
    renamed = next((f for f in new_fields.values() if f.renamed_from == fname and fname not in new_fields), None)
    if fname not in new_fields and renamed is None:
        return Conflict(f"field {fname} of {target}", f"{new_name} removes it", old_fields[fname].loc,
                        f"{by} {'changes its ' + option if option else _verb(c.op) + ' it'}", c.loc, removed=True)
    now = new_fields.get(fname) or renamed
    if c.op == "replace_fields" and renamed is not None:
        return Conflict(f"field {fname} of {target}", f"{new_name} renames it to {renamed.name}", renamed.loc,
                        f"{by} replaces it under its old name: replace {renamed.name} instead", c.loc)
    if option:
        x, y = getattr(old_fields[fname], option, None), getattr(now, option, None)
        derived = option == "label" and renamed is not None and (x, y) == (humanise(fname), humanise(renamed.name))
        if plain(x) != plain(y) and not derived:  # a label made from the name follows the rename: the base set none
            mine = z.fields(c.target).get(fname)
            return Conflict(f"option {option} of field {fname} of {target}", f"{new_name} changes it from {shown(x)} to {shown(y)}", now.loc,
                            f"{by} sets it to {shown(getattr(mine, option, None))}", c.loc)
    elif c.op == "replace_fields" and plain(old_fields[fname]) != plain(now):
        return Conflict(f"field {fname} of {target}", f"{new_name} changes it", now.loc, f"{by} replaces it", c.loc)
    if renamed is not None:
        return Carried(c, f"follows its rename to {renamed.name}")
    return Carried(c)


def _step(a: _Side, b: _Side, z: _Side, c: OverlayChange, target: str, by: str, new_name: str) -> Conflict | Carried:
    parts = c.item.split(":")
    sid = parts[1]
    option = parts[2] if len(parts) > 2 else ""
    old_steps, new_steps = a.steps(c.target), b.steps(c.target)
    if c.op == "insert_steps" and option in ("after", "before"):
        if sid in old_steps and sid not in new_steps:
            return Conflict(f"step {sid} of {target}", f"{new_name} removes it", old_steps[sid].loc,
                            f"{by} inserts a step {option} it", c.loc, removed=True)
        return Carried(c)
    if c.op == "insert_steps":
        if sid in new_steps and sid not in old_steps:
            return Conflict(f"step {sid} of {target}", f"{new_name} adds a step '{sid}' too", new_steps[sid].loc, f"{by} inserts it", c.loc)
        return Carried(c)
    if sid not in old_steps:
        return Carried(c)  # a step a client pack inserted
    if sid not in new_steps:
        return Conflict(f"step {sid} of {target}", f"{new_name} removes it", old_steps[sid].loc,
                        f"{by} {'changes its ' + option if option else _verb(c.op) + ' it'}", c.loc, removed=True)
    x_step, y_step = old_steps[sid], new_steps[sid]
    if option:
        if isinstance(y_step, ParallelStep) or isinstance(x_step, ParallelStep):
            return Carried(c)
        x, y = getattr(x_step, option, None), getattr(y_step, option, None)
        if plain(x) != plain(y):
            mine = z.steps(c.target).get(sid)
            return Conflict(f"option {option} of step {sid} of {target}", f"{new_name} changes it from {shown(x)} to {shown(y)}",
                            _loc_of(y, y_step.loc), f"{by} sets it to {shown(getattr(mine, option, None))}", c.loc)
        return Carried(c)
    if c.op == "replace_steps" and plain(x_step) != plain(y_step):
        return Conflict(f"step {sid} of {target}", f"{new_name} changes it", y_step.loc, f"{by} replaces it", c.loc)
    return Carried(c)


def _verb(op: str) -> str:
    return {"replace_fields": "replaces", "remove_fields": "removes", "replace_steps": "replaces", "remove_steps": "removes",
            "change_fields": "changes", "change_steps": "changes"}.get(op, "changes")


def unexplained(problems: Iterable[Problem], conflicts: list[Conflict], where: Callable[[Loc | None], str] = str) -> list[Conflict]:
    """The new set of packs' load problems that no conflict already reports (one at the same client place)."""
    places = {where(c.client_loc).rsplit(":", 1)[0] for c in conflicts if c.client_loc}  # file:line
    return [Conflict("the new set of packs does not load", "", None, f"{p.message} [{p.code}]", p.loc) for p in problems
            if where(p.loc).rsplit(":", 1)[0] not in places]


def words(c: OverlayChange) -> str:
    """What a change is about, in words: 'the label of field phone of entity company', 'a step after qualify of process x'."""
    kind, name = c.target.split("/", 1)
    parts = c.item.split(":")
    of = f"{kind} {name}"
    if parts[0] == "set":
        return f"the {parts[1]} of {of}"
    if parts[0] == "step" and len(parts) == 3 and parts[2] in ("after", "before"):
        return f"a step inserted {parts[2]} {parts[1]} in {of}"
    if len(parts) == 3:
        return f"the {parts[2]} of {parts[0]} {parts[1]} of {of}"
    if len(parts) == 2:
        return f"{parts[0].replace('_', ' ')} {parts[1]} of {of}"
    return f"{c.item} of {of}"
