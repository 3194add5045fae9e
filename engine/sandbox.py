"""What one template render may spend: sizes, numbers, steps and time, enforced inside the Jinja2 sandbox.

Jinja2's sandbox keeps a template away from Python; it does not stop `{{ 10**3000000 }}` or
`{{ 'a' * 10**7 }}` from taking the machine. Here every value a template makes is checked before it is
made wherever its size can be known in advance (powers, products, repetition, padding, joins), and after
otherwise; a render counts its steps (loop turns, calls, operations, outputs) and the characters it
handles, and may carry a deadline. Steps and characters are counted, not timed, so that a render in a
workflow stays deterministic; only a caller off the workflow (the mail merge) adds a deadline.

The budget of the render under way is in a context variable (one per thread), so the hooks Jinja2 calls
(`call_binop`, `call`, filters, `finalize`) need no extra argument, and templates cannot reach it.
"""
from __future__ import annotations

import decimal
import math
import re
import time
import types
from contextvars import ContextVar
from dataclasses import dataclass
from functools import update_wrapper
from typing import Any, Callable, Iterator, Mapping

from jinja2 import nodes, pass_context
from jinja2.filters import make_attrgetter
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEscapeFormatter, SandboxedFormatter
from jinja2.utils import Namespace
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

from .errors import TailorError


class TemplateLimit(TailorError):
    """A template went past one of its limits; the message says which, for the person who wrote it."""


class TemplateTimeout(TemplateLimit):
    """A template ran past its deadline."""


@dataclass(frozen=True)
class Limits:
    """What one render may spend. Sizes are in characters (or items of a list)."""

    output: int = 1_000_000  # the rendered text
    text: int = 1_000_000  # any one text the template makes on the way
    items: int = 100_000  # any one list (or range) it makes; Jinja2's own sandbox allows ranges this long
    digits: int = 1000  # any one number
    steps: int = 100_000  # loop turns, calls, operations and outputs
    work: int = 10_000_000  # characters handled in all, an item of a list counting as ITEM_COST characters
    source: int = 100_000  # the template itself


LIMITS = Limits()
# Sorting, comparing or copying a list costs per item what a text costs per few dozen characters
# (a sort of 100,000 items takes about as long as reading 2 MB of text).
ITEM_COST = 20

NUMBER = "a number in the {what} is too large (over {digits:,} digits)"
TEXT = "a text in the {what} is too long (over {text:,} characters)"
LIST = "a list in the {what} is too long (over {items:,} items)"
OUTPUT = "the {what} is too long (over {output:,} characters)"
STEPS = "the {what} takes too many steps (over {steps:,}); is a loop too long?"
WORK = "the {what} handles too much text (over {work:,} characters in all)"
TIME = "the {what} took too long"
DEPTH = "the {what} calls itself too deeply"
SOURCE = "the {what} is too long to run (over {source:,} characters)"


class Budget:
    """The limits of one render and what it has spent so far."""

    def __init__(self, limits: Limits = LIMITS, what: str = "template", deadline: float | None = None, counting: bool = True):
        self.limits, self.what, self.deadline, self.counting = limits, what, deadline, counting
        self.steps = 0
        self.work = 0

    def refuse(self, message: str, error: type[TemplateLimit] = TemplateLimit) -> TemplateLimit:
        """The error for one of the messages above, in this render's words."""
        return error(message.format(what=self.what, **vars(self.limits)))

    def step(self) -> None:
        """Count one step; past the steps or the deadline the render stops."""
        if not self.counting:
            return
        self.steps += 1
        if self.steps > self.limits.steps:
            raise self.refuse(STEPS)
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise self.refuse(TIME, TemplateTimeout)

    def spend(self, characters: int) -> None:
        """Count characters (or items) handled."""
        if self.counting:
            self.work += characters
            if self.work > self.limits.work:
                raise self.refuse(WORK)


_UNCOUNTED = Budget(counting=False)  # outside any render: sizes still checked, nothing counted
_CURRENT: ContextVar[Budget | None] = ContextVar("tailor_template_budget", default=None)


def current() -> Budget:
    """The budget of the render under way in this thread."""
    return _CURRENT.get() or _UNCOUNTED


