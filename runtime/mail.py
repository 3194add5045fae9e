"""Alert and reminder emails over SMTP."""
from __future__ import annotations

import smtplib
from email.message import EmailMessage
from typing import Iterable


def send_mail(host: str, port: int, sender: str, to: Iterable[str], subject: str, body: str) -> None:
    """Send one plain-text email; raises on SMTP failure so the activity retries."""
    recipients = sorted({addr for addr in to if addr})
    if not recipients:
        return
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, ", ".join(recipients), subject
    msg.set_content(body)
    with smtplib.SMTP(host, port, timeout=10) as smtp:
        smtp.send_message(msg)
