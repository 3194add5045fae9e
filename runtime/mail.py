"""Alert, reminder and report emails over SMTP.

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
from typing import Iterable, Sequence


@dataclass(frozen=True)
class Attachment:
    """A file sent with an email; with `inline_id`, an image the HTML part shows (`<img src="cid:ID">`)."""

    filename: str
    content: bytes
    mime: str
    inline_id: str | None = None


@dataclass(frozen=True)
class MailSettings:
    """Where mail goes: an SMTP server, or (for a laptop without one) .eml files in `outbox`."""

    host: str = "127.0.0.1"
    port: int = 8025
    sender: str = "tailor@localhost"
    base_url: str = "http://127.0.0.1:8000"
    outbox: Path | None = None

    def send(self, to: Iterable[str], subject: str, body: str, *, key: str | None = None, html: str | None = None,
             attachments: Sequence[Attachment] = ()) -> None:
        """Send (or, with an outbox, write) one email; `key` names what it is about and makes its Message-ID.
        `html` is an HTML alternative to the text `body`; `attachments` go with it (inline ones inside the HTML)."""
        if self.outbox is not None:
            write_mail(self.outbox, self.sender, to, subject, body, key=key, html=html, attachments=attachments)
        else:
            send_mail(self.host, self.port, self.sender, to, subject, body, key=key, html=html, attachments=attachments)


def message_id(sender: str, key: str) -> str:
    """`<key@sender's domain>`: the same for every send of the same email."""
    domain = sender.rpartition("@")[2] or "tailor.invalid"
    return f"<{re.sub(r'[^A-Za-z0-9._-]', '.', key)}@{domain}>"


def _message(sender: str, recipients: list[str], subject: str, body: str, key: str | None, html: str | None = None,
             attachments: Sequence[Attachment] = ()) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, ", ".join(recipients), subject
    msg["Date"] = dt.datetime.now(dt.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S +0000")
    msg["Message-ID"] = message_id(sender, key) if key else make_msgid(domain=sender.rpartition("@")[2] or None)
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
        rich = msg.get_payload()[-1]
        for a in attachments:
            if a.inline_id:
                maintype, _, subtype = a.mime.partition("/")
                rich.add_related(a.content, maintype=maintype, subtype=subtype, cid=f"<{a.inline_id}>", filename=a.filename)
    for a in attachments:
        if not a.inline_id:
            maintype, _, subtype = a.mime.partition("/")
            msg.add_attachment(a.content, maintype=maintype, subtype=subtype, filename=a.filename)
    return msg


def write_mail(outbox: Path, sender: str, to: Iterable[str], subject: str, body: str, *, key: str | None = None,
               html: str | None = None, attachments: Sequence[Attachment] = ()) -> Path | None:
    """Write the email as an .eml file (development without an SMTP server); one file per key."""
    recipients = sorted({addr for addr in to if addr})
    if not recipients:
        return None
    outbox.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9._-]", "-", key) if key else f"{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    path = outbox / f"{name}.eml"
    path.write_bytes(bytes(_message(sender, recipients, subject, body, key, html, attachments)))
    return path


def send_mail(host: str, port: int, sender: str, to: Iterable[str], subject: str, body: str, *, key: str | None = None,
              html: str | None = None, attachments: Sequence[Attachment] = ()) -> None:
    """Send one email (plain text, with an HTML alternative if given); raises on SMTP failure so the activity retries."""
    recipients = sorted({addr for addr in to if addr})
    if not recipients:
        return
    with smtplib.SMTP(host, port, timeout=10) as smtp:
        smtp.send_message(_message(sender, recipients, subject, body, key, html, attachments))