class spending:
    """Run a render within `limits` (and by `deadline`, a time.monotonic() value); errors name it `what`.

    A class rather than a @contextmanager: it wraps every render, which itself takes only microseconds.
    """

    __slots__ = ("budget", "token")

    def __init__(self, limits: Limits = LIMITS, what: str = "template", deadline: float | None = None):
        self.budget = Budget(limits, what, deadline)

    def __enter__(self) -> Budget:
        self.token = _CURRENT.set(self.budget)
        return self.budget

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: types.TracebackType | None) -> None:
        _CURRENT.reset(self.token)
        if kind is not None and issubclass(kind, RecursionError):
            raise self.budget.refuse(DEPTH) from None
        if kind is not None and issubclass(kind, (OverflowError, decimal.Overflow)):
            raise self.budget.refuse(NUMBER) from None
        if kind is not None and issubclass(kind, MemoryError):
            raise self.budget.refuse(TEXT) from None


# -- sizes ------------------------------------------------------------------------------------

_TEXTS = (str, bytes)
_CONTAINERS = (list, tuple, set, frozenset, type({}.keys()), type({}.values()))
_LISTS = (*_CONTAINERS, dict, type({}.items()))
_SCALAR = 32  # characters a date, a float or another plain value prints in, at most about


def cost(value: Any) -> int:
    """The work of reading `value` once: its characters, or ITEM_COST a list item (a range's items are cheap)."""
    if isinstance(value, _TEXTS):
        return len(value)
    if isinstance(value, _LISTS):
        return len(value) * ITEM_COST
    if isinstance(value, range):
        return len(value)
    return 0


def text_size(value: Any, limit: int) -> tuple[int, int]:
    """About how many characters `str(value)` has, and how deep it nests; counting stops just past `limit`.

    Containers are walked item by item: a list may hold one long text many times over, so its length says
    nothing about its printed size.
    """
    total, deepest, todo = 0, 0, [(value, 1)]
    while todo and total <= limit:
        v, depth = todo.pop()
        deepest = max(deepest, depth)
        if isinstance(v, str):
            total += len(v) + 2
        elif isinstance(v, int):
            total += v.bit_length() // 3 + 2
        elif isinstance(v, (dict, Namespace, type({}.items()))):
            v = dict(v) if not isinstance(v, Namespace) else v._Namespace__attrs  # type: ignore[attr-defined]
            total += 2 + 4 * len(v)
            if total <= limit:
                todo.extend((x, depth + 1) for pair in v.items() for x in pair)
        elif isinstance(v, _CONTAINERS):
            total += 2 + 2 * len(v)
            if total <= limit:
                todo.extend((x, depth + 1) for x in v)
        elif isinstance(v, bytes):
            total += 4 * len(v) + 3
        else:
            total += _SCALAR
    return total, deepest


def _refuse_big_text(value: Any) -> None:
    """Refuse a value whose printed form would be too long, before anything prints it."""
    budget = current()
    if isinstance(value, str):
        size = len(value)
    elif isinstance(value, (int, float)):
        return
    else:
        size = text_size(value, budget.limits.text)[0]
    if size > budget.limits.text:
        raise budget.refuse(TEXT)


def checked(value: Any) -> Any:
    """A value the template made, if it is within the limits (and counted as work)."""
    budget = current()
    if isinstance(value, int):
        if value.bit_length() > budget.limits.digits * 3.33 + 4:
            raise budget.refuse(NUMBER)
    elif isinstance(value, decimal.Decimal):
        if value.is_finite() and value and abs(value.adjusted()) > budget.limits.digits:
            raise budget.refuse(NUMBER)
    elif isinstance(value, _TEXTS):
        _text_over(len(value))
    elif isinstance(value, (*_LISTS, range)):
        _items_over(len(value))
    budget.spend(cost(value))
    return value


def _text_over(estimate: float) -> None:
    """Refuse a text that would have about `estimate` characters, if that is too many."""
    budget = current()
    if estimate > budget.limits.text:
        raise budget.refuse(TEXT)


def _items_over(estimate: float) -> None:
    """Refuse a list that would have `estimate` items, if that is too many."""
    budget = current()
    if estimate > budget.limits.items:
        raise budget.refuse(LIST)


def _width(text: str) -> int:
    """A width or precision written in a format, refused when absurd before int() reads it."""
    if len(text) > 9:
        raise current().refuse(TEXT)
    return int(text)


# -- operators --------------------------------------------------------------------------------

