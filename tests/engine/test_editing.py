"""Definitions back to YAML data, and the overlay from a base pack's definition to the one an editor wants: what the
loader makes of the written overlay is exactly what was wanted."""
from __future__ import annotations

import copy
import shutil

import pytest
import yaml

from engine import editing
from engine.loader import load, load_model
from tests.conftest import CRM

BASE = load([CRM])
TABLES = {"entity": BASE.entities, "form": BASE.forms, "process": BASE.processes}


def after(tmp_path, kind: str, name: str, ops: dict):
    """The definition as the loader makes it of the CRM pack with `ops` as an overlay of a pack extending it."""
    folder = tmp_path / "client"
    (folder / "overlays").mkdir(parents=True, exist_ok=True)
    (folder / "pack.yaml").write_text("kind: pack\nname: client\nversion: 1.0.0\nextends:\n  crm: '>=1.0'\n")
    doc = {"kind": "overlay", "name": f"{kind}_{name}", "target": f"{kind}/{name}", **ops}
    (folder / "overlays" / f"{name}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    model, problems = load_model([CRM, folder])
    assert problems == [], [str(p) for p in problems]
    return {"entity": model.entities, "form": model.forms, "process": model.processes}[kind][name]


def check(tmp_path, kind: str, name: str, want: dict) -> dict:
    base = editing.data_of(TABLES[kind][name])
    ops = editing.overlay(kind, base, want)
    got = editing.data_of(after(tmp_path, kind, name, ops))
    assert editing.differences(want, got) == []
    return ops


def test_every_crm_definition_reads_back_as_it_was_written(tmp_path):
    copy_of = tmp_path / "crm"
    shutil.copytree(CRM, copy_of)
    for table in TABLES.values():
        for d in table.values():
            data = editing.data_of(d)
            assert editing.overlay(d.kind, data, data) == {}, d.name  # no change, no operation
            (copy_of / d.loc.file.split("crm/", 1)[1]).write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    again = load([copy_of])
    for kind, table in TABLES.items():
        for name, d in table.items():
            other = {"entity": again.entities, "form": again.forms, "process": again.processes}[kind][name]
            assert editing.differences(editing.data_of(d), editing.data_of(other)) == [], (kind, name)


def test_fields_for_all_records_for_a_group_and_the_single_record_rules(tmp_path):
    want = editing.data_of(BASE.entities["company"])
    want["fields"]["vat_number"] = {"type": "string", "label": "VAT number", "max_length": 20}
    want["pages"]["sections"][1]["fields"].append("vat_number")          # placed in Contact
    want["fields"]["employees"]["help"] = "Head count, roughly."          # a change_fields
    want["fields"]["website"] = {"type": "string"}                        # a type change replaces the field
    want["groups"]["healthcare"]["fields"]["bed_count"] = {"type": "integer", "min": 0}
    want["groups"]["healthcare"]["fields"]["ods_code"]["required"] = True  # a base group's field changed
    want["groups"]["charity"] = {"when": "record.industry == 'other'", "fields": {"charity_number": {"type": "string"}}}
    want["record_fields"] = {"max": 5, "types": ["string", "date"]}
    ops = check(tmp_path, "entity", "company", want)
    assert ops == {
        "add_fields": {"vat_number": {"type": "string", "label": "VAT number", "max_length": 20}},
        "change_fields": {"employees": {"help": "Head count, roughly."}, "ods_code": {"required": True}},
        "replace_fields": {"website": {"type": "string"}},
        "add_groups": {"charity": {"when": "record.industry == 'other'", "fields": {"charity_number": {"type": "string"}}}},
        "add_group_fields": {"healthcare": {"bed_count": {"type": "integer", "min": 0}}},
        "add_to_sections": {"Contact": ["vat_number"]},
        "record_fields": {"types": ["string", "date"], "max": 5},
    }


def test_an_option_taken_away_replaces_the_field_or_says_so(tmp_path):
    want = editing.data_of(BASE.entities["company"])
    del want["fields"]["account_number"]["pattern"]   # change_fields cannot take a pattern away
    del want["fields"]["employees"]["label"]          # the label back to the humanised name
    ops = check(tmp_path, "entity", "company", want)
    assert ops["replace_fields"] == {"account_number": want["fields"]["account_number"]}
    assert ops["change_fields"] == {"employees": {"label": "Employees"}}


def test_a_form_of_a_base_pack_gets_fields_placed_moved_reordered_and_actions_added(tmp_path):
    want = editing.data_of(BASE.forms["lead_enquiry"])
    want["fields"]["tender_reference"] = {"type": "string", "help": "If it came from a tender."}
    enquiry, need, budget = want["layout"]
    need["fields"].insert(0, "tender_reference")
    budget["fields"] = list(reversed(budget["fields"]))                   # reordered
    enquiry["fields"].remove("source")
    need["fields"].append("source")                                       # moved
    want["fields"]["summary"]["help"] = "In their words."
    del want["fields"]["channel"]
    enquiry["fields"].remove("channel")
    want["on_submit"].append({"update": "record", "set": {"status": {"value": "prospect"}}})
    ops = check(tmp_path, "form", "lead_enquiry", want)
    assert ops["add_fields"] == {"tender_reference": {"type": "string", "help": "If it came from a tender."}}
    assert ops["remove_fields"] == ["channel"] and ops["change_fields"] == {"summary": {"help": "In their words."}}
    assert ops["add_to_sections"] == {"What they need": ["tender_reference", "summary", "requirements", "product", "source"],
                                      "Budget and timing": ["decision_by", "budget"]}
    assert ops["add_actions"] == [{"update": "record", "set": {"status": {"value": "prospect"}}}]


def test_what_a_form_overlay_cannot_do_is_said_in_words():
    base = editing.data_of(BASE.forms["lead_enquiry"])
    want = copy.deepcopy(base)
    want["layout"].append({"section": "Extra", "fields": [want["layout"][0]["fields"].pop()]})
    with pytest.raises(editing.CannotExpress, match="cannot add, remove, rename or reorder sections"):
        editing.overlay("form", base, want)
    want = copy.deepcopy(base)
    want["on_submit"] = want["on_submit"][1:]
    with pytest.raises(editing.CannotExpress, match="actions on submit of its pack stay"):
        editing.overlay("form", base, want)
    company = editing.data_of(BASE.entities["company"])
    changed = copy.deepcopy(company)
    changed["groups"]["healthcare"]["when"] = "record.industry == 'other'"
    with pytest.raises(editing.CannotExpress, match="the when of group healthcare comes from its pack"):
        editing.overlay("entity", company, changed)


def test_process_steps_inserted_removed_reordered_and_changed(tmp_path):
    want = editing.data_of(BASE.processes["lead_follow_up"])
    qualify, proposal, _discount, chase = want["steps"]
    qualify["due"] = "1 business day"
    qualify["escalate"] = qualify["escalate"][:1] + [{"at": "due + 2 business days", "alert": "role:director"}]
    chase["assign"] = "group:sales"
    proposal["title"] = "Send the proposal: {{ record.name }}"
    credit = {"id": "credit_check", "title": "Credit check: {{ record.name }}", "assign": "group:sales", "due": "1 business day"}
    want["steps"] = [credit, qualify, proposal, chase]          # discount removed, credit first
    ops = check(tmp_path, "process", "lead_follow_up", want)
    assert ops["remove_steps"] == ["discount_approval"]
    assert ops["insert_steps"] == [{"before": "qualify", "step": credit}]
    assert ops["change_steps"] == {"qualify": {"due": "1 business day", "escalate": qualify["escalate"]},
                                   "proposal": {"title": proposal["title"]}, "chase": {"assign": "group:sales"}}

    moved = editing.data_of(BASE.processes["lead_follow_up"])
    moved["steps"] = [moved["steps"][0], moved["steps"][3], moved["steps"][1], moved["steps"][2]]  # chase moved up
    moved["steps"][1]["due"] = {"in": "5 business days", "from": "qualify"}
    moved["steps"][1]["when"] = "steps.qualify.outcome == 'done'"
    ops = check(tmp_path, "process", "lead_follow_up", moved)
    assert ops["remove_steps"] == ["chase"] and ops["insert_steps"] == [{"after": "qualify", "step": moved["steps"][1]}]


def test_steps_inside_parallel_branches(tmp_path):
    want = editing.data_of(BASE.processes["onboarding"])
    block = next(s for s in want["steps"] if "parallel" in s)
    delivery = block["parallel"]["delivery"]
    delivery.insert(1, {"id": "check_site", "title": "Check the site", "assign": "completer:deliver"})
    block["parallel"]["support"][0]["strategy"] = "least_busy"
    ops = check(tmp_path, "process", "onboarding", want)
    assert ops == {"insert_steps": [{"after": "deliver", "step": delivery[1]}],
                   "change_steps": {"support_handover": {"strategy": "least_busy"}}}
    want["steps"].remove(block)
    ops = check(tmp_path, "process", "onboarding", _without_refs(want, "set_up"))
    assert ops["remove_steps"] == ["set_up"]


def _without_refs(process: dict, gone: str) -> dict:
    """Later steps that counted from the removed block count from the start instead."""
    for s in process["steps"]:
        if isinstance(s.get("due"), dict) and s["due"].get("from") == gone:
            s["due"] = s["due"]["in"]
    return process


def test_differences_name_where_the_loader_disagrees():
    assert editing.differences({"a": {"b": 1, "c": [1, 2]}}, {"a": {"b": 2, "c": [1, 3]}, "d": 0}) == ["/a/b", "/a/c/1", "/d"]


def test_a_section_whose_fields_all_move_elsewhere_goes(tmp_path):
    want = editing.data_of(BASE.forms["lead_enquiry"])
    enquiry, need, budget = want["layout"]
    need["fields"] += budget["fields"]
    want["layout"] = [enquiry, need]
    ops = check(tmp_path, "form", "lead_enquiry", want)
    assert ops == {"add_to_sections": {"What they need": ["budget", "decision_by"]}}
