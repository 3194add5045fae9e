"""Configuration releases: what every node of an installation runs.

A release is every pack's files (the shipped and installed packs, plus the installation's own `local` pack where
the console's edits live as ordinary definitions and overlays), stored in the database, immutable and
content-addressed: the same files are the same release. One release is active (`release_state`); every node —
web apps and workers — polls its version (one tiny row) and switches to a newly activated release within about a
second, without a restart. A node that cannot load a release keeps the one it has and says so. Running processes
keep their version: they carry their compiled spec; new starts use the new one.

YAML on disk stays the source for consultants: at start, a node compares the packs on disk (`TAILOR_PACKS`) with
the active release's; if they differ, it makes a release of the disk's packs plus the active release's local pack
and activates it, so edits made in the console survive a new version of the base packs.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import difflib
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable, Iterable

import sqlalchemy as sa

from engine.compiler import CompiledModel, compile_model
from engine.loader import load
from engine.model import Model
from .schema import release_drafts, release_log, release_state, releases

log = logging.getLogger(__name__)

LOCAL = "local"  # the folder of the installation's own pack in a release
TEXT_SUFFIXES = (".yaml", ".yml", ".json", ".md", ".txt", ".j2", ".html", ".csv")
POLL_SECONDS = 0.5
Files = dict[str, dict[str, str]]  # {pack folder: {relative path: text}}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- files ----------------------------------------------------------------------------------------
def snapshot(paths: Iterable[str | Path]) -> tuple[Files, list[str]]:
    """The text files of pack folders, keyed by folder name (made unique), and the folders in load order."""
    files: Files = {}
    order: list[str] = []
    for path in paths:
        folder = Path(path)
        name = folder.resolve().name or "pack"
        key, n = name, 2
        while key in files or key == LOCAL:  # a folder named like the local pack on disk is not the local pack
            key, n = f"{name}-{n}", n + 1
        files[key] = {str(p.relative_to(folder)).replace("\\", "/"): p.read_text(encoding="utf-8")
                      for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix in TEXT_SUFFIXES
                      and not any(part.startswith(".") for part in p.relative_to(folder).parts)}
        order.append(key)
    return files, order


def digest(files: Files, packs: list[str]) -> str:
    return hashlib.sha256(json.dumps({"packs": packs, "files": files}, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def base_of(files: Files, packs: list[str]) -> tuple[Files, list[str]]:
    """The release without its local pack: what came from pack folders."""
    return {k: v for k, v in files.items() if k != LOCAL}, [p for p in packs if p != LOCAL]


def with_local(files: Files, packs: list[str], local: dict[str, str] | None) -> tuple[Files, list[str]]:
    """The release's base packs with `local` as the local pack (none: without one)."""
    base, order = base_of(files, packs)
    if not local:
        return base, order
    return {**base, LOCAL: dict(local)}, [*order, LOCAL]


def local_manifest(model: Model) -> str:
    """pack.yaml of a new local pack: it extends the packs no other pack extends (the top of the stack)."""
    extended = {name for p in model.packs for name, _, _ in p.extends}
    tops = [p for p in model.packs if p.name not in extended]
    lines = ["kind: pack", f"name: {LOCAL}", "version: 1.0.0", "label: This installation's own changes",
             "description: Fields, forms and processes changed in the console.", "extends:"]
    lines += [f"  {p.name}: \">={p.version}\"" for p in tops]
    return "\n".join(lines) + "\n"


def materialise(row: dict, root: Path) -> list[Path]:
    """The release's packs as folders under `root` (written once per release), in load order."""
    home = root / row["digest"][:20]
    if not (home / ".complete").exists():
        for pack, pack_files in row["files"].items():
            for rel, text in pack_files.items():
                target = home / pack / rel
                if ".." in Path(rel).parts:
                    raise ValueError(f"a release file may not leave its pack: {rel}")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
        (home / ".complete").write_text(row["digest"])
    return [home / p for p in row["packs"]]


