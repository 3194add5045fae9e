"""Client packs change base definitions through overlays, never by copying them."""
from engine.loader import load, load_model

BASE = {
    "company.yaml": """
        kind: entity
        name: company
        fields:
          name: {type: string, required: true}
          industry: {type: choice, choices: [healthcare, retail]}
        groups:
          healthcare:
            when: "record.industry == 'healthcare'"
            fields: {hipaa_contact: email}
        """,
    "enquiry.yaml": """
        kind: form
        name: enquiry
        entity: company
        fields:
          summary: {type: text, required: true}
          urgency: {type: choice, choices: [low, high]}
        layout:
          - {section: Request, fields: [summary]}
          - {section: Triage, fields: [urgency]}
        """,
    "follow_up.yaml": """
        kind: process
        name: follow_up
        entity: company
        steps:
          - {id: qualify, title: Qualify, due: 2 days}
          - id: prepare
            parallel:
              legal: [{id: contract, title: Contract}]
              tech: [{id: provision, title: Provision}]
          - {id: close, title: Close, due: {in: 1 day, from: qualify}}
        """,
    "roles.yaml": "kind: role\nname: staff\npermissions: [access]\n",
}


def problems(*folders) -> list[str]:
    return [str(p) for p in load_model(folders)[1]]


def step_ids(steps):
    out = []
    for s in steps:
        out.append(s.id)
        for _, branch in getattr(s, "branches", ()):
            out.extend(f"{s.id}.{x}" for x in step_ids(branch))
    return out


def test_overlays_add_change_insert_and_remove(packs):
    base = packs.write("base", BASE)
    client = packs.write("client", {"overlays.yaml": """
        kind: overlay
        name: company_extras
        target: entity/company
        set: {label: Client}
        add_fields: {vat_number: {type: string, indexed: true}}
        change_fields: {industry: {label: Sector}}
        add_group_fields:
          healthcare: {beds: integer}
        add_groups:
          retail:
            when: "record.industry == 'retail'"
            fields: {stores: integer}
        ---
        kind: overlay
        name: enquiry_budget
        target: form/enquiry
        add_fields: {budget: money}
        add_to_sections: {Request: [budget]}
        ---
        kind: overlay
        name: follow_up_credit
        target: process/follow_up
        insert_steps:
          - {after: qualify, step: {id: credit_check, title: Credit check, due: 1 day}}
          - {before: provision, step: {id: order_kit, title: Order kit}}
        remove_steps: [contract]
        change_steps:
          close: {due: {in: 3 days, from: credit_check}, title: "Close {{ record.name }}"}
        ---
        kind: overlay
        name: staff_more
        target: role/staff
        add_permissions: [generate_tasks]
        """}, extends="base: '>=1.0,<2'")
    model = load([base, client])
    company = model.entities["company"]
    assert company.label == "Client"
    assert [f.name for f in company.fields] == ["name", "industry", "vat_number"]
    assert company.field("industry").label == "Sector" and company.field("vat_number").pack == "client"
    assert {g.name: [f.name for f in g.fields] for g in company.groups} == {"healthcare": ["hipaa_contact", "beds"], "retail": ["stores"]}
    form = model.forms["enquiry"]
    assert [(s.title, s.fields) for s in form.layout] == [("Request", ("summary", "budget")), ("Triage", ("urgency",))]
    proc = model.processes["follow_up"]
    assert step_ids(proc.steps) == ["qualify", "credit_check", "prepare", "prepare.order_kit", "prepare.provision", "close"]
    close = proc.steps[-1]
    assert close.due.start == "credit_check" and close.due.duration.amount == 3 * 86400 and close.title.source == "Close {{ record.name }}"
    assert model.roles["staff"].permissions == ("access", "generate_tasks")
    # the base pack alone is untouched
    assert [f.name for f in load([base]).entities["company"].fields] == ["name", "industry"]


