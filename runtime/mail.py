"""Alert and reminder emails over SMTP."""
from __future__ import annotations

import datetime as dt
import smtplib
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
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

    def send(self, to: Iterable[str], subject: str, body: str) -> None:
        if self.outbox is not None:
            write_mail(self.outbox, self.sender, to, subject, body)
        else:
            send_mail(self.host, self.port, self.sender, to, subject, body)


def _message(sender: str, recipients: list[str], subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, ", ".join(recipients), subject
    msg["Date"] = dt.datetime.now(dt.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S +0000")
    msg.set_content(body)
    return msg


def write_mail(outbox: Path, sender: str, to: Iterable[str], subject: str, body: str) -> Path | None:
    """Write the email as an .eml file (development without an SMTP server)."""
    recipients = sorted({addr for addr in to if addr})
    if not recipients:
        return None
    outbox.mkdir(parents=True, exist_ok=True)
    path = outbox / f"{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.eml"
    path.write_bytes(bytes(_message(sender, recipients, subject, body)))
    return path


def send_mail(host: str, port: int, sender: str, to: Iterable[str], subject: str, body: str) -> None:
    """Send one plain-text email; raises on SMTP failure so the activity retries."""
    recipients = sorted({addr for addr in to if addr})
    if not recipients:
        return
    with smtplib.SMTP(host, port, timeout=10) as smtp:
        smtp.send_message(_message(sender, recipients, subject, body))
