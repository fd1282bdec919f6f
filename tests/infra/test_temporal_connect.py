"""How settings become ``Client.connect`` arguments: local, TLS, mTLS, Temporal Cloud."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.service import TLSConfig

from infra.settings import Settings
from infra.temporal.client import connect_options

CA = b"-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n"
CERT = b"-----BEGIN CERTIFICATE-----\nclient\n-----END CERTIFICATE-----\n"
KEY = b"-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n"


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, str]:
    files = {"ca": CA, "cert": CERT, "key": KEY}
    for name, content in files.items():
        (tmp_path / f"{name}.pem").write_bytes(content)
    return {name: str(tmp_path / f"{name}.pem") for name in files}


def test_connect_options_local_dev_server_plain() -> None:
    options = connect_options(Settings(temporal_address="127.0.0.1:7233"))
    assert options == {
        "target_host": "127.0.0.1:7233",
        "namespace": "default",
        "tls": False,
        "api_key": None,
    }


def test_connect_options_tls_with_system_roots() -> None:
    options = connect_options(
        Settings(temporal_address="temporal.internal:7233", temporal_tls=True)
    )
    assert options["tls"] is True
    assert options["api_key"] is None


def test_connect_options_tls_with_private_ca(pki: dict[str, str]) -> None:
    options = connect_options(Settings(temporal_tls=True, temporal_tls_ca_path=pki["ca"]))
    assert options["tls"] == TLSConfig(server_root_ca_cert=CA)


def test_connect_options_mtls_reads_client_cert_and_key(pki: dict[str, str]) -> None:
    settings = Settings(
        temporal_address="smile.a1b2c.tmprl.cloud:7233",
        temporal_namespace="smile.a1b2c",
        temporal_tls_ca_path=pki["ca"],
        temporal_tls_cert_path=pki["cert"],
        temporal_tls_key_path=pki["key"],
    )
    options = connect_options(settings)
    # A client certificate turns TLS on without TEMPORAL_TLS.
    assert options["tls"] == TLSConfig(
        server_root_ca_cert=CA, client_cert=CERT, client_private_key=KEY
    )
    assert options["target_host"] == "smile.a1b2c.tmprl.cloud:7233"
    assert options["namespace"] == "smile.a1b2c"


def test_connect_options_api_key_implies_tls() -> None:
    settings = Settings(
        temporal_address="us-east-1.aws.api.temporal.io:7233",
        temporal_namespace="smile.a1b2c",
        temporal_api_key="cloud-api-key",
    )
    options = connect_options(settings)
    assert options["tls"] is True
    assert options["api_key"] == "cloud-api-key"


def test_connect_options_refuses_cert_without_key(pki: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="KEY_PATH"):
        connect_options(Settings(temporal_tls=True, temporal_tls_cert_path=pki["cert"]))


def test_connect_options_missing_cert_file_fails_loudly(tmp_path: Path) -> None:
    settings = Settings(temporal_tls=True, temporal_tls_ca_path=str(tmp_path / "missing.pem"))
    with pytest.raises(FileNotFoundError):
        connect_options(settings)


def test_settings_api_key_not_in_repr() -> None:
    assert "cloud-api-key" not in repr(Settings(temporal_api_key="cloud-api-key"))
