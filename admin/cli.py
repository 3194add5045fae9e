"""The `tailor` command line."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from engine.errors import DefinitionError, Problem, TailorError


def _report(problems: list[Problem]) -> None:
    for p in problems:
        click.echo(str(p), err=True)
    n = len(problems)
    click.secho(f"{n} problem{'s' if n != 1 else ''} found", fg="red", err=True)


@click.group()
@click.version_option(package_name="tailor")
def main() -> None:
    """Tailor: configurable CRM workflows from YAML definitions."""


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--postgres", "postgres", metavar="URL", help="the PostgreSQL server to try the DDL on, in a throwaway schema "
              "(default: TAILOR_CHECK_POSTGRES_URL, TAILOR_TEST_POSTGRES_URL, else postgresql://postgres@127.0.0.1:5432/postgres)")
@click.option("--no-postgres", is_flag=True, help="try the DDL on SQLite only")
def check(paths: tuple[Path, ...], postgres: str | None, no_postgres: bool) -> None:
    """Check pack folders and report every problem as file:line:column.

    Definitions that check clean are compiled and their DDL run in scratch databases: SQLite in memory, and
    PostgreSQL where a server is reachable (inside a transaction that is rolled back: nothing is left behind).
    """
    from engine.compiler import compile_model
    from engine.loader import load_model
    from runtime.scratch import postgres_url, try_ddl

    from engine.scenarios import check_packs

    model, problems = load_model(paths)
    if problems:
        _report(problems)
        sys.exit(1)
    assert model is not None
    problems = check_packs(paths, model)  # the packs' scenario tests name what the definitions have
    from admin import demo

    demos, demo_problems = demo.read(model)  # and so do their demo data, loaded into a fresh installation
    problems += demo_problems + demo.check(demos, model, demo.Known())
    if problems:
        _report(problems)
        sys.exit(1)
    problems, trials = try_ddl(compile_model(model), None if no_postgres else postgres or postgres_url())
    if problems:
        _report(problems)
        sys.exit(1)
    counts = {k: len(getattr(model, k)) for k in ("entities", "forms", "processes", "roles", "groups", "calendars", "reports", "dashboards")}
    packs = ", ".join(f"{p.name} {p.version}" for p in model.packs)
    click.echo(f"OK: {packs}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    for trial in trials:
        click.echo(f"  {trial.describe()}")


@main.command("compile")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="folder to write the compiled model to")
def compile_cmd(paths: tuple[Path, ...], out: Path) -> None:
    """Compile pack folders into schemas, DDL and process specs under --out."""
    from engine.compiler import compile_model, write
    from engine.loader import load

    try:
        compiled = compile_model(load(paths))
    except DefinitionError as exc:
        _report(exc.problems)
        sys.exit(1)
    files = write(compiled, out)
    click.echo(f"wrote {len(files)} files to {out}")


# -- running the platform ---------------------------------------------------------


def _platform(echo=click.echo, **options) -> None:
    """Run `admin.run.run_platform` with the environment's settings; definition problems are reported, not raised."""
    import asyncio

    from admin.run import run_platform
    from runtime.settings import Settings

    try:
        asyncio.run(run_platform(Settings.from_env(), echo=echo, **options))
    except DefinitionError as exc:
        _report(exc.problems)
        sys.exit(1)
    except TailorError as exc:  # settings refused, the worker process failed
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        pass


