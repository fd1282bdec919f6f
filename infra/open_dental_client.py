"""Open Dental's API, as a client: the calls the connector makes, each with the
``Authorization: ODFHIR {developer key}/{customer key}`` header the API requires.

Errors arrive as three kinds the callers act on: the keys were refused (401/403: stop
and tell the office), Open Dental is busy or failing (429/5xx, a timeout: try again
later), or it refused the request itself (another 4xx: trying again changes nothing).
Nothing here logs a patient's data or the keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

# The cloud API's page; the Local API's may be up to 1,000. A shorter page is the last.
PAGE_SIZE = 100
TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class OpenDentalError(Exception):
    """Open Dental did not do what was asked; the message names the status only.
    ``explanation`` is what Open Dental answered ("PatNum is required."), for the
    database's record of a refusal, never for a log or a workflow's history."""

    def __init__(self, message: str, explanation: str = "") -> None:
        super().__init__(message)
        self.explanation = explanation


class KeysRefused(OpenDentalError):
    """401 or 403: the developer or customer key is wrong, disabled or lacks permission."""


class TryLater(OpenDentalError):
    """429, 5xx, or no answer at all: the same request may work in a while."""


class Unreachable(TryLater):
    """No answer at that address (no such host, refused, timed out)."""


class RequestRefused(OpenDentalError):
    """Another 4xx: Open Dental refused the request as it is ("with explanation")."""


@dataclass(frozen=True)
class Keys:
    developer_key: str
    customer_key: str

    @property
    def header(self) -> str:
        return f"ODFHIR {self.developer_key}/{self.customer_key}"


@dataclass(frozen=True)
class PatientsPage:
    patients: list[dict[str, Any]]
    # Open Dental's clock when it answered ("yyyy-MM-dd HH:mm:ss"), for the next sync's
    # ``DateTStamp``; None when the page was empty.
    server_date_time: str | None


class OpenDentalClient:
    """One practice's Open Dental at ``base_url`` (``https://api.opendental.com/api/v1``
    or an office's Local API)."""

    def __init__(
        self, base_url: str, keys: Keys, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._keys = keys
        self._transport = transport

    async def _request(
        self, method: str, path: str, *, params: dict[str, str] | None = None, json: Any = None
    ) -> Any:
        headers = {"Authorization": self._keys.header, "Accept": "application/json"}
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT, transport=self._transport) as client:
                response = await client.request(
                    method, self._base_url + path, params=params, json=json, headers=headers
                )
        except (httpx.TimeoutException, httpx.NetworkError, httpx.UnsupportedProtocol) as error:
            raise Unreachable(f"{method} {path}: no answer ({type(error).__name__})") from None
        status = response.status_code
        if status in (401, 403):
            raise KeysRefused(f"{method} {path}: {status}", _explanation(response))
        if status == 429 or status >= 500:
            raise TryLater(f"{method} {path}: {status}")
        if status >= 400:
            raise RequestRefused(f"{method} {path}: {status}", _explanation(response))
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise RequestRefused(f"{method} {path}: an answer that is not JSON") from None

    async def patients_changed(self, date_t_stamp: str | None, offset: int) -> PatientsPage:
        """``GET /patients/Simple``: a page of patients changed since ``date_t_stamp``
        (all of them when None), from ``offset``."""
        params = {"Offset": str(offset)}
        if date_t_stamp:
            params["DateTStamp"] = date_t_stamp
        found = await self._request("GET", "/patients/Simple", params=params)
        if not isinstance(found, list):
            raise RequestRefused("GET /patients/Simple: not a list of patients")
        patients = [item for item in found if isinstance(item, dict)]
        stamps = [str(item["serverDateTime"]) for item in patients if item.get("serverDateTime")]
        return PatientsPage(patients, min(stamps) if stamps else None)

    async def check_keys(self) -> None:
        """The cheapest call there is (one patient at most): raises as any call would."""
        await self._request("GET", "/patients/Simple", params={"Limit": "1"})

    async def upload_document(self, document: dict[str, Any]) -> Any:
        return await self._request("POST", "/documents/Upload", json=document)

    async def add_commlog(self, commlog: dict[str, Any]) -> Any:
        return await self._request("POST", "/commlogs", json=commlog)


def _explanation(response: httpx.Response) -> str:
    """Open Dental's explanation of a refusal: a JSON string, or plain text."""
    try:
        answered = response.json()
    except ValueError:
        answered = response.text
    text = answered if isinstance(answered, str) else response.text
    return f"{response.status_code} {' '.join(text.split())}"[:200]