_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")


def _printf(fmt: str, args: Any) -> None:
    """Refuse `fmt % args` when its result would be too long: widths, precisions and the values printed."""
    fields = _PRINTF.findall(fmt)
    values = list(args.values()) if isinstance(args, Mapping) else list(args) if isinstance(args, tuple) else [args]
    limit = current().limits.text
    widths = [_width(w) for field in fields for w in field if w and w != "*"]
    if any(w == "*" for field in fields for w in field):  # a width taken from the values
        widths += [v for v in values if isinstance(v, int)]
    widest = max(widths, default=0)
    biggest = max((text_size(v, limit)[0] for v in values), default=0)
    _text_over(len(fmt) + len(fields) * max(widest, biggest))


def _power(left: Any, right: Any) -> None:
    if (isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1
            and right * math.log10(abs(left)) > current().limits.digits):
        raise current().refuse(NUMBER)


def _product(left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int):
        if (left.bit_length() + right.bit_length()) * 0.30103 > current().limits.digits + 1:
            raise current().refuse(NUMBER)
        return
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, _TEXTS) and isinstance(times, int):
            _text_over(len(seq) * times)
        elif isinstance(seq, (list, tuple)) and isinstance(times, int):
            _items_over(len(seq) * times)


def _modulo(left: Any, right: Any) -> None:
    if isinstance(left, str):
        _printf(left, right)


# The operators whose result can be far bigger than their operands; the others only grow by addition.
_BINOP_CHECKS: dict[str, Callable[[Any, Any], None]] = {"**": _power, "*": _product, "%": _modulo}


# -- str methods and filters -------------------------------------------------------------------
# A check runs before the call with the same arguments; it refuses a call whose result would be too
# long, and may return the arguments to call with instead (an iterable it had to read into a list).

def _pad(s: str, width: int = 0, fillchar: str = " ") -> None:
    _text_over(max(len(s), width if isinstance(width, int) else 0))


def _expandtabs(s: str, tabsize: int = 8) -> None:
    _text_over(len(s) + s.count("\t") * (tabsize if isinstance(tabsize, int) else 0))


def _replaced(s: Any, old: Any, new: Any, count: int | None = None) -> None:
    s, old, new = (x if isinstance(x, _TEXTS) else str(x) for x in (s, old, new))
    times = len(s) + 1 if not old else s.count(old)
    if count is not None and isinstance(count, int) and count >= 0:
        times = min(times, count)
    _text_over(len(s) + times * (len(new) - len(old)))


def _joined(sep: Any, items: list) -> None:
    _items_over(len(items))
    limit = current().limits.text
    total = len(str(sep)) * max(len(items) - 1, 0)
    for item in items:
        total += text_size(item, limit)[0]
        if total > limit:
            break
    _text_over(total)


def _str_join(s: str, iterable: Any) -> tuple:
    items = list(iterable)
    _joined(s, items)
    return (items,), {}


def _translate(s: str, table: Any) -> None:
    longest = max((len(v) for v in table.values() if isinstance(v, str)), default=1) if isinstance(table, Mapping) else 1
    _text_over(len(s) * max(longest, 1))


def _to_bytes(n: int, length: Any = 1, *args: Any, **kwargs: Any) -> None:
    if isinstance(length, int):
        _text_over(length)


_TEXT_METHOD_CHECKS: dict[str, Callable[..., Any]] = {
    "ljust": _pad, "rjust": _pad, "center": _pad, "zfill": _pad, "expandtabs": _expandtabs,
    "replace": _replaced, "join": _str_join, "translate": _translate,
}
# (kind of object, method) -> check; bytes have the methods of str
_METHOD_CHECKS: dict[tuple[type, str], Callable[..., Any]] = {
    **{(kind, name): check for kind in (str, bytes) for name, check in _TEXT_METHOD_CHECKS.items()},
    (int, "to_bytes"): _to_bytes,
}


def _method_check(method: Any) -> Callable[..., Any] | None:
    """The check for a call of `method`, a method of a text or a number, if it has one."""
    owner, name = getattr(method, "__self__", None), getattr(method, "__name__", "")
    for kind in (str, bytes, int):
        if isinstance(owner, kind):
            return _METHOD_CHECKS.get((kind, name))
    return None


