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
def check(paths: tuple[Path, ...]) -> None:
    """Check pack folders and report every problem as file:line:column."""
    from engine.loader import load_model

    model, problems = load_model(paths)
    if problems:
        _report(problems)
        sys.exit(1)
    assert model is not None
    counts = {k: len(getattr(model, k)) for k in ("entities", "forms", "processes", "roles", "groups", "calendars", "reports", "dashboards")}
    packs = ", ".join(f"{p.name} {p.version}" for p in model.packs)
    click.echo(f"OK: {packs}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))


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
@click.option("--demo", is_flag=True, help="load the CRM pack's demo data (once) and start its demo processes")
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
        with engine.begin() as conn:
            revision = current_revision(conn)
            upgrade(conn)
            ops = planning.plan(conn, compiled)
            planning.apply(conn, compiled, ops)
        if revision != head_revision():
            click.echo(f"upgraded the platform tables from {revision or 'nothing'} to {head_revision()}")
        for i, op in enumerate(ops, 1):
            click.echo(f"{i}. {op.describe()}")
        click.echo(f"applied {len(ops)} change(s)" if ops else "the entity tables match the definitions: nothing to do")
    except MigrationError as exc:
        click.secho(str(exc), fg="red", err=True)
        sys.exit(1)
    finally:
        engine.dispose()


@main.group()
def user() -> None:
    """Manage users (staff, portal contacts, integrations)."""


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
    import datetime as dt

    import sqlalchemy as sa
    from argon2 import PasswordHasher

    from admin.access import new_token
    from admin.run import prepare
    from runtime.schema import users
    from runtime.settings import Settings

    settings = Settings.from_env()
    try:
        engine, compiled = prepare(settings, echo=lambda *_: None)
    except DefinitionError as exc:
        _report(exc.problems)
        sys.exit(1)
    unknown = [r for r in roles if r not in compiled.model.roles]
    if unknown:
        click.secho(f"unknown role(s): {', '.join(unknown)} (known: {', '.join(sorted(compiled.model.roles))})", fg="red", err=True)
        sys.exit(1)
    token, token_hash = new_token() if with_token else (None, None)
    try:
        with engine.begin() as conn:
            conn.execute(users.insert().values(username=username, name=name or username, email=email, roles=list(roles),
                                               password_hash=PasswordHasher().hash(password) if password else None,
                                               api_token_hash=token_hash, company_id=company_id,
                                               created_at=dt.datetime.now(dt.UTC)))
    except sa.exc.IntegrityError:
        click.secho(f"a user named '{username}' already exists", fg="red", err=True)
        sys.exit(1)
    click.echo(f"created user {username} ({', '.join(roles)})")
    if token:
        click.echo(token)


if __name__ == "__main__":
    main()
