"""Versions of the CRM pack for upgrade tests: a 1.1.0 written from the shipped 1.0.0 by a few explicit edits."""
from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import CRM

SITE_VISIT = """\
kind: form
name: site_visit
label: Site visit
description: A visit to the customer's site, and what was agreed there.
entity: company
contact: true
fields:
  visited_on: {type: date, required: true}
  notes: text
"""


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new))


def crm_1_1(root: Path, *, conflict: bool = False, version: str = "1.1.0") -> Path:
    """CRM 1.1.0: company's `phone` renamed `telephone` (renamed_from), onboarding's `training` step removed, its
    kickoff due in 2 business days instead of 3, a new Site visit form. With `conflict`, it also changes the lead
    follow-up's qualify due (2 → 3 business days, which acme sets too) and renames its `proposal` step to
    `send_proposal` (acme changes the proposal step's `when`)."""
    folder = root / (f"crm-{version}" + ("-conflict" if conflict else ""))
    shutil.copytree(CRM, folder)
    _edit(folder / "pack.yaml", "version: 1.0.0", f"version: {version}")
    company = folder / "entities" / "company.yaml"
    _edit(company, "  phone: phone\n", "  telephone:\n    type: phone\n    renamed_from: phone\n")
    _edit(company, "fields: [phone, email, website]", "fields: [telephone, email, website]")
    onboarding = folder / "processes" / "onboarding.yaml"
    text = onboarding.read_text()
    start, end = text.index("  - id: training\n"), text.index("  - id: sign_off\n")
    onboarding.write_text(text[:start] + text[end:])
    _edit(onboarding, "    due: 3 business days\n", "    due: 2 business days\n")
    german = folder / "locales" / "de.yaml"
    _edit(german, '      training: "Die Anwender von {{ record.name }} schulen"\n', "")
    (folder / "forms" / "contact" / "site_visit.yaml").write_text(SITE_VISIT)
    if conflict:
        lead = folder / "processes" / "lead_follow_up.yaml"
        _edit(lead, "    due: 2 business days\n", "    due: 3 business days\n")
        text = (lead.read_text().replace("id: proposal\n", "id: send_proposal\n").replace("steps.proposal.", "steps.send_proposal.")
                .replace("approve: proposal\n", "approve: send_proposal\n").replace(" proposal.", " send_proposal."))
        lead.write_text(text.replace("from: proposal}", "from: send_proposal}"))
        _edit(german, '      proposal: "Angebot senden', '      send_proposal: "Angebot senden')
        _edit(german, "steps.proposal.", "steps.send_proposal.")
    return folder
