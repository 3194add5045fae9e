"""The local pack's files as the console's structured editors write them: ordinary YAML documents, one per
definition or overlay, each found where it already is (so an admin's hand edits in the YAML editor and the
structured editors change the same document), new ones in a file of their own.

Pure: files in ({path: text}), files out. A file holding several documents has only the edited one rewritten;
the others, and their comments, stay as they were. The edited document is written as data, so comments inside
it are not kept (the editor shows the YAML it writes before it is saved).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

FOLDERS = {"entity": "entities", "form": "forms", "process": "processes"}
_SEPARATOR = re.compile(r"^---[ \t]*(?:\n|$)", re.MULTILINE)
_FLOW_WIDTH = 70  # a list of plain values shorter than this is written on one line: [name, status, owner]


class _Dumper(yaml.SafeDumper):
    """Block style as consultants write it: lists indented under their key, multi-line text as a literal block."""

    def increase_indent(self, flow: bool = False, indentless: bool = False):
        return super().increase_indent(flow, False)


def _text(dumper: yaml.SafeDumper, value: str):
    """Several lines as a literal block; one long line ending in a newline (a folded `>` in the packs) folded again."""
    style = "|" if "\n" in value.rstrip("\n") else ">" if value.endswith("\n") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _plain(values) -> bool:
    return all(isinstance(v, (str, int, float, bool)) and not (isinstance(v, str) and "\n" in v) for v in values)


def _list(dumper: yaml.SafeDumper, value: list):
    flow = bool(value) and _plain(value) and len(repr(value)) < _FLOW_WIDTH
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


def _mapping(dumper: yaml.SafeDumper, value: dict):
    """A small mapping of plain values on one line ({type: string, label: VAT number}); a document never."""
    flow = bool(value) and "kind" not in value and len(value) <= 3 and _plain(value.values()) and len(repr(value)) < _FLOW_WIDTH
    return dumper.represent_mapping("tag:yaml.org,2002:map", value, flow_style=flow)


_Dumper.add_representer(str, _text)
_Dumper.add_representer(list, _list)
_Dumper.add_representer(dict, _mapping)


def dump(doc: dict[str, Any]) -> str:
    """One document as YAML text, keys in the order given."""
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100, default_flow_style=False)


def _spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each document of a file: the text between its `---` lines, empty parts left out."""
    spans, pos = [], 0
    for m in _SEPARATOR.finditer(text):
        spans.append((pos, m.start()))
        pos = m.end()
    spans.append((pos, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()] or [(0, len(text))]


def documents(text: str) -> list[str]:
    """A file's documents as text."""
    return [text[a:b] for a, b in _spans(text)]


def document_offset(text: str, index: int) -> int:
    """How many lines of the file come before its document `index`."""
    spans = _spans(text)
    return text.count("\n", 0, spans[min(index, len(spans) - 1)][0])


def _join(parts: list[str]) -> str:
    return "---\n".join(p if p.endswith("\n") else p + "\n" for p in parts)


def load(text: str) -> Any:
    """A document's data (None if it is not YAML)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


@dataclass(frozen=True)
class Place:
    path: str   # the file in the local pack
    index: int  # which of its documents


def find(files: dict[str, str], kind: str, name: str, *, overlay: bool) -> Place | None:
    """Where the local pack defines `kind/name` (overlay=False) or holds an overlay targeting it (overlay=True)."""
    for path in sorted(files):
        for i, part in enumerate(documents(files[path])):
            data = load(part)
            if not isinstance(data, dict):
                continue
            if overlay and data.get("kind") == "overlay" and data.get("target") == f"{kind}/{name}":
                return Place(path, i)
            if not overlay and data.get("kind") == kind and data.get("name") == name:
                return Place(path, i)
    return None


def new_path(files: dict[str, str], kind: str, name: str, *, overlay: bool) -> str:
    """A file of its own for a new document: overlays/forms/lead_enquiry.yaml, forms/site_visit.yaml."""
    stem = f"overlays/{FOLDERS[kind]}/{name}" if overlay else f"{FOLDERS[kind]}/{name}"
    path, n = f"{stem}.yaml", 2
    while path in files:
        path, n = f"{stem}-{n}.yaml", n + 1
    return path


def overlay_document(kind: str, name: str, ops: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "overlay", "name": f"{kind}_{name}", "target": f"{kind}/{name}", **ops}


@dataclass(frozen=True)
class Written:
    files: dict[str, str]  # the local pack after the edit
    path: str              # the file written ('' when the document was removed and nothing was written)
    text: str              # its whole new text
    index: int             # which of its documents is the edited one


def put(files: dict[str, str], kind: str, name: str, doc: dict[str, Any] | None, *, overlay: bool) -> Written:
    """The local pack with the definition (or the overlay on) `kind/name` set to `doc`; `None` (or an overlay without
    operations) takes it out, and a file left empty goes with it."""
    files = dict(files)
    if overlay and doc is not None and set(doc) <= {"kind", "name", "target"}:
        doc = None
    place = find(files, kind, name, overlay=overlay)
    if place is None:
        if doc is None:
            return Written(files, "", "", 0)
        path = new_path(files, kind, name, overlay=overlay)
        files[path] = dump(doc)
        return Written(files, path, files[path], 0)
    parts = documents(files[place.path])
    if doc is None:
        del parts[place.index]
        if parts:
            files[place.path] = _join(parts)
        else:
            del files[place.path]
        return Written(files, "", "", 0)
    parts[place.index] = dump(doc)
    files[place.path] = _join(parts)
    return Written(files, place.path, files[place.path], place.index)


def _positions(text: str) -> list[tuple[int, int, tuple]]:
    """(line, column, path) of every key, item and value of a one-document YAML text (1-based), in text order."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return []
    out: list[tuple[int, int, tuple]] = []

    def walk(node, path: tuple) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                out.append((key.start_mark.line + 1, key.start_mark.column + 1, path + (key.value,)))
                walk(value, path + (key.value,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                out.append((item.start_mark.line + 1, item.start_mark.column + 1, path + (i,)))
                walk(item, path + (i,))
        elif node is not None:
            out.append((node.start_mark.line + 1, node.start_mark.column + 1, path))
            for line in range(node.start_mark.line + 1, node.end_mark.line + 1):  # the further lines of a block of text
                out.append((line + 1, 1, path))

    if root is not None:
        walk(root, ())
    return sorted(out, key=lambda p: (p[0], p[1]))


def path_at(text: str, line: int, column: int = 0) -> tuple | None:
    """The path of keys and indexes written at a line and column of a one-document YAML text, e.g.
    ("add_fields", "beds", "max"): how a problem located there is taken back to the editor's input. On a line
    holding several (`beds: {type: integer, max: -1}`) the last one starting at or before the column."""
    here = [p for p in _positions(text) if p[0] == line]
    if not here:
        return None
    before = [p for p in here if p[1] <= column] if column else []
    return (before[-1] if before else here[0])[2]
