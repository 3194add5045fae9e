"""`tailor pack install` and `tailor pack upgrade`: a pack into an installation's configuration releases.

The new release is the active release's packs with this pack added (install) or put in place of its installed version
(upgrade), the installation's `local` pack kept. Before anything changes there is a plan: what changes in words, the
3-way merge of an upgraded base under the client's overlays (`merge`: what carries over, and every conflict with its
place on both sides), the database plan, and the running processes: they finish on the version they started with,
unless the new version ships an instance migration (`migrate:`), which moves them (`runtime.instancemigration`).
Applying it is `runtime.releases.switch_to` (compile, schema plan and activation in one transaction), then `move`: the
migration updates sent to the running instances, which a retried apply sends again to those still to move.
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
from runtime import instancemigration, releases
from runtime.releases import LOCAL, Files

from . import PackError
from .archive import PackFiles, _manifest_of
from .changes import describe
from .merge import Carried, Conflict, merge, unexplained


class Installed(PackError):
    """An upgrade to what is installed already: nothing to plan (running instances may still have to move: `still_to_move`)."""


@dataclass
class Plan:
    """What installing or upgrading packs would do; nothing has changed while it is only a plan."""

    kind: str  # "install" or "upgrade"
    given: list[PackFiles]  # the packs installed or upgraded, as given
    release_id: int  # the active release it starts from
    previous: dict[str, str]  # pack name -> the installed version an upgrade replaces
    others: list[str]  # the packs it joins, as 'acme 1.0.0'
    files: Files
    packs: list[str]
    words: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # the given packs themselves do not load
    conflicts: list[Conflict] = field(default_factory=list)
    carried: list[Carried] = field(default_factory=list)
    schema: list[str] = field(default_factory=list)
    schema_refused: str | None = None
    running: list[instancemigration.Planned] = field(default_factory=list)
    places: dict[str, str] = field(default_factory=dict)  # folder loaded from -> how to show it
    loads: bool = False  # the new set of packs loads and compiles

    def title(self) -> str:
        """'upgrade crm 1.0.0 → 1.1.0', 'install acme 1.0.0'."""
        parts = [f"{p.name} {self.previous[p.name]} → {p.version}" if p.name in self.previous else p.label for p in self.given]
        return f"{self.kind} {', '.join(parts)}"

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


def _check_ranges(given: list[PackFiles], after: dict[str, dict]) -> None:
    """Refuse packs whose bases the new set of packs lacks or has at a version their range excludes, and an upgrade that
    another installed pack's range excludes. `after` is the heads of the new set of packs, by folder."""
    mine = {p.name for p in given}
    have = {h["name"]: h for h in after.values()}
    for pack in given:
        for base, rng in pack.extends.items():
            if base not in have or base == pack.name:
                others = ", ".join(_label(h) for h in have.values() if h["name"] not in mine) or "no packs"
                raise PackError(f"{pack.label} extends {base}, which this installation does not have (it has {others}): install {base} first")
            ok = _satisfies(have[base]["version"], rng)
            if ok is None:
                raise PackError(f"{pack.label} says it extends {base} '{rng}', which is not a version range (e.g. '>=1.0,<2')")
            if not ok:
                raise PackError(f"{pack.label} needs {base} {rng}, but this installation has {_label(have[base])}: "
                                f"upgrade {base} first (or with it), or use a version of {pack.name} made for {_label(have[base])}")
    for folder, h in after.items():
        if h["name"] in mine:
            continue
        for pack in given:
            ok = _satisfies(pack.version, h["extends"][pack.name]) if pack.name in h["extends"] else True
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


def _closure(names: set[str], heads: dict[str, dict]) -> list[str]:
    """The folders of the packs `names` and every pack they extend (among `heads`), bases first."""
    by_name = {h["name"]: folder for folder, h in heads.items()}
    out: list[str] = []

    def visit(n: str) -> None:
        folder = by_name.get(n)
        if folder is None or folder in out:
            return
        for base in heads[folder]["extends"]:
            visit(base)
        out.append(folder)

    for n in sorted(names):
        visit(n)
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


