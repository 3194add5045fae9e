"""Alert and reminder emails over SMTP.

Each email has a Message-ID made from what it is about (an alert, a reminder), so a send that is
repeated (a worker that crashed after the server accepted the mail but before it was marked sent)
is the same message again: mail servers and clients that drop repeated Message-IDs show it once,
and the development outbox keeps one file per Message-ID.
"""
from __future__ import annotations

import datetime as dt
import re
import smtplib
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Iterable


@dataclass(frozen=True)
class MailSettings:
    """Where mail goes: an SMTP server, or (for a laptop without one) .eml files in `outbox`."""

    host: str = "127.0.0.1"
    port: int = 8025
    sender: str = "tailor@localhost"
    base_url: str = "http://127.0.0.1:8000"
    outbox: Path | None = None

    def send(self, to: Iterable[str], subject: str, body: str, *, key: str | None = None) -> None:
        """Send (or, with an outbox, write) one email; `key` names what it is about and makes its Message-ID."""
        if self.outbox is not None:
            write_mail(self.outbox, self.sender, to, subject, body, key=key)
        else:
            send_mail(self.host, self.port, self.sender, to, subject, body, key=key)


def message_id(sender: str, key: str) -> str:
    """`<key@sender's domain>`: the same for every send of the same email."""
    domain = sender.rpartition("@")[2] or "tailor.invalid"
    return f"<{re.sub(r'[^A-Za-z0-9._-]', '.', key)}@{domain}>"


def _message(sender: str, recipients: list[str], subject: str, body: str, key: str | None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, ", ".join(recipients), subject
    msg["Date"] = dt.datetime.now(dt.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S +0000")
    msg["Message-ID"] = message_id(sender, key) if key else make_msgid(domain=sender.rpartition("@")[2] or None)
    msg.set_content(body)
    return msg


def write_mail(outbox: Path, sender: str, to: Iterable[str], subject: str, body: str, *, key: str | None = None) -> Path | None:
    """Write the email as an .eml file (development without an SMTP server); one file per key."""
    recipients = sorted({addr for addr in to if addr})
    if not recipients:
        return None
    outbox.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9._-]", "-", key) if key else f"{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    path = outbox / f"{name}.eml"
    path.write_bytes(bytes(_message(sender, recipients, subject, body, key)))
    return path


def send_mail(host: str, port: int, sender: str, to: Iterable[str], subject: str, body: str, *, key: str | None = None) -> None:
    """Send one plain-text email; raises on SMTP failure so the activity retries."""
    recipients = sorted({addr for addr in to if addr})
    if not recipients:
        return
    with smtplib.SMTP(host, port, timeout=10) as smtp:
        smtp.send_message(_message(sender, recipients, subject, body, key))