@main.command()
@click.option("--demo", is_flag=True, help="load the demo data of every active pack (each once) and start its demo processes")
@click.option("--external", is_flag=True, help="use the Temporal cluster at TAILOR_TEMPORAL_ADDRESS instead of starting the dev server")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def run(demo: bool, external: bool, host: str, port: int) -> None:
    """Run everything: the Temporal dev server (embedded), a worker and the web app; Ctrl-C stops all."""
    _platform(embedded=not external, demo=demo, web=True, host=host, port=port)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Run the web app alone against TAILOR_TEMPORAL_ADDRESS and TAILOR_DATABASE_URL (workers run elsewhere)."""
    _platform(embedded=False, demo=False, web=True, host=host, port=port, worker=False)


@main.command()
@click.option("--parent-pid", type=int, hidden=True, help="started by `tailor run`: stop when that process is gone")
def worker(parent_pid: int | None) -> None:
    """Run a worker alone against TAILOR_TEMPORAL_ADDRESS and TAILOR_DATABASE_URL (the scale-out path)."""
    echo = (lambda text: click.echo(f"[worker] {text}")) if parent_pid else click.echo
    _platform(echo=echo, embedded=False, demo=False, web=False, host="", port=0, parent_pid=parent_pid)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--plan", "only_plan", is_flag=True, help="print the plan and change nothing")
@click.option("--check", is_flag=True, help="exit 1 if the database has drifted from the definitions; change nothing")
@click.option("--database-url", envvar="TAILOR_DATABASE_URL", help="default: TAILOR_DATABASE_URL, else the SQLite file in TAILOR_DATA_DIR")
def migrate(paths: tuple[Path, ...], only_plan: bool, check: bool, database_url: str | None) -> None:
    """Bring the database in line with the definitions: platform tables, then entity tables as a plan.

    PATH... are pack folders (default: TAILOR_PACKS). Fields removed from the definitions are hidden,
    never dropped; renames need `renamed_from`; a type change whose values do not convert is refused.
    """
    from engine.compiler import compile_model
    from engine.errors import MigrationError
    from engine.loader import load
    from runtime import metrics
    from runtime import plan as planning
    from runtime.db import current_revision, head_revision, make_engine, upgrade
    from runtime.settings import Settings

    settings = Settings.from_env()
    try:
        compiled = compile_model(load(paths or settings.packs))
    except DefinitionError as exc:
        _report(exc.problems)
        sys.exit(1)
    engine = make_engine(database_url or settings.database_url)
    try:
        if only_plan or check:
            with engine.connect() as conn:
                revision, head = current_revision(conn), head_revision()
                ops = planning.plan(conn, compiled)
            lines = [f"upgrade the platform tables from {revision or 'nothing'} to {head}"] if revision != head else []
            lines += [op.describe() for op in ops]
            for i, line in enumerate(lines, 1):
                click.echo(f"{i}. {line}")
            if not lines:
                click.echo("the database matches the definitions: nothing to do")
            elif check:
                click.secho(f"the database has drifted from the definitions: {len(lines)} change(s) to apply "
                            f"(run `tailor migrate` to apply them)", fg="red", err=True)
                sys.exit(1)
            return
        later: list[planning.IndexBuild] = []  # PostgreSQL's index builds: concurrently, once the rest has committed
        watch = _long_steps(engine)
        with engine.begin() as conn:
            revision = current_revision(conn)
            upgrade(conn)
            ops = planning.plan(conn, compiled)
            planning.apply(conn, compiled, ops, later=later, watch=watch)
            filled = metrics.fill_work_seconds(conn, compiled)  # tasks completed before migration 0012 stored it
        if revision != head_revision():
            click.echo(f"upgraded the platform tables from {revision or 'nothing'} to {head_revision()}")
        for i, op in enumerate(ops, 1):
            click.echo(f"{i}. {op.describe()}")
        if later:
            click.echo(f"building {len(later)} index{'es' if len(later) != 1 else ''} concurrently (record writes go on) ...")
            planning.build_indexes(engine, later, watch=watch)
        click.echo(f"applied {len(ops)} change(s)" if ops else "the entity tables match the definitions: nothing to do")
        if filled:
            click.echo(f"stored the working time of {filled} task(s) completed before it was kept, for the SLA reports")
    except MigrationError as exc:
        click.secho(str(exc), fg="red", err=True)
        sys.exit(1)
    finally:
        engine.dispose()


def _long_steps(engine):
    """A live display around each long step of a migration (runtime.plan's `watch`): an index build on a big table.

    PostgreSQL reports a concurrent build's phase and progress (pg_stat_progress_create_index, read from a second
    connection every half second). SQLite reports none for an index build: a spinner shows the time spent next to the
    plan's estimate, without pretending to know how far it is.
    """
    import threading
    from contextlib import contextmanager

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    from runtime import plan as planning

    console = Console(stderr=True)

    @contextmanager
    def watch(step):
        rows = getattr(step, "rows", None)
        if rows is None or rows < planning.ESTIMATE_FROM:
            yield
            return
        estimate = getattr(step, "seconds", None)
        columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), TextColumn("{task.fields[note]}")]
        with Progress(*columns, console=console, transient=True) as progress:
            note = f"(estimate: {planning.duration_words(estimate)})" if estimate is not None else ""
            task = progress.add_task(f"building {step.name} ({rows:,} records)", total=None, note=note)
            stop = threading.Event()
            poller = None
            if isinstance(step, planning.IndexBuild):
                def poll():
                    with engine.connect() as conn:
                        while not stop.wait(0.5):
                            now = planning.build_progress(conn, step)
                            conn.rollback()  # a fresh snapshot for the next look
                            if now:
                                phase, done = now
                                progress.update(task, total=1 if done is not None else None, completed=done or 0, note=f"{phase} {note}")
                poller = threading.Thread(target=poll, daemon=True)
                poller.start()
            try:
                yield
            finally:
                stop.set()
                if poller:
                    poller.join()
    return watch


# -- business time and schedules, as the engine computes them ------------------------------


def _packs_option(fn):
    return click.option("--pack", "paths", multiple=True, type=click.Path(path_type=Path),
                        help="a pack folder (repeatable; default: TAILOR_PACKS)")(fn)


def _load(paths: tuple[Path, ...]):
    """The model of the given packs (else TAILOR_PACKS); problems reported and exit 1."""
    from engine.loader import load
    from runtime.settings import Settings

    try:
        return load(paths or Settings.from_env().packs)
    except DefinitionError as exc:
        _report(exc.problems)
        sys.exit(1)


def _words(moment) -> str:
    """'Thursday 3 December 2026, 09:00': a local time as people write it."""
    return f"{moment:%A} {moment.day} {moment:%B %Y, %H:%M}"


def _refuse(exc: Exception) -> None:
    click.secho(f"error: {exc}", fg="red", err=True)
    sys.exit(1)


@main.group()
def calendar() -> None:
    """Business time as processes count it."""


@calendar.command("due")
@click.argument("calendar_name", metavar="CALENDAR")
@click.argument("start", metavar="FROM")
@click.argument("duration", metavar="DURATION")
@_packs_option
def calendar_due(calendar_name: str, start: str, duration: str, paths: tuple[Path, ...]) -> None:
    """When DURATION from FROM is due on CALENDAR, as a step's `due:` computes it.

    FROM is local to the calendar ('2026-12-01 18:00') or carries its offset; DURATION is written as in a
    definition ('1 business day', '4 business hours', '3 days').
    """
    from runtime.preview import PreviewError, due

    model = _load(paths)
    try:
        d = due(model, calendar_name, start, duration)
    except PreviewError as exc:
        _refuse(exc)
    click.echo(f"due {_words(d.at)} ({d.at.tzinfo})")
    click.echo(f"    {d.at.isoformat()}")
    click.echo(f"{d.duration} from {_words(d.start)} on calendar '{d.calendar}' ({d.label})")


@main.group()
def schedule() -> None:
    """Recurring processes (schedule triggers)."""


@schedule.command("preview")
@click.argument("process")
@click.option("--count", default=10, show_default=True, type=click.IntRange(1, 1000), help="how many runs to show")
@click.option("--from", "after", metavar="WHEN", help="show runs from this time on, local to the process's calendar (default: now)")
@_packs_option
def schedule_preview(process: str, count: int, after: str | None, paths: tuple[Path, ...]) -> None:
    """The next runs of PROCESS's schedule triggers, as the running system starts them."""
    from engine.compiler import compile_model
    from runtime.preview import PreviewError, schedules

    compiled = compile_model(_load(paths))
    try:
        found = schedules(compiled, process, count, after)
    except PreviewError as exc:
        _refuse(exc)
    label = compiled.model.processes[process].label
    for s in found:
        when = " ".join(s.when.split()) if s.when else ""
        whom = f", for each {s.for_each}" + (f" where {when}" if when else "") if s.for_each else (f", when {when}" if when else "")
        click.echo(f"process '{process}' ({label}): {s.rule} in {s.timezone}{whom}")
        for i, at in enumerate(s.runs, 1):
            click.echo(f"{i:>4}. {_words(at)}  {at.isoformat()}")
        if len(s.runs) < count:
            click.echo("      no more runs: the rule ends" if s.runs else "      no runs from then on: the rule has ended")


