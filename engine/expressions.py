"""Templates and conditions: Jinja2 in a sandbox, checked when definitions compile.

Definitions never carry Python; a template may only use the names its place
provides (`record`, `form`, `inputs`, ...), and `record.X` must be a real field.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import Problem
from .model import Template

ANY = None  # an allowed root name whose attributes are not checked


def _as_date(value: Any) -> _dt.date:
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    return _dt.date.fromisoformat(str(value)[:10])


def days_until(value: Any, today: _dt.date | None = None) -> int:
    """Whole days from today until a date (negative when past)."""
    return (_as_date(value) - (today or _dt.date.today())).days


def days_since(value: Any, today: _dt.date | None = None) -> int:
    return -days_until(value, today)


def environment() -> ImmutableSandboxedEnvironment:
    """The one sandboxed Jinja2 environment every template and condition runs in."""
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=True)
    env.filters["days_until"] = days_until
    env.filters["days_since"] = days_since
    return env


ENV = environment()


@dataclass(frozen=True)
class Scope:
    """Names a template may use: root -> allowed attribute names, or ANY."""

    names: Mapping[str, frozenset[str] | None]
    place: str


def _walk_names(node: nodes.Node) -> Iterator[tuple[str, str | None, nodes.Node]]:
    """Yield (root, attribute or None, node) for each variable use."""
    for n in node.find_all((nodes.Getattr, nodes.Getitem, nodes.Name)):
        if isinstance(n, nodes.Getattr) and isinstance(n.node, nodes.Name) and n.node.ctx == "load":
            yield n.node.name, n.attr, n
        elif isinstance(n, nodes.Getitem) and isinstance(n.node, nodes.Name) and isinstance(n.arg, nodes.Const) and isinstance(n.arg.value, str):
            yield n.node.name, n.arg.value, n
        elif isinstance(n, nodes.Name) and n.ctx == "load":
            yield n.name, None, n


def _local_names(ast: nodes.Node) -> set[str]:
    names: set[str] = set()
    for n in ast.find_all(nodes.Name):
        if n.ctx in ("store", "param"):
            names.add(n.name)
    return names


def check(template: Template, scope: Scope, *, expression: bool = False) -> list[Problem]:
    """Problems with a template or condition: syntax, unknown names, unknown fields."""
    source = f"{{{{ ({template.source}) }}}}" if expression else template.source
    what = "condition" if expression else "template"
    try:
        ast = ENV.parse(source)
        if expression:
            ENV.compile_expression(template.source)
        else:
            ENV.from_string(template.source)
    except TemplateSyntaxError as exc:
        where = f" (line {exc.lineno} of the {what})" if exc.lineno and exc.lineno > 1 else ""
        return [Problem(template.loc, "expression.syntax", f"invalid {what} in {scope.place}: {exc.message}{where}")]
    problems: list[Problem] = []
    local = _local_names(ast)
    seen: set[tuple[str, str | None]] = set()
    for root, attr, _ in _walk_names(ast):
        if root in local or (root, attr) in seen:
            continue
        seen.add((root, attr))
        if root not in scope.names:
            if attr is None or (root, None) not in seen:
                allowed = ", ".join(sorted(scope.names)) or "nothing"
                problems.append(Problem(template.loc, "expression.unknown-name",
                                        f"unknown name '{root}' in {scope.place} {what} (available: {allowed})"))
                seen.add((root, None))
            continue
        allowed_attrs = scope.names[root]
        if attr is not None and allowed_attrs is not None and attr not in allowed_attrs:
            problems.append(Problem(template.loc, "expression.unknown-field",
                                    f"'{root}.{attr}' in {scope.place} {what}: '{root}' has no field '{attr}' "
                                    f"(known: {', '.join(sorted(allowed_attrs)) or 'none'})"))
    return problems


def render(source: str, context: Mapping[str, Any]) -> str:
    """Render a template in the sandbox."""
    return ENV.from_string(source).render(**context)


def evaluate(source: str, context: Mapping[str, Any]) -> Any:
    """Evaluate a condition in the sandbox."""
    return ENV.compile_expression(source, undefined_to_none=False)(**context)
