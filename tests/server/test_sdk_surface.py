"""The server uses the MCP SDK's public API; its private low-level server only where no public way exists."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# stdio.py must act between the server stopping and the stdin reader being awaited (the reason is written
# there); subscriptions.py installs the handshake-era subscribe and setLevel handlers (see its `install`).
PRIVATE_USES = {"server/stdio.py", "server/subscriptions.py"}


def test_only_the_listed_modules_reach_the_sdks_low_level_server() -> None:
    users = {
        str(path.relative_to(ROOT))
        for package in ("server", "tools", "prompts")
        for path in (ROOT / package).rglob("*.py")
        if "_lowlevel_server" in path.read_text(encoding="utf-8")
    }
    assert users == PRIVATE_USES
