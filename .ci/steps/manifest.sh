#!/usr/bin/env bash
# The MCP Bundle manifest must pass the mcpb CLI's validator (tests/test_manifest.py checks that it
# names the tools, prompts and settings the server really has).
set -euo pipefail
cd "$(dirname "$0")/../.."

# mcpb 2.1.2 runs on Node >= 20; without a usable node, take the one .ci/node.sh installs.
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' 2>/dev/null; then
    PATH="$(bash .ci/node.sh):$PATH"
fi
npx -y @anthropic-ai/mcpb@2.1.2 validate manifest.json