@main.group()
def user() -> None:
    """Manage users (staff, portal contacts, integrations)."""


def _accounts():
    """(engine, compiled) of the configured installation, or exit with the definitions' problems."""
    from admin.run import prepare
    from runtime.settings import Settings

    try:
        return prepare(Settings.from_env(), echo=lambda *_: None)
    except DefinitionError as exc:
        _report(exc.problems)
        sys.exit(1)


def _refused(exc) -> None:
    for field_name, text in exc.errors.items():
        click.secho(f"{field_name + ': ' if field_name else ''}{text}", fg="red", err=True)
    sys.exit(1)


def _user_id(conn, username: str) -> int:
    import sqlalchemy as sa

    from runtime.schema import users

    found = conn.execute(sa.select(users.c.id).where(users.c.username == username)).scalar()
    if found is None:
        click.secho(f"no user named '{username}'", fg="red", err=True)
        sys.exit(1)
    return found


@user.command("create")
@click.argument("username")
@click.option("--name", help="full name (default: the user name)")
@click.option("--email")
@click.option("--role", "roles", multiple=True, required=True, help="a role from the definitions (repeatable)")
@click.option("--password", help="log-in password (hashed with argon2); omit for API-only users")
@click.option("--token", "with_token", is_flag=True, help="create an API token and print it (shown once)")
@click.option("--company-id", type=int, help="portal users: the company record they belong to")
def user_create(username: str, name: str | None, email: str | None, roles: tuple[str, ...], password: str | None, with_token: bool,
                company_id: int | None) -> None:
    """Create a user; with --token, print a bearer token for the REST API."""
    from argon2 import PasswordHasher

    from admin import accounts

    engine, compiled = _accounts()
    try:
        with engine.begin() as conn:
            issued = accounts.create_user(conn, compiled.model, PasswordHasher(), username=username, name=name or username, email=email or "",
                                          roles=list(roles), actor_id=None, company_id=company_id, password=password,
                                          login=password is not None, reason="tailor user create")
            token = accounts.issue_token(conn, issued.user_id, actor_id=None).token if with_token else None
    except accounts.AccountError as exc:
        _refused(exc)
    click.echo(f"created user {username} ({', '.join(roles)})")
    if token:
        click.echo(token)


