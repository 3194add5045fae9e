"""Webhooks out: submission, task and alert events POSTed as signed JSON, retried until delivered.

Receivers are the installation's (TAILOR_WEBHOOK_URLS, every event, TAILOR_WEBHOOK_SECRET) and
those the packs declare (`webhooks:` in pack.yaml: their events only, each signed with its own
secret from the environment). Each delivery has an id (X-Tailor-Delivery) derived from the event,
so a receiver can drop repeats; the body is signed with HMAC-SHA256 (X-Tailor-Signature:
sha256=HEX). Deliveries run as Temporal activities, so a receiver that is down is retried with
backoff for a day without holding up any process, and receivers that already have the event
(recorded in the activity's heartbeat) are not sent it again.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

from engine.model import WEBHOOK_EVENTS

if TYPE_CHECKING:
    from engine.model import Model
    from .settings import Settings

RETRY = RetryPolicy(initial_interval=dt.timedelta(seconds=2), maximum_interval=dt.timedelta(minutes=10))


@dataclass(frozen=True)
class Receiver:
    """Where events go: a pack's receiver (its events) or an installation URL (events None: all of them)."""

    name: str
    url: str
    secret: str
    events: frozenset[str] | None = None

    def wants(self, event: str) -> bool:
        return self.events is None or event in self.events


@dataclass(frozen=True)
class WebhookSettings:
    urls: tuple[str, ...] = ()  # the installation's receivers of every event, signed with `secret`
    secret: str = ""
    receivers: tuple[Receiver, ...] = ()  # the packs' receivers

    def targets(self) -> tuple[Receiver, ...]:
        return tuple(Receiver(url, url, self.secret) for url in self.urls) + self.receivers

    @classmethod
    def of(cls, settings: "Settings", model: "Model") -> "WebhookSettings":
        """The installation's receivers and the packs', with each pack receiver's secret read through the settings."""
        from .settings import SettingsError

        missing = [f"{w.secret_env} (webhook '{w.name}' of pack '{w.pack}')" for w in model.webhooks if not settings.secret(w.secret_env)]
        if missing:
            raise SettingsError(f"webhook secrets are not set in the environment: {', '.join(missing)}")
        return cls(settings.webhook_urls, settings.webhook_secret,
                   tuple(Receiver(w.name, w.url, settings.secret(w.secret_env) or "", frozenset(w.events)) for w in model.webhooks))


def announcing(settings: "Settings", model: "Model") -> list[str]:
    """The events someone receives (installation receivers take all): processes and the web send only these."""
    if settings.webhook_urls:
        return list(WEBHOOK_EVENTS)
    return [e for e in WEBHOOK_EVENTS if any(e in w.events for w in model.webhooks)]


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
        """POST the event to each receiver subscribed to it that does not have it yet; failures raise after the rest
        were tried, and the retry sends it to those only (receivers still dedupe by id: a crash can repeat one)."""
        body = json.dumps({"id": d["id"], "event": d["event"], "payload": d["payload"]}, sort_keys=True, default=str).encode()
        details = activity.info().heartbeat_details
        done: list[str] = list(details[0]) if details else []
        failed: list[str] = []
        targets = [r for r in self.settings.targets() if r.wants(d["event"])]
        for r in targets:
            if r.name in done:
                continue
            try:
                _post(r, d, body)
            except (OSError, RuntimeError) as exc:  # urllib's errors are OSErrors: refused, timed out, HTTP 5xx
                failed.append(f"{r.name}: {exc}")
                continue
            done.append(r.name)
            activity.heartbeat(done)
        if failed:
            raise RuntimeError(f"webhook {d['id']} not delivered to {'; '.join(failed)}")
        return len(targets)


def _post(r: Receiver, d: dict, body: bytes) -> None:
    request = urllib.request.Request(r.url, data=body, method="POST", headers={
        "Content-Type": "application/json", "X-Tailor-Event": d["event"], "X-Tailor-Delivery": d["id"],
        "X-Tailor-Signature": sign(r.secret, body), "User-Agent": "Tailor-Webhooks/1"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            if not 200 <= response.status < 300:
                raise RuntimeError(f"{r.url} answered {response.status}")
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{r.url} answered {exc.code}") from None


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
