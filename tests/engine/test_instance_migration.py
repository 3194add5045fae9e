"""A process's `migrate:` (instance migration): what a pack ships to move running instances, checked where it is written."""
from engine.instancemigration import applies, step_map
from engine.loader import load, load_model

PROCESS = """\
kind: process
name: callback
steps:
  - id: call_customer
    title: Call back
  - id: write_up
    title: Write it up
migrate:
  from: "{frm}"
  steps:
    call: {to}
"""


def problems(*folders) -> list[str]:
    model, found = load_model(folders)
    assert (model is None) == bool(found)
    return [str(p) for p in found]


def test_a_migration_loads_as_a_typed_map(packs):
    model = load([packs.write("base", {"p.yaml": PROCESS.format(frm="1.0.0", to="call_customer")})])
    m = model.processes["callback"].migrate
    assert step_map(m) == {"call": "call_customer"}
    assert applies(m, "1.0.0") and not applies(m, "1.0.1")
    assert str(m.steps[0][2]) == "base/p.yaml:11:11"


def test_a_map_naming_a_step_the_process_does_not_have_is_a_located_problem(packs):
    base = packs.write("base", {"p.yaml": PROCESS.format(frm=">=1.0,<1.1", to="call_custmer")})
    assert problems(base) == [("base/p.yaml:11:11: migrate maps step 'call' to 'call_custmer', which is not a step of process "
                               "'callback'; did you mean 'call_customer'? [migrate.unknown-step]")]


def test_a_from_that_is_no_version_and_two_steps_mapped_to_one_are_problems(packs):
    text = PROCESS.format(frm="last week", to="call_customer") + "    ring: call_customer\n"
    assert problems(packs.write("base", {"p.yaml": text})) == [
        ("base/p.yaml:9:9: migrate from 'last week' of process 'callback': expected 'any', a version (e.g. '1.0.0') or a version "
         "range (e.g. '>=1.0,<1.1') [migrate.from]"),
        ("base/p.yaml:12:11: migrate maps both 'call' and 'ring' to step 'call_customer' of process 'callback': one running step can "
         "become one step [migrate.twice]")]


def test_an_unknown_key_in_migrate_is_a_schema_problem(packs):
    text = PROCESS.format(frm="any", to="call_customer") + "  stepz: {}\n"
    [found] = problems(packs.write("base", {"p.yaml": text}))
    assert found.startswith("base/p.yaml:") and "stepz" in found
