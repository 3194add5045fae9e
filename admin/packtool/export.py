"""`tailor pack export`: the active release's local pack (the changes admins made in the console) as a client pack.

The local pack's definitions and overlays are written as they are in the release (`runtime.releases.export`, what
`tailor release export` writes), at their places (`entities/`, `forms/`, `processes/`, `overlays/`: the folders
`tailor pack new` makes), each YAML file with the comment that lets an editor check it against its published schema.
What makes it a client pack is its `pack.yaml`: a name and version of its own, and `extends` with a version range of
each pack the local pack stands on (their later minor versions, as `tailor pack new` writes it). Before anything is
written, the exported pack is loaded on the release's other packs and compiled: it must give the model the release
gives (every entity, form and process schema, report and the DDL the same), so it checks, builds and installs.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from engine.compiler import CompiledModel, compile_model, outputs
from engine.loader import load_model
from engine.source import parse_text
from runtime import releases

from . import PackError
from .scaffold import FOLDERS, NAME, dump, schema_line, version_range

SCHEMAS = ("entity", "form", "process", "overlay", "role", "group", "calendar", "report", "dashboard")
_SCHEMA_COMMENT = "# yaml-language-server:"


@dataclass(frozen=True)
class Exported:
    name: str
    version: str
    extends: dict[str, str]   # {pack: version range}
    files: dict[str, str]     # {relative path: text}
    definitions: int          # how many definitions and overlays it holds
    release_id: int


def _head(text: str) -> dict:
    try:
        data = yaml.safe_load(text or "")
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def _kinds(text: str, rel: str) -> list[str]:
    """The kinds of a YAML file's documents (empty if it does not read)."""
    docs, problems = parse_text(text, rel)
    return [] if problems else [d.kind for d in docs if d.data is not None]


def _with_schema(folder: Path, rel: str, text: str, kinds: list[str]) -> str:
    """The file with a schema comment for its kind on its first line (one it had is replaced: the path is the new one)."""
    lines = text.splitlines(keepends=True)
    if lines and lines[0].startswith(_SCHEMA_COMMENT):
        lines = lines[1:]
    if len(set(kinds)) != 1 or kinds[0] not in SCHEMAS:
        return "".join(lines)
    return schema_line(folder, rel, kinds[0]) + "".join(lines)


def _extends(local_head: dict, base: releases.Files) -> dict[str, str]:
    """The packs the local pack extends, each with the range of the later minor versions of the release's version."""
    have = {name: version for name, version in releases.pack_versions(base).values()}
    named = [n for n in (local_head.get("extends") or {}) if n in have] if isinstance(local_head.get("extends"), dict) else []
    if not named:  # a local pack without a usable manifest stands on the top of the stack, as a new one would
        extended = {b for files in base.values() for b in (_head(files.get("pack.yaml", "")).get("extends") or {})}
        named = [n for n in have if n not in extended]
    return {n: version_range(have[n]) for n in named}


def pack_files(row: dict, name: str, version: str, folder: Path) -> Exported:
    """The client pack of a release's local pack, its files laid out for `folder` (pure apart from reading nothing)."""
    local = releases.export(row)
    head = _head(local.get("pack.yaml", ""))
    found = {rel: kinds for rel, kinds in ((rel, _kinds(text, rel)) for rel, text in local.items() if rel != "pack.yaml"
                                          and rel.endswith((".yaml", ".yml")))}
    count = sum(1 for kinds in found.values() for k in kinds if k and k != "pack")
    if not count:
        raise PackError(f"release {row['id']} has no local changes (the console's changes live in its local pack, and it "
                        f"holds {'no definitions' if local else 'nothing'}): nothing to export")
    base, _ = releases.base_of(row["files"], row["packs"])
    extends = _extends(head, base)
    title = name.replace("_", " ").title()
    keep = {k: v for k, v in head.items() if k not in ("kind", "name", "version", "label", "description", "extends")}
    files = {"pack.yaml": schema_line(folder, "pack.yaml", "pack") + dump({
        "kind": "pack", "name": name, "version": version, "label": title,
        "description": f"The changes made in the console of an installation, exported from its release {row['id']}.",
        "extends": extends, **keep})}
    for rel, text in sorted(local.items()):
        if rel == "pack.yaml":
            continue
        files[rel] = _with_schema(folder, rel, text, found[rel]) if rel in found else text
    if "README.md" not in files:
        files["README.md"] = _readme(name, row["id"], extends)
    for sub in FOLDERS:
        if not any(rel.startswith(f"{sub}/") for rel in files):
            files[f"{sub}/.gitkeep"] = ""
    return Exported(name, version, extends, files, count, row["id"])


