"""Connecting to Temporal with the project's data converter (pydantic, encrypted)."""

from __future__ import annotations

from temporalio.client import Client

from infra.crypto.keys import key_ring
from infra.settings import Settings
from infra.temporal.codec import data_converter


async def connect(settings: Settings) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(key_ring(settings)),
    )
