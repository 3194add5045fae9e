"""What the console's structured editors share: the draft and the models around it, an edit written as YAML into the
draft's local pack (an overlay on a base pack's definition, or the whole definition when the local pack owns it) and
checked as `tailor check` checks, and each problem taken back to the editor's input it comes from.

An edit is saved only when it brings no problem of its own (problems the draft had before stay the draft's) and the
loader makes of the written YAML exactly what the editor asked for.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from threading import Lock

from fastapi import HTTPException, Request

from engine import editing, localpack
from engine.compiler import CompiledModel
from engine.loader import load_model
from engine.model import Model
from runtime import releases

_CACHE: OrderedDict[str, tuple] = OrderedDict()  # digest of the files -> what checking them gave (the same files check the same)
_CACHE_SIZE = 12
_LOCK = Lock()


# -- the active release and the draft, as every console page reads them ------------------------------------
def releases_root(request: Request):
    root = getattr(request.app.state, "releases_root", None)
    if root is None:
        raise HTTPException(503, "This web app does not follow configuration releases (it was started without a data folder).")
    return root


def active_release(conn) -> dict:
    found = releases.active(conn)
    if found is None:
        raise HTTPException(503, "There is no active configuration release yet: start Tailor once with `tailor run`.")
    return found[0]


def draft_files(conn, base: dict, compiled) -> tuple[dict[str, str], dict | None]:
    """The draft's files: the saved draft, else the active release's local pack, else a new local pack's manifest."""
    saved = releases.draft(conn)
    if saved is not None:
        return dict(saved["files"]), saved
    return dict(base["files"].get(releases.LOCAL) or {"pack.yaml": releases.local_manifest(compiled.model)}), None


def _cached(key: str, make: Callable[[], tuple]) -> tuple:
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    value = make()
    with _LOCK:
        _CACHE[key] = value
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return value


def check(root: Path, base: dict, files: dict[str, str]) -> tuple[CompiledModel | None, list[releases.DraftProblem]]:
    """The draft with these local files, compiled, or its problems (remembered for the same files)."""
    all_files, packs = releases.with_local(base["files"], base["packs"], files)
    return _cached("draft:" + releases.digest(all_files, packs), lambda: releases.check_draft(base, files, root / "drafts"))


def base_model(root: Path, base: dict) -> Model:
    """The release's packs without the local pack: the definitions an overlay of the local pack changes."""
    files, packs = releases.base_of(base["files"], base["packs"])

    def make():
        row = {"files": files, "packs": packs, "digest": releases.digest(files, packs)}
        model, _problems = load_model(releases.materialise(row, root / "drafts"))
        return (model,)

    return _cached("base:" + releases.digest(files, packs), make)[0]


@dataclass
class Draft:
    """The draft as the editors see it."""

    base: dict                                # the active release
    files: dict[str, str]                     # the draft's local pack
    compiled: CompiledModel | None            # the draft compiled (None while it has problems)
    problems: list[releases.DraftProblem]
    base_model: Model | None                  # the packs without the local pack
    root: Path

    @property
    def model(self) -> Model | None:
        return self.compiled.model if self.compiled else None


def open_draft(request: Request, conn, active: CompiledModel) -> Draft:
    """The draft (or, with no draft saved, the active release's local pack) with its check."""
    root = releases_root(request)
    base = active_release(conn)
    files, _ = draft_files(conn, base, active)
    compiled, problems = check(root, base, files)
    return Draft(base, files, compiled, problems, base_model(root, base), root)


def table(model: Model, kind: str) -> dict:
    return {"entity": model.entities, "form": model.forms, "process": model.processes}[kind]


@dataclass(frozen=True)
class Located:
    """A problem of an edit: the input it belongs to (or '' when it cannot be told), and where it is written."""

    message: str
    input: str
    where: str      # 'local/forms/site_visit.yaml, line 7' (or a base pack's file)
    line: int       # in the written document (0: not in it)
    file: str = ""  # its file in the local pack, for a link to the YAML editor