def _readme(name: str, release_id: int, extends: dict[str, str]) -> str:
    bases = ", ".join(f"`{b}` {r}" for b, r in extends.items())
    return f"""# {name}

The changes made in the console of an installation (its `local` pack), exported from release {release_id} with
`tailor pack export`, as a client pack extending {bases}.

| folder | what goes there |
| --- | --- |
| `entities/` | entities made in the console (`kind: entity`) |
| `forms/` | forms (`kind: form`) |
| `processes/` | processes (`kind: process`) |
| `overlays/` | changes to the definitions of the packs it extends (`kind: overlay`) |
| `tests/` | scenario tests, run by `tailor pack test` |
| `demo/` | demo data, loaded by `tailor run --demo` |

    tailor pack test {name}                    # the scenarios you add, on a fake clock
    tailor pack build {name}                   # {name}-VERSION.zip, to install

See docs/packs.md.
"""


def outputs_of(compiled: CompiledModel, packs: dict[str, str]) -> dict[str, str]:
    """The compiled model's output files, with the packs renamed by `packs` ({old: new}) and the manifest left out: what
    must be the same whichever pack a definition comes from."""
    import json

    out = {}
    for rel, text in outputs(compiled).items():
        if rel == "manifest.json":
            continue
        if rel.startswith("processes/"):
            spec = json.loads(text)
            spec["pack"] = packs.get(spec.get("pack"), spec.get("pack"))
            spec.pop("version", None)  # a content hash, of the pack's name too
            text = json.dumps(spec, sort_keys=True)
        out[rel] = text
    return out


def verify(row: dict, exported: Exported, root: Path) -> None:
    """Load the exported pack on the release's other packs: it must load and give the release's model."""
    base, order = releases.base_of(row["files"], row["packs"])
    expected = releases.compile_release(row, root)
    with tempfile.TemporaryDirectory(prefix="tailor-export-") as tmp:
        folder = Path(tmp) / exported.name
        for rel, text in exported.files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(text, encoding="utf-8")
        folders = releases.materialise({"files": base, "packs": order, "digest": releases.digest(base, order)}, root)
        model, problems = load_model([*folders, folder])
        if problems:
            raise PackError(f"the exported pack does not load on {', '.join(order)}: {problems[0]}"
                            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
        got = outputs_of(compile_model(model), {})
    want = outputs_of(expected, {releases.LOCAL: exported.name})
    differ = sorted(rel for rel in set(got) | set(want) if got.get(rel) != want.get(rel))
    if differ:
        raise PackError(f"the exported pack would not give the release's model ({', '.join(differ[:3])} differ{'s' if len(differ) == 1 else ''}): "
                        f"nothing was written")


def export(row: dict, name: str, version: str, out: Path, root: Path) -> Exported:
    """Write the release's local pack as client pack `name` into `out` (which must not exist or be empty), checked first."""
    if not NAME.match(name):
        raise PackError(f"'{name}' cannot name a pack: use lower_snake_case (a-z, 0-9 and _, starting with a letter)")
    installed = {n for n, _ in releases.pack_versions(releases.base_of(row["files"], row["packs"])[0]).values()}
    if name == releases.LOCAL or name in installed:
        raise PackError(f"'{name}' is already a pack's name ({', '.join(sorted(installed))}, and the installation's own "
                        f"'{releases.LOCAL}'): choose another with --name")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PackError(f"{out} already exists and is not empty: choose another --out")
    exported = pack_files(row, name, version, out)
    verify(row, exported, root)
    for rel, text in exported.files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text, encoding="utf-8")
    return exported
