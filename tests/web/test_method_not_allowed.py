"""A method a path does not answer is a 405 whose Allow header names every method it does
answer (RFC 9110 §15.5.6), as JSON under /api/v1 and as the error page elsewhere."""

from __future__ import annotations

import re

import httpx

UNDECLARED = ("DELETE", "PUT", "PATCH", "POST")


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "some-id", path)


def _fits(template: str, url: str) -> bool:
    """Whether ``url`` is one of the paths ``template`` ("/patients/{patient_id}") names."""
    pattern = "".join(
        "[^/]+" if part.startswith("{") else re.escape(part)
        for part in re.split(r"(\{[^}]+\})", template)
    )
    return re.fullmatch(pattern, url) is not None


async def test_every_api_operation_names_its_methods_on_a_405(
    anonymous: httpx.AsyncClient,
) -> None:
    document = (await anonymous.get("/openapi.json")).json()
    tried = 0
    for path, operations in document["paths"].items():
        declared = {method.upper() for method in operations}
        method = next(m for m in UNDECLARED if m not in declared)
        url = _concrete(path)
        response = await anonymous.request(method, url)
        assert response.status_code == 405, (method, path)
        # Every operation of the path, and those of any other path the URL also fits
        # ("/patients/import" is also "/patients/{patient_id}").
        answered = {
            other_method.upper()
            for other, operations in document["paths"].items()
            if _fits(other, url)
            for other_method in operations
        }
        assert set(response.headers["allow"].split(", ")) == answered >= declared, (method, path)
        if path.startswith("/api/"):
            assert response.headers["content-type"] == "application/json"
            assert response.json() == {"detail": "Method Not Allowed"}
        tried += 1
    assert tried >= 15


async def test_office_and_portal_pages_name_their_methods_on_the_error_page(
    anonymous: httpx.AsyncClient,
) -> None:
    for method, path, allowed in (
        ("DELETE", "/patients", "GET, POST"),
        ("PUT", "/login", "GET, POST"),
        ("POST", "/healthz", "GET"),
        ("DELETE", "/portal", "GET"),
    ):
        response = await anonymous.request(method, path)
        assert response.status_code == 405, path
        assert response.headers["allow"] == allowed, path
        assert response.headers["content-type"].startswith("text/html"), path
        assert "Method Not Allowed" in response.text