def _local_folder(local: dict[str, str] | None, root: Path) -> list[Path]:
    """The local pack alone as a folder (none without one)."""
    if not local:
        return []
    return materialise({"files": {LOCAL: local}, "packs": [LOCAL], "digest": digest({LOCAL: local}, [LOCAL])}, root)


def compile_release(row: dict, root: Path) -> CompiledModel:
    """Load, check and compile a release (DefinitionError with every problem if it is broken)."""
    return compile_model(load(materialise(row, root)))


# -- the store ------------------------------------------------------------------------------------
def create(conn: sa.Connection, files: Files, packs: list[str], *, author_id: int | None = None, reason: str = "") -> int:
    """The release of these files: made once (the same files found again are the same release)."""
    key = digest(files, packs)
    found = conn.execute(sa.select(releases.c.id).where(releases.c.digest == key)).scalar()
    if found is not None:
        return found
    try:
        with conn.begin_nested():
            return conn.execute(releases.insert().values(digest=key, files=files, packs=packs, author_id=author_id, reason=reason or None,
                                                         created_at=utcnow())).inserted_primary_key[0]
    except sa.exc.IntegrityError:  # another node made it at the same moment
        return conn.execute(sa.select(releases.c.id).where(releases.c.digest == key)).scalar_one()


def get(conn: sa.Connection, release_id: int) -> dict | None:
    row = conn.execute(sa.select(releases).where(releases.c.id == release_id)).mappings().first()
    return dict(row) if row else None


def active(conn: sa.Connection) -> tuple[dict, int] | None:
    """(the active release, its activation's version number), or None before the first release."""
    state = conn.execute(sa.select(release_state).where(release_state.c.id == 1)).mappings().first()
    if state is None:
        return None
    return get(conn, state["release_id"]), state["version"]


def version(conn: sa.Connection) -> int | None:
    """The activation counter: what every node polls (one row, one integer)."""
    return conn.execute(sa.select(release_state.c.version).where(release_state.c.id == 1)).scalar()


def activate(conn: sa.Connection, release_id: int, *, by: int | None = None, reason: str = "") -> int:
    """Make a release the active one; returns the new activation version every node will see."""
    now = utcnow()
    current = conn.execute(sa.select(release_state.c.version).where(release_state.c.id == 1).with_for_update()).scalar()
    if current is None:
        conn.execute(release_state.insert().values(id=1, release_id=release_id, version=1, activated_at=now, activated_by=by,
                                                   reason=reason or None))
        new = 1
    else:
        new = current + 1
        conn.execute(release_state.update().where(release_state.c.id == 1).values(release_id=release_id, version=new, activated_at=now,
                                                                                 activated_by=by, reason=reason or None))
    conn.execute(release_log.insert().values(release_id=release_id, activated_at=now, activated_by=by, reason=reason or None))
    return new


def history(conn: sa.Connection, limit: int = 100) -> list[dict]:
    """Activations, newest first, with their release."""
    q = (sa.select(release_log.c.id.label("activation"), release_log.c.activated_at, release_log.c.activated_by, release_log.c.reason,
                   releases.c.id, releases.c.digest, releases.c.created_at, releases.c.author_id)
         .join(releases, releases.c.id == release_log.c.release_id).order_by(release_log.c.id.desc()).limit(limit))
    return [dict(r) for r in conn.execute(q).mappings()]


def pack_versions(files: Files) -> dict[str, tuple[str, str]]:
    """{folder: (pack name, version)} of a release's packs, from each folder's pack.yaml (unreadable ones left out)."""
    import yaml

    out = {}
    for folder, pack_files in files.items():
        try:
            head = yaml.safe_load(pack_files.get("pack.yaml", "")) or {}
        except yaml.YAMLError:
            continue
        if isinstance(head, dict) and isinstance(head.get("name"), str):
            out[folder] = (head["name"], str(head.get("version", "")))
    return out


