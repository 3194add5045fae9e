"""Step and escalation-level coverage of a test run, per process (the CI gate `--min-coverage` reads it).

A step is covered when some scenario reached it (a task was made for it); an escalation level when it fired (its
alert was raised, or its reassignment happened). Coverage counts both over the processes of the packs under test
(those they define or change with an overlay); processes of the base packs that scenarios happened to run are
shown beside them but not counted.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from engine.compiler import CompiledModel
from runtime.interpreter import walk

from .runner import Run


@dataclass(frozen=True)
class ProcessCoverage:
    name: str
    label: str
    counted: bool  # a process of a pack under test
    steps: tuple[str, ...]
    levels: tuple[tuple[str, int], ...]
    reached: frozenset[str]
    raised: frozenset[tuple[str, int]]

    @property
    def covered(self) -> int:
        return len(self.reached) + len(self.raised)

    @property
    def total(self) -> int:
        return len(self.steps) + len(self.levels)

    def line(self) -> str:
        """'lead_follow_up (Lead follow-up): steps 5/5 (100%), escalation levels 3/4 (75%)'."""
        def part(n: int, of: int) -> str:
            return f"{n}/{of} ({percent(n, of)}%)" if of else "none"
        return (f"{self.name} ({self.label}): steps {part(len(self.reached), len(self.steps))}, "
                f"escalation levels {part(len(self.raised), len(self.levels))}")

    def missing(self) -> list[str]:
        out = [f"step {s} not reached" for s in self.steps if s not in self.reached]
        return out + [f"{s} level {n} never fired" for s, n in self.levels if (s, n) not in self.raised]


def percent(n: int, of: int) -> int:
    return 100 if not of else int(100 * n / of)


def owned(compiled: CompiledModel, packs: Iterable[str]) -> set[str]:
    """The processes the packs define or change with an overlay."""
    packs = set(packs)
    mine = {name for name, p in compiled.model.processes.items() if p.pack in packs}
    return mine | {c.target.split("/", 1)[1] for c in compiled.model.changes if c.target.startswith("process/") and c.pack in packs}


def of_run(run: Run) -> list[ProcessCoverage]:
    """Coverage of every process of the packs under test, and of any other process a scenario ran."""
    reached = {r for o in run.outcomes for r in o.reached}
    raised = {r for o in run.outcomes for r in o.raised}
    counted = owned(run.compiled, run.packs)
    shown = counted | {p for p, _ in reached}
    out = []
    for name in sorted(shown):
        spec = run.compiled.process_specs.get(name)
        if spec is None:
            continue
        tasks = [s for s in walk(spec["steps"]) if s.get("kind") != "parallel"]
        steps = tuple(s["id"] for s in tasks)
        levels = tuple((s["id"], level["level"]) for s in tasks for level in s.get("escalate") or ())
        out.append(ProcessCoverage(name, spec["label"], name in counted, steps, levels,
                                   frozenset(s for p, s in reached if p == name and s in steps),
                                   frozenset((s, n) for p, s, n in raised if p == name and (s, n) in levels)))
    return out


def total(found: list[ProcessCoverage]) -> tuple[int, int]:
    """(covered, of) over the counted processes."""
    counted = [c for c in found if c.counted]
    return sum(c.covered for c in counted), sum(c.total for c in counted)