@user.command("list")
@click.option("--all", "everyone", is_flag=True, help="deactivated users too")
def user_list(everyone: bool) -> None:
    """List the users: user name, name, roles, whether they can log in."""
    import sqlalchemy as sa

    from runtime.schema import users

    engine, _ = _accounts()
    with engine.connect() as conn:
        q = sa.select(users).order_by(users.c.username)
        rows = conn.execute(q if everyone else q.where(users.c.active)).mappings().all()
    for r in rows:
        state = "deactivated" if not r["active"] else "API only" if r["password_hash"] is None else "must change password" if r["must_change_password"] else "active"
        click.echo(f"{r['username']:<20} {r['name']:<28} {', '.join(r['roles'] or []):<32} {state}{' · token' if r['api_token_hash'] else ''}")


@user.command("reset-password")
@click.argument("username")
def user_reset_password(username: str) -> None:
    """Give a user a temporary password (printed once); they must change it at the next login."""
    from argon2 import PasswordHasher

    from admin import accounts

    engine, _ = _accounts()
    with engine.begin() as conn:
        issued = accounts.reset_password(conn, PasswordHasher(), _user_id(conn, username), actor_id=None, reason="tailor user reset-password")
    click.echo(issued.password)


@user.command("token")
@click.argument("username")
@click.option("--revoke", is_flag=True, help="revoke the user's token instead of creating one")
def user_token(username: str, revoke: bool) -> None:
    """Create (print once) or revoke a user's API token; a new token replaces the old one at once."""
    from admin import accounts

    engine, _ = _accounts()
    try:
        with engine.begin() as conn:
            uid = _user_id(conn, username)
            if revoke:
                accounts.revoke_token(conn, uid, actor_id=None, reason="tailor user token --revoke")
            else:
                click.echo(accounts.issue_token(conn, uid, actor_id=None, reason="tailor user token").token)
    except accounts.AccountError as exc:
        _refused(exc)
    if revoke:
        click.echo(f"revoked the API token of {username}")


@main.group()
def release() -> None:
    """Configuration releases: what every node runs (see docs/console.md)."""


def _release_env():
    from runtime.db import make_engine, upgrade
    from runtime.settings import Settings

    settings = Settings.from_env()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    with engine.begin() as conn:
        upgrade(conn)
    return settings, engine


@release.command("create")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--reason", default="", help="why (kept with the release)")
@click.option("--activate", "then_activate", is_flag=True, help="activate it at once (every node switches within seconds)")
def release_create(paths: tuple[Path, ...], reason: str, then_activate: bool) -> None:
    """Make a release of pack folders (plus the active release's local pack), after checking them."""
    from engine.compiler import compile_model
    from engine.loader import load
    from runtime import plan as planning
    from runtime import releases
    from runtime.plan import MigrationError

    try:
        compile_model(load(paths))
    except DefinitionError as exc:
        _report(exc.problems)
        sys.exit(1)
    settings, engine = _release_env()
    files, packs = releases.snapshot(paths)
    later: list = []  # PostgreSQL's index builds, run concurrently once the activation has committed
    try:
        with engine.begin() as conn:
            current = releases.active(conn)
            files, packs = releases.with_local(files, packs, current[0]["files"].get(releases.LOCAL) if current else None)
            rid = releases.create(conn, files, packs, reason=reason)
            click.echo(f"release {rid} ({', '.join(packs)})")
            if then_activate:
                activation, ops = releases.switch_to(conn, rid, settings.data_dir / "releases", reason=reason or "tailor release create",
                                                     later=later)
                for line in (op.describe() for op in ops):
                    click.echo(f"migrated: {line}")
                click.echo(f"activated: activation {activation}")
        if later:
            planning.build_indexes(engine, later, watch=_long_steps(engine))
    except DefinitionError as exc:
        _report(exc.problems)
        sys.exit(1)
    except MigrationError as exc:
        click.secho(str(exc), fg="red", err=True)
        sys.exit(1)


