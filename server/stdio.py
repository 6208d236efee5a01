"""MCP over stdio until the client closes stdin, or until Ctrl-C / SIGTERM ends it at once, cleaned up.

On a signal the server is cancelled and its lifespan closes the service as usual. What a signal cannot
stop is the SDK's worker thread blocked reading stdin (a read from a terminal or an open pipe cannot be
interrupted, and the SDK's task group waits for it), so once the server has stopped, the process ends
without waiting for that read.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def serve_stdio(server: MCPServer[Any], *, on_ready: Callable[[], None] = lambda: None) -> None:
    """Serve until stdin closes or a stop signal arrives; `on_ready` runs once the signals are caught."""
    if sys.platform == "win32":  # no loop signal handlers there: Ctrl-C is a KeyboardInterrupt
        on_ready()
        with contextlib.suppress(KeyboardInterrupt):
            anyio.run(server.run_stdio_async)
        return
    anyio.run(_serve, server, on_ready)


async def _serve(server: MCPServer[Any], on_ready: Callable[[], None]) -> None:
    # Private, for want of a public way: the SDK's only public entry is `MCPServer.run_stdio_async`, which is
    # this body with no way to act between the server stopping and the stdin reader being awaited, and
    # MCPServer exposes its low-level server to nobody (its own in-memory client reads `_lowlevel_server` too).
    lowlevel = server._lowlevel_server
    with anyio.open_signal_receiver(*STOP_SIGNALS) as signals:
        on_ready()
        async with stdio_server() as (read_stream, write_stream):
            stopped = False
            async with anyio.create_task_group() as group:

                async def stop_on_signal() -> None:
                    nonlocal stopped
                    async for _ in signals:
                        stopped = True
                        group.cancel_scope.cancel()

                group.start_soon(stop_on_signal)
                await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
                group.cancel_scope.cancel()
            if stopped:
                _exit_now()


def _exit_now() -> None:
    """Exit 0 without joining the thread still blocked on stdin (everything else has been closed)."""
    logging.shutdown()
    sys.stderr.flush()
    os._exit(0)
