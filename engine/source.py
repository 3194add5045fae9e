"""Safe YAML reading that remembers where every key and value came from.

PyYAML's safe loader forgets node marks once it builds Python values; consultants
edit these files by hand, so every problem must point at `file:line:column`.
We compose the node graph with the safe loader and build plain values ourselves,
recording the mark of each key and value under its JSON pointer.
"""
from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import Loc, Problem

MAX_NODES = 200_000  # guards against alias bombs ("billion laughs")
# libyaml's safe loader composes ~3x faster and keeps the same marks; pure Python where it is missing
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_MAP, _SEQ, _STR = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_NULL, _BOOL, _INT = "tag:yaml.org,2002:null", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int"
_BOOLS = yaml.constructor.SafeConstructor.bool_values
_ScalarNode, _MappingNode = yaml.ScalarNode, yaml.MappingNode


# The tag each plain scalar's text resolves to (a pure function of the text), shared by every load; bounded.
_PLAIN_TAGS: dict[str, str] = {}


class _Loader(_SafeLoader):  # type: ignore[misc, valid-type]
    """The safe loader, minus per-node Python work whose answer never changes.

    Even libyaml's loader calls back into Python to resolve every node's tag (keys included); a
    plain scalar's tag depends on its text alone (the safe loader has no path resolvers), and
    the same words (`type`, `string`, `label`, ...) recur thousands of times in a pack.
    """

    _PLAIN_TAGS_MAX = 50_000

    def resolve(self, kind: type, value: Any, implicit: Any) -> str:
        if kind is not _ScalarNode:
            return _MAP if kind is _MappingNode else _SEQ  # the safe resolver's defaults: it has no path resolvers
        if not implicit[0]:
            return _STR  # quoted text, or a plain scalar with the non-specific tag "!"
        tag = _PLAIN_TAGS.get(value)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if len(_PLAIN_TAGS) < self._PLAIN_TAGS_MAX:
                _PLAIN_TAGS[value] = tag
        return tag

    # Path resolvers are the only reason to track the path; the safe loader has none.
    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass


Pos = tuple[int, int]  # 1-based line and column


def pointer_join(pointer: str, part: str | int) -> str:
    """Append one reference token to a JSON pointer."""
    token = str(part)
    if "~" in token or "/" in token:  # rare in names; skipping the replaces matters at one call per node
        token = token.replace("~", "~0").replace("/", "~1")
    return f"{pointer}/{token}"


@dataclass(frozen=True, slots=True)
class Document:
    """One YAML document: plain data plus the location of every node."""

    file: str
    index: int
    data: Any
    # (line, column) pairs, not `Loc`s or libyaml's marks: a pack has ~100k nodes and few locations are
    # ever asked for, and pairs of ints are cheap to make and invisible to the cycle collector.
    value_pos: Mapping[str, Pos] = field(repr=False, default_factory=dict)
    key_pos: Mapping[str, Pos] = field(repr=False, default_factory=dict)

    @property
    def kind(self) -> str | None:
        return self.data.get("kind") if isinstance(self.data, dict) else None

    @property
    def name(self) -> str | None:
        if isinstance(self.data, dict) and isinstance(self.data.get("name"), str):
            return self.data["name"]
        return None

    def loc(self, pointer: str = "", *, key: bool = False) -> Loc:
        """Location of the node at `pointer` (its key if `key`), or its nearest ancestor."""
        pos = (key and self.key_pos.get(pointer)) or self.value_pos.get(pointer)
        if pos:  # the usual case: the node is there
            return Loc(self.file, pos[0], pos[1])
        p = pointer
        while True:
            pos = (key and self.key_pos.get(p)) or self.value_pos.get(p)
            if pos:
                return Loc(self.file, *pos)
            if not p:
                return Loc(self.file, 1, 1)
            p = p.rsplit("/", 1)[0]

    def key_loc(self, pointer: str) -> Loc:
        """Location of the key of the node at `pointer`, or the nearest thing to it."""
        pos = self.key_pos.get(pointer)
        return Loc(self.file, pos[0], pos[1]) if pos else self.loc(pointer, key=True)


class _TooLarge(Exception):
    pass