@release.command("list")
def release_list() -> None:
    """The activations, newest first."""
    from runtime import releases

    _, engine = _release_env()
    with engine.connect() as conn:
        for i, h in enumerate(releases.history(conn)):
            mark = "*" if i == 0 else " "  # the latest activation is what runs
            click.echo(f"{mark} release {h['id']:<5} activated {h['activated_at']:%Y-%m-%d %H:%M} UTC  {h['reason'] or ''}")


@release.command("activate")
@click.argument("release_id", type=int)
@click.option("--reason", required=True, help="why (kept in the history)")
def release_activate(release_id: int, reason: str) -> None:
    """Activate a release (an earlier one: a revert); every node switches within seconds."""
    from runtime import plan as planning
    from runtime import releases
    from runtime.plan import MigrationError

    settings, engine = _release_env()
    later: list = []  # PostgreSQL's index builds, run concurrently once the activation has committed
    try:
        with engine.begin() as conn:
            activation, ops = releases.switch_to(conn, release_id, settings.data_dir / "releases", reason=reason, later=later)
        if later:
            planning.build_indexes(engine, later, watch=_long_steps(engine))
    except LookupError as exc:
        click.secho(str(exc), fg="red", err=True)
        sys.exit(1)
    except DefinitionError as exc:
        _report(exc.problems)
        sys.exit(1)
    except MigrationError as exc:
        click.secho(str(exc), fg="red", err=True)
        sys.exit(1)
    for op in ops:
        click.echo(f"migrated: {op.describe()}")
    click.echo(f"release {release_id} activated (activation {activation})")


@release.command("export")
@click.argument("release_id", type=int, required=False)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="a folder to write the local pack into")
def release_export(release_id: int | None, out: Path) -> None:
    """Write a release's local pack (the console's changes; default: the active release) as files."""
    from runtime import releases

    _, engine = _release_env()
    with engine.connect() as conn:
        row = releases.get(conn, release_id) if release_id else (releases.active(conn) or (None,))[0]
    if row is None:
        click.secho("no such release", fg="red", err=True)
        sys.exit(1)
    files = releases.export(row)
    for rel, text in files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text, encoding="utf-8")
    click.echo(f"wrote {len(files)} file{'s' if len(files) != 1 else ''} of the local pack to {out}")


# -- client packs: scaffold, test, build, install, upgrade, compare (admin/packtool) ---------------------------


@main.group()
def pack() -> None:
    """Client packs: scaffold, test on a fake clock, build, install, upgrade, compare (see docs/packs.md)."""


def _bases_option(fn):
    return click.option("--base", "bases", multiple=True, type=click.Path(path_type=Path),
                        help="the folder of a pack the pack extends (repeatable; default: the packs shipped with Tailor)")(fn)


def _pack_error(exc: Exception) -> None:
    click.secho(f"error: {exc}", fg="red", err=True)
    sys.exit(1)


def _stack_model(folders: tuple[Path, ...], bases: tuple[Path, ...]):
    """The compiled model of `folders` and the packs they stand on; problems reported and exit 1."""
    from admin.packtool import PackError
    from admin.packtool.bases import stack
    from engine.compiler import compile_model
    from engine.loader import load_model

    try:
        paths = stack(folders, bases)
    except PackError as exc:
        _pack_error(exc)
    model, problems = load_model(paths)
    if problems:
        _report(problems)
        sys.exit(1)
    return compile_model(model)


@pack.command("new")
@click.argument("name")
@click.option("--extends", "base", required=True, help="the pack it extends, e.g. crm")
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True,
              help="where to make the pack's folder")
@_bases_option
def pack_new(name: str, base: str, folder: Path, bases: tuple[Path, ...]) -> None:
    """Make a client pack NAME to start from: pack.yaml, folders, a sample overlay and a sample scenario test."""
    from admin.packtool import PackError, scaffold
    from admin.packtool.bases import find
    from engine.packs import display_path

    try:
        base_folder = find(base, bases)
    except PackError as exc:
        _pack_error(exc)
    compiled = _stack_model((base_folder,), bases)
    target = folder / name
    try:
        made = scaffold.write(name, compiled, base, target)
    except PackError as exc:
        _pack_error(exc)
    click.echo(f"made pack {name} in {target} ({len(made)} files):")
    for path in made:
        click.echo(f"  {path.relative_to(target)}")
    click.echo(f"next: tailor check {display_path(base_folder)} {target} && tailor pack test {target}")


