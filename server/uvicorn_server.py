"""uvicorn as our servers run it: stopped on purpose by Ctrl-C or SIGTERM, it ends quietly.

uvicorn shuts down gracefully on those signals, then raises the signal again so that the process dies of
it. Raised inside a running event loop, that KeyboardInterrupt cuts through whatever is still being
closed (the emulator's background thread among it, which then keeps the process alive). A server stopped
on purpose returns normally instead, and the command exits 0.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Generator
from contextlib import contextmanager

import uvicorn
from uvicorn.server import HANDLED_SIGNALS


class QuietServer(uvicorn.Server):
    """A `uvicorn.Server` whose signals end `serve()` without being raised again."""

    def bound_port(self) -> int:
        """The port of the listening socket: the real one when the configuration asked for port 0."""
        return int(self.servers[0].sockets[0].getsockname()[1])

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
