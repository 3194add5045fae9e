"""Durations as consultants write them: '2 business days', '4 hours', 'PT4H'."""
from __future__ import annotations

import re

from .model import Duration

_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}
_NATURAL = re.compile(r"^\s*(\d+)\s+(business\s+)?(second|minute|hour|day|week)s?\s*$", re.IGNORECASE)
_ISO = re.compile(r"^P(?!$)(?:(\d+)W)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
EXPECTED = "expected e.g. '2 business days', '4 business hours', '3 days', '30 minutes' or ISO 8601 'P2D'/'PT4H'"


class DurationError(ValueError):
    pass


def parse_duration(text: str) -> Duration:
    """Parse a duration or raise `DurationError` saying what was expected."""
    if not isinstance(text, str):
        raise DurationError(f"{EXPECTED}, found {text!r}")
    m = _NATURAL.match(text)
    if m:
        amount, business, unit = int(m.group(1)), bool(m.group(2)), m.group(3).lower()
        if business:
            if unit == "hour":
                return Duration(amount, "business_hours", text)
            if unit == "day":
                return Duration(amount, "business_days", text)
            if unit == "week":
                return Duration(amount * 5, "business_days", text)
            raise DurationError(f"business time is counted in hours, days or weeks, found '{text}'")
        return Duration(amount * _UNIT_SECONDS[unit], "seconds", text)
    m = _ISO.match(text.strip()) if isinstance(text, str) else None
    if m:
        w, d, h, mi, s = (int(x) if x else 0 for x in m.groups())
        return Duration(((w * 7 + d) * 24 + h) * 3600 + mi * 60 + s, "seconds", text)
    if re.match(r"^P.*[YM]", text.strip()) and "T" not in text.split("M")[0]:
        raise DurationError(f"years and months vary in length; write days or weeks instead of '{text}'")
    raise DurationError(f"{EXPECTED}, found '{text}'")


def parse_after_due(text: str) -> Duration | None:
    """Parse an escalation's `at:` ('due' or 'due + DURATION'); None means at the due time."""
    stripped = text.strip()
    if stripped == "due":
        return None
    m = re.match(r"^due\s*\+\s*(.+)$", stripped)
    if not m:
        raise DurationError(f"expected 'due' or 'due + DURATION', found '{text}'")
    return parse_duration(m.group(1))
