"""Which address a request came from: per-client rate limits and the audit log use it.

The rule, in one place (uvicorn's own ``proxy_headers`` is off, see ``workers.cli``):

- The TCP peer is the client, unless the peer is a trusted proxy
  (``SECURE_EMAIL_FORWARDED_ALLOW_IPS``: addresses or networks, none by default).
- From a trusted proxy, X-Forwarded-For is read from the right, skipping trusted proxies;
  the first entry that is not one is the client (the right-most untrusted entry). Entries
  to its left were written by the client itself or by proxies nobody vouches for, so a
  proxy that appends (nginx's ``$proxy_add_x_forwarded_for``) cannot be steered by what
  the client puts in the header, and a proxy that sets the header works the same way.
- A forwarded value that is not an IP address (``unknown``, ``=HYPERLINK(…)``, a hundred
  characters of anything) is ignored and the peer's address is used: nothing but a
  normalised IP address ever reaches a rate-limit bucket or an audit row.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from starlette.types import ASGIApp, Receive, Scope, Send

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def trusted_networks(setting: str) -> tuple[IPNetwork, ...]:
    """``SECURE_EMAIL_FORWARDED_ALLOW_IPS`` parsed; ``Settings`` has already refused typos."""
    return tuple(
        ipaddress.ip_network(item.strip(), strict=False)
        for item in setting.split(",")
        if item.strip()
    )


def parse_address(value: str) -> IPAddress | None:
    """An IP address as a peer or a proxy writes it, or None for anything else.

    Accepts ``192.0.2.7``, ``2001:db8::7``, and the forms with a port some load balancers
    write (``192.0.2.7:51234``, ``[2001:db8::7]:51234``). An IPv4 address a dual-stack
    socket reports as ``::ffff:192.0.2.7`` is the IPv4 address, so one client has one
    bucket. Scoped addresses (``fe80::1%eth0``) are refused: the scope is free text.
    """
    value = value.strip()
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        value = host
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
        if not port.isdigit():
            return None
        value = host
    if not value or "%" in value:
        return None
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    return any(address in network for network in networks)


def resolve(peer: str | None, forwarded_for: list[str], trusted: str) -> str | None:
    """The client's address: ``peer`` is the socket's, ``forwarded_for`` the header values."""
    peer_address = parse_address(peer) if peer else None
    if peer_address is None:
        # No socket address (a Unix socket) or one that is not an IP: nothing to store,
        # and nothing vouches for a forwarded header either.
        return None
    networks = trusted_networks(trusted)
    if not forwarded_for or not _trusted(peer_address, networks):
        return str(peer_address)
    entries = [entry for value in forwarded_for for entry in value.split(",")]
    for entry in reversed(entries):
        address = parse_address(entry)
        if address is None:
            # Garbage where the client's address should be: the proxy did not write it,
            # so the proxy's own address is the most that can be said.
            return str(peer_address)
        if not _trusted(address, networks):
            return str(address)
    # Every hop is a trusted proxy (say, a health check from the proxy's own host): the
    # left-most is where it started, and a trusted proxy wrote it.
    return str(parse_address(entries[0]))


class TrustedProxyScheme:
    """Believes X-Forwarded-Proto from a trusted proxy only, as uvicorn's proxy headers did.

    uvicorn's ``proxy_headers`` would also overwrite the peer with its own reading of
    X-Forwarded-For (which passes non-addresses through), losing the real peer this
    module needs; so it is off, and this keeps the other half: a page served through the
    TLS proxy knows it is HTTPS. Cookies do not depend on it: their names and Secure flag
    follow ``SECURE_EMAIL_PUBLIC_URL`` (``web.cookies``).
    """

    def __init__(self, app: ASGIApp, trusted: str) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            client = scope.get("client")
            peer = parse_address(client[0]) if client else None
            if peer is not None and _trusted(peer, trusted_networks(self.trusted)):
                proto = [
                    value.decode("latin-1")
                    for name, value in scope["headers"]
                    if name == b"x-forwarded-proto"
                ]
                # Right-most: the one the nearest (trusted) proxy wrote.
                scheme = proto[-1].split(",")[-1].strip().lower() if proto else ""
                if scheme in ("http", "https"):
                    scope = {**scope, "scheme": scheme}
        await self.app(scope, receive, send)
