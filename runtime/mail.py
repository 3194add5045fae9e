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
        with self.session() as post:
            post.send(to, subject, body, key=key, html=html, attachments=attachments)

    def session(self) -> MailSession:
        """One connection to the mail server for several emails (`with mail.session() as post: post.send(...)`)."""
        return MailSession(self)


class MailSession:
    """Emails sent over one SMTP connection, opened for the first and closed at the end: a batch of emails costs
    one connect and greeting instead of one each. A send that fails closes the connection, so the next one starts
    afresh; a connection the server dropped since the last email is opened again once."""

    def __init__(self, settings: MailSettings):
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def send(self, to: Iterable[str], subject: str, body: str, *, key: str | None = None, html: str | None = None,
             attachments: Sequence[Attachment] = ()) -> None:
        """As `MailSettings.send`; raises on SMTP failure so the caller retries."""
        s = self.settings
        if s.outbox is not None:
            write_mail(s.outbox, s.sender, to, subject, body, key=key, html=html, attachments=attachments)
            return
        recipients = sorted({addr for addr in to if addr})
        if not recipients:
            return
        message = _message(s.sender, recipients, subject, body, key, html, attachments)
        reused = self._smtp is not None
        try:
            try:
                self._connection().send_message(message)
            except smtplib.SMTPServerDisconnected:
                if not reused:
                    raise
                self.close()
                self._connection().send_message(message)  # the server had closed the idle connection: once more, on a new one
        except Exception:
            self.close()
            raise

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is None:
            self._smtp = smtplib.SMTP(self.settings.host, self.settings.port, timeout=10)
        return self._smtp

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()

    def __enter__(self) -> MailSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
