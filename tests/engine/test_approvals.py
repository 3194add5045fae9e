"""Approval steps: how they are written, the older `approval:` form, their located problems and their compiled spec."""
from __future__ import annotations

from engine.compiler import compile_model
from engine.loader import load, load_model
from engine.model import ApprovalStep, TaskStep

COMPANY = """
kind: entity
name: company
title: "{{ record.name }}"
fields:
  name: {type: string, required: true}
  value: {type: money, currency: GBP}
  owner: user
"""
PEOPLE = """
kind: role
name: director
permissions: [access, manage_own_tasks, approve_tasks]
---
kind: group
name: sales
"""
FORM = """
kind: form
name: proposal
entity: company
fields:
  amount: {type: money, currency: GBP, required: true}
  discount: integer
  reason: text
"""


def pack(packs, process: str, **extra: str):
    return packs.write("p", {"company.yaml": COMPANY, "people.yaml": PEOPLE, "form.yaml": FORM, "proc.yaml": process, **extra})


def problems(folder) -> list[str]:
    model, found = load_model([folder])
    assert (model is None) == bool(found)
    return [str(p).replace("p/", "", 1) for p in found]


APPROVAL = """
kind: process
name: discount
entity: company
steps:
  - id: propose
    title: "Propose a discount for {{ record.name }}"
    assign: owner
    form: proposal
  - id: approve_discount
    approve: propose
    title: "Approve a {{ steps.propose.data.discount }}% discount"
    approvers: [role:director, manager]
    decide: all
    show: [record.value, propose.discount, propose.reason]
"""


def test_an_approval_step_is_typed_and_compiled_with_what_it_shows(packs):
    folder = pack(packs, APPROVAL)
    model = load([folder])
    propose, approve = model.processes["discount"].steps
    assert isinstance(propose, TaskStep) and isinstance(approve, ApprovalStep)
    assert (approve.approve, [str(p) for p in approve.approvers], approve.decide) == ("propose", ["role:director", "manager"], "all")
    spec = compile_model(model).process_specs["discount"]["steps"][1]
    assert spec == {
        "kind": "approval", "id": "approve_discount", "approve": "propose", "title": "Approve a {{ steps.propose.data.discount }}% discount",
        "description": None, "when": None, "approvers": [{"kind": "role", "name": "director"}, {"kind": "manager", "name": None}],
        "decide": "all", "show": ["record.value", "propose.discount", "propose.reason"], "fallback": None,
        "due": None, "reminders": [], "escalate": [],
    }


def test_an_approval_shows_every_field_of_the_approved_form_by_default_and_decides_on_any(packs):
    folder = pack(packs, APPROVAL.replace("    decide: all\n", "").replace("    show: [record.value, propose.discount, propose.reason]\n", ""))
    spec = compile_model(load([folder])).process_specs["discount"]["steps"][1]
    assert (spec["decide"], spec["show"]) == ("any", ["propose.amount", "propose.discount", "propose.reason"])


def test_the_older_approval_on_a_task_becomes_the_task_and_its_approval_step(packs):
    folder = pack(packs, """
        kind: process
        name: discount
        entity: company
        steps:
          - id: propose
            title: "Propose a discount for {{ record.name }}"
            assign: owner
            form: proposal
            approval: {by: role:director}
          - id: send
            title: Send it
        """)
    model = load([folder])
    propose, approval, send = model.processes["discount"].steps
    assert (propose.id, approval.id, send.id) == ("propose", "propose_approval", "send")
    assert (approval.approve, [str(p) for p in approval.approvers], approval.title.source) == (
        "propose", ["role:director"], "Approve: Propose a discount for {{ record.name }}")
    spec = compile_model(model).process_specs["discount"]["steps"]
    assert [(s["kind"], s["id"]) for s in spec] == [("task", "propose"), ("approval", "propose_approval"), ("task", "send")]
    assert spec[0]["approval"] is None  # the task itself no longer waits for a decision: its approval step does


def test_an_older_approval_in_a_parallel_branch_and_in_an_overlay_is_desugared_there(packs):
    base = pack(packs, """
        kind: process
        name: discount
        entity: company
        steps:
          - id: both
            parallel:
              left:
                - {id: propose, title: Propose, assign: owner, form: proposal, approval: {by: role:director}}
              right:
                - {id: other, title: Other}
        """)
    client = packs.write("c", {
        "pack.yaml": "kind: pack\nname: c\nversion: 1.0.0\nextends: {p: '>=1.0,<2'}\n",
        "o.yaml": """
            kind: overlay
            name: more
            target: process/discount
            insert_steps:
              - after: both
                step: {id: check, title: Check, assign: owner, approval: {by: group:sales}}
            """})
    model = load([base, client])
    both, check, check_approval = model.processes["discount"].steps
    assert [s.id for s in both.branches[0][1]] == ["propose", "propose_approval"]
    assert (check.id, check_approval.id, check_approval.approve) == ("check", "check_approval", "check")


