"""The people's console: one page, its three scripts and its stylesheet, served with a strict
Content-Security-Policy. It uses the people's API like any other client."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from app.recording_policy import REASON_TEXT

STATIC = Path(__file__).parent / "static"

# Scripts and styles from our own origin only (no inline code, so an injected string
# cannot run), audio only from our own short-lived media links, no framing (clickjacking
# on the pause button), no referrer leaks.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; media-src 'self'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

router = APIRouter(include_in_schema=False)


@cache
def _page() -> str:
    # JSON in a data block; "<" escaped so no text can close the <script> element.
    reasons = json.dumps({str(k): v for k, v in REASON_TEXT.items()}).replace("<", "\\u003c")
    return (STATIC / "console.html").read_text(encoding="utf-8").replace("__REASON_TEXT__", reasons)


@router.get("/console")
def console() -> HTMLResponse:
    return HTMLResponse(_page(), headers=SECURITY_HEADERS)


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/console")


class _Static(StaticFiles):
    async def get_response(self, path, scope):  # type: ignore[no-untyped-def]
        response = await super().get_response(path, scope)
        response.headers.update({k: v for k, v in SECURITY_HEADERS.items() if k != "Cache-Control"})
        return response


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/console/static", _Static(directory=STATIC), name="console-static")
