"""The one settings object, read from TAILOR_* environment variables.

Everything that differs between a laptop and a production cluster lives here;
nothing else in Tailor reads the environment.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from engine.errors import TailorError

DEVELOPMENT = "development"
DEFAULT_SECRET_KEY = "tailor-development-secret-change-me"


class SettingsError(TailorError):
    """The environment asks for something Tailor will not run with."""


def _split(value: str) -> tuple[str, ...]:
    return tuple(p for p in (s.strip() for s in re.split(r"[,\n]", value)) if p)


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, found {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    env: str = DEVELOPMENT
    data_dir: Path = Path("var")
    database_url: str = ""
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_tls_cert: str | None = None  # client certificate (PEM file) for an external cluster
    temporal_tls_key: str | None = None
    temporal_tls_ca: str | None = None
    task_queue: str = "tailor"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    mail_from: str = "Tailor <tailor@localhost>"
    secret_key: str = DEFAULT_SECRET_KEY
    packs: tuple[str, ...] = ("definitions/crm",)
    webhook_urls: tuple[str, ...] = ()  # receivers of submission, task and alert events
    webhook_secret: str = ""  # HMAC-SHA256 key for the X-Tailor-Signature header
    base_url: str = ""  # where people reach the web app, for links in emails (default: the address `tailor run` serves on)
    workflow_cache: int = 1000  # processes a worker keeps in memory between their steps (docs/runtime.md, "Sizing the workflow cache")
    # the variables packs name for their webhook secrets (`secret_env`) are read from here, through secret()
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.data_dir / 'tailor.db'}")
        if self.env != DEVELOPMENT and self.secret_key == DEFAULT_SECRET_KEY:
            raise SettingsError(f"TAILOR_SECRET_KEY must be set to a secret of your own when TAILOR_ENV is {self.env!r} "
                                f"(the built-in key is only for {DEVELOPMENT})")
        if not self.secret_key:
            raise SettingsError("TAILOR_SECRET_KEY is empty")
        if self.workflow_cache < 0:
            raise SettingsError(f"TAILOR_WORKFLOW_CACHE must be 0 or more, found {self.workflow_cache}")

    @property
    def development(self) -> bool:
        return self.env == DEVELOPMENT

    def secret(self, name: str) -> str | None:
        """A secret a definition names by its environment variable (a pack's webhook `secret_env`); None when unset."""
        return self.environ.get(name) or None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Settings from TAILOR_* variables (os.environ unless given); unset ones take the defaults."""
        env = os.environ if environ is None else environ

        def get(name: str, default: str) -> str:
            value = env.get(name)
            return default if value in (None, "") else value

        data_dir = Path(get("TAILOR_DATA_DIR", "var")).expanduser().resolve()
        return cls(
            env=get("TAILOR_ENV", DEVELOPMENT),
            data_dir=data_dir,
            database_url=get("TAILOR_DATABASE_URL", f"sqlite:///{data_dir / 'tailor.db'}"),
            temporal_address=get("TAILOR_TEMPORAL_ADDRESS", cls.temporal_address),
            temporal_namespace=get("TAILOR_TEMPORAL_NAMESPACE", cls.temporal_namespace),
            temporal_tls_cert=env.get("TAILOR_TEMPORAL_TLS_CERT") or None,
            temporal_tls_key=env.get("TAILOR_TEMPORAL_TLS_KEY") or None,
            temporal_tls_ca=env.get("TAILOR_TEMPORAL_TLS_CA") or None,
            task_queue=get("TAILOR_TASK_QUEUE", cls.task_queue),
            smtp_host=get("TAILOR_SMTP_HOST", cls.smtp_host),
            smtp_port=_int(env, "TAILOR_SMTP_PORT", cls.smtp_port),
            mail_from=get("TAILOR_MAIL_FROM", cls.mail_from),
            secret_key=get("TAILOR_SECRET_KEY", DEFAULT_SECRET_KEY),
            packs=_split(get("TAILOR_PACKS", "definitions/crm")),
            webhook_urls=_split(env.get("TAILOR_WEBHOOK_URLS", "")),
            webhook_secret=env.get("TAILOR_WEBHOOK_SECRET", ""),
            base_url=env.get("TAILOR_BASE_URL", ""),
            workflow_cache=_int(env, "TAILOR_WORKFLOW_CACHE", cls.workflow_cache),
            environ=dict(env),
        )

    def as_env(self) -> dict[str, str]:
        """These settings as TAILOR_* variables: a child process started with them runs with the very same settings."""
        out = {
            "TAILOR_ENV": self.env, "TAILOR_DATA_DIR": str(self.data_dir), "TAILOR_DATABASE_URL": self.database_url,
            "TAILOR_TEMPORAL_ADDRESS": self.temporal_address, "TAILOR_TEMPORAL_NAMESPACE": self.temporal_namespace,
            "TAILOR_TASK_QUEUE": self.task_queue, "TAILOR_SMTP_HOST": self.smtp_host, "TAILOR_SMTP_PORT": str(self.smtp_port),
            "TAILOR_MAIL_FROM": self.mail_from, "TAILOR_SECRET_KEY": self.secret_key, "TAILOR_PACKS": ",".join(self.packs),
            "TAILOR_WEBHOOK_URLS": ",".join(self.webhook_urls), "TAILOR_WEBHOOK_SECRET": self.webhook_secret,
            "TAILOR_BASE_URL": self.base_url, "TAILOR_WORKFLOW_CACHE": str(self.workflow_cache),
        }
        for name, value in (("TAILOR_TEMPORAL_TLS_CERT", self.temporal_tls_cert), ("TAILOR_TEMPORAL_TLS_KEY", self.temporal_tls_key),
                            ("TAILOR_TEMPORAL_TLS_CA", self.temporal_tls_ca)):
            if value:
                out[name] = value
        return out