def test_dangling_and_clashing_overlays_are_errors(packs):
    base = packs.write("base", BASE)
    client = packs.write("client", {"o.yaml": """
        kind: overlay
        name: bad_company
        target: entity/company
        add_fields: {name: string}
        change_fields: {colour: {label: Colour}}
        insert_steps: [{after: a, step: {id: b, title: B}}]
        ---
        kind: overlay
        name: bad_process
        target: process/follow_up
        insert_steps: [{after: nowhere, step: {id: x, title: X}}]
        replace_steps: {qualify: {id: qualify, title: Qualify again, assign: completer:close}}
        remove_steps: [ghost]
        ---
        kind: overlay
        name: bad_target
        target: form/missing
        set: {label: X}
        """}, extends="base: '>=1.0'")
    assert problems(base, client) == [
        "client/o.yaml:4:14: entity 'company' already has a field 'name' (from pack 'base', base/company.yaml:4:3); "
        "use change_fields or replace_fields [overlay.exists]",
        "client/o.yaml:5:17: entity 'company' has no field 'colour' (known: hipaa_contact, industry, name) [overlay.missing]",
        "client/o.yaml:6:1: 'insert_steps' cannot change a entity (possible: add_fields, add_group_fields, add_groups, add_links, "
        "add_to_sections, change_fields, record_fields, remove_fields, remove_links, replace_fields, set) [overlay.operation]",
        "client/o.yaml:11:16: process 'follow_up' has no step 'nowhere' (known: close, contract, prepare, provision, qualify) [overlay.missing]",
        "client/o.yaml:12:70: 'completer:close' in step 'qualify' assignee: step 'close' does not finish before this one "
        "(earlier steps: none) [reference.step]",
        "client/o.yaml:13:16: process 'follow_up' has no step 'ghost' (known: close, contract, prepare, provision, qualify) [overlay.missing]",
        "client/o.yaml:17:9: overlay 'bad_target' targets form 'missing', which no pack defines (known forms: enquiry) [overlay.target]",
    ]


def test_two_unrelated_packs_changing_the_same_thing_conflict(packs):
    base = packs.write("base", BASE)
    one = packs.write("one", {"o.yaml": "kind: overlay\nname: a\ntarget: entity/company\nchange_fields: {industry: {label: Sector}}\n"},
                      extends="base: '>=1.0'")
    two = packs.write("two", {"o.yaml": "kind: overlay\nname: b\ntarget: entity/company\nchange_fields: {industry: {label: Branch}}\n"},
                      extends="base: '>=1.0'")
    assert problems(base, one, two) == [
        "two/o.yaml:4:17: conflicting overlays: field industry label of entity 'company' is also changed at one/o.yaml:4:17 "
        "(pack 'one') [overlay.conflict]",
    ]


def test_a_pack_that_extends_another_client_pack_may_override_it(packs):
    base = packs.write("base", BASE)
    one = packs.write("one", {"o.yaml": "kind: overlay\nname: a\ntarget: entity/company\nchange_fields: {industry: {label: Sector}}\n"},
                      extends="base: '>=1.0'")
    two = packs.write("two", {"o.yaml": "kind: overlay\nname: b\ntarget: entity/company\nchange_fields: {industry: {label: Branch}}\n"},
                      extends="one: '>=1.0'")
    assert load([two, one, base]).entities["company"].field("industry").label == "Branch"


def test_overlays_only_reach_packs_they_extend(packs):
    base = packs.write("base", BASE)
    other = packs.write("other", {"o.yaml": "kind: overlay\nname: a\ntarget: entity/company\nset: {label: X}\n"})
    own = packs.write("own", {"e.yaml": "kind: role\nname: r\npermissions: []\n---\nkind: overlay\nname: a\ntarget: role/r\nset: {label: X}\n"})
    assert problems(base, other, own) == [
        "other/o.yaml:3:9: overlay 'a' changes entity 'company' of pack 'base', which pack 'other' does not extend [overlay.not-extended]",
        "own/e.yaml:7:9: overlay 'a' changes role 'r' of its own pack 'own'; edit the definition instead [overlay.own-pack]",
    ]


def test_redefining_a_base_definition_points_to_overlays(packs):
    base = packs.write("base", BASE)
    client = packs.write("client", {"r.yaml": "kind: role\nname: staff\npermissions: [admin]\n"}, extends="base: '>=1.0'")
    assert problems(base, client) == [
        "client/r.yaml:2:7: role 'staff' is already defined at base/roles.yaml:2:7 (to change it from another pack, "
        "write a 'kind: overlay') [definition.duplicate]",
    ]