def _newer(a: str, b: str) -> bool:
    """Whether version `a` is later than `b` (versions that do not parse are never later)."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(a) > Version(b)
    except InvalidVersion:
        return False


def _with_installed(row: dict, files: Files, packs: list[str]) -> tuple[Files, list[str], bool]:
    """The packs on disk, plus what `tailor pack install` and `tailor pack upgrade` put into the active release: a pack the
    disk does not have is kept, and so is one whose version in the release is later than the disk's. Returns the base
    packs and whether all of them are the disk's."""
    base, order = base_of(row["files"], row["packs"])
    on_disk = {name: folder for folder, (name, _) in pack_versions(files).items()}
    disk_versions = pack_versions(files)
    out, out_order, all_disk = dict(files), list(packs), True
    for folder, (name, version) in pack_versions(base).items():
        mine = on_disk.get(name)
        if mine is None:
            key, n = folder, 2
            while key in out:
                key, n = f"{folder}-{n}", n + 1
            out[key], all_disk = base[folder], False
            out_order.append(key)
        elif _newer(version, disk_versions[mine][1]):
            out[mine], all_disk = base[folder], False
            log.warning("pack %s %s of the active release is later than the disk's %s: the release's is kept", name, version,
                        disk_versions[mine][1])
    return out, out_order, all_disk


def adopt_disk(conn: sa.Connection, paths: Iterable[str | Path], root: Path, *,
               checked: CompiledModel | None = None) -> tuple[dict, CompiledModel, bool]:
    """At a node's start: the release to run. If the packs on disk differ from the active release's base packs, a new
    release of them (with the active release's local pack) is made and activated. Returns (release, compiled, new?).
    Packs installed into the releases (`tailor pack install`, `upgrade`) stay: one the disk does not have, or has at
    an earlier version, is kept from the active release.

    The packs are compiled from their folders on disk, so a problem points at the file a consultant edits; `checked` is
    the packs on disk compiled already (a start checks them first), used when the release holds just those."""
    paths = [Path(p) for p in paths]
    files, packs = snapshot(paths)
    current = active(conn)
    local = current[0]["files"].get(LOCAL) if current is not None else None
    folders = [*paths, *_local_folder(local, root)]
    if current is not None:
        files, packs, all_disk = _with_installed(current[0], files, packs)
        if not all_disk:  # some packs are the release's own: compile what the release would hold
            folders = materialise({"files": files, "packs": packs, "digest": digest(files, packs)}, root) + _local_folder(local, root)
    # a broken set of packs stops the start here, before anything is activated
    compiled = checked if checked is not None and folders == paths else compile_model(load(folders))
    if current is not None and base_of(current[0]["files"], current[0]["packs"]) == (files, packs):
        return current[0], compiled, False
    files, packs = with_local(files, packs, local)
    release_id = create(conn, files, packs, reason="the packs on disk changed")
    if current is None or current[0]["id"] != release_id:
        activate(conn, release_id, reason="started with the packs on disk")
    return get(conn, release_id), compiled, True


# -- drafts ---------------------------------------------------------------------------------------
def draft(conn: sa.Connection) -> dict | None:
    row = conn.execute(sa.select(release_drafts).where(release_drafts.c.id == 1)).mappings().first()
    return dict(row) if row else None


def save_draft(conn: sa.Connection, base_release_id: int, files: dict[str, str], by: int | None) -> None:
    values = dict(base_release_id=base_release_id, files=files, updated_at=utcnow(), updated_by=by)
    if conn.execute(release_drafts.update().where(release_drafts.c.id == 1).values(**values)).rowcount == 0:
        conn.execute(release_drafts.insert().values(id=1, **values))


def discard_draft(conn: sa.Connection) -> None:
    conn.execute(release_drafts.delete().where(release_drafts.c.id == 1))


