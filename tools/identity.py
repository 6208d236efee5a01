"""Who is calling: the signed-in user of an HTTP request (`server/oauth.py` verified their token), and the
viewer a call runs as (`aoai_batch.identity.Viewer`)."""

from __future__ import annotations

from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import Context

from aoai_batch.identity import Principal, Viewer


def signed_in_user(ctx: Context[Any, Any]) -> Principal | None:
    """The user the request is from; None without sign-in (stdio, a static token, the in-memory client)."""
    return user_of_request(ctx.request_context.request)


def user_of_request(request: object | None) -> Principal | None:
    """The signed-in user of the HTTP request a message came in (streamable HTTP attaches it to each message's
    context); None without sign-in. Works from a tool's `Context` and from a middleware's request context."""
    token = _access_token(request)
    if token is None or token.subject is None:
        return None
    claims = token.claims or {}
    issuer = claims.get("iss")
    if not isinstance(issuer, str):
        return None
    return Principal(issuer=issuer, subject=token.subject, object_id=claims.get("oid"), tenant_id=claims.get("tid"))


def viewer_of(user: Principal | None, *, shared_jobs: bool) -> Viewer | None:
    """The viewer a signed-in user's calls run as; None (unrestricted) without sign-in."""
    return Viewer(owner=user.owner, shared=shared_jobs) if user is not None else None


def _access_token(request: object | None) -> AccessToken | None:
    # The HTTP request the message came in (streamable HTTP attaches it); the SDK's context variable otherwise.
    user = getattr(request, "scope", {}).get("user") if request is not None else None
    if isinstance(user, AuthenticatedUser):
        return user.access_token
    return get_access_token()
