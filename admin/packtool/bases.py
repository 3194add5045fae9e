"""The packs a pack stands on: its `extends:`, found among the folders given (`--base`), else among the packs shipped
with Tailor (`definitions/`), in load order (bases first)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import yaml

from . import PackError

SHIPPED = Path(__file__).resolve().parents[2] / "definitions"


def manifest(folder: Path) -> dict:
    """A pack folder's pack.yaml as plain values (name, version, extends), or PackError saying why it is not a pack."""
    path = Path(folder) / "pack.yaml"
    if not Path(folder).is_dir():
        raise PackError(f"{folder}: no such folder")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PackError(f"{folder}: not a pack (there is no pack.yaml)") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise PackError(f"{path}: cannot be read ({exc}); `tailor check {folder}` says where") from None
    if not isinstance(data, dict) or data.get("kind") != "pack" or not isinstance(data.get("name"), str):
        raise PackError(f"{path}: not a pack manifest (expected kind: pack and a name); `tailor check {folder}` says more")
    extends = data.get("extends") or {}
    return {"name": data["name"], "version": str(data.get("version", "")), "extends": dict(extends) if isinstance(extends, dict) else {}}


def find(name: str, bases: Iterable[Path] = ()) -> Path:
    """The folder of pack `name`: among `bases`, else the shipped packs; PackError if it is in neither."""
    for b in bases:
        if manifest(b)["name"] == name:
            return Path(b)
    if (SHIPPED / name / "pack.yaml").is_file():
        return SHIPPED / name
    shipped = sorted(p.parent.name for p in SHIPPED.glob("*/pack.yaml"))
    raise PackError(f"there is no pack '{name}' (shipped: {', '.join(shipped) or 'none'}); give its folder with --base PATH")


def stack(folders: Iterable[Path], bases: Iterable[Path] = ()) -> list[Path]:
    """`folders` and every pack they extend, directly or not: from `bases` first, else the shipped packs (bases first,
    then `folders` in the order given). A base that cannot be found is a PackError naming it."""
    folders = [Path(f) for f in folders]
    given = {manifest(b)["name"]: Path(b) for b in bases}
    mine = {manifest(f)["name"]: f for f in folders}
    found: dict[str, Path] = {}

    def find(name: str, wanted_by: str) -> None:
        if name in mine or name in found:
            return
        folder = given.get(name)
        if folder is None and (SHIPPED / name / "pack.yaml").is_file():
            folder = SHIPPED / name
        if folder is None:
            raise PackError(f"pack '{wanted_by}' extends '{name}', which is not here: give its folder with --base PATH")
        found[name] = folder
        for base in manifest(folder)["extends"]:
            find(base, name)

    for name, folder in mine.items():
        for base in manifest(folder)["extends"]:
            find(base, name)
    return [*_ordered(found), *folders]


def _ordered(found: dict[str, Path]) -> list[Path]:
    """Bases before the packs that extend them (the loader orders packs itself; this keeps output stable)."""
    out: list[str] = []

    def visit(name: str, seen: tuple[str, ...]) -> None:
        if name in out or name in seen or name not in found:
            return
        for base in manifest(found[name])["extends"]:
            visit(base, (*seen, name))
        out.append(name)

    for name in sorted(found):
        visit(name, ())
    return [found[n] for n in out]
