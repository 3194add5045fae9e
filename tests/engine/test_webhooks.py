"""Webhook receivers declared in pack.yaml: typed, checked where they are written, added by client packs."""
import json

from engine.compiler import compile_model
from engine.kinds import schema_text
from engine.loader import load, load_model
from engine.model import WEBHOOK_EVENTS, Webhook

ROLE = "kind: role\nname: staff\npermissions: [access]\n"


def problems(*folders) -> list[str]:
    model, found = load_model(folders)
    assert (model is None) == bool(found)
    return [str(p) for p in found]


def pack_yaml(name: str, webhooks: str, extends: str = "") -> str:
    return f"kind: pack\nname: {name}\nversion: 1.0.0\n{extends}webhooks:\n{webhooks.lstrip(chr(10))}"


def test_a_client_pack_adds_receivers_to_its_base(packs):
    base = packs.write("base", {"pack.yaml": pack_yaml("base", """
  - name: crm_sync
    url: https://crm.example.com/hooks/tailor
    events: [task.created, task.completed]
    secret_env: CRM_SYNC_SECRET
"""), "roles.yaml": ROLE})
    client = packs.write("client", {"pack.yaml": pack_yaml("client", """
  - {name: client_erp, url: "http://127.0.0.1:9000/in", events: [submission.created], secret_env: CLIENT_ERP_SECRET}
""", extends="extends: {base: '>=1.0'}\n")})
    model = load([base, client])
    assert [(w.name, w.pack, w.events, w.secret_env) for w in model.webhooks] == [
        ("crm_sync", "base", ("task.created", "task.completed"), "CRM_SYNC_SECRET"),
        ("client_erp", "client", ("submission.created",), "CLIENT_ERP_SECRET")]
    assert isinstance(model.webhooks[0], Webhook) and str(model.webhooks[0].url_loc) == "base/pack.yaml:6:10"
    manifest = compile_model(model).manifest()
    assert manifest["webhooks"][1] == {"name": "client_erp", "pack": "client", "url": "http://127.0.0.1:9000/in",
                                       "events": ["submission.created"], "secret_env": "CLIENT_ERP_SECRET"}


def test_bad_addresses_unknown_events_secrets_in_yaml_and_duplicates_are_reported_where_written(packs):
    base = packs.write("base", {"pack.yaml": pack_yaml("base", """
  - {name: erp, url: "ftp://erp.example.com", events: [task.created], secret_env: ERP_SECRET}
  - {name: mail, url: "https://bob:hunter2@hooks.example.com/", events: [task.created], secret_env: TAILOR_SECRET_KEY}
  - {name: erp, url: "https://erp.example.com", events: [task.created], secret_env: ERP_SECRET}
""")})
    client = packs.write("client", {"pack.yaml": pack_yaml("client", """
  - {name: mail, url: "https://mail.example.com", events: [task.done], secret_env: MAIL_SECRET}
  - {name: audit, url: "https://audit.example.com", events: [alert.raised], secret: s3cret}
""", extends="extends: {base: '>=1.0'}\n")})
    assert problems(base, client) == [
        "base/pack.yaml:5:22: webhook 'erp': expected an http:// or https:// address with a host, found 'ftp://erp.example.com' [webhook.url]",
        "base/pack.yaml:6:23: webhook 'mail': the address carries a user name or password; secrets never go in definitions "
        "(sign with secret_env instead) [webhook.url]",
        "base/pack.yaml:6:101: webhook 'mail': TAILOR_SECRET_KEY is the key that signs sessions; give the receiver a secret of "
        "its own [webhook.secret]",
        "base/pack.yaml:7:12: webhook 'erp' is already declared at base/pack.yaml:5:12 [webhook.duplicate]",
        "client/pack.yaml:6:60: expected one of submission.created, task.created, task.completed, alert.raised in 'events', "
        "found 'task.done' [schema.enum]",
        "client/pack.yaml:7:5: missing required key 'secret_env' in 'webhooks' [schema.missing-key]",
        "client/pack.yaml:7:77: unknown key 'secret' in 'webhooks' (expected one of: events, name, secret_env, url) [schema.unknown-key]",
    ]


def test_a_client_pack_cannot_redeclare_a_base_receiver(packs):
    base = packs.write("base", {"pack.yaml": pack_yaml("base", """
  - {name: erp, url: "https://erp.example.com", events: [task.created], secret_env: ERP_SECRET}
""")})
    client = packs.write("client", {"pack.yaml": pack_yaml("client", """
  - {name: erp, url: "https://evil.example.com", events: [task.created], secret_env: ERP_SECRET}
""", extends="extends: {base: '>=1.0'}\n")})
    assert problems(base, client) == [
        "client/pack.yaml:6:12: webhook 'erp' is already declared at base/pack.yaml:5:12 (a pack adds receivers of its own; "
        "it cannot change those of pack 'base') [webhook.duplicate]"]


def test_the_schema_lists_exactly_the_events_the_runtime_sends():
    schema = json.loads(schema_text("pack"))
    assert tuple(schema["properties"]["webhooks"]["items"]["properties"]["events"]["items"]["enum"]) == WEBHOOK_EVENTS
