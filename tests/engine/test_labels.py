"""Label translations: a pack says what its definitions, and its base's, are called in a language."""
from pathlib import Path

from engine import labels
from engine.compiler import compile_model, localized
from engine.loader import load, load_model

ROOT = Path(__file__).resolve().parents[2]

BASE = {
    "company.yaml": """
        kind: entity
        name: company
        fields:
          name: {type: string, required: true}
          industry: {type: choice, choices: [healthcare, retail]}
        """,
    "enquiry.yaml": """
        kind: form
        name: enquiry
        entity: company
        fields:
          summary: {type: text, required: true, help: What they want}
        layout:
          - {section: Request, fields: [summary]}
        """,
    "follow_up.yaml": """
        kind: process
        name: follow_up
        entity: company
        steps:
          - {id: qualify, title: Qualify}
          - {id: call, title: "Call {{ record.name }}"}
        """,
    "roles.yaml": "kind: role\nname: staff\npermissions: [access]\n",
    "locales/de.yaml": """
        kind: labels
        locale: de
        language: Deutsch
        entities:
          company:
            label: Firma
            fields:
              industry:
                label: Branche
                choices: {healthcare: Gesundheitswesen}
        forms:
          enquiry:
            label: Anfrage
            description: Was ein Kunde wissen will
            fields: {summary: {label: Zusammenfassung, help: Was sie wollen}}
            sections: {Request: Anliegen}
        processes:
          follow_up:
            label: Nachfassen
            steps: {qualify: Qualifizieren}
        roles: {staff: Mitarbeitende}
        """,
}


def problems(*folders) -> list[str]:
    return [str(p) for p in load_model(folders)[1]]


def test_a_translation_naming_what_does_not_exist_is_reported_where_it_is_written_all_at_once(packs):
    base = packs.write("base", {**BASE, "locales/de.yaml": """
        kind: labels
        locale: de
        entities:
          company:
            fields:
              industy: Branche
              industry:
                choices: {helthcare: Gesundheitswesen}
          compny: {label: Firma}
        forms:
          enquiry:
            sections: {Requests: Anliegen}
        processes:
          follow_up:
            steps: {call: "Anrufen {{ record.name ", qualfy: Qualifizieren}
        """})
    assert problems(base) == [
        "base/locales/de.yaml:6:7: entity 'company' has no field 'industy' (fields: industry, name) [labels.unknown]",
        "base/locales/de.yaml:8:19: field 'industry' of entity 'company' has no choice 'helthcare' (choices: healthcare, retail) [labels.unknown]",
        "base/locales/de.yaml:9:3: there is no entity 'compny' to translate (known: company) [labels.unknown]",
        "base/locales/de.yaml:12:16: form 'enquiry' has no section titled 'Requests' (sections: Request) [labels.unknown]",
        ("base/locales/de.yaml:15:13: the title of step 'call' of process 'follow_up' is not a valid template: "
         "unexpected end of template, expected 'end of print statement'. [labels.template]"),
        "base/locales/de.yaml:15:46: process 'follow_up' has no step 'qualfy' (steps: call, qualify) [labels.unknown]",
    ]


def test_the_shape_of_a_translation_is_checked_against_its_published_schema(packs):
    base = packs.write("base", {**BASE, "locales/de.yaml": "kind: labels\nlocale: German\nentities:\n  company: {colour: red}\n"})
    found = problems(base)
    assert "base/locales/de.yaml:2:9: expected a language code such as de or pt-BR in 'locale', found 'German' [schema.pattern]" in found
    assert any(p.startswith("base/locales/de.yaml:4:13: unknown key 'colour'") for p in found)


def test_the_model_in_a_language_reads_translated_labels_and_keeps_the_rest(packs):
    model = load([packs.write("base", BASE)])
    de = labels.translate(model, "de")
    company = de.entities["company"]
    assert (company.label, company.field("industry").label) == ("Firma", "Branche")
    assert [c.label for c in company.field("industry").choices] == ["Gesundheitswesen", "Retail"]  # retail is not translated
    assert company.field("name").label == "Name"
    form = de.forms["enquiry"]
    assert (form.label, form.field("summary").label, form.field("summary").help, form.layout[0].title) == (
        "Anfrage", "Zusammenfassung", "Was sie wollen", "Anliegen")
    assert form.description == "Was ein Kunde wissen will"
    steps = de.processes["follow_up"].steps
    assert [s.title.source for s in steps] == ["Qualifizieren", "Call {{ record.name }}"]
    assert de.roles["staff"].label == "Mitarbeitende"
    assert f"Edit this {company.label.lower()}" == "Edit this Firma"  # a translation keeps its case mid-sentence
    assert model.entities["company"].label.lower() == "company"
    assert labels.translate(model, "fr") is model and labels.translate(model, None) is model
    assert model.entities["company"].label == "Company"  # the model itself reads as defined
    assert labels.languages(model) == [("en", "English"), ("de", "Deutsch")]
    assert de.locale == "de" and model.locale == ""
    old = {"process": "follow_up", "step_id": "qualify", "title": "Qualify", "titles": None}  # a task made before titles were kept
    assert labels.task_title(old, "de", model) == "Qualifizieren" and labels.task_title(old, "en", model) == "Qualify"
    made = {**old, "step_id": "call", "title": "Call Acme", "titles": {"de": "Acme anrufen"}}
    assert labels.task_title(made, "de", model) == "Acme anrufen" and labels.task_title(made, None, model) == "Call Acme"


