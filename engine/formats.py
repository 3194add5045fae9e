"""The `format`s Tailor's schemas use, checked as ajv-formats ("full" mode) checks them.

The `jsonschema` install has no checker for `date-time` or `uri` (they need optional packages),
so its FORMAT_CHECKER let "yesterday" through as a date-time. Browsers validate Tailor's
published schemas with ajv and ajv-formats; these checkers follow those (RFC 3339 dates and
times with a required offset, RFC 3986 URIs, the HTML-style email) so both sides give one
verdict. The expressions are ajv-formats' own (MIT), compiled as ECMA-262 through
`engine.patterns`, so they mean here what they mean there.
"""
from __future__ import annotations

from typing import Callable

import jsonschema

from . import patterns

_DATE = patterns.compile(r"^(\d\d\d\d)-(\d\d)-(\d\d)$")
_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_TIME = patterns.compile(r"^(\d\d):(\d\d):(\d\d(?:\.\d+)?)(z|([+-])(\d\d)(?::?(\d\d))?)?$", ignore_case=True)
_DATE_TIME_SEPARATOR = patterns.compile(r"t|\s", ignore_case=True)
_NOT_URI_FRAGMENT = patterns.compile(r"\/|:")
_URI = patterns.compile(
    r"^(?:[a-z][a-z0-9+\-.]*:)(?:\/?\/(?:(?:[a-z0-9\-._~!$&'()*+,;=:]|%[0-9a-f]{2})*@)?(?:\[(?:(?:(?:(?:[0-9a-f]{1,4}:){6}|::(?:[0-9a-f]{1,4}:){5}"
    r"|(?:[0-9a-f]{1,4})?::(?:[0-9a-f]{1,4}:){4}|(?:(?:[0-9a-f]{1,4}:){0,1}[0-9a-f]{1,4})?::(?:[0-9a-f]{1,4}:){3}|(?:(?:[0-9a-f]{1,4}:){0,2}"
    r"[0-9a-f]{1,4})?::(?:[0-9a-f]{1,4}:){2}|(?:(?:[0-9a-f]{1,4}:){0,3}[0-9a-f]{1,4})?::[0-9a-f]{1,4}:|(?:(?:[0-9a-f]{1,4}:){0,4}[0-9a-f]{1,4})?::)"
    r"(?:[0-9a-f]{1,4}:[0-9a-f]{1,4}|(?:(?:25[0-5]|2[0-4]\d|[01]?\d\d?)\.){3}(?:25[0-5]|2[0-4]\d|[01]?\d\d?))|(?:(?:[0-9a-f]{1,4}:){0,5}"
    r"[0-9a-f]{1,4})?::[0-9a-f]{1,4}|(?:(?:[0-9a-f]{1,4}:){0,6}[0-9a-f]{1,4})?::)|[Vv][0-9a-f]+\.[a-z0-9\-._~!$&'()*+,;=:]+)\]|(?:(?:25[0-5]"
    r"|2[0-4]\d|[01]?\d\d?)\.){3}(?:25[0-5]|2[0-4]\d|[01]?\d\d?)|(?:[a-z0-9\-._~!$&'()*+,;=]|%[0-9a-f]{2})*)(?::\d*)?(?:\/(?:[a-z0-9\-._~!$&'()*+,;=:@]"
    r"|%[0-9a-f]{2})*)*|\/(?:(?:[a-z0-9\-._~!$&'()*+,;=:@]|%[0-9a-f]{2})+(?:\/(?:[a-z0-9\-._~!$&'()*+,;=:@]|%[0-9a-f]{2})*)*)?|(?:[a-z0-9\-._~!$&'()*+,;=:@]"
    r"|%[0-9a-f]{2})+(?:\/(?:[a-z0-9\-._~!$&'()*+,;=:@]|%[0-9a-f]{2})*)*)(?:\?(?:[a-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9a-f]{2})*)?(?:#(?:[a-z0-9\-._~!$&'()*+,;=:@/?]"
    r"|%[0-9a-f]{2})*)?$", ignore_case=True)
_EMAIL = patterns.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$",
    ignore_case=True)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def is_date(text: str) -> bool:
    """RFC 3339 full-date: 2024-02-29, with a day that exists."""
    m = _DATE.search(text)
    if not m:
        return False
    year, month, day = (int(g) for g in m.groups())
    return 1 <= month <= 12 and 1 <= day <= (29 if month == 2 and _leap(year) else _DAYS[month])


def is_time(text: str) -> bool:
    """RFC 3339 full-time: 14:30:00Z or 14:30:00.5+01:00; the offset is required, a leap second only at 23:59 UTC."""
    m = _TIME.search(text)
    if not m:
        return False
    hour, minute, second = int(m.group(1)), int(m.group(2)), float(m.group(3))
    zone, sign = m.group(4), -1 if m.group(5) == "-" else 1
    zone_h, zone_m = int(m.group(6) or 0), int(m.group(7) or 0)
    if zone_h > 23 or zone_m > 59 or not zone:
        return False
    if hour <= 23 and minute <= 59 and second < 60:
        return True
    utc_minute = minute - zone_m * sign
    utc_hour = hour - zone_h * sign - (1 if utc_minute < 0 else 0)
    return utc_hour in (23, -1) and utc_minute in (59, -1) and second < 61


def is_date_time(text: str) -> bool:
    """RFC 3339 date-time: a date, 'T' (or a space), a time with its offset."""
    parts = _DATE_TIME_SEPARATOR.split(text)
    return len(parts) == 2 and is_date(parts[0]) and is_time(parts[1])


def is_uri(text: str) -> bool:
    """An absolute RFC 3986 URI (a scheme, then no spaces or other characters a URI cannot hold)."""
    return bool(_NOT_URI_FRAGMENT.search(text) and _URI.search(text))


def is_email(text: str) -> bool:
    """An address like name@example.com (ajv-formats' rule: dot-atom local part, a domain with a dot)."""
    return bool(_EMAIL.search(text))


CHECKS: dict[str, Callable[[str], bool]] = {
    "date": is_date, "time": is_time, "date-time": is_date_time, "uri": is_uri, "email": is_email,
}


def _checker() -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker(formats=())
    for name, check in CHECKS.items():
        # formats constrain strings only: a number with `format: date` is for `type` to refuse
        checker.checks(name)(lambda value, check=check: not isinstance(value, str) or check(value))
    return checker


FORMAT_CHECKER = _checker()
