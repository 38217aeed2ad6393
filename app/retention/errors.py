"""Errors of the governance side, rendered like every DomainError (app/api/errors.py)."""

from __future__ import annotations

from app.errors import DomainError


class Gone(DomainError):
    """The recording has been destroyed: nothing more can be done with it."""

    status = 410
    code = "gone"


class Invalid(DomainError):
    """A request that names its own fault (422, like a validation error)."""

    status = 422
    code = "invalid_request"


class MediaUnavailable(DomainError):
    """The provider did not hand over the media."""

    status = 502
    code = "media_unavailable"


class RangeNotSatisfiable(DomainError):
    """The byte range asked for starts past the recording's end."""

    status = 416
    code = "range_not_satisfiable"

    def __init__(self, size: int | None) -> None:
        super().__init__("the byte range asked for starts past the end of the recording")
        if size is not None:
            self.headers["Content-Range"] = f"bytes */{size}"