def _filter_join(context, value: Any, d: str = "", attribute: Any = None) -> tuple:
    items = list(value)
    if attribute is not None:  # measure what is joined, not the records it is taken from
        items = list(map(make_attrgetter(context.environment, attribute), items))
    _joined(d, items)
    return (items, d), {}


def _filter_center(context, value: Any, width: int = 80) -> None:
    _pad(str(value), width)


def _filter_indent(context, s: Any, width: Any = 4, first: bool = False, blank: bool = False) -> None:
    s = str(s)
    _text_over(len(s) + (s.count("\n") + 1) * (width if isinstance(width, int) else len(str(width))))


def _filter_wordwrap(context, s: Any, width: int = 79, break_long_words: bool = True, wrapstring: str | None = None,
                     break_on_hyphens: bool = True) -> None:
    # at most a line per character, each ending in the wrap string
    _text_over(len(str(s)) * (1 + len(wrapstring if wrapstring is not None else context.environment.newline_sequence)))


def _filter_replace(context, s: Any, old: Any, new: Any, count: int | None = None) -> None:
    _replaced(s, old, new, count)


def _filter_format(context, value: Any, *args: Any, **kwargs: Any) -> None:
    _printf(str(value), kwargs or args)


def _filter_urlize(context, value: Any, trim_url_limit: Any = None, nofollow: bool = False, target: Any = None,
                   rel: Any = None, extra_schemes: Any = None) -> None:
    s = str(value)
    words = len(s.split()) + 1
    _text_over(3 * len(s) + words * (80 + len(str(target or "")) + len(str(rel or ""))))


def _filter_tojson(context, value: Any, indent: Any = None) -> None:
    size, depth = text_size(value, current().limits.text)
    _text_over(size * (1 + (indent if isinstance(indent, int) and indent > 0 else 0) * depth))


def _filter_pprint(context, value: Any) -> None:
    size, depth = text_size(value, current().limits.text)
    _text_over(size * (1 + depth))


def _filter_batch(context, value: Any, linecount: Any, fill_with: Any = None) -> None:
    if isinstance(linecount, int):
        _items_over(linecount)


def _filter_slice(context, value: Any, slices: Any, fill_with: Any = None) -> None:
    if isinstance(slices, int):
        _items_over(slices)
        current().spend(slices * ITEM_COST)


def _filter_sum(context, iterable: Any, attribute: Any = None, start: Any = 0) -> tuple | None:
    if not isinstance(start, _LISTS):
        return None
    items = list(iterable)  # adding up lists copies each partial sum again: count it all
    total = len(start) + sum(len(x) for x in items if isinstance(x, _LISTS))
    _items_over(total)
    current().spend(total * len(items) * ITEM_COST)
    return (items, attribute, start), {}


_FILTER_CHECKS: dict[str, Callable[..., Any]] = {
    "join": _filter_join, "center": _filter_center, "indent": _filter_indent, "wordwrap": _filter_wordwrap,
    "replace": _filter_replace, "format": _filter_format, "urlize": _filter_urlize, "tojson": _filter_tojson,
    "pprint": _filter_pprint, "batch": _filter_batch, "slice": _filter_slice, "sum": _filter_sum,
}
# Filters that look at a list's items without printing it; every other filter prints its input.
_STRUCTURAL_FILTERS = frozenset({
    "attr", "batch", "count", "d", "default", "dictsort", "first", "groupby", "items", "join", "last", "length", "list",
    "map", "max", "min", "random", "reject", "rejectattr", "reverse", "select", "selectattr", "slice", "sort", "sum",
    "unique",
})
# Filters written in Python that read their text word by word: a character costs them several times
# what it costs a filter working in C (measured: urlize ~100 ns a character, wordwrap ~40, upper ~1).
_FILTER_COST = {"urlize": 10, "wordwrap": 4, "wordcount": 2, "title": 2}
_LOOP_KWARGS = ("_loop_vars", "_block_vars")  # what Jinja2 adds to calls inside loops and blocks


def _call(func: Callable[..., Any], pass_arg: str | None, context: Any, value: Any, args: Any, kwargs: Any) -> Any:
    """Call a filter or test as Jinja2 would, with the context, eval context or environment it asks for."""
    if pass_arg is None:
        return func(value, *args, **kwargs)
    first = {"context": context, "eval_context": context.eval_ctx, "environment": context.environment}[pass_arg]
    return func(first, value, *args, **kwargs)


def bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` as a filter that counts a step, checks its arguments before it runs and its result after.

    The bounded filter takes the context, so Jinja2 never runs it at compile time, outside any budget.
    """
    pass_arg = getattr(getattr(func, "jinja_pass_arg", None), "name", None)
    precheck = _FILTER_CHECKS.get(name)
    prints = name not in _STRUCTURAL_FILTERS
    weight = _FILTER_COST.get(name, 1)

    def bounded(context, value: Any, *args: Any, **kwargs: Any) -> Any:
        budget = current()
        budget.step()
        budget.spend(cost(value) * weight)
        if prints:
            _refuse_big_text(value)
        if precheck is not None:
            replaced = precheck(context, value, *args, **kwargs)
            if replaced is not None:
                (value, *args), kwargs = replaced
        return checked(_call(func, pass_arg, context, value, args, kwargs))

    update_wrapper(bounded, func)
    return pass_context(bounded)  # after update_wrapper, which copies the filter's own pass_* mark


def bounded_test(func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` as a test that counts a step and the work of reading its operands (`'x' is in long_text`)."""
    pass_arg = getattr(getattr(func, "jinja_pass_arg", None), "name", None)

    def bounded(context, value: Any, *args: Any, **kwargs: Any) -> Any:
        budget = current()
        budget.step()
        budget.spend(cost(value) + sum(cost(a) for a in args))
        return _call(func, pass_arg, context, value, args, kwargs)

    update_wrapper(bounded, func)
    return pass_context(bounded)


def bounded_range(*args: int) -> range:
    """Jinja2's `range`, refused in words when too long."""
    rng = range(*args)
    _items_over(len(rng))
    return rng


# -- hooks the compiled template calls ----------------------------------------------------------
# `_Metering` places them into every compiled template as filters under names no template can write
# (a filter name is an identifier); as filters they are called directly, not through the sandbox's `call`.
# Each takes the context, so that Jinja2 never runs one at compile time, outside any budget.

class _Metered:
    """An iterable a `for` loop runs over, counting a step per turn."""

    __slots__ = ("source",)

    def __init__(self, source: Any):
        self.source = source

    def __iter__(self) -> Iterator[Any]:
        budget = current()
        for item in self.source:
            budget.step()
            yield item

    def __len__(self) -> int:
        return len(self.source)  # a TypeError for generators, which Jinja2's loop object expects


@pass_context
def _loop_items(context, iterable: Any) -> _Metered:
    """What a `for` loop iterates: its iterable, one step per turn."""
    return _Metered(iterable)


@pass_context
def _text_part(context, value: Any) -> Any:
    """A part of `a ~ b`, refused before it is printed if it would print too long."""
    _refuse_big_text(value)
    return value


@pass_context
def _checked(context, value: Any) -> Any:
    """What `a ~ b` or a slice made, checked and counted."""
    return checked(value)


@pass_context
def _compared(context, value: Any) -> Any:
    """An operand of a comparison, counted as work: comparing long texts reads them."""
    current().spend(cost(value))
    return value


@pass_context
def _spend_text(context, characters: int) -> None:
    """Count the template's own text an output writes (it may run once per loop turn)."""
    current().spend(characters)


_HOOKS = {"tailor:loop": _loop_items, "tailor:part": _text_part, "tailor:checked": _checked,
          "tailor:compared": _compared, "tailor:spend": _spend_text}


@pass_context
def finalize(context, value: Any) -> Any:
    """Every `{{ ... }}` output: a step, and its printed size counted (and refused when too long)."""
    budget = current()
    budget.step()
    if isinstance(value, str):
        size = len(value)
    else:
        size = text_size(value, budget.limits.text)[0]
    if size > budget.limits.text:
        raise budget.refuse(TEXT)
    budget.spend(size)
    return value


def _hook(name: str, arg: nodes.Expr, lineno: int) -> nodes.Filter:
    return nodes.Filter(arg, f"tailor:{name}", [], [], None, None, lineno=lineno)


