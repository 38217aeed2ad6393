"""A ZIP answer built whole before its first byte is sent (subject-access bundles, evidence
packs): in a spooled temporary file, in memory while small, so that a platform failing
mid-way is a clean error rather than a truncated download, and whatever the build logs
(an export, say) is logged only for a whole file."""

from __future__ import annotations

from collections.abc import Callable
from tempfile import SpooledTemporaryFile
from typing import IO, Any

from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from app.retention.media import CHUNK

IN_MEMORY = 1024 * 1024  # a ZIP this small stays in memory; a larger one goes to a file


def built_zip(build: Callable[[IO[bytes]], Any], filename: str) -> StreamingResponse:
    """Run `build(file)`, then stream what it wrote as `filename`."""
    spool = SpooledTemporaryFile(max_size=IN_MEMORY)  # noqa: SIM115 (closed after sending)
    try:
        build(spool)
        size = spool.tell()
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return StreamingResponse(
        iter(lambda: spool.read(CHUNK), b""),
        media_type="application/zip",
        headers={
            "Content-Length": str(size),
            "Cache-Control": "no-store",
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
        background=BackgroundTask(spool.close),
    )
