"""Who is calling a tool: the signed-in user of an HTTP request (`server/oauth.py` verified their token)."""

from __future__ import annotations

from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import Context

from aoai_batch.identity import Principal


def signed_in_user(ctx: Context[Any, Any]) -> Principal | None:
    """The user the request is from; None without sign-in (stdio, a static token, the in-memory client)."""
    token = _access_token(ctx)
    if token is None or token.subject is None:
        return None
    claims = token.claims or {}
    issuer = claims.get("iss")
    if not isinstance(issuer, str):
        return None
    return Principal(issuer=issuer, subject=token.subject, object_id=claims.get("oid"), tenant_id=claims.get("tid"))


def _access_token(ctx: Context[Any, Any]) -> AccessToken | None:
    # The HTTP request the message came in (streamable HTTP attaches it); the SDK's context variable otherwise.
    request = ctx.request_context.request
    user = getattr(request, "scope", {}).get("user") if request is not None else None
    if isinstance(user, AuthenticatedUser):
        return user.access_token
    return get_access_token()
