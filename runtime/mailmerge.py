"""Mail merge: a letter per record from a template a person wrote, all of them within one time budget.

Rendering is CPU work, so the web app runs `merge_letters` in a worker thread, never on the event loop;
each letter has the limits of `engine.sandbox`, and the merge as a whole a deadline and a size.
"""
from __future__ import annotations

import time
from typing import Any, Iterable, Mapping

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
