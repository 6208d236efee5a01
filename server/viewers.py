"""Every request runs as its signed-in user's viewer (`aoai_batch.identity.acting_as`): tools, resources,
prompts and completions alike, so the core's rule on whose jobs a call may see needs no help from them.

A middleware, as `resources._bind_state`: it reads the user the HTTP request carries (`tools.identity`)
and `AOAI_BATCH_SHARED_JOBS` from the lifespan's settings. Without sign-in there is no viewer.
"""

from __future__ import annotations

from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer

from aoai_batch.identity import acting_as
from server.state import AppState
from tools.identity import user_of_request, viewer_of


async def _act_as_the_user(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    state: AppState = ctx.lifespan_context
    with acting_as(viewer_of(user_of_request(ctx.request), shared_jobs=state.settings.shared_jobs)):
        return await call_next(ctx)


def install_viewers(server: MCPServer[Any]) -> None:
    server.middleware.append(_act_as_the_user)
