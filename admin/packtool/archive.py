"""`tailor pack build`: a pack as a versioned archive, and reading one back (or a pack folder) for install and upgrade.

The archive is a zip of the pack's text files (what a configuration release keeps of a pack: YAML, JSON, Markdown,
templates; hidden files left out), plus `tailor-pack.json`: the pack's name, version and `extends` ranges, and the
sha256 of every file. Reading an archive checks every file against its checksum, refuses files the manifest does not
list, paths that leave the pack, and archives too large to be a pack; the manifest must agree with the pack.yaml.
The archive is byte-for-byte the same for the same files (sorted entries, fixed timestamps).
"""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml

from . import PackError

MANIFEST = "tailor-pack.json"
FORMAT = 1
MAX_FILES = 5_000
MAX_BYTES = 50_000_000  # uncompressed, all files together
_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class PackFiles:
    """A pack's files as text, and what its pack.yaml says; `source` is where they came from, as the user wrote it."""

    name: str
    version: str
    extends: dict[str, str]
    files: dict[str, str]
    source: str

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def digest_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _manifest_of(files: dict[str, str], source: str) -> dict:
    try:
        data = yaml.safe_load(files.get("pack.yaml", ""))
    except yaml.YAMLError as exc:
        raise PackError(f"{source}: its pack.yaml cannot be read ({exc})") from None
    if not isinstance(data, dict) or data.get("kind") != "pack" or not isinstance(data.get("name"), str):
        raise PackError(f"{source}: not a pack (no pack.yaml with kind: pack and a name)")
    extends = data.get("extends") or {}
    return {"name": data["name"], "version": str(data.get("version", "")), "extends": {str(k): str(v) for k, v in dict(extends).items()}}


def from_folder(folder: Path, source: str | None = None) -> PackFiles:
    """A pack folder's files, chosen as a release chooses them."""
    from runtime.releases import snapshot

    folder = Path(folder)
    if not folder.is_dir():
        raise PackError(f"{folder}: no such folder")
    found, order = snapshot([folder])
    files = found[order[0]]
    files.pop(MANIFEST, None)  # an unpacked archive's manifest is not a file of the pack
    head = _manifest_of(files, source or str(folder))
    return PackFiles(head["name"], head["version"], head["extends"], files, source or str(folder))


def manifest(pack: PackFiles) -> dict:
    return {"format": FORMAT, "name": pack.name, "version": pack.version, "extends": pack.extends,
            "files": {rel: digest(text) for rel, text in sorted(pack.files.items())}}


def build(pack: PackFiles) -> bytes:
    """The archive of a pack, the same bytes for the same files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        entries = {MANIFEST: json.dumps(manifest(pack), indent=2, sort_keys=True, ensure_ascii=False) + "\n", **pack.files}
        for rel in sorted(entries):
            info = zipfile.ZipInfo(rel, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, entries[rel].encode("utf-8"))
    return buffer.getvalue()


def archive_name(pack: PackFiles) -> str:
    return f"{pack.name}-{pack.version}.zip"


def _safe(rel: str) -> bool:
    path = PurePosixPath(rel)
    return bool(rel) and "\\" not in rel and not path.is_absolute() and ".." not in path.parts and not rel.startswith("/")


def read_archive(path: Path, source: str | None = None) -> PackFiles:
    """An archive's files, each checked against the manifest's checksum; PackError saying what is wrong otherwise."""
    shown = source or str(path)
    try:
        z = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise PackError(f"{shown}: no such file") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise PackError(f"{shown}: not a pack archive ({exc}); `tailor pack build` makes them") from None
    with z:
        infos = [i for i in z.infolist() if not i.is_dir()]
        if len(infos) > MAX_FILES or sum(i.file_size for i in infos) > MAX_BYTES:
            raise PackError(f"{shown}: too large to be a pack (at most {MAX_FILES} files and {MAX_BYTES // 1_000_000} MB)")
        names = [i.filename for i in infos]
        bad = [n for n in names if not _safe(n)]
        if bad:
            raise PackError(f"{shown}: refused: {bad[0]} would be written outside the pack")
        if MANIFEST not in names:
            raise PackError(f"{shown}: not a pack archive (it has no {MANIFEST}); `tailor pack build` makes them")
        try:
            head = json.loads(z.read(MANIFEST).decode("utf-8"))
            listed = dict(head["files"])
            fmt = head.get("format")
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise PackError(f"{shown}: its {MANIFEST} cannot be read") from None
        if fmt != FORMAT:
            raise PackError(f"{shown}: made by another version of Tailor (archive format {fmt}, this one reads {FORMAT})")
        files: dict[str, str] = {}
        for name in names:
            if name == MANIFEST:
                continue
            if name not in listed:
                raise PackError(f"{shown}: refused: {name} is not in its manifest (the archive was changed after it was built)")
            data = z.read(name)
            if hashlib.sha256(data).hexdigest() != listed[name]:
                raise PackError(f"{shown}: refused: the checksum of {name} does not match its manifest (the archive was changed "
                                f"after it was built, or damaged)")
            try:
                files[name] = data.decode("utf-8")
            except UnicodeDecodeError:
                raise PackError(f"{shown}: refused: {name} is not UTF-8 text") from None
        missing = sorted(set(listed) - set(files))
        if missing:
            raise PackError(f"{shown}: refused: {missing[0]} is in its manifest but not in the archive")
    pack = _manifest_of(files, shown)
    if (pack["name"], pack["version"], pack["extends"]) != (head.get("name"), head.get("version"), head.get("extends")):
        raise PackError(f"{shown}: refused: its manifest says {head.get('name')} {head.get('version')}, its pack.yaml "
                        f"{pack['name']} {pack['version']}")
    return PackFiles(pack["name"], pack["version"], pack["extends"], files, shown)


def read(path: Path) -> PackFiles:
    """A pack from a folder or an archive."""
    path = Path(path)
    return from_folder(path) if path.is_dir() else read_archive(path)


def materialise(pack: PackFiles, folder: Path) -> Path:
    """Write a pack's files into `folder` (to load it); returns the folder."""
    for rel, text in pack.files.items():
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return folder
