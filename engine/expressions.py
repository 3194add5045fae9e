"""Templates and conditions: Jinja2 in a sandbox, checked when definitions compile.

Definitions never carry Python; a template may only use the names its place
provides (`record`, `form`, `inputs`, ...), and `record.X` must be a real field.
Every render runs within the limits of `engine.sandbox` (sizes, numbers, steps; a
deadline when the caller gives one).
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping, Union

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes

from . import sandbox
from .errors import Problem
from .model import Template
from .sandbox import LIMITS, SOURCE, Limits

ANY = None  # an allowed root name whose attributes are not checked


@dataclass(frozen=True)
class Opaque:
    """A value whose attributes a template cannot read, and what it is: a reference field holds the id of the
    record it points at, not the record (templates do not follow references), a user field a user's id."""

    what: str


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


def environment() -> sandbox.BoundedEnvironment:
    """The one sandboxed Jinja2 environment every template and condition runs in."""
    env = sandbox.BoundedEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=True)
    env.add_filters({"days_until": days_until, "days_since": days_since})
    return env


ENV = environment()


Spec = Union[frozenset, Mapping[str, Any], Opaque, None]


@dataclass(frozen=True)
class Scope:
    """Names a template may use.

    Each root maps to ANY (attributes unchecked), a frozenset of allowed
    attribute names, or a mapping attribute -> nested spec (e.g. steps.ID.data.FIELD).
    """

    names: Mapping[str, Spec]
    place: str


def _chain(node: nodes.Node) -> list[str] | None:
    """['steps', 'call', 'data', 'x'] for steps.call.data.x; None unless it starts at a loaded name."""
    parts: list[str] = []
    while True:
        if isinstance(node, nodes.Getattr):
            parts.append(node.attr)
            node = node.node
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            parts.append(node.arg.value)
            node = node.node
        elif isinstance(node, nodes.Name) and node.ctx == "load":
            parts.append(node.name)
            return parts[::-1]
        else:
            return None


def _chains(ast: nodes.Node) -> list[list[str]]:
    inner = {id(n.node) for n in ast.find_all((nodes.Getattr, nodes.Getitem))}
    out = []
    for n in ast.find_all((nodes.Getattr, nodes.Getitem, nodes.Name)):
        if id(n) in inner:
            continue  # part of a longer chain
        chain = _chain(n)
        if chain:
            out.append(chain)
    return out


def _local_names(ast: nodes.Node) -> set[str]:
    names: set[str] = set()
    for n in ast.find_all(nodes.Name):
        if n.ctx in ("store", "param"):
            names.add(n.name)
    return names


def _check_chain(chain: tuple[str, ...], spec: Spec) -> tuple[str, str, frozenset | Opaque] | None:
    """The first part of `chain` that `spec` does not allow: (path so far, part, allowed names or the Opaque value read)."""
    for i, part in enumerate(chain[1:], start=1):
        if spec is None:
            return None
        if isinstance(spec, Opaque):
            return ".".join(chain[:i]), part, spec
        if part not in spec:
            return ".".join(chain[:i]), part, frozenset(spec)
        if isinstance(spec, frozenset):
            return None
        spec = spec[part]
    return None


@dataclass(frozen=True)
class _Uses:
    """What a template's syntax tree uses: found once per distinct source, checked against each place's scope."""

    filters: tuple[tuple[bool, str], ...]  # (is a filter, not a test; its name), in the order written
    local: frozenset[str]  # names the template itself sets (loop variables, ...)
    chains: tuple[tuple[str, ...], ...]  # dotted names read, e.g. ('steps', 'call', 'data', 'x')


@lru_cache(maxsize=4096)
def _uses(source: str) -> _Uses:
    """Parse and walk once per distinct source: templates repeat across a pack, and walking jinja2's tree is slow."""
    ast = ENV.parse(source)
    return _Uses(tuple((isinstance(n, nodes.Filter), n.name) for n in ast.find_all((nodes.Filter, nodes.Test))),
                 frozenset(_local_names(ast)), tuple(tuple(c) for c in _chains(ast)))


def check(template: Template, scope: Scope, *, expression: bool = False) -> list[Problem]:
    """Problems with a template or condition: syntax, unknown names, unknown fields."""
    source = f"{{{{ ({template.source}) }}}}" if expression else template.source
    what = "condition" if expression else "template"
    try:
        uses = _uses(source)
    except TemplateSyntaxError as exc:
        where = f" (line {exc.lineno} of the {what})" if exc.lineno and exc.lineno > 1 else ""
        return [Problem(template.loc, "expression.syntax", f"invalid {what} in {scope.place}: {exc.message}{where}")]
    problems: list[Problem] = []
    for is_filter, name in uses.filters:
        if name not in (ENV.filters if is_filter else ENV.tests):
            word = "filter" if is_filter else "test"
            problems.append(Problem(template.loc, "expression.syntax", f"invalid {what} in {scope.place}: no {word} named '{name}'"))
    reported: set[str] = set()
    for chain in uses.chains:
        root = chain[0]
        if root in uses.local:
            continue
        if root not in scope.names:
            if root not in reported:
                allowed = ", ".join(sorted(scope.names)) or "nothing"
                problems.append(Problem(template.loc, "expression.unknown-name",
                                        f"unknown name '{root}' in {scope.place} {what} (available: {allowed})"))
                reported.add(root)
            continue
        bad = _check_chain(chain, scope.names[root])
        if bad and f"{bad[0]}.{bad[1]}" not in reported:
            path, part, allowed = bad
            reported.add(f"{path}.{part}")
            if isinstance(allowed, Opaque):
                problems.append(Problem(template.loc, "expression.reference",
                                        f"'{path}.{part}' in {scope.place} {what}: '{path}' is {allowed.what}; templates do not "
                                        f"follow references, so it has no '{part}'"))
                continue
            problems.append(Problem(template.loc, "expression.unknown-field",
                                    f"'{path}.{part}' in {scope.place} {what}: '{path}' has no field '{part}' "
                                    f"(known: {', '.join(sorted(allowed)) or 'none'})"))
    return problems


# Compiling is most of the cost of a render (Jinja2 caches only templates it loads by name, not
# from_string); compiled templates are immutable and safe to share between threads.
@lru_cache(maxsize=4096)
def _template(source: str):
    return ENV.from_string(source)


@lru_cache(maxsize=4096)
def _expression(source: str):
    return ENV.compile_expression(source, undefined_to_none=False)


def render(source: str, context: Mapping[str, Any], *, limits: Limits = LIMITS, deadline: float | None = None,
           what: str = "template") -> str:
    """Render a template in the sandbox within `limits` (and by `deadline`, a time.monotonic() value, if given).

    Past a limit it raises TemplateLimit, whose message names the template `what` ("letter", ...).
    Workflows give no deadline: counted limits keep a render deterministic, a clock would not.
    """
    with sandbox.spending(limits, what, deadline) as budget:
        if len(source) > limits.source:
            raise budget.refuse(SOURCE)
        parts, size = [], 0
        # generate(), not render(): the output is counted as it is made, and a render past the limit stops there
        for part in _template(source).generate(**context):
            size += len(part)
            if size > limits.output:
                raise budget.refuse(sandbox.OUTPUT)
            parts.append(part)
        return "".join(parts)


def evaluate(source: str, context: Mapping[str, Any], *, limits: Limits = LIMITS, deadline: float | None = None) -> Any:
    """Evaluate a condition in the sandbox, within `limits` (see `render`)."""
    with sandbox.spending(limits, "condition", deadline) as budget:
        if len(source) > limits.source:
            raise budget.refuse(SOURCE)
        return _expression(source)(**context)

