"""Serving a stored file: always as a download, streamed from the object store."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import HTTPException, status
from fastapi.responses import StreamingResponse

from infra.db.models import Attachment
from infra.objects.interface import ObjectNotFound, ObjectUnreadable, StoreUnavailable
from web.state import AppState

UNREADABLE = "This file cannot be opened. Please contact the office."
STORE_DOWN = "Files cannot be downloaded right now. Please try again in a few minutes."


def download_headers(filename: str, size: int) -> dict[str, str]:
    """Never shown inline, so an SVG or HTML-looking file cannot run in our origin."""
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return {
        "Content-Disposition": (
            f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
        ),
        "Content-Length": str(size),
        "X-Content-Type-Options": "nosniff",
    }


async def download(state: AppState, attachment: Attachment) -> StreamingResponse:
    """Opens the object before answering, so a missing file is a 404, not a cut stream."""
    try:
        stream = await state.store.get_stream(attachment.object_key)
    except ObjectNotFound as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="File not found") from error
    except ObjectUnreadable as error:
        # Altered in storage, or sealed under a key this server no longer has: never
        # serve it, and say so plainly.
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=UNREADABLE) from error
    except StoreUnavailable as error:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=STORE_DOWN) from error
    return StreamingResponse(
        stream,
        media_type=attachment.content_type,
        headers=download_headers(attachment.filename, attachment.size),
    )
