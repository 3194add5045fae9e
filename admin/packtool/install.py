"""`tailor pack install` and `tailor pack upgrade`: a pack into an installation's configuration releases.

The new release is the active release's packs with this pack added (install) or put in place of its installed version
(upgrade), the installation's `local` pack kept. Before anything changes there is a plan: what changes in words, the
3-way merge of an upgraded base under the client's overlays (`merge`: what carries over, and every conflict with its
place on both sides), the database plan, and the running processes (they finish on the version they started with).
Applying it is `runtime.releases.switch_to`: compile, schema plan and activation in one transaction.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from engine.compiler import CompiledModel, compile_model
from engine.errors import DefinitionError, Loc, Problem
from engine.loader import load_model
from runtime import releases
from runtime.releases import LOCAL, Files

from . import PackError
from .archive import PackFiles, _manifest_of
from .changes import describe
from .merge import Carried, Conflict, merge, unexplained


@dataclass
class Plan:
    """What installing or upgrading a pack would do; nothing has changed while it is only a plan."""

    kind: str  # "install" or "upgrade"
    pack: PackFiles
    release_id: int  # the active release it starts from
    previous: str | None  # the installed version an upgrade replaces
    others: list[str]  # the packs it joins, as 'acme 1.0.0'
    files: Files
    packs: list[str]
    words: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # the pack itself does not load
    conflicts: list[Conflict] = field(default_factory=list)
    carried: list[Carried] = field(default_factory=list)
    schema: list[str] = field(default_factory=list)
    schema_refused: str | None = None
    running: list[releases.Running] = field(default_factory=list)
    places: dict[str, str] = field(default_factory=dict)  # folder loaded from -> how to show it
    loads: bool = False  # the new set of packs loads and compiles

    @property
    def ok(self) -> bool:
        return not self.problems and not self.conflicts and self.schema_refused is None

    def where(self, loc: Loc | None) -> str:
        """A place as the consultant can find it: the folder or archive they gave, or 'PACK-VERSION/path' of an installed pack."""
        if loc is None:
            return ""
        for folder, shown in self.places.items():
            if loc.file.startswith(folder + "/"):
                return str(Loc(shown + loc.file[len(folder):], loc.line, loc.column))
        return str(loc)


def _heads(files: Files) -> dict[str, dict]:
    """{folder: {name, version, extends}} of a release's packs."""
    return {folder: _manifest_of(pack_files, folder) for folder, pack_files in files.items()}


def _satisfies(version: str, rng: str) -> bool | None:
    try:
        return SpecifierSet(rng).contains(Version(version), prereleases=True)
    except (InvalidSpecifier, InvalidVersion):
        return None


def _check_ranges(pack: PackFiles, heads: dict[str, dict], replaced: str | None) -> None:
    """Refuse a pack whose bases the installation lacks or has at a version its range excludes, and an upgrade that
    another installed pack's range excludes."""
    have = {h["name"]: h for folder, h in heads.items() if folder != replaced}
    for base, rng in pack.extends.items():
        if base not in have:
            raise PackError(f"{pack.label} extends {base}, which this installation does not have (it has "
                            f"{', '.join(_label(h) for h in have.values()) or 'no packs'}): install {base} first")
        ok = _satisfies(have[base]["version"], rng)
        if ok is None:
            raise PackError(f"{pack.label} says it extends {base} '{rng}', which is not a version range (e.g. '>=1.0,<2')")
        if not ok:
            raise PackError(f"{pack.label} needs {base} {rng}, but this installation has {_label(have[base])}: "
                            f"upgrade {base} first, or use a version of {pack.name} made for {_label(have[base])}")
    for folder, h in heads.items():
        if folder == replaced or pack.name not in h["extends"]:
            continue
        ok = _satisfies(pack.version, h["extends"][pack.name])
        if ok is False:
            who = "the installation's local pack" if folder == LOCAL else f"{_label(h)} (installed)"
            raise PackError(f"{who} needs {pack.name} {h['extends'][pack.name]}; {pack.label} is outside that range: "
                            f"upgrade {h['name']} together with it")


def _label(head: dict) -> str:
    return f"{head['name']} {head['version']}"


def _later(a: str, b: str) -> bool | None:
    try:
        return Version(a) > Version(b)
    except InvalidVersion:
        return None


def _ancestors(name: str, heads: dict[str, dict]) -> list[str]:
    """The folders of the packs `name` extends, directly or not (among `heads`), bases first."""
    by_name = {h["name"]: folder for folder, h in heads.items()}
    out: list[str] = []

    def visit(n: str) -> None:
        folder = by_name.get(n)
        if folder is None or folder in out:
            return
        for base in heads[folder]["extends"]:
            visit(base)
        out.append(folder)

    for base in heads[by_name[name]]["extends"] if name in by_name else ():
        visit(base)
    return out


def _write(files: Files, folder: Path) -> dict[str, Path]:
    out = {}
    for pack, pack_files in files.items():
        for rel, text in pack_files.items():
            if ".." in Path(rel).parts:
                raise PackError(f"a file of pack folder {pack} leaves its pack: {rel}")
            target = folder / pack / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        out[pack] = folder / pack
    return out


