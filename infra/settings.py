"""Settings for every process, read from ``SECURE_EMAIL_*`` environment variables.

The defaults run the embedded development stack on 127.0.0.1 with its state under
``.data/``; production overrides them (see README, "Production").
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SECURE_EMAIL_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path(".data")

    # Database: SQLite in the data directory unless a URL is given
    # (PostgreSQL: ``postgresql+asyncpg://user:pass@host/db``).
    database_url: str = ""
    # Who applies migrations (``securemail migrate`` and the app's start-up migration):
    # on PostgreSQL the role that owns the tables, while ``database_url`` names the app's
    # role, which may only insert and read the audit log. Empty: ``database_url``.
    migration_database_url: str = Field(default="", repr=False)

    # Temporal
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "secure-email"
    temporal_ui_port: int = 8233
    # The Web UI's origin, the only one allowed to call the codec endpoint from a browser;
    # derived from the Temporal host and UI port if empty.
    temporal_ui_origin: str = ""
    # A real cluster: TLS, with a CA for a private PKI and a client certificate and key
    # for mTLS. An API key (Temporal Cloud) implies TLS.
    temporal_tls: bool = False
    temporal_tls_ca_path: str = ""
    temporal_tls_cert_path: str = ""
    temporal_tls_key_path: str = ""
    temporal_api_key: str = Field(default="", repr=False)
    # How long a stopping worker lets in-flight activities finish before cancelling them.
    worker_shutdown_grace_seconds: float = Field(default=30.0, ge=0)
    # ``host:port`` for the worker's Prometheus metrics (Temporal SDK and secure email
    # counters); empty serves none.
    worker_metrics_address: str = ""

    # Web app
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    public_url: str = ""  # the address patients and staff reach; derived if empty
    # How long a stopping web app lets open requests (and live alert streams) finish.
    web_shutdown_grace_seconds: int = Field(default=10, ge=0)
    # The TLS proxy's own address as the web app sees it (IPs or networks, comma
    # separated; none by default). From these only, X-Forwarded-For/-Proto are believed,
    # right-most untrusted entry first (``web.client_address``): the client address feeds
    # rate limits and the audit log, so the client must not choose it.
    forwarded_allow_ips: str = ""

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
    s3_secret_key: str = "securemail-dev-secret"
    s3_bucket: str = "secure-email"
    s3_secure: bool = False

    # Mail
    mail_transport: Literal["smtp", "sendgrid"] = "smtp"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    sendgrid_api_key: str = ""
    sendgrid_api_url: str = "https://api.sendgrid.com"
    # SendGrid validates and answers but delivers nothing: for trying a production set-up.
    sendgrid_sandbox_mode: bool = False
    # Senders verified in SendGrid (single senders or authenticated domains), comma
    # separated: ``office@smile.example,smile-dental.example``. SendGrid refuses any other
    # From address; see ``infra.mail.factory.sender_is_verified``.
    sendgrid_verified_senders: str = ""

    # Encryption of payloads, database fields and stored files: ``id:base64key,...``,
    # the first current. Empty in development: a ring is generated into the data dir.
    encryption_keys: str = Field(default="", repr=False)
    # The key that notice links and passcodes are derived from (same ``id:base64key``
    # format and rotation). Held by the web app and the worker only, never by Temporal:
    # a history names the secure email, and without this key nothing in it opens a portal.
    portal_keys: str = Field(default="", repr=False)

    # Staff sessions
    staff_session_hours: int = Field(default=12, ge=1)
    # Minutes without a request after which a staff session ends (as the portal's do).
    staff_idle_minutes: int = Field(default=15, ge=1)

    # Logs: ``text`` for people, ``json`` (one object a line, ids only) for collectors.
    # Empty: text in development, json in production.
    log_format: Literal["text", "json", ""] = ""

    @model_validator(mode="after")
    def _derive(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / 'app.db'}"
        if not self.migration_database_url:
            self.migration_database_url = self.database_url
        if not self.public_url:
            self.public_url = f"http://{self.web_host}:{self.web_port}"
        self.public_url = self.public_url.rstrip("/")
        if not self.temporal_ui_origin:
            ui_host = self.temporal_address.rpartition(":")[0] or "127.0.0.1"
            self.temporal_ui_origin = f"http://{ui_host}:{self.temporal_ui_port}"
        self.temporal_ui_origin = self.temporal_ui_origin.rstrip("/")
        if not self.log_format:
            self.log_format = "json" if self.environment == "production" else "text"
        if self.environment == "production":
            if self.s3_secret_key == "securemail-dev-secret":
                raise ValueError("SECURE_EMAIL_S3_SECRET_KEY must be set in production")
            if self.mail_transport == "sendgrid" and not self.sendgrid_api_key:
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
