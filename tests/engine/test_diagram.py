"""The process diagram: every step, branch, condition and escalation level of the CRM pack's processes is drawn, and
the drawing is an image with a name and a description (the text list beside it says the same)."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from engine import diagram
from engine.loader import load
from engine.model import ParallelStep
from tests.conftest import CRM

MODEL = load([CRM])
NS = {"svg": "http://www.w3.org/2000/svg"}


def walk(steps):
    for s in steps:
        yield s
        if isinstance(s, ParallelStep):
            for _, branch in s.branches:
                yield from walk(branch)


@pytest.mark.parametrize("name", sorted(MODEL.processes))
def test_every_step_branch_condition_and_escalation_level_is_drawn(name):
    process = MODEL.processes[name]
    root = ET.fromstring(diagram.svg(process))
    assert root.get("role") == "img" and process.label in root.get("aria-label")
    assert root.find("svg:title", NS).text.startswith(f"Diagram of the process {process.label}")
    drawn = {g.get("data-step") for g in root.iter("{http://www.w3.org/2000/svg}g") if "step" in (g.get("class") or "").split()
             or g.get("class") == "parallel"}
    steps = list(walk(process.steps))
    assert drawn == {s.id for s in steps}
    branches = [g.get("data-branch") for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "branch"]
    assert branches == [n for s in steps if isinstance(s, ParallelStep) for n, _ in s.branches]
    levels = [(g.get("data-step"), int(g.get("data-level"))) for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "escalation"]
    assert levels == [(s.id, i) for s in steps for i, _ in enumerate(getattr(s, "escalate", ()), start=1)]
    conditions = [g.find("svg:title", NS).text for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "when"]
    assert conditions == [f"Only if {s.when.source}" for s in steps if s.when]
    text = " ".join(root.itertext())
    for s in steps:
        if hasattr(s, "approval") and s.approval:
            assert f"Approval by {diagram.party_text(s.approval)}" in text


def test_the_outline_says_what_the_drawing_shows():
    items = diagram.outline(MODEL.processes["onboarding"])
    block = next(i for i in items if i.kind == "parallel")
    assert block.title == "In parallel: Set up" and [n for n, _ in block.branches] == ["Accounts", "Delivery", "Support"]
    install = block.branches[1][1][1]
    assert install.lines == ("Who: whoever did Deliver", "Due: 5 business days after Deliver")
    assert install.escalations == ("At the due time: alert the project manager",)
    qualify = diagram.outline(MODEL.processes["lead_follow_up"])[0]
    assert qualify.title == "Qualify the enquiry: ‹name›"
    assert qualify.escalations[1] == "1 business day after due: alert role Sales director; hand to the assignee's manager"
    assert diagram.trigger_text(MODEL.processes["support_sla"]) == "Starts when a support request is created"