def test_a_compiled_model_in_a_language_has_translated_form_schemas_and_the_same_process_versions(packs):
    compiled = compile_model(load([packs.write("base", BASE)]))
    de = localized(compiled, "de")
    assert de.form_schemas["enquiry"]["title"] == "Anfrage"
    assert de.entity_schemas["company"]["properties"]["industry"]["oneOf"][0]["title"] == "Gesundheitswesen"
    assert de.form_layouts["enquiry"]["sections"][0]["fields"][0]["label"] == "Zusammenfassung"
    assert de.process_specs is compiled.process_specs  # workflows run the same specs whatever the reader's language
    assert de.metadata.tables["company"] is compiled.metadata.tables["company"]  # and the store the same tables
    assert de.metadata.info is not compiled.metadata.info  # what is kept per model (with its labels) is not shared
    assert compiled.form_schemas["enquiry"]["title"] == "Enquiry"
    assert localized(compiled, "en") is compiled


def test_a_client_pack_translates_its_base_and_wins_over_the_base_translation(packs):
    base = packs.write("base", BASE)
    client = packs.write("client", {"locales/de.yaml": """
        kind: labels
        locale: de
        entities:
          company:
            fields: {industry: Sektor}
        """}, extends="base: '>=1.0'")
    de = labels.translate(load([base, client]), "de")
    industry = de.entities["company"].field("industry")
    assert industry.label == "Sektor"  # the client's
    assert industry.choices[0].label == "Gesundheitswesen"  # the base's, entry by entry
    assert de.entities["company"].label == "Firma"


def test_a_pack_translates_only_its_own_and_its_bases_definitions(packs):
    base = packs.write("base", {k: v for k, v in BASE.items() if k != "locales/de.yaml"})
    other = packs.write("other", {"locales/de.yaml": "kind: labels\nlocale: de\nentities:\n  company: {label: Firma}\n"})
    assert problems(base, other) == [
        "other/locales/de.yaml:4:3: entity 'company' comes from pack 'base', which pack 'other' does not extend [labels.not-based]"]


def test_a_pack_translating_a_language_twice_is_told_where_the_first_is(packs):
    base = packs.write("base", {**BASE, "locales/de2.yaml": "kind: labels\nlocale: de\n"})
    assert problems(base) == ["base/locales/de2.yaml:2:9: pack 'base' already translates 'de' at base/locales/de.yaml:2:9 [labels.duplicate]"]


def test_the_browser_language_picks_a_shipped_language_or_the_default(packs):
    model = load([packs.write("base", BASE)])
    assert labels.accept_language("fr;q=0.5, de-AT, en;q=0.8") == ["de-AT", "en", "fr"]
    assert labels.pick(model, labels.accept_language("de-AT,en;q=0.8")) == "de"
    assert labels.pick(model, labels.accept_language("fr, en;q=0.5, de;q=0.2")) == "en"
    assert labels.pick(model, [None, "nonsense;;", "x" * 100]) == "en"


def test_the_shipped_packs_german_translations_load():
    model = load([ROOT / "definitions/crm", ROOT / "definitions/examples/acme"])
    de = labels.translate(model, "de")
    assert de.entities["company"].field("status").choices[0].label == "Interessent"
    assert de.entities["company"].field("phone").label == "Zentrale"  # acme's, over the CRM pack's Telefon


def test_a_base_translation_of_what_a_client_overlay_removed_is_not_wrong_only_unused(packs):
    base = packs.write("base", BASE)
    client = packs.write("client", {"overlay.yaml": """
        kind: overlay
        name: no_industry
        target: entity/company
        remove_fields: [industry]
        """}, extends="base: '>=1.0'")
    model, found = load_model([base, client])
    assert found == []
    assert labels.translate(model, "de").entities["company"].label == "Firma"


def test_a_field_the_base_renames_keeps_its_translation(packs):
    renamed = {**BASE, "company.yaml": BASE["company.yaml"].replace("industry: {type: choice,", "sector: {type: choice, renamed_from: industry,")}
    model, found = load_model([packs.write("base", renamed)])
    assert found == []
    sector = labels.translate(model, "de").entities["company"].field("sector")
    assert (sector.label, sector.choices[0].label) == ("Branche", "Gesundheitswesen")


def test_every_task_title_of_the_crm_pack_reads_in_german():
    """A German reader of the CRM pack sees every step's task title in German, templated ones included."""
    from engine.model import walk

    model, problems = load_model([ROOT / "definitions" / "crm"])
    assert not problems
    german = labels.translate(model, "de")
    untranslated = [f"{name}.{step.id}" for name, process in model.processes.items()
                    for step, de in zip(walk(process.steps), walk(german.processes[name].steps), strict=True)
                    if getattr(step, "title", None) is not None and de.title.source == step.title.source]
    assert untranslated == []
