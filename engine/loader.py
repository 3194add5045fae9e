"""load: pack folders in, one merged `Model` out (or every problem at once)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable

from . import checks, collector, labels, packs as packs_mod
from .build import BUILDERS, Builder
from .errors import DefinitionError, Loc, Problem
from .kinds import validate_document
from .model import Model, Overlay, Pack
from .overlays import apply_overlays
from .source import read_file, yaml_files

TABLES = ("entity", "form", "process", "role", "group", "calendar", "report", "dashboard")


def _read_pack(folder: Path, problems: list[Problem]) -> packs_mod.PackSource | None:
    display = packs_mod.display_path(folder)
    if not folder.exists():
        problems.append(Problem(Loc(display), "pack.not-found", "no such folder"))
        return None
    if not folder.is_dir():
        problems.append(Problem(Loc(display), "pack.not-a-folder", "a pack is a folder with a pack.yaml; this is a file"))
        return None
    src = packs_mod.PackSource(folder, display)
    for rel in yaml_files(folder):
        if len(rel.parts) > 1 and rel.parts[0] in packs_mod.NOT_DEFINITIONS:
            continue  # scenario tests and demo data are read by `tailor pack test` and `tailor run --demo`, not as definitions
        path = folder / rel
        # what display_path(path) says, without resolving every file's path again (a linked file may lead elsewhere)
        shown = packs_mod.display_path(path) if path.is_symlink() else str(Path(display, rel))
        docs, errs = read_file(path, shown)
        problems.extend(errs)
        src.docs.extend(d for d in docs if d.data is not None)
    return src


def load_model(paths: Iterable[str | Path]) -> tuple[Model | None, list[Problem]]:
    """Load and check packs; return the merged model (None if broken) and all problems."""
    with collector.paused():  # the model is one big, long-lived, acyclic value: see collector
        return _load_model(paths)


def _load_model(paths: Iterable[str | Path]) -> tuple[Model | None, list[Problem]]:
    problems: list[Problem] = []
    sources = [s for s in (_read_pack(Path(p), problems) for p in paths) if s]
    packs: dict[str, Pack] = {}
    built: list[tuple[Any, str]] = []  # (definition or overlay, pack)
    translations: list[labels.Translation] = []  # every pack's `kind: labels` documents
    broken: set[tuple[str, str]] = set()  # (kind, name) of documents too broken to build
    for src in sources:
        pack_docs = [d for d in src.docs if d.kind == "pack"]
        pack_file = packs_mod.display_path(src.folder / "pack.yaml")
        if not pack_docs:
            problems.append(Problem(Loc(src.display), "pack.no-manifest", "not a pack: no 'kind: pack' document (expected in pack.yaml)"))
            continue
        for extra in pack_docs[1:]:
            problems.append(Problem(extra.loc("/kind"), "pack.two-manifests", f"a pack has one 'kind: pack' document; the first is at {pack_docs[0].loc('/kind')}"))
        head = pack_docs[0]
        if head.file != pack_file:
            problems.append(Problem(head.loc("/kind"), "pack.manifest-place", f"the 'kind: pack' document belongs in {pack_file}"))
        head_problems = validate_document(head)
        if head_problems:
            problems.extend(head_problems)
            continue
        pack = Builder(head, head.data["name"]).pack_def(src.display)
        if pack.name in packs:
            problems.append(Problem(pack.loc, "pack.duplicate", f"pack '{pack.name}' is given twice (also at {packs[pack.name].loc})"))
            continue
        packs[pack.name] = pack
        for doc in src.docs:
            if doc.kind == "pack":
                continue
            doc_problems = validate_document(doc)
            if doc_problems:
                problems.extend(doc_problems)
                if doc.kind in TABLES and doc.name:
                    broken.add((doc.kind, doc.name))
                continue
            if doc.kind == "labels":
                translations.append(labels.build(doc, pack.name))
                continue
            builder = Builder(doc, pack.name, currency=pack.currency)
            built.append((BUILDERS[doc.kind](builder), pack.name))
            problems.extend(builder.problems)

    order, order_problems = packs_mod.order(packs)
    problems.extend(order_problems)
    rank = {name: i for i, name in enumerate(order)}
    ancestors = {name: packs_mod.ancestors(packs, name) for name in packs}

    definitions: dict[str, dict[str, Any]] = {k: {} for k in TABLES}
    overlays: list[Overlay] = []
    for item, pack in sorted(built, key=lambda x: rank.get(x[1], 0)):
        if isinstance(item, Overlay):
            overlays.append(item)
            continue
        table = definitions[item.kind]
        if item.name in table:
            first = table[item.name]
            hint = " (to change it from another pack, write a 'kind: overlay')" if first.pack != item.pack else ""
            problems.append(Problem(item.loc, "definition.duplicate", f"{item.kind} '{item.name}' is already defined at {first.loc}{hint}"))
            continue
        table[item.name] = item
    names = {}
    for ov in overlays:
        if (ov.pack, ov.name) in names:
            problems.append(Problem(ov.loc, "definition.duplicate", f"overlay '{ov.name}' is already defined at {names[(ov.pack, ov.name)]}"))
        names[(ov.pack, ov.name)] = ov.loc
    changes: list = []
    as_written = {kind: dict(table) for kind, table in definitions.items()}  # before overlays: what translations may also name
    problems.extend(apply_overlays(definitions, overlays, ancestors, changes))

    model = Model(
        packs=tuple(packs[n] for n in order),
        entities=MappingProxyType(definitions["entity"]), forms=MappingProxyType(definitions["form"]),
        processes=MappingProxyType(definitions["process"]), roles=MappingProxyType(definitions["role"]),
        groups=MappingProxyType(definitions["group"]), calendars=MappingProxyType(definitions["calendar"]), changes=tuple(changes),
        reports=MappingProxyType(definitions["report"]), dashboards=MappingProxyType(definitions["dashboard"]),
    )
    problems.extend(checks.check_model(model, broken))
    unchanged = replace(model, entities=as_written["entity"], forms=as_written["form"], processes=as_written["process"],
                        roles=as_written["role"], groups=as_written["group"])
    for t in translations:
        problems.extend(labels.iter_problems((model, unchanged), t, ancestors.get(t.pack, set()), broken))
    by_locale = {}
    for item in labels.merged(translations, rank):
        if isinstance(item, Problem):
            problems.append(item)
        else:
            by_locale[item.locale] = item
    model = replace(model, translations=MappingProxyType(by_locale))
    unique = sorted(set(problems), key=Problem.sort_key)
    return (None if unique else model), unique


def load(paths: Iterable[str | Path]) -> Model:
    """Load packs or raise `DefinitionError` carrying every problem found."""
    model, problems = load_model(paths)
    if problems:
        raise DefinitionError(problems)
    assert model is not None
    return model
