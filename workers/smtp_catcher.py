"""The development SMTP catcher: accepts every mail on 127.0.0.1 and files it, unsent,
into a Maildir that the dev mailbox viewer and the tests read."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mailbox
import signal
import threading
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

log = logging.getLogger(__name__)


class MaildirHandler:
    """aiosmtpd handler: one Maildir file per received mail, bytes as received, with the
    trace headers a delivering MTA adds (Return-Path, Delivered-To) so the envelope —
    e.g. that there was exactly one recipient — can still be checked afterwards."""

    def __init__(self, maildir: Path) -> None:
        self._maildir = mailbox.Maildir(maildir, create=True)
        # Maildir's unique file names rely on a class-level counter: serialise writers.
        self._lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        trace = f"Return-Path: <{envelope.mail_from or ''}>\r\n"
        trace += "".join(f"Delivered-To: {rcpt}\r\n" for rcpt in envelope.rcpt_tos)
        raw = trace.encode() + (envelope.original_content or b"")
        await asyncio.to_thread(self._store, raw)
        log.info("caught mail for %d recipient(s)", len(envelope.rcpt_tos))
        return "250 Message accepted for delivery"

    def _store(self, raw: bytes) -> None:
        with self._lock:
            self._maildir.add(raw)


async def serve(host: str, port: int, maildir: Path) -> asyncio.Server:
    """Listen on the running loop; ``close()`` and ``await wait_closed()`` to stop.
    Port 0 picks a free port (read it from ``server.sockets[0].getsockname()``)."""
    handler = MaildirHandler(maildir)
    loop = asyncio.get_running_loop()
    # A fixed hostname: aiosmtpd would otherwise resolve our FQDN, which can stall.
    return await loop.create_server(
        lambda: SMTP(handler, hostname="securemail-smtp-catcher", loop=loop), host, port
    )


async def run_smtp_catcher(host: str, port: int, maildir: Path) -> None:
    """Serve until cancelled or SIGTERM (the dev stack stops its children with SIGTERM).
    Run it with ``asyncio.run(run_smtp_catcher(...))``."""
    server = await serve(host, port, maildir)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Not possible outside the main thread (or on Windows); cancellation still works.
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGTERM, stopped.set)
    log.info("SMTP catcher on %s:%d delivering into %s", host, port, maildir)
    try:
        await stopped.wait()
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGTERM)
        server.close()
        await server.wait_closed()


def read_maildir(maildir: Path) -> list[EmailMessage]:
    """Every mail in the Maildir, oldest first. Blocking file I/O: from async code call it
    through ``asyncio.to_thread``."""
    if not maildir.exists():
        return []
    box = mailbox.Maildir(maildir, create=False)
    parser = BytesParser(_class=EmailMessage, policy=default_policy)
    dated: list[tuple[float, str, EmailMessage]] = []
    for key in box.keys():
        delivered = box.get_message(key).get_date()  # the file's mtime
        dated.append((delivered, key, parser.parsebytes(box.get_bytes(key))))
    dated.sort(key=lambda item: (item[0], item[1]))
    return [message for _, _, message in dated]
