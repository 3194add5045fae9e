"""UI schemas of a form for third-party renderers, compiled from its layout.

A form's JSON Schema says what a valid submission is; it cannot say in which order fields
come, under which section title, or that a text is multi-line. Renderers read that from a
UI schema of their own dialect. Each dialect registers here under its name
(`@ui_dialect("rjsf")`); `ui_schemas(form)` gives every dialect's, as the compiler writes
them (`forms/NAME.ui.DIALECT.json`) and the API serves them.

- **rjsf** (react-jsonschema-form): `ui:order` as the layout, `ui:widget` per field
  (textarea, select, checkboxes), `ui:placeholder`, `ui:help` for a money field's currency
  and bounds, `ui:title` naming the currency. Sections are `ui:sections` on the root, a list of
  `{title, description, fields}`: stock RJSF ignores the key and shows the fields in order;
  an `ObjectFieldTemplate` that reads `ui:sections` (see docs/definitions.md) shows them under
  their titles. Nothing here needs `ui:field` or a custom widget.
- **jsonforms** (JSON Forms): a `VerticalLayout` of one `Group` per section (label = the
  section title, its help as a `Label`), rows of `HorizontalLayout` where a section has
  columns, and a `Control` per field (`#/properties/NAME`; `multi: true` for multi-line text,
  `format: radio` for radio choices).
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

from . import fieldtypes
from .model import Field, Form, Section

Builder = Callable[[Form], dict]
_DIALECTS: dict[str, Builder] = {}


def ui_dialect(name: str) -> Callable[[Builder], Builder]:
    """Register the UI schema builder of a renderer dialect; a name registers once."""

    def register(fn: Builder) -> Builder:
        if name in _DIALECTS:
            raise ValueError(f"UI schema dialect {name!r} is already registered")
        _DIALECTS[name] = fn
        return fn

    return register


def dialects() -> tuple[str, ...]:
    return tuple(sorted(_DIALECTS))


def ui_schemas(form: Form) -> dict[str, dict]:
    """The form's UI schema in every registered dialect, by dialect name."""
    return {name: _DIALECTS[name](form) for name in dialects()}


def _sections(form: Form) -> Iterator[tuple[Section, list[Field]]]:
    fields = {f.name: f for f in form.fields}
    placed = [n for s in form.layout for n in s.fields]
    for s in form.layout:
        yield s, [fields[n] for n in s.fields if n in fields]
    rest = [f for f in form.fields if f.name not in placed]  # the checks refuse this; never drop a field all the same
    if rest:
        yield Section(title="", fields=tuple(f.name for f in rest), loc=form.loc), rest


def _amount_words(f: Field) -> str:
    """'An amount in GBP, at least 0.00': what a money field's schema says only in x-tailor keywords and its pattern."""
    words = f"An amount in {f.currency}" if f.currency else "An amount"
    bounds = [f"at least {f.min:.2f}" if f.min is not None else "", f"at most {f.max:.2f}" if f.max is not None else ""]
    return ", ".join([words, *filter(None, bounds)])


def _title(f: Field) -> str | None:
    """A label naming the currency of a money field, for renderers that show only the title."""
    return f"{f.label} ({f.currency})" if f.type == "money" and f.currency else None


# -- react-jsonschema-form -------------------------------------------------------

# Tailor's widget kinds (fieldtypes' `widget`) as RJSF widgets; the others are RJSF's default for the schema
# (a date input for `format: date`, a checkbox for a boolean, a number input for an integer).
RJSF_WIDGETS = {"textarea": "textarea", "select": "select", "checkboxes": "checkboxes", "radio": "radio"}


def _rjsf_field(f: Field) -> dict:
    out: dict[str, Any] = {}
    widget = RJSF_WIDGETS.get(fieldtypes.get(f.type).widget)
    if widget:
        out["ui:widget"] = widget
    if f.placeholder:
        out["ui:placeholder"] = f.placeholder
    if f.type == "money":
        out["ui:help"] = _amount_words(f)
        if title := _title(f):
            out["ui:title"] = title
    return out


@ui_dialect("rjsf")
def rjsf(form: Form) -> dict:
    """The RJSF uiSchema: order, widgets, help and (as `ui:sections`) the layout's sections."""
    sections = list(_sections(form))
    ui: dict[str, Any] = {
        "ui:order": [f.name for _, fields in sections for f in fields],
        "ui:sections": [{"title": s.title, **({"description": s.help} if s.help else {}), "fields": [f.name for f in fields]}
                        for s, fields in sections],
    }
    for _, fields in sections:
        for f in fields:
            if field_ui := _rjsf_field(f):
                ui[f.name] = field_ui
    return ui


# -- JSON Forms --------------------------------------------------------------------


def _jsonforms_control(f: Field) -> dict:
    control: dict[str, Any] = {"type": "Control", "scope": f"#/properties/{f.name}"}
    if title := _title(f):
        control["label"] = title
    options: dict[str, Any] = {}
    widget = fieldtypes.get(f.type).widget
    if widget == "textarea":
        options["multi"] = True
    elif widget == "radio":
        options["format"] = "radio"
    if f.help:
        options["showUnfocusedDescription"] = True  # the help is the schema's description: show it, not only on focus
    if options:
        control["options"] = options
    return control


def _rows(controls: list[dict], columns: int) -> list[dict]:
    if columns <= 1:
        return controls
    return [{"type": "HorizontalLayout", "elements": controls[i:i + columns]} for i in range(0, len(controls), columns)]


@ui_dialect("jsonforms")
def jsonforms(form: Form) -> dict:
    """The JSON Forms UI schema: a vertical layout of one group per section, in the layout's order."""
    groups = []
    for s, fields in _sections(form):
        elements = [{"type": "Label", "text": s.help}] if s.help else []
        elements += _rows([_jsonforms_control(f) for f in fields], s.columns)
        groups.append({"type": "Group", "label": s.title, "elements": elements} if s.title else {"type": "VerticalLayout", "elements": elements})
    return {"type": "VerticalLayout", "elements": groups}
