"""The `tailor` command line."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from engine.errors import DefinitionError, Problem


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
    counts = {k: len(getattr(model, k)) for k in ("entities", "forms", "processes", "roles", "groups", "calendars")}
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


if __name__ == "__main__":
    main()
