"""A user's own profile: the time zone they read times in, the language they read labels in, and changing their password."""
from __future__ import annotations

import datetime as dt
import zoneinfo
from functools import lru_cache

from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from engine import labels
from forms.widgets import organisation_zone, when_text, zone_of
from runtime import words
from runtime.schema import users

from ... import accounts, sessions
from ...accounts import AccountError
from ...deps import CompiledDep, CsrfForm, CurrentUser, EngineDep, ServicesDep
from ..pages import flash, redirect, render
from ..pagewords import said

router = APIRouter(include_in_schema=False)

# The IANA areas people pick a city from; the rest of the database is old aliases (US/Eastern, GB, EST5EDT...).
AREAS = ("Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia", "Europe", "Indian", "Pacific")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # argon2 takes any length; this only keeps a pasted novel from costing a hash


@lru_cache(maxsize=1)
def _zone_names() -> tuple[str, ...]:
    return tuple(sorted(z for z in zoneinfo.available_timezones() if z.split("/")[0] in AREAS))


def zone_choices(now: dt.datetime) -> list[tuple[str, list[tuple[str, str]]]]:
    """The zones to choose from, by area: (area, [(IANA name, 'City (UTC+01:00)')])."""
    grouped: dict[str, list[tuple[str, str]]] = {}
    for name in _zone_names():
        area, _, place = name.partition("/")
        offset = now.astimezone(zoneinfo.ZoneInfo(name)).strftime("%z")
        grouped.setdefault(area, []).append((name, f"{place.replace('_', ' ').replace('/', ' – ')} (UTC{offset[:3]}:{offset[3:]})"))
    return list(grouped.items())


def profile_page(request: Request, user: dict, compiled, status: int = 200, errors: dict | None = None, chosen: str | None = None):
    """The profile page; `errors` by field name, `chosen` the zone as typed when it was refused."""
    now = dt.datetime.now(dt.UTC)
    zone = zone_of(compiled.model, user)
    return render(request, "profile/profile.html", user=user, status=status, errors=errors or {},
                  zones=zone_choices(now), chosen=(user.get("time_zone") or "") if chosen is None else chosen,
                  listed=set(_zone_names()) | {"", "UTC"},
                  organisation_zone=organisation_zone(compiled.model).key, now_text=when_text(now, zone, locale=request.state.locale), zone_name=zone.key,
                  languages=labels.languages(compiled.model), chosen_locale=user.get("locale") or "")


@router.get("/profile", response_class=HTMLResponse)
def profile(request: Request, user: CurrentUser, compiled: CompiledDep):
    return profile_page(request, user, compiled)


@router.post("/profile", response_class=HTMLResponse)
def set_time_zone(request: Request, user: CurrentUser, data: CsrfForm, engine: EngineDep, compiled: CompiledDep):
    """Keep the zone the user chose ('' for the organisation's)."""
    chosen = str(data.get("time_zone", "")).strip()
    if chosen and chosen not in zoneinfo.available_timezones():
        return profile_page(request, user, compiled, 422, {"time_zone": said(request, "Choose a time zone from the list.")}, chosen)
    with engine.begin() as conn:
        conn.execute(users.update().where(users.c.id == user["id"]).values(time_zone=chosen or None))
    locale = request.state.locale
    shown = chosen or words.text(locale, "the organisation's time zone (%(zone)s)", zone=organisation_zone(compiled.model).key)
    flash(request, words.text(locale, "Times are now shown in %(zone)s.", zone=shown))
    return redirect("/profile")


@router.post("/profile/language", response_class=HTMLResponse)
def set_language(request: Request, user: CurrentUser, data: CsrfForm, engine: EngineDep, compiled: CompiledDep):
    """Keep the language the user chose among those the packs ship ('' for the browser's). The same change as an
    administrator's on the console's user page (`accounts.set_language`), so it is checked the same way and goes into
    the console log the same way, with the user as the one who made it: their user page then lists every change of
    their language, whoever made it."""
    try:
        with engine.begin() as conn:
            name = accounts.set_language(conn, compiled.model, user["id"], str(data.get("locale", "")), actor_id=user["id"])
    except AccountError as exc:
        return profile_page(request, user, compiled, 422, exc.errors)
    locale = request.state.locale  # said in the language of the page they chose it on
    flash(request, words.text(locale, "Labels are now shown in %(language)s.", language=name) if name
          else words.text(locale, "Labels now follow your browser's language."))
    return redirect("/profile")


@router.post("/profile/password", response_class=HTMLResponse)
def change_password(request: Request, user: CurrentUser, data: CsrfForm, engine: EngineDep, compiled: CompiledDep,
                    services: ServicesDep):
    """A new password, once the current one is confirmed; every other session of the user ends, this one goes on."""
    current, new, again = (str(data.get(k, "")) for k in ("current_password", "new_password", "confirm_password"))
    if services.throttle.blocked(user["username"]):
        return profile_page(request, user, compiled, 429, {"current_password": words.text(request.state.locale,
                                                                                            "Too many wrong passwords. Wait a few minutes and try again.")})
    locale = request.state.locale
    errors: dict[str, str] = {}
    if not _verifies(services.hasher, user.get("password_hash"), current):
        services.throttle.failed(user["username"])  # a left-open session must not become a way to guess the password
        errors["current_password"] = words.text(locale, "That is not your current password.")
    if len(new) < MIN_PASSWORD:
        errors["new_password"] = words.text(locale, "Choose a new password of at least %(n)s characters.", n=MIN_PASSWORD)
    elif len(new) > MAX_PASSWORD:
        errors["new_password"] = words.text(locale, "Choose a new password of at most %(n)s characters.", n=MAX_PASSWORD)
    elif new == current and "current_password" not in errors:
        errors["new_password"] = words.text(locale, "The new password must be different from the current one.")
    if new != again:
        errors["confirm_password"] = words.text(locale, "The two new passwords are not the same.")
    if errors:
        return profile_page(request, user, compiled, 422, errors)
    digest = services.hasher.hash(new)
    with engine.begin() as conn:
        conn.execute(users.update().where(users.c.id == user["id"]).values(password_hash=digest, must_change_password=False))
        others = sessions.revoke_all(conn, user["id"]) - 1  # this one included: it is replaced just below
        request.session["sid"] = sessions.open_session(conn, user["id"])
    services.throttle.succeeded(user["username"])
    flash(request, words.text(locale, "Your password is changed.") + (
        " " + words.plural(locale, "You were logged out of %(num)s other session.", "You were logged out of %(num)s other sessions.", others)
        if others > 0 else ""))
    return redirect("/profile")


def _verifies(hasher, stored: str | None, password: str) -> bool:
    try:
        return bool(stored) and hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
