"""Webhooks out: submission, task and alert events POSTed as signed JSON, retried until delivered.

Each delivery has an id (X-Tailor-Delivery) derived from the event, so a receiver can
drop repeats; the body is signed with HMAC-SHA256 (X-Tailor-Signature: sha256=HEX).
Deliveries run as Temporal activities, so a receiver that is down is retried with
backoff for a day without holding up any process.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import urllib.error
import urllib.request
from dataclasses import dataclass

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

RETRY = RetryPolicy(initial_interval=dt.timedelta(seconds=2), maximum_interval=dt.timedelta(minutes=10))


@dataclass(frozen=True)
class WebhookSettings:
    urls: tuple[str, ...] = ()
    secret: str = ""


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class Delivery:
    id: str
    event: str
    payload: dict


class WebhookActivities:
    def __init__(self, settings: WebhookSettings):
        self.settings = settings

    @activity.defn(name="tailor.webhook")
    def deliver(self, d: dict) -> int:
        """POST the event to every receiver; any failure raises, and the retry sends it again (receivers dedupe by id)."""
        body = json.dumps({"id": d["id"], "event": d["event"], "payload": d["payload"]}, sort_keys=True, default=str).encode()
        for url in self.settings.urls:
            request = urllib.request.Request(url, data=body, method="POST", headers={
                "Content-Type": "application/json", "X-Tailor-Event": d["event"], "X-Tailor-Delivery": d["id"],
                "X-Tailor-Signature": sign(self.settings.secret, body), "User-Agent": "Tailor-Webhooks/1"})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    if not 200 <= response.status < 300:
                        raise RuntimeError(f"{url} answered {response.status}")
            except urllib.error.HTTPError as exc:
                raise RuntimeError(f"{url} answered {exc.code}") from None
        return len(self.settings.urls)


@workflow.defn(name="TailorWebhook")
class WebhookWorkflow:
    """Delivers one event from outside a process (a form submission), with the same retries."""

    @workflow.run
    async def run(self, d: dict) -> int:
        return await workflow.execute_activity("tailor.webhook", d, start_to_close_timeout=dt.timedelta(seconds=30), retry_policy=RETRY,
                                               schedule_to_close_timeout=dt.timedelta(days=1))


async def announce(client, task_queue: str, event: str, delivery_id: str, payload: dict) -> None:
    """Send an event from the web (once per delivery id, whatever retries the request sees)."""
    from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
    from temporalio.exceptions import WorkflowAlreadyStartedError

    try:
        await client.start_workflow(WebhookWorkflow.run, {"id": delivery_id, "event": event, "payload": payload}, id=f"webhook/{delivery_id}",
                                    task_queue=task_queue, id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
    except WorkflowAlreadyStartedError:
        pass
