"""The local pack's files as the structured editors write them: readable YAML that loads back to what was written,
the edited document found where it is and the others (with their comments) left alone."""
from __future__ import annotations

import shutil

import yaml

from engine import editing, localpack
from engine.loader import load
from tests.conftest import CRM


def test_every_crm_definition_dumped_loads_back_the_same(tmp_path):
    base = load([CRM])
    copy_of = tmp_path / "crm"
    shutil.copytree(CRM, copy_of)
    defs = [*base.entities.values(), *base.forms.values(), *base.processes.values()]
    for d in defs:
        (copy_of / d.loc.file.split("crm/", 1)[1]).write_text(localpack.dump(editing.data_of(d)))
    again = load([copy_of])
    for d in defs:
        other = {"entity": again.entities, "form": again.forms, "process": again.processes}[d.kind][d.name]
        assert editing.differences(editing.data_of(d), editing.data_of(other)) == [], d.name
    text = localpack.dump(editing.data_of(base.processes["lead_follow_up"]))
    assert "    due: {in: 5 business days, from: qualify}\n" in text and "  - id: qualify\n" in text  # as consultants write it
    assert "description: >\n  Every enquiry is qualified" in text


def test_the_edited_document_is_replaced_where_it_is_and_the_others_stay():
    files = {"pack.yaml": "kind: pack\n",
             "changes.yaml": "# our form\nkind: form\nname: visit\nfields: {a: string}\n---\n# the label\n"
                             "kind: overlay\nname: mine\ntarget: form/lead_enquiry\nset: {label: Lead}\n"}
    doc = localpack.overlay_document("form", "lead_enquiry", {"set": {"label": "Enquiry"}})
    written = localpack.put(files, "form", "lead_enquiry", doc, overlay=True)
    assert (written.path, written.index) == ("changes.yaml", 1)
    assert written.text.startswith("# our form\nkind: form\nname: visit\nfields: {a: string}\n---\nkind: overlay\n")
    assert yaml.safe_load(localpack.documents(written.text)[1])["set"] == {"label": "Enquiry"}
    assert localpack.document_offset(written.text, 1) == 5
    emptied = localpack.put(written.files, "form", "lead_enquiry", localpack.overlay_document("form", "lead_enquiry", {}), overlay=True)
    assert emptied.files["changes.yaml"] == "# our form\nkind: form\nname: visit\nfields: {a: string}\n" and emptied.path == ""
    gone = localpack.put(emptied.files, "form", "visit", None, overlay=False)
    assert sorted(gone.files) == ["pack.yaml"]
    new = localpack.put(files, "process", "callback", localpack.overlay_document("process", "callback", {"remove_steps": ["x"]}),
                        overlay=True)
    assert new.path == "overlays/processes/callback.yaml" and new.files["changes.yaml"] == files["changes.yaml"]


def test_a_line_and_column_lead_back_to_the_key_written_there():
    text = localpack.dump({"kind": "overlay", "name": "o", "target": "entity/company",
                           "add_fields": {"beds": {"type": "integer", "max": -1}}, "note": "a\nb\n"})
    assert text.splitlines()[4] == "  beds: {type: integer, max: -1}"
    assert localpack.path_at(text, 5, 25) == ("add_fields", "beds", "max")
    assert localpack.path_at(text, 5, 3) == ("add_fields", "beds")
    assert localpack.path_at(text, 8) == ("note",) and localpack.path_at(text, 99) is None