def make_plan(conn: sa.Connection, given: list[PackFiles], *, upgrade: bool) -> Plan:
    """The plan of installing `given` packs (or upgrading to them); PackError when it cannot even be planned.

    Packs upgraded together are one new set: a client pack's new version made for a base's new version goes in with it.
    The 3-way merge asks about the changes of the packs that stay as they are (and the local pack); the given packs'
    own overlays were written for the new versions, and are checked by loading them."""
    found = releases.active(conn)
    if found is None:
        raise PackError("this installation has no configuration release yet: start it once (`tailor run`) or make one with "
                        "`tailor release create PACK... --activate`")
    row = found[0]
    names = [p.name for p in given]
    if len(set(names)) != len(names):
        raise PackError(f"{', '.join(sorted({n for n in names if names.count(n) > 1}))} is given twice")
    if LOCAL in names:
        raise PackError(f"'{LOCAL}' is the installation's own pack (the console's changes); a pack of that name cannot be installed")
    heads = _heads(row["files"])
    by_name = {h["name"]: folder for folder, h in heads.items() if folder != LOCAL}
    base_files, order = releases.base_of(row["files"], row["packs"])
    new_base, new_order, previous, folders = dict(base_files), list(order), {}, {}
    for pack in given:
        folder = by_name.get(pack.name)
        if upgrade:
            if folder is None:
                raise PackError(f"{pack.name} is not installed here (installed: {', '.join(_label(heads[f]) for f in by_name.values())}): "
                                f"use `tailor pack install`")
            previous[pack.name] = heads[folder]["version"]
            if base_files[folder] == pack.files:
                raise Installed(f"{pack.label} is installed already, with exactly these files: nothing to upgrade")
            if _later(previous[pack.name], pack.version):
                raise PackError(f"{pack.label} is older than the installed {pack.name} {previous[pack.name]}: a downgrade is not an "
                                f"upgrade (to go back, activate an earlier release: `tailor release list`, `tailor release activate`)")
        else:
            if folder is not None:
                raise PackError(f"{pack.name} is installed already ({_label(heads[folder])}): use `tailor pack upgrade`")
            folder, n = pack.name, 2
            while folder in new_base or folder == LOCAL:
                folder, n = f"{pack.name}-{n}", n + 1
            new_order.append(folder)
        new_base[folder] = dict(pack.files)
        folders[pack.name] = folder
    files, packs = releases.with_local(new_base, new_order, row["files"].get(LOCAL))
    after_heads = _heads(files)
    _check_ranges(given, after_heads)
    plan = Plan("upgrade" if upgrade else "install", list(given), row["id"], previous,
                [_label(h) if f != LOCAL else "local" for f, h in heads.items() if h["name"] not in names], files, packs)
    sources = {folders[p.name]: p.source for p in given}
    with tempfile.TemporaryDirectory(prefix="tailor-plan-") as tmp:
        before = _write(row["files"], Path(tmp) / "before")
        after = _write(files, Path(tmp) / "after")
        for f, path in before.items():
            plan.places[str(path)] = "local" if f == LOCAL else f"{heads[f]['name']}-{heads[f]['version']}"
        for f, path in after.items():
            plan.places[str(path)] = sources.get(f) or plan.places[str(before[f])]
        old, old_problems = _loaded([before[p] for p in row["packs"]])
        if old is None:
            raise PackError("the active release does not load: " + "; ".join(plan.where(p.loc) + ": " + p.message for p in old_problems[:5]))
        new, new_problems = _loaded([after[p] for p in packs])
        # the given packs with the packs they stand on: alone they must load, and what they change is the base of the merge
        base_after = _closure(set(names), after_heads)
        new_bases, own = load_model([after[f] for f in base_after])
        plan.problems = [f"{plan.where(p.loc)}: {p.message} [{p.code}]" for p in own]
        if upgrade and new_bases is not None:
            base_before = _closure(set(names), heads)
            old_bases, _ = load_model([before[f] for f in base_before])
            mine = {heads[f]["name"] for f in base_before} | set(names)
            changes = [c for c in old.model.changes if c.pack not in mine]
            labels = {h["name"]: _label(h) for h in after_heads.values()}
            if old_bases is not None:
                plan.conflicts, plan.carried = merge(old_bases, new_bases, old.model, changes, labels)
        if not plan.problems:
            plan.conflicts += unexplained(new_problems, plan.conflicts, plan.where)
        if new is not None:
            plan.loads = True
            plan.words = describe(old.model, new.model)
            from runtime.plan import MigrationError
            from runtime.plan import describe as describe_ops
            from runtime.plan import plan as schema_plan
            try:
                plan.schema = list(describe_ops(schema_plan(conn, new)))
            except MigrationError as exc:
                plan.schema_refused = str(exc)
            plan.running = instancemigration.plan_moves(conn, old, new)
    return plan


def apply(conn: sa.Connection, plan: Plan, root: Path, reason: str, later: list | None = None) -> tuple[int, int, list]:
    """Make the plan's release and switch the installation to it (one transaction): (release id, activation, schema ops).
    With `later`, PostgreSQL's index builds are left in it for `runtime.plan.build_indexes` after the commit."""
    if not plan.ok:
        raise PackError("the plan has conflicts or problems: nothing was changed")
    current = releases.active(conn)
    if current is None or current[0]["id"] != plan.release_id:
        raise PackError("the active release changed since this plan was made: plan again")
    release_id = releases.create(conn, plan.files, plan.packs, reason=reason)
    try:
        activation, ops = releases.switch_to(conn, release_id, root, reason=reason, later=later)
    except DefinitionError as exc:  # the plan loaded it: only a change in between could make it fail here
        raise PackError(f"the new release does not load: {exc}") from None
    return release_id, activation, ops


def still_to_move(conn: sa.Connection, root: Path) -> list[instancemigration.Planned]:
    """The moves an upgrade's apply did not finish (Temporal away, an instance busy): the running instances of the release
    active before the current one that the current one's migrations move."""
    log = releases.history(conn, limit=2)
    if len(log) < 2 or log[0]["id"] == log[1]["id"]:
        return []
    before, now = (releases.compile_release(releases.get(conn, r["id"]), root) for r in (log[1], log[0]))
    return [p for p in instancemigration.plan_moves(conn, before, now) if p.move is not None]


async def move(client, engine: sa.Engine, planned: list[instancemigration.Planned]) -> list[str]:
    """Send the plan's moves to the running instances; what happened, in words."""
    lines: list[str] = []
    for p, outcome in await instancemigration.send(client, engine, planned):
        lines += instancemigration.report(p, outcome)
    return lines
