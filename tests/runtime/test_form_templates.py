"""A form action's template that what was typed takes past its limits refuses the submission in words, and saves nothing."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from engine.compiler import compile_model
from engine.loader import load
from forms.submit import SubmissionInvalid, submit
from runtime.schema import metadata as platform

PACK = {
    "company.yaml": """
        kind: entity
        name: company
        fields:
          name: {type: string, required: true}
          about: text
        """,
    "intro.yaml": """
        kind: form
        name: intro
        label: Introduction
        fields:
          name: {type: string, required: true}
          story: text
        on_submit:
          - create: company
            as: company
            set:
              name: name
              about: "{{ form.story }} (told twice: {{ form.story }})"
        """,
}


def test_a_template_made_too_long_by_a_form_value_is_a_clear_submission_error(packs, tmp_path):
    compiled = compile_model(load([packs.write("p", PACK)]))
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    user = {"id": None, "name": "Ann", "email": "ann@example.com"}
    with engine.begin() as conn:
        made = submit(conn, compiled, "intro", {"name": "Acme", "story": "We met at a fair."}, submission_id="s-1", user=user,
                      record_id=None)
    assert made.created["company"][0] == "company"

    with pytest.raises(SubmissionInvalid) as refused, engine.begin() as conn:
        submit(conn, compiled, "intro", {"name": "Globex", "story": "x" * 600_000}, submission_id="s-2", user=user, record_id=None)
    assert refused.value.errors == {"": "could not fill in About: the template is too long (over 1,000,000 characters)"}
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM company")).scalar() == 1
