"""What differs between two models, in words: `runtime.releases.summary` (definitions, fields and steps added or
removed, types changed), with renames said as renames and changed options said with their old and new values
('changed due of step proposal of process lead_follow_up: 5 business days from qualify → 4 business days from qualify').

Values are compared as written, never by where they are written: a definition moved down a file has not changed.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterator

from engine.errors import Loc
from engine.model import Choice, Due, Duration, Entity, Field, Model, ParallelStep, Party, Step, Template

_WHERE = ("loc", "locs", "form_loc", "entity_loc", "calendar_loc", "target_loc", "match_loc", "url_loc", "secret_loc", "pack", "kind")


def plain(value: Any) -> Any:
    """A value without its locations, comparable across files and versions."""
    if isinstance(value, Template):
        return value.source
    if isinstance(value, Duration):
        return (value.amount, value.unit)
    if isinstance(value, Party):
        return str(value)
    if isinstance(value, Loc):
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name not in _WHERE}
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def simple(value: Any) -> bool:
    """Whether `shown` can say a value in a few words (a nested definition, like an entity's pages, it cannot)."""
    if isinstance(value, (Template, Due, Duration, Party, Choice)) or value is None or isinstance(value, (str, int, float, bool)):
        return True
    return isinstance(value, (tuple, list))  # said as its entries, or as how many there are


def shown(value: Any) -> str:
    """A value as a consultant wrote it: '4 business days from qualify', 'group:sales', the template's text."""
    if value is None:
        return "nothing"
    if isinstance(value, Template):
        return f'"{" ".join(value.source.split())}"'
    if isinstance(value, Due):
        if value.duration is None:
            return "an invalid due"
        return value.duration.text + ("" if value.start == "start" else f" from {value.start}")
    if isinstance(value, Duration):
        return value.text
    if isinstance(value, Party):
        return str(value)
    if isinstance(value, Choice):
        return str(value.value)
    if isinstance(value, (tuple, list)):
        if value and all(isinstance(v, (Choice, str, int, Party, Duration)) for v in value):
            return "[" + ", ".join(shown(v) for v in value) + "]"
        return f"{len(value)} entr{'y' if len(value) == 1 else 'ies'}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return f"'{value}'"
    return str(value)


def walk_steps(steps: tuple[Step, ...]) -> Iterator[Step]:
    for s in steps:
        yield s
        if isinstance(s, ParallelStep):
            for _, branch in s.branches:
                yield from walk_steps(branch)


def entity_fields(entity: Entity) -> dict[str, Field]:
    return {f.name: f for f in entity.all_fields()}


def renames(old: Model, new: Model) -> dict[tuple[str, str], str]:
    """{(entity, old field name): new name} for the fields the new model declares `renamed_from`."""
    out = {}
    for name in set(old.entities) & set(new.entities):
        before = entity_fields(old.entities[name])
        for f in new.entities[name].all_fields():
            if f.renamed_from and f.renamed_from in before and f.name not in before:
                out[(name, f.renamed_from)] = f.name
    return out


def _options(kind: str, what: str, a: Any, b: Any, skip: tuple[str, ...] = ()) -> Iterator[str]:
    """'changed OPTION of WHAT: old → new' for each option (dataclass field) that differs."""
    for f in dataclasses.fields(a):
        if f.name in _WHERE or f.name in skip:
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if plain(x) != plain(y):
            yield f"changed {f.name} of {what}" + (f": {shown(x)} → {shown(y)}" if simple(x) and simple(y) else "")


def describe(old: Model, new: Model) -> list[str]:
    """Every change from `old` to `new`, in words, most important first."""
    from runtime.releases import summary

    moved = renames(old, new)
    gone = {f"added field {new_name} to {entity}" for (entity, _), new_name in moved.items()}
    gone |= {f"removed field {old_name} from {entity}" for (entity, old_name) in moved}
    lines = [line for line in summary(old, new) if line not in gone and not line.startswith("changed process ")]
    lines += [f"renamed field {old_name} of {entity} to {new_name} (its values are kept)" for (entity, old_name), new_name in sorted(moved.items())]
    for name in sorted(set(old.entities) & set(new.entities)):
        a, b = old.entities[name], new.entities[name]
        lines += _options("entity", f"entity {name}", a, b, skip=("fields", "groups", "links"))
        for kind, x, y in (("link", a.links, b.links), ("group", a.groups, b.groups)):
            before_parts, after_parts = {p.name: p for p in x}, {p.name: p for p in y}
            lines += [f"added {kind} {n} to {name}" for n in after_parts if n not in before_parts]
            lines += [f"removed {kind} {n} from {name}" for n in before_parts if n not in after_parts]
        before, after = entity_fields(a), entity_fields(b)
        for fname, f in after.items():
            was = before.get(f.renamed_from) if f.renamed_from and fname not in before else before.get(fname)
            if was is not None:
                lines += _options("field", f"field {fname} of {name}", was, f, skip=("name", "renamed_from", "type"))
    for name in sorted(set(old.forms) & set(new.forms)):
        a, b = old.forms[name], new.forms[name]
        lines += _options("form", f"form {name}", a, b, skip=("fields", "layout", "actions", "layout_given"))
        before = {f.name: f for f in a.fields}
        for f in b.fields:
            if f.name in before:
                lines += _options("field", f"field {f.name} of form {name}", before[f.name], f, skip=("name",))
        if plain(a.actions) != plain(b.actions):
            lines.append(f"changed what form {name} does when submitted")
    for name in sorted(set(old.processes) & set(new.processes)):
        a, b = old.processes[name], new.processes[name]
        lines += _options("process", f"process {name}", a, b, skip=("steps", "inputs", "triggers"))
        before = {s.id: s for s in walk_steps(a.steps)}
        for s in walk_steps(b.steps):
            if s.id in before and type(s) is type(before[s.id]):
                lines += _options("step", f"step {s.id} of process {name}", before[s.id], s, skip=("id", "branches"))
        order_a = [s.id for s in walk_steps(a.steps) if s.id in {x.id for x in walk_steps(b.steps)}]
        order_b = [s.id for s in walk_steps(b.steps) if s.id in before]
        if order_a != order_b:
            lines.append(f"changed the order of the steps of process {name}: {', '.join(order_b)}")
        if plain(a.triggers) != plain(b.triggers):
            lines.append(f"changed what starts process {name}")
    for kind, x, y in (("role", old.roles, new.roles), ("group", old.groups, new.groups), ("calendar", old.calendars, new.calendars)):
        for name in sorted(set(x) & set(y)):
            lines += _options(kind, f"{kind} {name}", x[name], y[name])
    return lines


@dataclass(frozen=True)
class Versions:
    """Two versions of a pack, each loaded with the packs it extends: what changed in words (empty when one does not
    load), and each side's problems."""

    words: list[str]
    problems: tuple[list[str], list[str]]


def versions(a, b, bases) -> Versions:
    """Load versions `a` and `b` (`archive.PackFiles`) of a pack, each on the packs it extends (`--base`, else the shipped
    ones), and say what changed between them."""
    import tempfile
    from pathlib import Path

    from engine.loader import load_model

    from .archive import materialise
    from .bases import stack

    models, problems = [], []
    with tempfile.TemporaryDirectory(prefix="tailor-diff-") as tmp:
        for i, side in enumerate((a, b)):
            folder = materialise(side, Path(tmp) / str(i) / side.name)
            model, found = load_model(stack([folder], bases))
            models.append(model)
            problems.append([f"{p.message} [{p.code}]" for p in found])
    words = describe(models[0], models[1]) if all(models) else []
    return Versions(words, (problems[0], problems[1]))