@dataclass
class Edit:
    """An edit written into the draft (not yet saved): the YAML, and what checking the draft with it says."""

    written: localpack.Written
    document: str                              # the edited document's YAML (what the editor shows)
    overlay: bool                              # an overlay on a base pack's definition, or the whole definition
    compiled: CompiledModel | None
    problems: list[Located] = field(default_factory=list)  # what this edit brings
    earlier: int = 0                           # problems the draft had before, elsewhere
    existed: bool = False                      # the local pack had the document before

    @property
    def ok(self) -> bool:
        return not self.problems

    def by_input(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for p in self.problems:
            if p.input and p.input not in out:
                out[p.input] = p.message
        return out

    def lines(self) -> list[tuple[int, str, str | None]]:
        """The document's lines, numbered, with the problem of each (for the view beside the form)."""
        at = {p.line: p.message for p in self.problems if p.line}
        return [(n, text, at.get(n)) for n, text in enumerate(self.document.splitlines() or [""], start=1)]


def _key(p: releases.DraftProblem) -> tuple:
    return (p.pack, p.file, p.code, p.message)


ToInput = Callable[[tuple, dict, releases.DraftProblem], "str | None"]


def write(draft: Draft, kind: str, name: str, want: dict | None, to_input: ToInput, *, moved: tuple[str, ...] = ()) -> Edit:
    """`want` (the definition's YAML data; None: take a definition of the local pack out) written into the draft's
    local pack and checked. `to_input(path, document, problem)` names the editor's input a problem at a path of the
    written document belongs to. Raises `editing.CannotExpress` for a change no overlay can make."""
    base_def = table(draft.base_model, kind).get(name) if draft.base_model is not None else None
    overlay = base_def is not None
    if overlay:
        assert want is not None
        # the steps the overlay moves already keep moving, so one edit does not rewrite how another was written
        moved = (*moved, *_inserted(draft.files, kind, name))
        doc = localpack.overlay_document(kind, name, editing.overlay(kind, editing.data_of(base_def), want, moved))
    else:
        doc = want
    existed = localpack.find(draft.files, kind, name, overlay=overlay) is not None
    written = localpack.put(draft.files, kind, name, doc, overlay=overlay)
    document = localpack.documents(written.text)[written.index] if written.path else ""
    compiled, problems = check(draft.root, draft.base, written.files)
    before = {_key(p) for p in draft.problems}
    edit = Edit(written, document, overlay, compiled, earlier=len(draft.problems), existed=existed)
    offset = localpack.document_offset(written.text, written.index) if written.path else 0
    data = (localpack.load(document) or {}) if document else {}
    for p in problems:
        if _key(p) in before:
            continue
        line = p.line - offset if p.pack == releases.LOCAL and p.file == written.path and written.path else 0
        path = localpack.path_at(document, line, p.column) if line > 0 else None
        where = f"{p.pack}/{p.file}" + (f", line {p.line}" if p.line else "") if p.file else ""
        edit.problems.append(Located(p.message, (to_input(path, data, p) or "") if path is not None else "", where, max(line, 0),
                                     p.file if p.pack == releases.LOCAL else ""))
    if compiled is not None and want is not None:
        got = table(compiled.model, kind).get(name)
        missing = editing.differences(want, editing.data_of(got)) if got is not None else ["/"]
        if missing:
            edit.problems.append(Located(f"The YAML written does not say everything asked for ({', '.join(missing[:5])}): "
                                         f"change it in the YAML editor instead.", "", written.path, 0, written.path))
    return edit


def _inserted(files: dict[str, str], kind: str, name: str) -> list[str]:
    """The ids of the steps the local pack's overlay on `kind/name` inserts."""
    place = localpack.find(files, kind, name, overlay=True)
    if place is None:
        return []
    doc = localpack.load(localpack.documents(files[place.path])[place.index]) or {}
    return [i["step"]["id"] for i in doc.get("insert_steps") or () if isinstance(i, dict) and isinstance(i.get("step"), dict)
            and "id" in i["step"]]


def save(conn, draft: Draft, edit: Edit, user_id: int) -> None:
    releases.save_draft(conn, draft.base["id"], edit.written.files, user_id)
