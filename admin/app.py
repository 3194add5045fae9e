"""The web app: staff workspace, customer portal and REST API in one FastAPI application.

Server-rendered HTML that works without scripts. Every POST carries a CSRF token; sessions are
signed, HttpOnly, SameSite=Lax cookies backed by a server-side record; every page and endpoint
checks the user's role permissions from the definitions (see `deps.py`).
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import Client

from engine.compiler import CompiledModel
from runtime import heap, releases, words
from runtime.notifications import UnreadWatch

from .api import api_routes, document_bearer
from .api.problems import Problem, problem_response, validation_problem
from .api.routing import is_api_path
from .deps import DraftHasProblems, MustChangePassword, Services, session_user
from .front import Front
from .limits import DEFAULT_MAX_BODY
from .sessions import LIFETIME
from .web.pages import render
from .web.routes import (
    alerts,
    auth,
    board,
    console,
    directory,
    editors,
    forms,
    health,
    notifications,
    portal,
    profile,
    projects,
    record_edit,
    records,
    replies,
    reports,
    search,
    tasks,
    work,
)
from .web.routes import (
    releases as release_pages,
)

HERE = Path(__file__).resolve().parent / "web"
# record_edit before records: its /records/{entity}/new must not be read as the record numbered 'new'
AREAS = (auth, work, forms, tasks, alerts, notifications, portal, replies, directory, search, record_edit, records, board, projects,
         reports, profile, console, release_pages, editors, health)
ERROR_HEADINGS = {400: "That request was not understood", 403: "Not allowed", 404: "Not found", 405: "Not possible here",
                  409: "Changed meanwhile", 413: "Too large", 422: "Not accepted", 429: "Too many attempts",
                  500: "Something went wrong", 503: "Not available just now"}
# what a page says when the code that refused the request gave no reason of its own
ERROR_TEXTS = {400: "Part of the address or the form is not in the expected format.",
               403: "Your account does not allow this. If you need it, ask your administrator.",
               404: "There is nothing at this address. It may have been deleted, or the link is wrong.",
               405: "This page cannot be used that way.",
               409: "Someone else changed this while you were working on it. Reload the page to see the latest version.",
               413: "What you sent is larger than this server accepts.",
               422: "Some of what you sent could not be accepted.",
               429: "Too many attempts in a short time. Wait a few minutes and try again.",
               500: "Tailor could not finish this request. Try again; if it keeps happening, tell your administrator the "
                    "reference below.",
               503: "A service Tailor needs is not answering. Try again in a minute."}
logger = logging.getLogger("tailor.web")


def create_app(engine: sa.Engine, compiled: CompiledModel, client: Client | None, *, secret_key: str, task_queue: str = "tailor",
               temporal_ui: str | None = None, secure_cookies: bool = False, webhooks: Sequence[str] = (),
               max_body_bytes: int = DEFAULT_MAX_BODY, releases_root: Path | None = None) -> FastAPI:
    """The app over `engine`, running processes through `client` (None: pages and API without a process engine).

    With `releases_root` (where release files are unpacked), the app follows the active configuration release: a
    newly activated one replaces `app.state.compiled` within a second, without a restart."""
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        follower = None
        if releases_root is not None:
            with engine.connect() as conn:
                seen = releases.version(conn)

            def switch(new: CompiledModel, _row: dict) -> None:
                app.state.compiled = new
                heap.after_switch()

            follower = asyncio.create_task(releases.Follower(engine, releases_root, switch, seen=seen, name="the web app").run())
        yield
        if follower is not None:
            follower.cancel()
        app.state.services.merges.close()  # the merge process ends with the app

    app = FastAPI(title="Tailor", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json", lifespan=lifespan)
    app.state.compiled = compiled  # the active configuration: swap it with one assignment
    app.state.releases_root = releases_root
    app.state.services = Services(engine=engine, client=client, templates=Jinja2Templates(directory=HERE / "templates"),
                                  task_queue=task_queue, webhooks=tuple(webhooks), temporal_ui=temporal_ui)
    words.install(app.state.services.templates.env)  # the pages' own words in the reader's language
    app.state.unread_watch = UnreadWatch(engine)  # one poller for every open page's bell (routes/notifications.py)
    # one layer in front of the routes: the size limit, then the API's token or the pages' session cookie
    app.add_middleware(Front, max_bytes=max_body_bytes, secret_key=secret_key, session_cookie="tailor_session", same_site="lax",
                       https_only=secure_cookies, max_age=int(LIFETIME.total_seconds()))
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    # the API first: a request is matched against the routes in order, and integrations send the most requests (a
    # submission then tries its own 20 routes, not the 112 pages' before them); no page's path starts with /api/. The
    # API's routes are the app's own, not an included router's (each inclusion is matched through on every request).
    app.router.routes.extend(api_routes())
    openapi = app.openapi
    app.openapi = lambda: app.openapi_schema or document_bearer(openapi())
    for area in AREAS:
        app.include_router(area.router)

    @app.exception_handler(Problem)
    async def api_problem(request: Request, exc: Problem) -> Response:
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        if is_api(request):
            return problem_response(validation_problem(exc))
        return await error_page(request, 404 if any(e.get("loc", ("",))[0] == "path" for e in exc.errors()) else 400, "")

    @app.exception_handler(MustChangePassword)
    async def must_change(request: Request, exc: MustChangePassword) -> Response:
        request.session["flash"] = "Choose your own password before you go on: the one you were given was temporary."
        return RedirectResponse("/profile#password", status_code=303)

    @app.exception_handler(DraftHasProblems)
    async def fix_draft_first(request: Request, exc: DraftHasProblems) -> Response:
        """A structured editor on a draft that does not compile: to the YAML editor, where every problem is listed at its
        line, with a word why."""
        n = exc.problems
        request.session["flash"] = (f"The draft has {n} problem{'s' if n != 1 else ''}: fix {'them' if n != 1 else 'it'} here "
                                    f"before using the structured editors.")
        return RedirectResponse("/admin/draft#problems", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if is_api(request):
            detail = exc.detail if isinstance(exc.detail, str) and exc.detail != _phrase(exc.status_code) else ""
            return problem_response(Problem(exc.status_code, _phrase(exc.status_code), detail), headers=dict(exc.headers or {}) or None)
        if exc.status_code == 401:
            return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
        return await error_page(request, exc.status_code, exc.detail if isinstance(exc.detail, str) else "", dict(exc.headers or {}) or None)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        # Starlette logs the exception again after this answer; the reference ties what the person sees to the log
        reference = uuid.uuid4().hex[:8]
        logger.error("unhandled error %s on %s %s", reference, request.method, request.url.path, exc_info=exc)
        if is_api(request):
            return problem_response(Problem(500, "Internal Server Error", f"Something went wrong (reference {reference})."))
        return await error_page(request, 500, "", reference=reference)

    return app


def is_api(request: Request) -> bool:
    return is_api_path(request.url.path)


def _phrase(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


async def error_page(request: Request, status: int, message: str, headers: dict | None = None, reference: str = "") -> Response:
    """A styled error page that says what happened and offers a way back (never a traceback)."""
    try:
        user = await run_in_threadpool(session_user, request, request.app.state.services.engine)
    except Exception:  # an error page must render even when the database or the session does not answer
        user = None
    portal = user is not None and "access" not in _perms(request, user)
    back = ("/portal", "Back to your requests") if portal else ("/", "Back to My work") if user else ("/login", "Log in")
    if user and back[0] == request.url.path and status < 500:  # the way back is the page refused: it would only come back here
        back = ("/profile", "Go to your profile")
    context = {"code": status, "heading": ERROR_HEADINGS.get(status, _phrase(status)),
               "message": message if message and message != _phrase(status) else ERROR_TEXTS.get(status, ERROR_TEXTS[500]),
               "back_url": back[0], "back_label": back[1], "previous": _previous_page(request, back[0]), "reference": reference}
    try:
        response = render(request, "errors/error.html", user=user, status=status, **context)
    except Exception:  # e.g. the failure was in the session itself: the same page without the user's navigation
        logger.exception("the error page could not be rendered with the user's session")
        template = request.app.state.services.templates.get_template("errors/error.html")
        response = HTMLResponse(template.render(user=None, nav=[], staff=False, home_url="/", csrf_token="", flash=None, **context),
                                status_code=status)
    for k, v in (headers or {}).items():
        response.headers[k] = v
    return response


def _previous_page(request: Request, back_url: str) -> str:
    """The page the person came from, if it is on this site and is not where the main way back leads."""
    referer = request.headers.get("referer", "")
    here = f"{request.url.scheme}://{request.url.netloc}"
    if not referer.startswith(here + "/"):
        return ""
    path = referer[len(here):]
    return "" if path in (back_url, str(request.url.path)) or path.startswith("//") else path


def _perms(request: Request, user: dict) -> set[str]:
    from .access import permissions_of

    perms = permissions_of(request.app.state.compiled.model, user)
    return perms | ({"access"} if "admin" in perms else set())
