"""The MCP test fixtures (see tests/server/harness.py)."""

from tests.server.harness import app, batch_file, settings, workspace

__all__ = ["app", "batch_file", "settings", "workspace"]