class _Builder:
    """Plain values from a composed node graph, recording each value's and key's position by JSON pointer.

    This runs once per node of every file (~150k for a 1,000-definition pack), so text values,
    the most common node by far, are handled inline rather than through `build`.
    """

    def __init__(self, file: str, loader: Any, merges: bool = True):
        self.file = file
        self.loader = loader
        self.merges = merges  # whether a mapping may hold a merge key ('<<', or an explicit tag): see parse_text
        self.value_pos: dict[str, Pos] = {}
        self.key_pos: dict[str, Pos] = {}
        self.problems: list[Problem] = []
        self.count = 1  # nodes met so far, counted by collection: the root, then each collection's items at once
        self.active: set[int] = set()  # ids of the collections being built: meeting one again is a recursive alias

    def _loc(self, mark: yaml.Mark) -> Loc:
        return Loc(self.file, mark.line + 1, mark.column + 1)

    def build(self, node: yaml.Node, pointer: str) -> Any:
        mark = node.start_mark
        self.value_pos[pointer] = (mark.line + 1, mark.column + 1)
        if isinstance(node, _ScalarNode):
            # Text (most values) is what the constructor would return; skip its generic dispatch.
            return node.value if node.tag == _STR else self.scalar(node, pointer)
        if id(node) in self.active:
            self.problems.append(Problem(self._loc(node.start_mark), "yaml.recursive", "recursive alias is not allowed", pointer))
            return None
        if node.tag != (_MAP if isinstance(node, _MappingNode) else _SEQ):
            self.problems.append(Problem(self._loc(node.start_mark), "yaml.tag", f"unsupported YAML tag '{node.tag}'", pointer))
            return None
        self.active.add(id(node))
        try:
            return self.mapping(node, pointer) if isinstance(node, _MappingNode) else self.sequence(node, pointer)
        finally:
            self.active.discard(id(node))

    def sequence(self, node: yaml.SequenceNode, pointer: str) -> list[Any]:
        self.count += len(node.value)
        if self.count > MAX_NODES:
            raise _TooLarge()
        out: list[Any] = []
        value_pos = self.value_pos
        for i, item in enumerate(node.value):
            child = f"{pointer}/{i}"
            if item.tag == _STR and type(item) is _ScalarNode:  # inline `build` for text
                mark = item.start_mark
                value_pos[child] = (mark.line + 1, mark.column + 1)
                out.append(item.value)
            else:
                out.append(self.build(item, child))
        return out

    def mapping(self, node: yaml.MappingNode, pointer: str) -> dict[str, Any]:
        if self.merges and any(key_node.tag == _MERGE for key_node, _ in node.value):  # `<<: *defaults`: let PyYAML merge
            try:
                self.loader.flatten_mapping(node)
            except yaml.MarkedYAMLError as exc:
                self.problems.append(Problem(self._loc(exc.problem_mark or node.start_mark), "yaml.merge", str(exc.problem), pointer))
                return {}
        self.count += len(node.value)
        if self.count > MAX_NODES:
            raise _TooLarge()
        out: dict[str, Any] = {}
        key_pos, value_pos = self.key_pos, self.value_pos
        for key_node, value_node in node.value:
            if type(key_node) is not _ScalarNode or key_node.tag == _MERGE:
                self.problems.append(Problem(self._loc(key_node.start_mark), "yaml.key", "mapping keys must be plain text", pointer))
                continue
            # Keys are names: keep the text as written, so `on:` stays "on" (YAML 1.1 would make it true).
            key = key_node.value
            child = f"{pointer}/{key}" if "~" not in key and "/" not in key else pointer_join(pointer, key)
            if key in out:
                self.problems.append(Problem(self._loc(key_node.start_mark), "yaml.duplicate-key",
                                             f"duplicate key '{key}' (first given at line {key_pos[child][0]})", child))
                continue
            mark = key_node.start_mark
            key_pos[child] = (mark.line + 1, mark.column + 1)
            if value_node.tag == _STR and type(value_node) is _ScalarNode:  # inline `build` for text
                mark = value_node.start_mark
                value_pos[child] = (mark.line + 1, mark.column + 1)
                out[key] = value_node.value
            else:
                out[key] = self.build(value_node, child)
        return out

    def scalar(self, node: yaml.Node, pointer: str) -> Any:
        tag, text = node.tag, node.value
        # The safe constructor's answer for the usual plain values (true, ~, 42), without its generic dispatch.
        if tag == _BOOL and text.lower() in _BOOLS:
            return _BOOLS[text.lower()]
        if tag == _NULL:
            return None
        if tag == _INT and text.isdecimal() and (text[0] != "0" or text == "0"):  # not octal 0755, 0x1f, 1_000, 1:30
            return int(text)
        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            self.problems.append(Problem(self._loc(node.start_mark), "yaml.tag", f"unsupported YAML value: {exc.problem}", pointer))
            return None
        except (ValueError, KeyError, TypeError):  # an explicit tag on text it cannot read: `!!int abc`, `!!bool maybe`
            self.problems.append(Problem(self._loc(node.start_mark), "yaml.tag", f"'{text}' is not a valid {tag.rsplit(':', 1)[-1]}", pointer))
            return None
        if isinstance(value, (_dt.date, _dt.datetime)):
            # Keep dates as the text the author wrote; JSON has no date type.
            return node.value
        if isinstance(value, bytes):
            self.problems.append(Problem(self._loc(node.start_mark), "yaml.tag", "binary values are not allowed", pointer))
            return None
        return value