@pack.command("test")
@click.argument("folders", nargs=-1, required=True, type=click.Path(path_type=Path))
@_bases_option
@click.option("--min-coverage", type=click.IntRange(0, 100), help="fail when step and escalation-level coverage is below N percent")
def pack_test(folders: tuple[Path, ...], bases: tuple[Path, ...], min_coverage: int | None) -> None:
    """Run the scenario tests in FOLDER/tests on Temporal's time-skipping test server, a fresh database each.

    Reports pass or fail per scenario (a failure names its file:line and the first difference), then the step and
    escalation-level coverage of each process; exit 1 if a scenario fails or coverage is below --min-coverage.
    """
    from rich.console import Console

    from admin.packtool import PackError, coverage, runner
    from admin.packtool.bases import manifest

    compiled = _stack_model(folders, bases)
    names = [manifest(f)["name"] for f in folders]
    files = runner.scenarios_of(folders)
    if not files:
        _pack_error(f"no scenario tests in {', '.join(str(Path(f) / 'tests') for f in folders)} (see docs/packs.md for the format)")
    packs = ", ".join(f"{p.name} {p.version}" for p in compiled.model.packs)
    click.echo(f"{len(files)} scenario{'s' if len(files) != 1 else ''} of {', '.join(names)} on {packs}")
    console = Console(stderr=True)
    status = console.status("")

    def started(display: str) -> None:
        status.update(f"running {display} …")

    def done(o: runner.Outcome) -> None:
        mark = click.style("PASS", fg="green") if o.passed else click.style("FAIL", fg="red")
        click.echo(f"{mark}  {o.file}  {o.title}" + (f"  ({o.seconds:.1f} s)" if o.seconds else ""))
        for p in o.problems:
            click.echo(f"      {p}")
        if o.failure is not None:
            click.echo(f"      {o.failure}")
            for line in o.log[-20:]:
                click.echo(f"      | {line}")

    try:
        with status:
            result = runner.run(list(folders), compiled, names, on_start=started, on_done=done)
    except PackError as exc:
        _pack_error(exc)
    found = coverage.of_run(result)
    click.echo("")
    click.echo(f"coverage (steps reached, escalation levels fired) of the processes of {', '.join(names)}:")
    for c in found:
        click.echo(f"  {c.line()}" + ("" if c.counted else "  (a base pack's: not counted)"))
        if c.counted and c.missing():
            click.echo(f"      not covered: {', '.join(c.missing())}")
    covered, of = coverage.total(found)
    share = coverage.percent(covered, of)
    click.echo(f"  total: {covered}/{of} ({share}%)" if of else "  no process of these packs to cover")
    failed = [o for o in result.outcomes if not o.passed]
    passed = len(result.outcomes) - len(failed)
    click.echo("")
    summary = f"{len(result.outcomes)} scenario{'s' if len(result.outcomes) != 1 else ''}: {passed} passed, {len(failed)} failed"
    low = min_coverage is not None and of and share < min_coverage
    if low:
        summary += f"; coverage {share}% is below the minimum of {min_coverage}%"
    click.secho(summary, fg="red" if failed or low else "green")
    sys.exit(1 if failed or low else 0)


@pack.command("build")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="the archive to write (default: NAME-VERSION.zip here)")
@_bases_option
def pack_build(folder: Path, out: Path | None, bases: tuple[Path, ...]) -> None:
    """Build a versioned archive of a pack: its files and a manifest (name, version, extends ranges, sha256 of each file).

    The pack is checked first, with the packs it extends; a pack with problems is not built.
    """
    from admin.packtool import PackError, archive

    _stack_model((folder,), bases)
    try:
        pack = archive.from_folder(folder)
    except PackError as exc:
        _pack_error(exc)
    target = out or Path(archive.archive_name(pack))
    data = archive.build(pack)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    ranges = ", ".join(f"{b} {r}" for b, r in pack.extends.items()) or "nothing"
    click.echo(f"built {pack.label} (extends {ranges}): {target}, {len(pack.files)} files, sha256 {archive.digest_bytes(data)}")


def _installation(apply: bool):
    """(settings, engine) of the installation TAILOR_DATABASE_URL / TAILOR_DATA_DIR names; the platform tables are
    brought up to date only when the plan is to be applied."""
    from runtime.db import make_engine, upgrade
    from runtime.settings import Settings

    settings = Settings.from_env()
    engine = make_engine(settings.database_url)
    if apply:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        with engine.begin() as conn:
            upgrade(conn)
    return settings, engine


