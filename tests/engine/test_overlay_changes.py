"""What overlays change is kept on the model (Model.changes), and an overlay follows a field its base renamed."""
from __future__ import annotations

from engine.loader import load, load_model

BASE = {
    "company.yaml": """
        kind: entity
        name: company
        fields:
          name: string
          telephone: {type: phone, renamed_from: phone}
        """,
    "form.yaml": """
        kind: form
        name: visit
        entity: company
        fields:
          notes: text
          phone_number: {type: phone, renamed_from: phone}
        layout:
          - {section: Visit, fields: [notes]}
          - {section: Contact, fields: [phone_number]}
        """,
}
CLIENT = {
    "overlays.yaml": """
        kind: overlay
        name: switchboard
        target: entity/company
        change_fields:
          phone: {label: Switchboard}
        ---
        kind: overlay
        name: visit_form
        target: form/visit
        remove_fields: [notes]
        add_to_sections:
          Contact: [phone]
        """,
}


def test_an_overlay_written_for_the_old_name_changes_the_renamed_field_and_says_so(packs):
    base = packs.write("base", BASE)
    client = packs.write("client", CLIENT, extends="base: '>=1.0'")
    model = load([base, client])
    assert model.entities["company"].field("telephone").label == "Switchboard"
    assert [f.name for f in model.forms["visit"].fields] == ["phone_number"]
    assert [(c.target, c.item, c.op, c.pack, c.overlay, c.loc.line) for c in model.changes] == [
        ("entity/company", "field:telephone:label", "change_fields", "client", "switchboard", 5),
        ("form/visit", "field:notes", "remove_fields", "client", "visit_form", 10),
        ("form/visit", "layout:phone_number", "add_to_sections", "client", "visit_form", 12),
    ]


def test_a_name_that_is_neither_a_field_nor_a_rename_is_still_missing(packs):
    base = packs.write("base", BASE)
    client = packs.write("client", {"o.yaml": "kind: overlay\nname: o\ntarget: entity/company\nchange_fields:\n  fax: {label: Fax}\n"},
                         extends="base: '>=1.0'")
    _, problems = load_model([base, client])
    assert [p.code for p in problems] == ["overlay.missing"] and "has no field 'fax'" in problems[0].message
