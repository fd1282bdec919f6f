"""Settings for every process, read from ``SECURE_EMAIL_*`` environment variables.

The defaults run the embedded development stack on 127.0.0.1 with its state under
``.data/``; production overrides them (see README, "Production").

Fields are what was given: no validator assigns to them. A default that depends on
another setting (the SQLite file in ``data_dir``, ``public_url`` from the web host and
port) is a ``default_factory`` of the fields declared before it; validators only check
or normalise their own field. Secrets are ``SecretStr``: ``.get_secret_value()`` at the
point of use, never in a log or a repr.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra.mail.sendgrid_events import verification_key

DEV_S3_SECRET_KEY = "securemail-dev-secret"


def _default_database_url(data: dict[str, Any]) -> str:
    return f"sqlite+aiosqlite:///{Path(data['data_dir']) / 'app.db'}"


def _default_temporal_ui_origin(data: dict[str, Any]) -> str:
    ui_host = str(data["temporal_address"]).rpartition(":")[0] or "127.0.0.1"
    return f"http://{ui_host}:{data['temporal_ui_port']}"


def _default_log_format(data: dict[str, Any]) -> Literal["text", "json"]:
    return "json" if data["environment"] == "production" else "text"


class Settings(BaseSettings):
    # An empty variable (``SECURE_EMAIL_PUBLIC_URL=``) means the default, as before.
    model_config = SettingsConfigDict(
        env_prefix="SECURE_EMAIL_", extra="ignore", env_ignore_empty=True
    )

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path(".data")

    # Database: SQLite in the data directory unless a URL is given
    # (PostgreSQL: ``postgresql+asyncpg://user:pass@host/db``).
    database_url: str = Field(default_factory=_default_database_url, repr=False)
    # Who applies migrations (``securemail migrate``, the only thing that migrates): on
    # PostgreSQL the role that owns the tables, while ``database_url`` names the app's
    # role, which may only insert and read the audit log. Unset: ``database_url``.
    migration_database_url: str = Field(
        default_factory=lambda data: str(data["database_url"]), repr=False
    )

    # Temporal
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "secure-email"
    temporal_ui_port: int = 8233
    # The Web UI's origin, the only one allowed to call the codec endpoint from a browser;
    # derived from the Temporal host and UI port if unset.
    temporal_ui_origin: str = Field(default_factory=_default_temporal_ui_origin)
    # A real cluster: TLS, with a CA for a private PKI and a client certificate and key
    # for mTLS. An API key (Temporal Cloud) implies TLS.
    temporal_tls: bool = False
    temporal_tls_ca_path: str = ""
    temporal_tls_cert_path: str = ""
    temporal_tls_key_path: str = ""
    temporal_api_key: SecretStr = SecretStr("")
    # How long a stopping worker lets in-flight activities finish before cancelling them.
    worker_shutdown_grace_seconds: float = Field(default=30.0, ge=0)
    # ``host:port`` for the worker's Prometheus metrics (Temporal SDK and secure email
    # counters); empty serves none.
    worker_metrics_address: str = ""
    # How many workflows the worker keeps in memory (each a sandboxed instance, about
    # 0.2 MiB) between their tasks; one not kept is replayed from its history when its
    # next task comes (a passcode request, its expiry). The SDK's default of 1,000 took
    # the worker to 337 MiB with 10,000 open secure emails (docs/BENCHMARKS.md, 4).
    worker_max_cached_workflows: int = Field(default=200, ge=0)
    # The reconciliation of the database with Temporal (``workflows.reconciling``): how
    # often its Schedule runs, and how many secure emails one run acts on at most.
    reconcile_minutes: int = Field(default=5, ge=1)
    reconcile_page: int = Field(default=200, ge=1)
    # ``securemail dev`` only: how many worker and web processes it starts (to measure
    # them side by side); the extra web apps listen on WEB_PORT+1, WEB_PORT+2, ...
    dev_workers: int = Field(default=1, ge=1)
    dev_webs: int = Field(default=1, ge=1)

    # Web app
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    # The address patients and staff reach; from the web host and port if unset.
    public_url: str = Field(
        default_factory=lambda data: f"http://{data['web_host']}:{data['web_port']}"
    )
    # How long a stopping web app lets open requests (and live alert streams) finish.
    web_shutdown_grace_seconds: int = Field(default=10, ge=0)
    # The TLS proxy's own address as the web app sees it (IPs or networks, comma
    # separated; none by default). From these only, X-Forwarded-For/-Proto are believed,
    # right-most untrusted entry first (``web.client_address``): the client address feeds
    # rate limits and the audit log, so the client must not choose it.
    forwarded_allow_ips: str = ""

    @field_validator("public_url", "temporal_ui_origin")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("sendgrid_webhook_public_key")
    @classmethod
    def _sendgrid_verification_key(cls, value: str) -> str:
        """A key that does not load would refuse every event: say so at start instead."""
        value = value.strip()
        if value:
            try:
                verification_key(value)
            except ValueError:
                raise ValueError(
                    "SECURE_EMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY must be the Signed Event "
                    "Webhook's verification key as SendGrid shows it (base64, ECDSA P-256)"
                ) from None
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _trusted_proxies(cls, value: str) -> str:
        items = [item.strip() for item in value.split(",") if item.strip()]
        if "*" in items:
            raise ValueError(
                "SECURE_EMAIL_FORWARDED_ALLOW_IPS cannot be '*': trusting every sender of "
                "X-Forwarded-For lets any client choose its own address; name the proxy's"
            )
        for item in items:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"SECURE_EMAIL_FORWARDED_ALLOW_IPS: {item!r} is not an IP address or network"
                ) from None
        return ",".join(items)

    # Object store (MinIO or any S3)
    s3_endpoint: str = "127.0.0.1:9000"
    s3_access_key: str = "securemail-dev"
    s3_secret_key: SecretStr = SecretStr(DEV_S3_SECRET_KEY)
    s3_bucket: str = "secure-email"
    s3_secure: bool = False

    # Mail
    mail_transport: Literal["smtp", "sendgrid"] = "smtp"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_starttls: bool = False
    sendgrid_api_key: SecretStr = SecretStr("")
    sendgrid_api_url: str = "https://api.sendgrid.com"
    # SendGrid validates and answers but delivers nothing: for trying a production set-up.
    sendgrid_sandbox_mode: bool = False
    # Senders verified in SendGrid (single senders or authenticated domains), comma
    # separated: ``office@smile.example,smile-dental.example``. SendGrid refuses any other
    # From address; see ``infra.mail.factory.sender_is_verified``.
    sendgrid_verified_senders: str = ""
    # The verification key of SendGrid's Signed Event Webhook (Settings → Mail Settings →
    # Event Webhook), base64 DER as SendGrid shows it: a public key, so no secret. Empty:
    # ``POST /webhooks/sendgrid`` is off (404). See ``web.webhooks.sendgrid``.
    sendgrid_webhook_public_key: str = ""

    # Tink JSON keysets (``infra.crypto.keys``; rotation in the README). AEAD for
    # payloads and database fields, streaming AEAD for stored files. Empty in
    # development: each is generated into the data dir; production refuses them empty.
    encryption_keyset: SecretStr = SecretStr("")
    object_keyset: SecretStr = SecretStr("")
    # The PRF keyset notice links and passcodes are derived from. Held by the web app and
    # the worker only, never by Temporal: a history names the secure email, and without
    # this keyset nothing in it opens a portal.
    portal_keyset: SecretStr = SecretStr("")

    # Staff sessions
    staff_session_hours: int = Field(default=12, ge=1)
    # Minutes without a request after which a staff session ends (as the portal's do).
    staff_idle_minutes: int = Field(default=15, ge=1)

    # Logs: ``text`` for people, ``json`` (one object a line, ids only) for collectors.
    # Unset: text in development, json in production.
    log_format: Literal["text", "json"] = Field(default_factory=_default_log_format)

    @model_validator(mode="after")
    def _no_placeholder_secrets(self) -> Settings:
        """Checks only: production refuses the development secrets."""
        if self.environment == "production":
            if self.s3_secret_key.get_secret_value() in ("", DEV_S3_SECRET_KEY):
                raise ValueError("SECURE_EMAIL_S3_SECRET_KEY must be set in production")
            if self.mail_transport == "sendgrid" and not self.sendgrid_api_key.get_secret_value():
                raise ValueError("SECURE_EMAIL_SENDGRID_API_KEY must be set for SendGrid")
        return self

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def codec_endpoint(self) -> str:
        return f"{self.public_url}/codec"


@lru_cache
def get_settings() -> Settings:
    return Settings()