@pack.command("export")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="the folder to write the pack into (default: ./NAME)")
@click.option("--name", default="site_changes", show_default=True, help="the pack's name")
@click.option("--version", "version", default="0.1.0", show_default=True, help="the pack's version")
def pack_export(out: Path | None, name: str, version: str) -> None:
    """Write the active release's local changes (what admins changed in the console) as a client pack NAME.

    The pack extends the packs the changes stand on, with version ranges; it is checked to give the release's model
    before it is written, so `tailor pack build` and `tailor pack install` take it as it is."""
    import sqlalchemy as sa

    from admin.packtool import PackError, export
    from engine.packs import display_path
    from runtime import releases

    settings, engine = _installation(False)
    target = out or Path(name)
    try:
        with engine.connect() as conn:
            try:
                found = releases.active(conn)
                drafted = releases.draft(conn) is not None
            except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
                _pack_error(f"there is no installation at {settings.database_url} yet ({type(exc).__name__}): start it once with `tailor run`")
        if found is None:
            _pack_error("this installation has no configuration release yet: nothing to export")
        made = export.export(found[0], name, version, target, settings.data_dir / "releases")
    except PackError as exc:
        _pack_error(exc)
    finally:
        engine.dispose()
    ranges = ", ".join(f"{b} {r}" for b, r in made.extends.items())
    click.echo(f"exported the local changes of release {made.release_id} as {made.name} {made.version} (extends {ranges}) "
               f"into {target}: {made.definitions} definitions and overlays, {len(made.files)} files")
    if drafted:
        click.echo("note: the console has a draft that is not active; it is not part of the pack (activate it, then export again)")
    click.echo(f"next: tailor pack build {display_path(target)}")


def _print_plan(plan) -> None:
    sources = ", ".join(p.source for p in plan.given)
    click.echo(f"{plan.title()} (from {sources}) into release {plan.release_id} ({', '.join(plan.others) or 'no other packs'})")
    from admin.packtool.merge import words

    click.echo("what changes:")
    later = "(said once the new set of packs loads: see the conflicts)"
    for line in plan.words or [later if not plan.loads else "nothing a page or process would notice"]:
        click.echo(f"  {line}")
    if plan.kind == "upgrade":
        notes = [c for c in plan.carried if c.note]
        click.echo(f"the client's changes (3-way merge): {len(plan.carried)} carry over to "
                   f"{', '.join(p.label for p in plan.given)}" + (", as written" if not notes else ""))
        for c in notes:
            click.echo(f"  {c.change.pack}'s change of {words(c.change)} {c.note} ({plan.where(c.change.loc)})")
    if plan.problems:
        click.secho(f"{', '.join(p.label for p in plan.given)} do{'es' if len(plan.given) == 1 else ''} not load "
                    f"on {'its' if len(plan.given) == 1 else 'their'} own:", fg="red")
        for line in plan.problems:
            click.echo(f"  {line}")
    if plan.conflicts:
        click.secho(f"{len(plan.conflicts)} conflict{'s' if len(plan.conflicts) != 1 else ''} (nothing changes until they are resolved):",
                    fg="red")
        for c in plan.conflicts:
            for line in c.lines(plan.where):
                click.echo(f"  {line}")
    elif plan.kind == "upgrade":
        click.echo("conflicts: none")
    if not plan.loads:
        click.echo(f"database and running processes: {later}")
        return
    click.echo("database:")
    if plan.schema_refused:
        click.secho(f"  refused: {plan.schema_refused}", fg="red")
    for line in plan.schema:  # numbered by runtime.plan.describe
        click.echo(f"  {line}")
    if not plan.schema and not plan.schema_refused:
        click.echo("  nothing to change")
    click.echo("running processes:")
    for r in plan.running:  # runtime.instancemigration.Planned: they stay, or the new version's migration moves them
        click.echo(f"  {r.line()}")
    if not plan.running:
        click.echo("  none")


def _move_running(settings, engine, planned) -> None:
    """Send an upgrade's instance migrations to the running processes (after the switch), and say what happened."""
    import asyncio

    from admin.packtool import install
    from admin.run import connect

    if not planned:
        return

    async def go() -> list[str]:
        client = await connect(settings, patience=5.0)
        return await install.move(client, engine, planned)

    try:
        lines = asyncio.run(go())
    except (RuntimeError, OSError) as exc:
        click.secho(f"the running processes were not moved: Temporal at {settings.temporal_address} did not answer ({exc}); "
                    f"once it does, run the same command again to move them", fg="red")
        sys.exit(1)
    click.echo("running processes moved:")
    for line in lines:
        click.echo(f"  {line}")