def _loaded(folders: list[Path]) -> tuple[CompiledModel | None, list[Problem]]:
    model, problems = load_model(folders)
    return (compile_model(model) if model is not None else None), problems


def make_plan(conn: sa.Connection, pack: PackFiles, *, upgrade: bool) -> Plan:
    """The plan of installing (or upgrading to) `pack`; PackError when it cannot even be planned."""
    found = releases.active(conn)
    if found is None:
        raise PackError("this installation has no configuration release yet: start it once (`tailor run`) or make one with "
                        "`tailor release create PACK... --activate`")
    row = found[0]
    if pack.name == LOCAL:
        raise PackError(f"'{LOCAL}' is the installation's own pack (the console's changes); a pack of that name cannot be installed")
    heads = _heads(row["files"])
    by_name = {h["name"]: folder for folder, h in heads.items() if folder != LOCAL}
    base_files, order = releases.base_of(row["files"], row["packs"])
    folder = by_name.get(pack.name)
    if upgrade:
        if folder is None:
            raise PackError(f"{pack.name} is not installed here (installed: {', '.join(_label(heads[f]) for f in by_name.values())}): "
                            f"use `tailor pack install`")
        previous = heads[folder]["version"]
        if base_files[folder] == pack.files:
            raise PackError(f"{pack.label} is installed already, with exactly these files: nothing to upgrade")
        if _later(previous, pack.version):
            raise PackError(f"{pack.label} is older than the installed {pack.name} {previous}: a downgrade is not an upgrade "
                            f"(to go back, activate an earlier release: `tailor release list`, `tailor release activate`)")
    else:
        if folder is not None:
            raise PackError(f"{pack.name} is installed already ({_label(heads[folder])}): use `tailor pack upgrade`")
        previous, folder, n = None, pack.name, 2
        while folder in base_files or folder == LOCAL:
            folder, n = f"{pack.name}-{n}", n + 1
    _check_ranges(pack, heads, folder if upgrade else None)
    new_base = {**base_files, folder: dict(pack.files)}
    new_order = order if upgrade else [*order, folder]
    files, packs = releases.with_local(new_base, new_order, row["files"].get(LOCAL))
    plan = Plan("upgrade" if upgrade else "install", pack, row["id"], previous,
                [_label(h) if f != LOCAL else "local" for f, h in heads.items() if f != folder or not upgrade], files, packs)
    with tempfile.TemporaryDirectory(prefix="tailor-plan-") as tmp:
        before = _write(row["files"], Path(tmp) / "before")
        after = _write(files, Path(tmp) / "after")
        for f, path in before.items():
            plan.places[str(path)] = "local" if f == LOCAL else f"{heads[f]['name']}-{heads[f]['version']}"
        for f, path in after.items():
            plan.places[str(path)] = pack.source if f == folder else plan.places[str(before[f])]
        old, old_problems = _loaded([before[p] for p in row["packs"]])
        if old is None:
            raise PackError("the active release does not load: " + "; ".join(plan.where(p.loc) + ": " + p.message for p in old_problems[:5]))
        new, new_problems = _loaded([after[p] for p in packs])
        if upgrade:
            ancestors = _ancestors(pack.name, heads)
            old_base, _ = load_model([before[f] for f in ancestors] + [before[folder]])
            new_base_model, own = load_model([after[f] for f in ancestors] + [after[folder]])
            plan.problems = [f"{plan.where(p.loc)}: {p.message} [{p.code}]" for p in own]
            if old_base is not None and new_base_model is not None:
                base_names = {heads[f]["name"] for f in ancestors} | {pack.name}
                changes = [c for c in old.model.changes if c.pack not in base_names]
                plan.conflicts, plan.carried = merge(old_base, new_base_model, old.model, changes, pack.label)
        if not plan.problems:
            plan.conflicts += unexplained(new_problems, plan.conflicts, plan.where)
        if new is not None:
            plan.loads = True
            plan.words = describe(old.model, new.model)
            from runtime.plan import MigrationError, describe as describe_ops, plan as schema_plan
            try:
                plan.schema = list(describe_ops(schema_plan(conn, new)))
            except MigrationError as exc:
                plan.schema_refused = str(exc)
            plan.running = releases.running(conn, new)
    return plan


def apply(conn: sa.Connection, plan: Plan, root: Path, reason: str) -> tuple[int, int, list]:
    """Make the plan's release and switch the installation to it (one transaction): (release id, activation, schema ops)."""
    if not plan.ok:
        raise PackError("the plan has conflicts or problems: nothing was changed")
    current = releases.active(conn)
    if current is None or current[0]["id"] != plan.release_id:
        raise PackError("the active release changed since this plan was made: plan again")
    release_id = releases.create(conn, plan.files, plan.packs, reason=reason)
    try:
        activation, ops = releases.switch_to(conn, release_id, root, reason=reason)
    except DefinitionError as exc:  # the plan loaded it: only a change in between could make it fail here
        raise PackError(f"the new release does not load: {exc}") from None
    return release_id, activation, ops
