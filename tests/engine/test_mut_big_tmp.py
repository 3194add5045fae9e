"""Property: whatever a hand edit does to a YAML file, Tailor answers with located problems, never a traceback."""
from __future__ import annotations

import re
import shutil

from hypothesis import HealthCheck, given, settings, strategies as st

from engine.loader import load_model
from tests.conftest import CRM

FILES = sorted(p.relative_to(CRM) for p in CRM.rglob("*.yaml"))
LOCATED = re.compile(r"^[^:]+(:\d+:\d+)?: .+ \[[a-z.-]+\]$")
JUNK = st.sampled_from(["", ":", "- ", "{", "}", "[", "]", "'", '"', "&a", "*a", "!!python/object:os.system", "{{", "{% if %}",
                        "\t", "  ", "kind: form", "name: Bad Name", "???", "due + x", "\x00", "é", "0:0", "on", "null", "~"])


@st.composite
def mutations(draw):
    path = draw(st.sampled_from(FILES))
    lines = (CRM / path).read_text(encoding="utf-8").splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, max(len(lines) - 1, 0)))
        op = draw(st.sampled_from(["delete", "duplicate", "indent", "dedent", "junk", "replace-token", "truncate"]))
        if not lines:
            break
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "indent":
            lines[i] = "  " + lines[i]
        elif op == "dedent":
            lines[i] = lines[i].lstrip(" ")
        elif op == "junk":
            col = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:col] + draw(JUNK) + lines[i][col:]
        elif op == "replace-token":
            words = re.findall(r"[A-Za-z_]+", lines[i])
            if words:
                lines[i] = lines[i].replace(draw(st.sampled_from(words)), draw(st.sampled_from(["x", "Bad Name", "42", "true", "[]"])), 1)
        elif op == "truncate":
            lines = lines[:i]
    return path, "".join(lines)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=mutations())
def test_mutated_yaml_gives_located_problems_never_a_traceback(tmp_path_factory, mutation):
    path, text = mutation
    root = tmp_path_factory.mktemp("pack")
    pack = root / "crm"
    shutil.copytree(CRM, pack)
    (pack / path).write_text(text, encoding="utf-8")
    model, problems = load_model([pack])  # must not raise
    assert (model is None) == bool(problems)
    for p in problems:
        assert LOCATED.match(str(p).replace("\n", " ")), str(p)
        assert p.loc.file.startswith(str(root)) or not p.loc.file.startswith("/"), str(p)
        if p.loc.file.endswith(".yaml"):
            assert p.loc.line >= 1 and p.loc.column >= 1, str(p)
