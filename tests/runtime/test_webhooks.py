"""Webhook receivers from packs and the installation, on loopback HTTP servers and the Temporal test server."""
from __future__ import annotations

import asyncio
import http.server
import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from engine.loader import load
from runtime.settings import Settings, SettingsError
from runtime.webhooks import WebhookActivities, WebhookSettings, WebhookWorkflow, announce, announcing, sign
from tests.runtime.test_workflows import TEST_SERVER

PACK = """kind: pack
name: client
version: 1.0.0
webhooks:
  - {name: erp, url: "http://127.0.0.1:%d/erp", events: [task.created, task.completed], secret_env: CLIENT_ERP_SECRET}
  - {name: audit, url: "http://127.0.0.1:%d/audit", events: [submission.created, alert.raised], secret_env: CLIENT_AUDIT_SECRET}
"""


class Receiver:
    """A real HTTP server on loopback that records what it is sent; it can refuse the first few requests."""

    def __init__(self, fail_first: int = 0):
        self.received: list[tuple[dict, bytes]] = []
        self.fail_left = fail_first
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if outer.fail_left:
                    outer.fail_left -= 1
                    self.send_response(503)
                else:
                    outer.received.append((dict(self.headers), body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[tuple[str, str]]:
        """(event, delivery id) of each request received, in delivery-id order (events are delivered concurrently)."""
        return sorted(((h["X-Tailor-Event"], h["X-Tailor-Delivery"]) for h, _ in self.received), key=lambda e: e[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers():
    made = {"erp": Receiver(), "audit": Receiver(fail_first=1), "installation": Receiver()}
    yield made
    for r in made.values():
        r.close()


def client_pack(packs, receivers):
    return packs.write("client", {"pack.yaml": PACK % (receivers["erp"].port, receivers["audit"].port)})


def test_each_event_goes_to_its_subscribers_and_the_installation_signed_with_their_secrets(packs, receivers):
    model = load([client_pack(packs, receivers)])
    settings = Settings(webhook_urls=(f"http://127.0.0.1:{receivers['installation'].port}/all",), webhook_secret="install-secret",
                        environ={"CLIENT_ERP_SECRET": "erp-secret", "CLIENT_AUDIT_SECRET": "audit-secret"})
    hooks = WebhookSettings.of(settings, model)
    assert announcing(settings, model)
    sent = [("submission.created", "submission:1"), ("task.created", "wf:call:created"), ("alert.raised", "wf:call:L1"),
            ("task.completed", "wf:call:completed:9")]

    async def run() -> list[int]:
        async with await WorkflowEnvironment.start_time_skipping(test_server_existing_path=TEST_SERVER) as env:
            queue = f"hooks-{uuid.uuid4()}"
            with ThreadPoolExecutor(2) as pool:
                async with Worker(env.client, task_queue=queue, workflows=[WebhookWorkflow], activities=[WebhookActivities(hooks).deliver],
                                  activity_executor=pool):
                    for event, delivery in sent:
                        await announce(env.client, queue, event, delivery, {"n": delivery})
                        await announce(env.client, queue, event, delivery, {"n": delivery})  # a retried request: one delivery
                    return [await env.client.get_workflow_handle(f"webhook/{d}").result() for _, d in sent]

    counts = asyncio.run(run())
    assert counts == [2, 2, 2, 2]  # the installation and one pack receiver each
    assert receivers["erp"].events() == [("task.completed", "wf:call:completed:9"), ("task.created", "wf:call:created")]
    assert receivers["audit"].events() == [("submission.created", "submission:1"), ("alert.raised", "wf:call:L1")]
    assert receivers["installation"].events() == sorted(sent, key=lambda e: e[1])  # the first audit attempt failed: the installation still got it once
    for name, secret in [("erp", "erp-secret"), ("audit", "audit-secret"), ("installation", "install-secret")]:
        for headers, body in receivers[name].received:
            assert headers["X-Tailor-Signature"] == sign(secret, body)
            assert json.loads(body)["id"] == headers["X-Tailor-Delivery"]


def test_a_receiver_whose_secret_is_not_set_stops_the_start(packs, receivers):
    model = load([client_pack(packs, receivers)])
    with pytest.raises(SettingsError) as caught:
        WebhookSettings.of(Settings(environ={"CLIENT_ERP_SECRET": "x"}), model)
    assert str(caught.value) == ("webhook secrets are not set in the environment: CLIENT_AUDIT_SECRET (webhook 'audit' of pack 'client')")
    assert not announcing(Settings(), load([packs.write("plain", {"roles.yaml": "kind: role\nname: staff\npermissions: [access]\n"})]))
