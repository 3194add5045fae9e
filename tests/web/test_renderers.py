"""Every shipped form rendered by third-party renderers in Chromium, from Tailor's published schemas alone.

react-jsonschema-form (with its ajv8 validator on Draft 2020-12) and JSON Forms (vanilla renderers) each get a
form's JSON Schema and the UI schema Tailor compiled for them (`compiled.form_ui_schemas`). A person should see
what Tailor's own page shows: choice labels (not raw values), a text area for multi-line text, the layout's
field order under its section titles, the currency of money; and an invalid value must show an error.
The npm packages are installed and bundled with esbuild in the test setup (tests/npm.py), nothing built is committed.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from engine.compiler import compile_model
from engine.loader import load
from engine.model import Form
from tests import npm
from tests.conftest import ACME, CRM, ROOT

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
VOCABULARY = json.loads((ROOT / "engine" / "schemas" / "x-tailor.vocabulary.json").read_text())
COMPILED = {"crm": compile_model(load([CRM])), "crm+acme": compile_model(load([CRM, ACME]))}
CASES = [(pack, name, dialect) for pack, c in COMPILED.items() for name in sorted(c.form_schemas) for dialect in ("rjsf", "jsonforms")]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)")


@pytest.fixture(scope="module")
def bundle() -> Path:
    """tests/js/renderers.jsx bundled with esbuild (once per version of the source and the pinned packages)."""
    folder = npm.packages()
    source = npm.JS / "renderers.jsx"
    out = folder / "build" / f"renderers-{hashlib.sha256(source.read_bytes()).hexdigest()[:12]}.js"
    if not out.exists():
        env = {**os.environ, "NODE_PATH": str(folder / "node_modules")}
        result = subprocess.run([str(folder / "node_modules" / ".bin" / "esbuild"), str(source), "--bundle", "--format=iife",
                                 "--jsx=automatic", "--define:process.env.NODE_ENV=\"production\"", f"--outfile={out}.tmp",
                                 "--log-level=warning"], env=env, capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr
        for old in out.parent.glob("renderers-*"):  # bundles of earlier versions of the source
            if old.name != f"{out.name}.tmp":
                old.unlink()
        os.replace(f"{out}.tmp", out)
    page = out.with_suffix(".html")
    page.write_text(f'<!doctype html><html><head><meta charset="utf-8"><title>forms</title></head>'
                    f'<body><div id="root"></div><script src="{out.name}"></script></body></html>')
    return page


@pytest.fixture(scope="module")
def browser_page(bundle):
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                                                      "--disable-component-update", "--disable-sync"])
        page = browser.new_page()
        problems: list[str] = []
        page.on("console", lambda msg: problems.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None)
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.goto(bundle.as_uri())
        page.wait_for_function("typeof window.tailorRender === 'function'")
        yield page, problems
        browser.close()


def invalid_input(form: Form) -> tuple[str, str | None]:
    """A field to get wrong and what to type there (None: leave a required field empty)."""
    for types, text in ((("money",), "lots"), (("string",), "not valid!")):
        for f in form.fields:
            if f.type in types and (f.type == "money" or f.pattern):
                return f.name, text
    return next(f.name for f in form.fields if f.required), None


@pytest.mark.parametrize("pack, name, dialect", CASES, ids=[f"{p}:{n}:{d}" for p, n, d in CASES])
def test_a_shipped_form_renders_as_its_layout_says(browser_page, request, pack, name, dialect):
    page, problems = browser_page
    problems.clear()
    compiled = COMPILED[pack]
    form = compiled.model.forms[name]
    try:
        page.evaluate("([d, s, u, v]) => window.tailorRender(d, s, u, v)",
                      [dialect, compiled.form_schemas[name], compiled.form_ui_schemas[name][dialect], VOCABULARY])
        shown = page.evaluate("(d) => window.tailorDescribe(d)", dialect)
        by_name = {f["name"]: f for f in shown}

        # the layout's order, each field under its section's title
        assert [f["name"] for f in shown] == [n for s in form.layout for n in s.fields]
        for section in form.layout:
            for field_name in section.fields:
                assert by_name[field_name]["section"] == (section.title or None), f"{field_name} is not under '{section.title}'"

        for f in form.fields:
            seen = by_name[f.name]
            assert f.label in seen["label"], f"{f.name}: label {seen['label']!r}"
            if f.type == "choice":  # a select showing each choice's label, never its raw value
                assert seen["tag"] == "select" and seen["options"] == [c.label for c in f.choices], f"{f.name}: {seen['options']}"
                if f.default is None:  # nothing chosen for the person: a required choice must be made, not left as the first
                    assert seen["value"] == "", f"{f.name} starts as {seen['value']!r}"
            if f.type == "text":
                assert seen["tag"] == "textarea", f"{f.name} is a {seen['tag']}, not a text area"
            if f.type == "money" and f.currency:
                assert f.currency in seen["label"], f"{f.name}: the currency is not shown in {seen['label']!r}"

        # an invalid value shows an error, and the form is not submitted
        target, text = invalid_input(form)
        if text is not None:
            page.locator(f'[id="{by_name[target]["id"]}"]').fill(text)
        if dialect == "rjsf":
            page.evaluate("window.tailorSubmitted = false")
            page.get_by_role("button", name="Submit").click()
            assert page.evaluate("window.tailorSubmitted") is False
        page.wait_for_function("(d) => window.tailorDescribe(d).some(f => f.error)", arg=dialect, timeout=5000)
        errors = {f["name"]: f["error"] for f in page.evaluate("(d) => window.tailorDescribe(d)", dialect) if f["error"]}
        assert target in errors, f"no error at {target} ({text!r}); errors shown: {errors}"
        page.wait_for_function("window.tailorErrors.length > 0", timeout=5000)  # what the renderer reports to its host page

        assert problems == [], "\n".join(problems)
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"renderers-{pack}-{name}-{dialect}.png"), full_page=True)
        raise