class _Metering(NodeTransformer):
    """Rewrites a parsed template so loops, concatenations, comparisons and literal text are counted."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _hook("loop", node.iter, node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [_hook("part", n, node.lineno) for n in node.nodes]
        return _hook("checked", node, node.lineno)

    def visit_Compare(self, node: nodes.Compare) -> nodes.Node:
        self.generic_visit(node)
        node.expr = _hook("compared", node.expr, node.lineno)
        for op in node.ops:
            op.expr = _hook("compared", op.expr, node.lineno)
        return node

    def visit_Getitem(self, node: nodes.Getitem) -> nodes.Node:
        self.generic_visit(node)
        if isinstance(node.arg, nodes.Slice):  # Jinja2 slices in plain Python, not through the sandbox's getitem
            return _hook("checked", node, node.lineno)
        return node

    def visit_Output(self, node: nodes.Output) -> nodes.Node | list[nodes.Node]:
        self.generic_visit(node)
        static = sum(len(n.data) for n in node.nodes if isinstance(n, nodes.TemplateData))
        if not static:
            return node
        return [node, nodes.ExprStmt(_hook("spend", nodes.Const(static, lineno=node.lineno), node.lineno),
                                     lineno=node.lineno)]


# -- the environment -------------------------------------------------------------------------------

class _BoundedFormatter(SandboxedFormatter):
    """`str.format` in the sandbox, refusing a field (or all of them together) that would be too long."""

    def __init__(self, env: Any, **kwargs: Any):
        super().__init__(env, **kwargs)
        self._made = 0

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        _refuse_big_text(value)
        return super().convert_field(value, conversion)

    def format_field(self, value: Any, format_spec: str) -> Any:
        for number in re.findall(r"\d+", format_spec):
            _text_over(_width(number))
        _refuse_big_text(value)
        text = super().format_field(value, format_spec)
        self._made += len(text)
        _text_over(self._made)
        return text


class _BoundedEscapeFormatter(_BoundedFormatter, SandboxedEscapeFormatter):
    pass


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox with the limits of the budget under way (see `spending`)."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def __init__(self, **options: Any):
        super().__init__(finalize=finalize, **options)
        self.globals["range"] = bounded_range
        self.globals.pop("lipsum")  # paragraphs of filler text on request: nothing a CRM template needs
        self.add_filters(dict(self.filters))
        self.tests = {name: bounded_test(func) for name, func in self.tests.items()}
        self.filters.update(_HOOKS)

    def add_filters(self, filters: Mapping[str, Callable[..., Any]]) -> None:
        """Register filters, each bounded."""
        for name, func in filters.items():
            self.filters[name] = bounded_filter(name, func)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        current().step()
        check = _BINOP_CHECKS.get(operator)
        if check is not None:
            check(left, right)
        return checked(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = current()
        budget.step()
        owner = getattr(__obj, "__self__", None)
        budget.spend(cost(owner))
        precheck = _method_check(__obj)
        if precheck is not None:
            plain = {k: v for k, v in kwargs.items() if k not in _LOOP_KWARGS}
            replaced = precheck(owner, *args, **plain)
            if replaced is not None:
                args, plain = replaced
                kwargs = {**plain, **{k: v for k, v in kwargs.items() if k in _LOOP_KWARGS}}
        return checked(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        # Jinja2's own wrapper formats through a SandboxedFormatter it makes itself; this one is the same
        # but with a formatter that bounds what each field makes.
        if not isinstance(value, (types.MethodType, types.BuiltinMethodType)) or value.__name__ not in ("format", "format_map"):
            return None
        owner = value.__self__
        if not isinstance(owner, str):
            return None
        is_map = value.__name__ == "format_map"

        def wrapper(*args: Any, **kwargs: Any) -> str:
            formatter = (_BoundedEscapeFormatter(self, escape=owner.escape) if isinstance(owner, Markup)
                         else _BoundedFormatter(self))
            if is_map:
                if kwargs:
                    raise TypeError("format_map() takes no keyword arguments")
                if len(args) != 1:
                    raise TypeError(f"format_map() takes exactly one argument ({len(args)} given)")
                args, kwargs = (), args[0]
            return type(owner)(formatter.vformat(owner, args, kwargs))

        return update_wrapper(wrapper, value)

    def _generate(self, source: nodes.Template, name: str | None, filename: str | None, defer_init: bool = False) -> str:
        # Jinja2's documented hook between parsing and code generation: count what the template does
        tree = _Metering().visit(source)
        tree.set_environment(self)
        return super()._generate(tree, name, filename, defer_init=defer_init)
