"""Instance migrations of a process (`migrate:`): which running instances move to this version and how their steps map.

Pure: checks the definition (every mapped step exists in this version, no two map to one) and answers what a
migration says about a pack version. Moving instances is `runtime.instancemigration`.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterator

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from .errors import Problem
from .model import Migration, Process, walk

ANY = "any"


def _range(text: str) -> SpecifierSet:
    """'1.0.0' -> ==1.0.0; '>=1.0,<1.1' as written (InvalidSpecifier when it is neither)."""
    try:
        Version(text)
        return SpecifierSet(f"=={text}")
    except InvalidVersion:
        return SpecifierSet(text)


def applies(migration: Migration, version: str) -> bool:
    """Whether running instances started under pack version `version` move."""
    if migration.from_ == ANY:
        return True
    try:
        return _range(migration.from_).contains(Version(version), prereleases=True)
    except (InvalidSpecifier, InvalidVersion):
        return False


def step_map(migration: Migration) -> dict[str, str]:
    """{old step id: new step id} as written (steps both versions have map to themselves, unwritten)."""
    return {old: new for old, new, _ in migration.steps}


def check_migration(p: Process) -> Iterator[Problem]:
    """The problems of a process's `migrate:`, each where it is written."""
    m = p.migrate
    if m is None:
        return
    if m.from_ != ANY:
        try:
            _range(m.from_)
        except InvalidSpecifier:
            yield Problem(m.from_loc or m.loc, "migrate.from", f"migrate from '{m.from_}' of process '{p.name}': expected 'any', a version "
                                                                f"(e.g. '1.0.0') or a version range (e.g. '>=1.0,<1.1')")
    ids = [s.id for s in walk(p.steps)]
    targets: dict[str, str] = {}
    for old, new, loc in m.steps:
        if new not in ids:
            close = difflib.get_close_matches(new, ids, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f" (its steps: {', '.join(ids)})"
            yield Problem(loc, "migrate.unknown-step", f"migrate maps step '{old}' to '{new}', which is not a step of process "
                                                       f"'{p.name}'{hint}")
        elif new in targets:
            yield Problem(loc, "migrate.twice", f"migrate maps both '{targets[new]}' and '{old}' to step '{new}' of process "
                                                f"'{p.name}': one running step can become one step")
        else:
            targets[new] = old
