"""Tailor's exception hierarchy and the located `Problem` value."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True, order=True, slots=True)
class Loc:
    """A position in a definition file (1-based line and column)."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.column}"
        return self.file


NOWHERE = Loc("<builtin>")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the definitions, and where it is."""

    loc: Loc
    code: str
    message: str
    pointer: str = ""

    def __str__(self) -> str:
        return f"{self.loc}: {self.message} [{self.code}]"

    def sort_key(self) -> tuple:
        return (self.loc.file, self.loc.line, self.loc.column, self.code, self.message)


class TailorError(Exception):
    """Base of every error Tailor raises on purpose."""


class DefinitionError(TailorError):
    """The definitions have problems; all of them are in `problems`."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = sorted(set(problems), key=Problem.sort_key)
        n = len(self.problems)
        lines = "\n".join(str(p) for p in self.problems)
        super().__init__(f"{n} problem{'s' if n != 1 else ''} in the definitions:\n{lines}")


class MigrationError(TailorError):
    """A schema change cannot be applied as planned."""


class PermissionDenied(TailorError):
    """The user lacks a permission the action needs."""
