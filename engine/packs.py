"""Packs: finding them on disk, resolving `extends`, ordering them base-first."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from .errors import Loc, Problem
from .model import Pack
from .source import Document

TESTS = "tests"  # a pack's scenario tests (`tailor pack test`): files of the pack, never definitions
DEMO = "demo"  # a pack's demo data (`tailor run --demo`): files of the pack, never definitions
NOT_DEFINITIONS = (TESTS, DEMO)


@dataclass
class PackSource:
    """A pack folder's documents, before they are built."""

    folder: Path
    display: str
    docs: list[Document] = field(default_factory=list)
    pack: Pack | None = None


def display_path(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(_resolved(os.getcwd())))
    except ValueError:
        return str(path)


@lru_cache(maxsize=8)
def _resolved(folder: str) -> Path:
    """The working directory resolved once, not once per file of a pack (keyed by it, so `chdir` is seen)."""
    return Path(folder).resolve()


def order(packs: dict[str, Pack]) -> tuple[list[str], list[Problem]]:
    """Packs base-first; problems for missing bases, unmet version ranges and cycles."""
    problems: list[Problem] = []
    for p in packs.values():
        for base, rng, loc in p.extends:
            if base not in packs:
                problems.append(Problem(loc, "pack.missing", f"pack '{p.name}' extends '{base}', which is not among the packs given "
                                                             f"(loaded: {', '.join(sorted(packs))})"))
                continue
            try:
                spec = SpecifierSet(rng)
            except InvalidSpecifier:
                problems.append(Problem(loc, "pack.range", f"invalid version range '{rng}' (expected e.g. '>=1.0,<2')"))
                continue
            try:
                version = Version(packs[base].version)
            except InvalidVersion:
                continue
            if not spec.contains(version, prereleases=True):
                problems.append(Problem(loc, "pack.version", f"pack '{p.name}' needs '{base}' {rng}, but '{base}' is {packs[base].version}"))
    done: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = path[path.index(name):] + [name]
            first = packs[cycle[0]]
            loc = next((loc for b, _, loc in first.extends if b == cycle[1]), first.loc)
            problems.append(Problem(loc, "pack.cycle", f"packs extend each other in a cycle: {' -> '.join(cycle)}"))
            return
        state[name] = 1
        for base, _, _ in packs[name].extends:
            if base in packs:
                visit(base, path + [name])
        state[name] = 2
        done.append(name)

    for name in sorted(packs):
        visit(name, [])
    return done, problems


def ancestors(packs: dict[str, Pack], name: str) -> set[str]:
    """Every pack that `name` extends, directly or not."""
    seen: set[str] = set()
    stack = [b for b, _, _ in packs[name].extends]
    while stack:
        b = stack.pop()
        if b in seen or b not in packs:
            continue
        seen.add(b)
        stack.extend(x for x, _, _ in packs[b].extends)
    return seen


def pack_loc(folder: str) -> Loc:
    return Loc(folder)