def _install(sources: tuple[Path, ...], apply: bool, reason: str | None, upgrade: bool) -> None:
    import sqlalchemy as sa

    from admin.packtool import PackError, archive, install

    try:
        given = [archive.read(source) for source in sources]
    except PackError as exc:
        _pack_error(exc)
    settings, engine = _installation(apply)
    moves = []  # sent once the switch is committed: the workers write the moved instances' rows
    later: list = []  # PostgreSQL's index builds, run concurrently once the switch has committed
    failed = False
    try:
        with engine.begin() as conn:
            try:
                plan = install.make_plan(conn, given, upgrade=upgrade)
            except install.Installed:  # a retried apply: the instances an earlier one did not move yet
                moves = install.still_to_move(conn, settings.data_dir / "releases")
                if not moves:
                    raise
                plan = None
            except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:  # no platform tables: nothing installed there
                _pack_error(f"there is no installation at {settings.database_url} yet ({type(exc).__name__}): start it once with `tailor run`")
            if plan is None:
                click.echo(f"{', '.join(p.label for p in given)} is installed already; running processes still to move:")
                for r in moves:
                    click.echo(f"  {r.line()}")
                if not apply:
                    click.echo("this was a dry run: nothing was changed (add --apply to move them)")
                    return
            else:
                _print_plan(plan)
                if not plan.ok:
                    click.secho("nothing was changed", fg="red")
                    sys.exit(1)
                if not apply:
                    click.echo("this was a dry run: nothing was changed (add --apply to do it)")
                    return
                why = reason or f"tailor pack {plan.kind} {', '.join(p.label for p in given)}"
                release_id, activation, _ = install.apply(conn, plan, settings.data_dir / "releases", why, later=later)
                moves = [r for r in plan.running if r.move is not None]
        if plan is not None:
            click.secho(f"done: release {release_id} is active (activation {activation}); every node switches within seconds", fg="green")
        if later:
            from runtime import plan as planning

            click.echo(f"building {len(later)} index{'es' if len(later) != 1 else ''} concurrently (record writes go on) ...")
            try:
                planning.build_indexes(engine, later, watch=_long_steps(engine))
            except planning.MigrationError as exc:  # the release is active: said, and the moves still go
                click.secho(str(exc), fg="red", err=True)
                failed = True
        _move_running(settings, engine, moves)
        if failed:
            sys.exit(1)
    except PackError as exc:
        _pack_error(exc)
    finally:
        engine.dispose()


@pack.command("install")
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="ARCHIVE|DIR...")
@click.option("--apply", is_flag=True, help="do it (without: print the plan and change nothing)")
@click.option("--reason", help="why (kept with the release)")
def pack_install(sources: tuple[Path, ...], apply: bool, reason: str | None) -> None:
    """Add packs to the installation's configuration (TAILOR_DATABASE_URL): a dry run that prints the plan, unless --apply.

    An archive's checksums are verified; a pack whose extends ranges the installation does not satisfy is refused.
    """
    _install(sources, apply, reason, upgrade=False)


@pack.command("upgrade")
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="ARCHIVE|DIR...")
@click.option("--apply", is_flag=True, help="do it (without: print the plan and change nothing)")
@click.option("--reason", help="why (kept with the release)")
def pack_upgrade(sources: tuple[Path, ...], apply: bool, reason: str | None) -> None:
    """Put new versions of installed packs in place: the plan (a 3-way merge with the overlays of the packs that stay,
    conflicts at file:line on both sides, database, running processes), then with --apply the new release, activated.

    Give a base pack's new version together with a client pack's version made for it to upgrade both at once."""
    _install(sources, apply, reason, upgrade=True)


@pack.command("diff")
@click.argument("old", type=click.Path(path_type=Path), metavar="A")
@click.argument("new", type=click.Path(path_type=Path), metavar="B")
@_bases_option
def pack_diff(old: Path, new: Path, bases: tuple[Path, ...]) -> None:
    """What changed from version A of a pack to version B (folders or archives): in words, then as a diff of its files."""
    from admin.packtool import PackError, archive, changes
    from runtime.releases import file_changes

    try:
        a, b = archive.read(old), archive.read(new)
        if a.name != b.name:
            raise PackError(f"{old} is pack {a.name} and {new} is pack {b.name}: a diff compares two versions of one pack")
        models = changes.versions(a, b, bases)
    except PackError as exc:
        _pack_error(exc)
    click.echo(f"{a.name} {a.version} → {b.version}")
    click.echo("in words:")
    for side, problems in zip((a, b), models.problems):
        if problems:
            click.secho(f"  {side.label} ({side.source}) does not load, so it cannot be put in words: {problems[0]}"
                        + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""), fg="red")
    for line in models.words or ([] if any(models.problems) else ["nothing a page or process would notice"]):
        click.echo(f"  {line}")
    found = file_changes({a.name: a.files}, {b.name: b.files})
    click.echo("files:" if found else "files: the same")
    for f in found:
        click.echo(f"  {f.change} {f.path.split('/', 1)[1]}")
    for f in found:
        click.echo("")
        click.echo(f.diff.rstrip("\n"))


if __name__ == "__main__":
    main()