def parse_text(text: str, file: str) -> tuple[list[Document], list[Problem]]:
    """Parse YAML text (one or several documents) into located documents."""
    docs: list[Document] = []
    problems: list[Problem] = []
    try:
        loader = _Loader(text)  # checks every character up front
    except yaml.reader.ReaderError as exc:
        return [], [_reader_problem(text, file, exc)]
    index = 0
    # A merge key is the plain text '<<' or carries an explicit tag, which is written with '!': without
    # either, no mapping of this text needs looking at for one.
    merges = "<<" in text or "!" in text
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                break
            builder = _Builder(file, loader, merges)
            try:
                data = builder.build(node, "")
            except _TooLarge:
                problems.append(Problem(Loc(file, node.start_mark.line + 1, node.start_mark.column + 1), "yaml.too-large",
                                        f"document expands to more than {MAX_NODES} nodes (aliases?)"))
                index += 1
                continue
            except RecursionError:
                problems.append(Problem(Loc(file, node.start_mark.line + 1, node.start_mark.column + 1), "yaml.too-deep",
                                        "document is nested too deeply"))
                index += 1
                continue
            problems.extend(builder.problems)
            docs.append(Document(file, index, data, builder.value_pos, builder.key_pos))
            index += 1
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Loc(file, mark.line + 1, mark.column + 1) if mark else Loc(file, 1, 1)
        msg = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        problems.append(Problem(loc, "yaml.syntax", f"invalid YAML: {msg}"))
    except yaml.reader.ReaderError as exc:
        problems.append(_reader_problem(text, file, exc))
    except yaml.YAMLError as exc:
        problems.append(Problem(Loc(file, 1, 1), "yaml.syntax", f"invalid YAML: {exc}"))
    finally:
        loader.dispose()
    return docs, problems


def _reader_problem(text: str, file: str, exc: yaml.reader.ReaderError) -> Problem:
    before = text[: exc.position]
    line = before.count("\n") + 1
    column = exc.position - (before.rfind("\n") + 1) + 1
    return Problem(Loc(file, line, column), "yaml.character", f"character U+{exc.character:04X} is not allowed in YAML text")


def read_file(path: Path, display: str | None = None) -> tuple[list[Document], list[Problem]]:
    """Read one YAML file; an unreadable file is a problem, not an exception."""
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return [], [Problem(Loc(name, 1, 1), "file.encoding", f"file is not UTF-8 text: {exc.reason} at byte {exc.start}")]
    except OSError as exc:
        return [], [Problem(Loc(name), "file.unreadable", f"cannot read file: {exc.strerror}")]
    return parse_text(text, name)


def yaml_files(folder: Path) -> list[Path]:
    """Every YAML file under a pack folder, relative to it, in a stable order (hidden files and folders skipped)."""
    found: list[tuple[str, ...]] = []

    def walk(directory: str, parts: tuple[str, ...]) -> None:
        try:
            entries = list(os.scandir(directory))
        except PermissionError:
            return  # as `Path.rglob`: an unreadable folder holds no files
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):  # a linked folder is not entered, as with `Path.rglob`
                walk(entry.path, (*parts, entry.name))
            elif entry.name.endswith((".yaml", ".yml")) and entry.is_file():
                found.append((*parts, entry.name))

    walk(str(folder), ())
    return [Path(*parts) for parts in sorted(found)]
