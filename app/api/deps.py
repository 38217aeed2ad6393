"""Annotated dependencies: the services, the authenticated person, role checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.api import ratelimit
from app.errors import Forbidden, Unauthorized
from app.people.users import Role, user_for_token
from app.platforms import PATH_ID
from app.runtime.services import Services
from app.storage.db import unit_of_work
from app.storage.models import User


async def get_services(request: Request) -> Services:
    """`async`, though it awaits nothing: FastAPI runs a plain `def` dependency on its
    thread pool, and that hop (on every request that names ServicesDep, every webhook
    among them) cost more than all the rest of the dependency."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]

_bearer = HTTPBearer(auto_error=False)


def current_user(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    """The token's holder, looked up on every request (a disabled user's token fails at
    once). A client with too many failed tokens is refused first (app/api/ratelimit.py)."""
    token = credentials.credentials if credentials else None
    with ratelimit.checking(request, token):
        if not token:
            raise Unauthorized("a bearer token is required")
        with unit_of_work(services.sessions) as session:
            user = user_for_token(session, token)
        if user is None:
            raise Unauthorized("the token is not valid or has been revoked")
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def require(*roles: Role) -> Callable[[User], User]:
    allowed = {str(r) for r in roles}

    def check(user: CurrentUser) -> User:
        if user.role not in allowed:
            raise Forbidden(f"this needs one of the roles: {', '.join(sorted(allowed))}")
        return user

    return check


AnyRole = CurrentUser
# Call routes: an agent (their own calls only, checked by the service) or supervisor+.
CallActor = Annotated[User, Depends(require(Role.AGENT, Role.SUPERVISOR, Role.ADMIN))]
SupervisorPlus = Annotated[User, Depends(require(Role.SUPERVISOR, Role.ADMIN))]
GovernancePlus = Annotated[User, Depends(require(Role.GOVERNANCE, Role.ADMIN))]

# A call's or a recording's id in a path: as one of the platforms gives them (their
# packages' id formats, app/platforms/__init__.py); anything else is refused at the edge.
Sid = Annotated[str, Path(min_length=2, max_length=64, pattern=PATH_ID)]
