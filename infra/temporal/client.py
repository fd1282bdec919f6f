"""Connecting to Temporal with the project's data converter (pydantic, encrypted)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.service import TLSConfig

from infra.crypto.keys import encryption_keys
from infra.settings import Settings
from infra.temporal.codec import data_converter


def connect_options(settings: Settings) -> dict[str, Any]:
    """``Client.connect`` arguments for the cluster the settings name, but the converter.

    The local dev server speaks plain gRPC; a self-hosted cluster is reached over TLS,
    with a client certificate where it asks for mTLS; Temporal Cloud takes mTLS or an
    API key, and an API key is only ever sent over TLS.
    """
    cert, key = settings.temporal_tls_cert_path, settings.temporal_tls_key_path
    if bool(cert) != bool(key):
        raise ValueError(
            "SECURE_EMAIL_TEMPORAL_TLS_CERT_PATH and SECURE_EMAIL_TEMPORAL_TLS_KEY_PATH "
            "must be set together"
        )
    ca = settings.temporal_tls_ca_path
    # A certificate file given means TLS was meant, even without TEMPORAL_TLS.
    api_key = settings.temporal_api_key.get_secret_value()
    tls: bool | TLSConfig = bool(settings.temporal_tls or api_key or ca or cert)
    if ca or cert:
        tls = TLSConfig(
            server_root_ca_cert=Path(ca).read_bytes() if ca else None,
            client_cert=Path(cert).read_bytes() if cert else None,
            client_private_key=Path(key).read_bytes() if key else None,
        )
    return {
        "target_host": settings.temporal_address,
        "namespace": settings.temporal_namespace,
        "tls": tls,
        "api_key": api_key or None,
    }


async def connect(settings: Settings) -> Client:
    return await Client.connect(
        **connect_options(settings),
        data_converter=data_converter(encryption_keys(settings)),
    )
