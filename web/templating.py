"""Jinja2 templates and the helpers every page uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from web.csrf import csrf_token, remember_csrf_token

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
templates = Jinja2Templates(directory=TEMPLATES_DIR)


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    context = {"csrf_token": csrf_token(request), **(context or {})}
    response = templates.TemplateResponse(request, template, context, status_code=status_code)
    remember_csrf_token(request, response, secure=request.url.scheme == "https")
    return response


def form_errors(error: ValidationError) -> dict[str, str]:
    """One message per form field, worded for the person at the desk."""
    messages: dict[str, str] = {}
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else "form"
        messages.setdefault(field, _friendly(field, item))
    return messages


def _friendly(field: str, item: Any) -> str:
    kind = item.get("type", "")
    label = field.replace("_", " ").capitalize()
    if kind in ("string_too_short", "missing"):
        return f"{label} is required"
    if field in ("email", "sender_address") or "email" in kind:
        return f"{label}: enter a valid email address, like name@example.com"
    if kind == "enum":
        return f"{label}: choose one of the listed options"
    return f"{label}: {item.get('msg', 'invalid value')}"