# -- what changed ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileChange:
    path: str      # pack/relative path
    change: str    # added, removed, changed
    diff: str      # unified diff


def file_changes(old: Files, new: Files) -> list[FileChange]:
    flat = lambda files: {f"{p}/{r}": t for p, fs in files.items() for r, t in fs.items()}  # noqa: E731
    a, b = flat(old), flat(new)
    out = []
    for path in sorted(set(a) | set(b)):
        if a.get(path) == b.get(path):
            continue
        change = "added" if path not in a else "removed" if path not in b else "changed"
        text = "".join(difflib.unified_diff((a.get(path) or "").splitlines(keepends=True), (b.get(path) or "").splitlines(keepends=True),
                                            fromfile=f"before/{path}", tofile=f"after/{path}"))
        out.append(FileChange(path, change, text))
    return out


def summary(old: Model, new: Model) -> list[str]:
    """What changed between two models, in words: 'added field bed_count to company (group hospital)'."""
    lines: list[str] = []
    for kind, a, b in (("entity", old.entities, new.entities), ("form", old.forms, new.forms), ("process", old.processes, new.processes),
                       ("role", old.roles, new.roles), ("group", old.groups, new.groups), ("calendar", old.calendars, new.calendars)):
        lines += [f"added {kind} {n}" for n in sorted(set(b) - set(a))]
        lines += [f"removed {kind} {n}" for n in sorted(set(a) - set(b))]
    for name in sorted(set(old.entities) & set(new.entities)):
        before = {f.name: f for f in old.entities[name].all_fields()}
        after = {f.name: f for f in new.entities[name].all_fields()}
        for f in sorted(set(after) - set(before)):
            scope = after[f].scope
            lines.append(f"added field {f} to {name}" + (f" (group {scope.split(':', 1)[1]})" if scope.startswith("group:") else ""))
        lines += [f"removed field {f} from {name}" for f in sorted(set(before) - set(after))]
        lines += [f"changed field {f} of {name}: {before[f].type} → {after[f].type}" for f in sorted(set(before) & set(after))
                  if before[f].type != after[f].type]
    for name in sorted(set(old.forms) & set(new.forms)):
        a = [f.name for f in old.forms[name].fields]
        b = [f.name for f in new.forms[name].fields]
        lines += [f"added field {f} to form {name}" for f in b if f not in a]
        lines += [f"removed field {f} from form {name}" for f in a if f not in b]
    for name in sorted(set(old.processes) & set(new.processes)):
        a = [s.id for s in old.processes[name].steps]
        b = [s.id for s in new.processes[name].steps]
        lines += [f"added step {s} to process {name}" for s in b if s not in a]
        lines += [f"removed step {s} from process {name}" for s in a if s not in b]
        if a == b and old.processes[name] != new.processes[name]:
            lines.append(f"changed process {name}")
    return lines


# -- every node follows the active release ----------------------------------------------------------
class Follower:
    """Polls the active release's version and hands a newly activated release, compiled, to `switch`.

    A release that does not load is logged and skipped: the node keeps what it runs. The first poll only learns the
    version the node started with."""

    def __init__(self, engine: sa.Engine, root: Path, switch: Callable[[CompiledModel, dict], Awaitable[None] | None],
                 *, seen: int | None = None, poll: float = POLL_SECONDS, name: str = "node"):
        self.engine, self.root, self.switch, self.seen, self.poll, self.name = engine, root, switch, seen, poll, name
        self.failed: int | None = None  # the version that could not be loaded (tried once)

    def _check(self) -> tuple[dict, int] | None:
        with self.engine.connect() as conn:
            now = version(conn)
            if now is None or now == self.seen or now == self.failed:
                return None
            return active(conn)

    async def step(self) -> bool:
        found = await asyncio.to_thread(self._check)
        if found is None:
            return False
        row, ver = found
        try:
            compiled = await asyncio.to_thread(compile_release, row, self.root)
        except Exception as exc:  # noqa: BLE001 - a broken release must not stop the node
            self.failed = ver
            log.error("%s keeps its configuration: release %s (activation %s) does not load: %s", self.name, row["id"], ver, exc)
            return False
        result = self.switch(compiled, row)
        if asyncio.iscoroutine(result):
            await result
        self.seen = ver
        log.warning("%s now runs release %s (activation %s)", self.name, row["id"], ver)
        return True

    async def run(self) -> None:
        while True:
            try:
                await self.step()
            except Exception:  # noqa: BLE001 - the database away for a moment: try again
                log.warning("%s could not check the active release", self.name, exc_info=True)
            await asyncio.sleep(self.poll)


