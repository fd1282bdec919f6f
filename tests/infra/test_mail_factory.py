"""Which transport the settings pick, and which practice senders SendGrid will accept."""

from __future__ import annotations

import pytest

from infra.mail.factory import mail_transport, sender_is_verified
from infra.mail.sendgrid import SendGridTransport
from infra.settings import Settings


def sendgrid_production(verified: str) -> Settings:
    return Settings(
        environment="production",
        s3_secret_key="not-the-dev-secret",
        mail_transport="sendgrid",
        sendgrid_api_key="SG.key",
        sendgrid_verified_senders=verified,
    )


def test_mail_transport_sendgrid_passes_sandbox_mode() -> None:
    settings = Settings(
        mail_transport="sendgrid", sendgrid_api_key="SG.key", sendgrid_sandbox_mode=True
    )
    transport = mail_transport(settings)
    assert isinstance(transport, SendGridTransport)
    assert transport._sandbox_mode is True


@pytest.mark.parametrize(
    ("address", "verified"),
    [
        ("office@smile-dental.example", "office@smile-dental.example"),
        ("Office@Smile-Dental.example ", "office@smile-dental.example"),
        ("front-desk@smile-dental.example", "smile-dental.example"),
        ("front-desk@smile-dental.example", "@smile-dental.example"),
        ("front-desk@smile-dental.example", "billing@other.example, Smile-Dental.example"),
    ],
)
def test_sender_is_verified_matches_address_or_domain(address: str, verified: str) -> None:
    assert sender_is_verified(address, sendgrid_production(verified))


@pytest.mark.parametrize(
    ("address", "verified"),
    [
        ("front-desk@smile-dental.example", "office@smile-dental.example"),
        # A verified domain covers that domain only, not its look-alikes or subdomains.
        ("office@mail.smile-dental.example", "smile-dental.example"),
        ("office@evil-smile-dental.example", "smile-dental.example"),
        ("office@smile-dental.example", ""),
        ("not-an-address", "smile-dental.example"),
        ("@smile-dental.example", "smile-dental.example"),
    ],
)
def test_sender_is_verified_refuses_others(address: str, verified: str) -> None:
    assert not sender_is_verified(address, sendgrid_production(verified))


def test_sender_is_verified_only_binds_sendgrid_in_production() -> None:
    assert sender_is_verified("office@anywhere.example", Settings())
    assert sender_is_verified(
        "office@anywhere.example", Settings(mail_transport="sendgrid", sendgrid_api_key="SG.k")
    )
    smtp = Settings(environment="production", s3_secret_key="not-the-dev-secret")
    assert sender_is_verified("office@anywhere.example", smtp)