def test_pack_resolution_errors(packs):
    base = packs.write("base", {"r.yaml": "kind: role\nname: staff\npermissions: []\n"}, version="1.4.0")
    needs_two = packs.write("needs_two", {}, extends="base: '>=2.0'")
    orphan = packs.write("orphan", {}, extends="ghost: '>=1'")
    bad_range = packs.write("bad_range", {}, extends="base: 'one or two'")
    a = packs.write("a", {}, extends="b: '>=1'")
    b = packs.write("b", {}, extends="a: '>=1'")
    assert problems(base, needs_two, orphan, bad_range, a, b) == [
        "a/pack.yaml:5:6: packs extend each other in a cycle: a -> b -> a [pack.cycle]",
        "bad_range/pack.yaml:5:9: invalid version range 'one or two' (expected e.g. '>=1.0,<2') [pack.range]",
        "needs_two/pack.yaml:5:9: pack 'needs_two' needs 'base' >=2.0, but 'base' is 1.4.0 [pack.version]",
        "orphan/pack.yaml:5:10: pack 'orphan' extends 'ghost', which is not among the packs given "
        "(loaded: a, b, bad_range, base, needs_two, orphan) [pack.missing]",
    ]


def test_folders_that_are_not_packs(packs, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.yaml").write_text("kind: role\n")
    assert problems(tmp_path / "missing", tmp_path / "empty", tmp_path / "file.yaml") == [
        "empty: not a pack: no 'kind: pack' document (expected in pack.yaml) [pack.no-manifest]",
        "file.yaml: a pack is a folder with a pack.yaml; this is a file [pack.not-a-folder]",
        "missing: no such folder [pack.not-found]",
    ]


LINKED = {
    "company.yaml": """
        kind: entity
        name: company
        fields:
          name: {type: string, required: true}
          account_number: string
        record_fields:
          types: [string, date]
          max: 10
        links:
          accounts: {url: "https://accounts.example.com/{{ record.account_number }}"}
          website: {url: "https://example.com"}
        """,
}


def test_an_overlay_changes_single_record_field_rules_and_removes_links(packs):
    from engine.compiler import compile_model

    base = packs.write("base", LINKED)
    client = packs.write("client", {"o.yaml": """
        kind: overlay
        name: company_rules
        target: entity/company
        record_fields:
          types: [string, text, money]
          max: 3
        remove_links: [accounts]
        """}, extends="base: '>=1'")
    company = load([base, client]).entities["company"]
    assert (company.record_fields.allowed, company.record_fields.types, company.record_fields.max) == (True, ("string", "text", "money"), 3)
    assert [link.name for link in company.links] == ["website"]
    schema = compile_model(load([base, client])).entity_schemas["company"]["x-tailor-entity"]
    assert schema["record_fields"] == {"allowed": True, "types": ["string", "text", "money"], "max": 3}
    assert [link["name"] for link in schema["links"]] == ["website"]

    closed = packs.write("closed", {"o.yaml": "kind: overlay\nname: no_extras\ntarget: entity/company\nrecord_fields: {allowed: false}\n"},
                         extends="base: '>=1'")
    rules = load([base, closed]).entities["company"].record_fields
    assert (rules.allowed, rules.types, rules.max) == (False, ("string", "date"), 10)


def test_overlay_record_field_rules_and_link_removals_are_checked_where_written(packs):
    base = packs.write("base", LINKED)
    client = packs.write("client", {"o.yaml": """
        kind: overlay
        name: company_rules
        target: entity/company
        record_fields:
          types: [string, reference]
        remove_links: [acounts]
        """}, extends="base: '>=1'")
    assert problems(base, client) == [
        "client/o.yaml:4:1: entity 'company': single-record fields cannot be of type reference (they have no place to define its "
        "options) [entity.record-fields]",
        "client/o.yaml:6:16: entity 'company' has no link 'acounts' (known: accounts, website) [overlay.missing]",
    ]
    one = packs.write("one", {"o.yaml": "kind: overlay\nname: a\ntarget: entity/company\nrecord_fields: {max: 5}\n"}, extends="base: '>=1'")
    two = packs.write("two", {"o.yaml": "kind: overlay\nname: b\ntarget: entity/company\nrecord_fields: {max: 8}\n"}, extends="base: '>=1'")
    assert problems(base, one, two) == [
        "two/o.yaml:4:17: conflicting overlays: record_fields max of entity 'company' is also changed at one/o.yaml:4:17 "
        "(pack 'one') [overlay.conflict]",
    ]


GOOD_FALLBACKS = """
    kind: overlay
    name: follow_up_fallback
    target: process/follow_up
    set: {fallback: "group:sales"}
    change_steps:
      qualify: {assign: "group:sales", fallback: "user:mia"}
    ---
    kind: overlay
    name: sales_managers
    target: group/sales
    set: {managers: skip}
    """


def test_an_overlay_gives_a_process_and_a_step_a_fallback_and_a_group_its_managers_option(packs):
    base = packs.write("base", {**BASE, "groups.yaml": "kind: group\nname: sales\n"})
    model = load([base, packs.write("client", {"overlays.yaml": GOOD_FALLBACKS}, extends="base: '>=1.0,<2'")])
    proc = model.processes["follow_up"]
    assert (str(proc.fallback), str(proc.steps[0].assign), str(proc.steps[0].fallback)) == ("group:sales", "group:sales", "user:mia")
    assert model.groups["sales"].managers == "skip"
    bad = packs.write("bad", {"overlays.yaml": """
        kind: overlay
        name: bad_fallback
        target: process/follow_up
        change_steps:
          close: {fallback: assignee}
        """}, extends="base: '>=1.0,<2'")
    assert problems(base, bad) == ["bad/overlays.yaml:5:21: 'assignee' cannot be the step 'close' fallback: a new task has no assignee yet, "
                                   "so it would name nobody [party.never]"]


SECTIONED = {
    "company.yaml": """
        kind: entity
        name: company
        fields:
          name: {type: string, required: true}
          industry: {type: choice, choices: [healthcare, retail]}
          phone: phone
        groups:
          healthcare:
            when: "record.industry == 'healthcare'"
            fields: {ods_code: string}
        pages:
          sections:
            - {section: Company, fields: [name, industry]}
            - {section: Contact, fields: [phone]}
        """,
    "roles.yaml": "kind: role\nname: staff\npermissions: [access]\n",
}


def test_a_field_added_to_an_entity_with_edit_sections_is_placed_in_one(packs):
    base = packs.write("base", SECTIONED)
    unplaced = packs.write("client", {"o.yaml": """
        kind: overlay
        name: more
        target: entity/company
        add_fields: {email: email}
        """}, extends="base: '>=1.0'")
    assert problems(base, unplaced) == [
        "client/o.yaml:4:14: field 'email' of entity 'company' is in no section of pages.sections "
        "(place it with the overlay's add_to_sections) [entity.pages]"]
    placed = packs.write("placed", {"o.yaml": """
        kind: overlay
        name: more
        target: entity/company
        add_fields: {email: email}
        add_to_sections: {Company: [email]}
        remove_fields: [phone]
        """}, extends="base: '>=1.0'")
    company = load([base, placed]).entities["company"]
    # the removed field leaves its section, which, empty, goes
    assert [(s.title, s.fields) for s in company.pages.sections] == [("Company", ("name", "industry", "email"))]


def test_group_fields_are_changed_and_replaced_in_their_group(packs):
    base = packs.write("base", SECTIONED)
    client = packs.write("client", {"o.yaml": """
        kind: overlay
        name: ods
        target: entity/company
        change_fields: {ods_code: {label: ODS code, max_length: 10}}
        replace_fields: {phone: {type: string, label: Switchboard}}
        """}, extends="base: '>=1.0'")
    company = load([base, client]).entities["company"]
    ods = company.groups[0].fields[0]
    assert (ods.name, ods.label, ods.max_length, ods.scope) == ("ods_code", "ODS code", 10, "group:healthcare")
    assert company.field("phone").type == "string" and company.field("phone").label == "Switchboard"
    assert [f.name for f in company.fields] == ["name", "industry", "phone"]  # nothing moved out of its group
    plain = packs.write("plain", BASE)
    none = packs.write("none", {"o.yaml": """
        kind: overlay
        name: nowhere
        target: entity/company
        add_to_sections: {Contact: [name]}
        """}, extends="plain: '>=1.0'")
    assert problems(plain, none) == [
        "none/o.yaml:4:1: entity 'company' has no pages.sections: its edit page shows every field for all records in one section "
        "[overlay.missing]"]