# -- switching the installation to a release ------------------------------------------------------
def switch_to(conn: sa.Connection, release_id: int, root: Path, *, by: int | None = None, reason: str = "",
              later: list | None = None) -> tuple[int, list]:
    """Activate a release: compile it, apply its schema plan (refused values stop it: nothing changes) and make it the
    active one, in this one transaction. Returns (the activation version, the plan's operations).

    With `later`, PostgreSQL's index builds are left in it for `runtime.plan.build_indexes` after the commit."""
    from .plan import apply, plan

    row = get(conn, release_id)
    if row is None:
        raise LookupError(f"there is no release {release_id}")
    compiled = compile_release(row, root)
    ops = plan(conn, compiled)
    apply(conn, compiled, ops, later=later)
    return activate(conn, release_id, by=by, reason=reason), ops


@dataclass(frozen=True)
class Running:
    """Running instances of one version of a process: they finish on it (`changes`: new starts get another version)."""

    process: str
    label: str
    version: str
    count: int
    changes: bool


def running(conn: sa.Connection, compiled: CompiledModel) -> list[Running]:
    """The running process instances per process and version, against what `compiled` would start."""
    from .schema import process_instances

    versions = {name: spec["version"] for name, spec in compiled.process_specs.items()}
    q = (sa.select(process_instances.c.process, process_instances.c.version, sa.func.count()).where(process_instances.c.status == "running")
         .group_by(process_instances.c.process, process_instances.c.version).order_by(process_instances.c.process, process_instances.c.version))
    return [Running(process, compiled.model.processes[process].label if process in compiled.model.processes else process, version, count,
                    versions.get(process) != version) for process, version, count in conn.execute(q)]


def export(row: dict, pack: str = LOCAL) -> dict[str, str]:
    """One pack's files of a release ({relative path: text}), to put into git or a client pack."""
    return dict(row["files"].get(pack) or {})


# -- a draft of the local pack, checked as `tailor check` checks ---------------------------------------
@dataclass(frozen=True)
class DraftProblem:
    pack: str      # the pack folder of the file ('local' for the draft's own files)
    file: str      # its path inside the pack ('' when the problem has no file)
    line: int
    column: int
    message: str
    code: str


def check_draft(base: dict, local: dict[str, str], root: Path) -> tuple[CompiledModel | None, list[DraftProblem]]:
    """The active release's base packs with `local` as the local pack: compiled, or every problem at its file and line."""
    from engine.loader import load_model

    files, packs = with_local(base["files"], base["packs"], local)
    row = {"files": files, "packs": packs, "digest": digest(files, packs)}
    folders = materialise(row, root)
    model, problems = load_model(folders)
    home = folders[0].parent.resolve()
    out = []
    for p in problems:
        pack, rel = "", p.loc.file
        try:
            inside = Path(p.loc.file).resolve().relative_to(home)
            pack, rel = inside.parts[0], "/".join(inside.parts[1:])
        except ValueError:
            pass
        out.append(DraftProblem(pack, rel, p.loc.line, p.loc.column, p.message, p.code))
    if model is None or out:
        return None, out
    return compile_model(model), []