def test_approval_problems_are_located(packs):
    folder = pack(packs, """
        kind: process
        name: discount
        entity: company
        steps:
          - id: early
            approve: propose
            title: Too early
            approvers: role:director
          - id: propose
            title: Propose
            assign: owner
            form: proposal
          - id: both
            parallel:
              left:
                - {id: inside, title: Inside, form: proposal}
              right:
                - {id: other, title: Other}
          - id: approve_inside
            approve: inside
            title: Approve from outside the branch
            approvers: user:dana
          - id: twice
            approve: approve_inside
            title: An approval of an approval
            approvers: role:nobody
          - id: block
            approve: both
            title: A parallel block
            approvers: [assignee]
          - id: nowhere
            approve: missing
            title: Nothing
            approvers: owner
          - id: shown
            approve: propose
            title: Show
            approvers: group:sales
            show: [record.colour, propose.colour, other.amount, record.value, propose.amount]
            reminders: [1 hour]
            fallback: group:nobody
        """)
    assert problems(folder) == [
        "proc.yaml:6:14: step 'early' approves 'propose', which does not finish before it "
        "(task steps before this one on its path: none) [approval.order]",
        "proc.yaml:20:14: step 'approve_inside' approves 'inside', which runs in a parallel branch this step is not part of; "
        "approve it inside that branch (task steps before this one on its path: propose) [approval.path]",
        "proc.yaml:24:14: step 'twice' approves 'approve_inside', which is itself an approval step; "
        "name the task step whose work is approved ('inside') [approval.kind]",
        "proc.yaml:26:16: unknown role 'nobody' in step 'twice' approvers (known: director) [reference.role]",
        "proc.yaml:28:14: step 'block' approves 'both', which is a parallel block; name the task step whose work is approved "
        "[approval.kind]",
        "proc.yaml:30:17: 'assignee' cannot be the step 'block' approvers (possible: completer, group, manager, owner, project_manager, "
        "role, user) [party.kind]",
        "proc.yaml:32:14: step 'nowhere' approves 'missing', which is not a step of process 'discount' "
        "(its task steps: propose, inside, other) [reference.step]",
        "proc.yaml:35:9: step 'shown' has reminders or escalations but no 'due:' [step.no-due]",
        "proc.yaml:39:12: step 'shown' shows 'record.colour', which is not a field of entity 'company' "
        "(fields: name, value, owner) [approval.show]",
        "proc.yaml:39:27: step 'shown' shows 'propose.colour', which is not a field of form 'proposal' "
        "(fields: amount, discount, reason) [approval.show]",
        "proc.yaml:39:43: step 'shown' shows 'other.amount': expected record.FIELD or propose.FIELD "
        "(a field of the approved step's form) [approval.show]",
        "proc.yaml:41:15: unknown group 'nobody' in step 'shown' fallback (known: sales) [reference.group]",
    ]


def test_an_approval_inside_a_branch_approves_a_step_of_that_branch(packs):
    folder = pack(packs, """
        kind: process
        name: discount
        entity: company
        steps:
          - id: both
            parallel:
              left:
                - {id: inside, title: Inside, form: proposal}
                - {id: ok, approve: inside, title: Fine, approvers: role:director, show: [inside.amount]}
              right:
                - {id: other, title: Other}
        """)
    assert problems(folder) == []


def test_an_approval_shape_is_checked_by_the_schema(packs):
    folder = pack(packs, """
        kind: process
        name: discount
        steps:
          - {id: propose, title: Propose, form: proposal}
          - {id: decide, approve: propose, title: Decide, approvers: role:director, decide: most, assign: owner, show: [amount]}
        """)
    assert problems(folder) == [
        "proc.yaml:5:85: expected one of any, all in 'decide', found 'most' [schema.enum]",
        "proc.yaml:5:91: unknown key 'assign' in 'steps' (expected one of: approve, approvers, decide, description, due, escalate, "
        "fallback, id, reminders, show, title, when) [schema.unknown-key]",
        "proc.yaml:5:113: expected record.FIELD or STEP.FIELD (a field of the approved step's form) in 'show', found 'amount' "
        "[schema.pattern]",
    ]


def test_an_overlay_changes_what_applies_to_an_approval_step_and_says_what_does_not(packs):
    base = pack(packs, APPROVAL)
    client = packs.write("c", {
        "pack.yaml": "kind: pack\nname: c\nversion: 1.0.0\nextends: {p: '>=1.0,<2'}\n",
        "o.yaml": """
            kind: overlay
            name: more
            target: process/discount
            change_steps:
              approve_discount:
                title: Decide on the discount
                assign: owner
            """})
    _, found = load_model([base, client])
    assert [str(p) for p in found] == [
        "c/o.yaml:5:3: step 'approve_discount' is an approval step: 'assign' does not apply to it (it can change description, due, "
        "escalate, reminders, title, when; use replace_steps for more) [overlay.step-kind]",
    ]
