"""Headers on every response: no framing, no sniffing, no referrer, no caching of PHI.

One Content-Security-Policy for every page, /docs included (its Swagger UI is served by
the app, see ``web.api.docs``). Pure ASGI, so streamed downloads stay streamed.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Pages carry no inline script or style: everything comes from /static.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Files that hold no PHI and may be cached: the app's own and the API docs' Swagger UI.
CACHEABLE_PREFIXES = ("/static/", "/docs/assets/")


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != b"cache-control" or path.startswith(CACHEABLE_PREFIXES)
                ]
                headers += self._headers(path)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _headers(self, path: str) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"content-security-policy", PAGE_CSP.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        if not path.startswith(CACHEABLE_PREFIXES):
            # Pages and API answers may hold PHI: never kept by the browser or a proxy.
            headers.append((b"cache-control", b"no-store"))
        if self.hsts:
            headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
        return headers
