#!/usr/bin/env bash
# The newcomer's first command: the whole flow through a real MCP client on the embedded emulator.
set -euo pipefail
cd "$(dirname "$0")/../.."
.venv/bin/aoai-batch-mcp demo
