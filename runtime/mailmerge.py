"""Mail merge: a letter per record from a template a person wrote, all of them within one time budget.

Rendering is CPU work, so the web app runs `merge_letters` in a process of its own (`MergeProcess`), never on
the event loop nor in the server's interpreter;
each letter has the limits of `engine.sandbox`, and the merge as a whole a deadline and a size.
"""
from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from engine import expressions
from engine.sandbox import LIMITS, Limits, TemplateTimeout

MERGE_SECONDS = 2.0  # for all the letters of one merge (up to 500 records)
MERGE_OUTPUT = 5_000_000  # characters of all its letters together: one page shows them


def not_produced(reason: str) -> str:
    """What a letter's place says when it was not produced."""
    return f"(not produced: {reason})"


def merge_letters(template: str, records: Iterable[tuple[str, Mapping[str, Any]]], *, seconds: float = MERGE_SECONDS,
                  limits: Limits = LIMITS, output: int = MERGE_OUTPUT) -> list[tuple[str, str]]:
    """(title, letter) for each (title, template context) in `records`, in order, within `seconds` for them all.

    A letter that fails says why in its place ("(not produced: the letter is too long ...)"); once the time or the
    merge's `output` characters are spent, every remaining record gets "(not produced: ...)" without being rendered.
    Blocking: call it off the event loop (`await asyncio.to_thread(merge_letters, ...)`).
    """
    deadline = time.monotonic() + seconds
    too_late = f"the letter took too long; a merge has {seconds:g} seconds for all its letters"
    too_long = f"the letters are too long together (over {output:,} characters in one merge)"
    letters: list[tuple[str, str]] = []
    made, stop = 0, None  # characters produced; why the remaining records get no letter
    for title, context in records:
        if stop is None and time.monotonic() > deadline:
            stop = too_late
        if stop is not None:
            letters.append((title, not_produced(stop)))
            continue
        try:
            text = expressions.render(template, context, limits=limits, deadline=deadline, what="letter")
        except TemplateTimeout:
            stop = too_late
            letters.append((title, not_produced(stop)))
            continue
        except Exception as exc:  # one record's missing value (or a letter too long for it) must not stop the rest
            letters.append((title, not_produced(str(exc))))
            continue
        made += len(text)
        if made > output:
            stop = too_long
            letters.append((title, not_produced(stop)))
            continue
        letters.append((title, text))
    return letters


class MergeProcess:
    """Renders merges in a process of their own: a heavy letter then takes another core, not the web server's
    interpreter (a thread would share its GIL and slow every other request while the merge runs)."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
            return self._pool

    def merge(self, template: str, records: list[tuple[str, Mapping[str, Any]]], *, seconds: float = MERGE_SECONDS) -> list[tuple[str, str]]:
        """`merge_letters` in the merge process (blocking: call it from a worker thread). If that process dies or
        does not answer well past the budget, it is replaced and the letters say so."""
        try:
            return self._executor().submit(merge_letters, template, records, seconds=seconds).result(timeout=seconds + 30)
        except (BrokenProcessPool, FuturesTimeout, OSError):
            self.close()
            return [(title, not_produced("the letters could not be produced; try again")) for title, _ in records]

    def close(self) -> None:
        """Stop the merge process (at shutdown, or after it failed)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            for process in list(getattr(pool, "_processes", {}).values()):  # a stuck render must not outlive its request
                process.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
