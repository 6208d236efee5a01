#!/usr/bin/env bash
# The MCP Bundle: the manifest passes the mcpb CLI's validator, and the packed bundle holds the sources
# only (tests/test_manifest.py checks that the manifest names the tools, prompts and settings that exist).
set -euo pipefail
cd "$(dirname "$0")/../.."

# mcpb 2.1.2 runs on Node >= 20; without a usable node, take the one .ci/node.sh installs.
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' 2>/dev/null; then
    PATH="$(bash .ci/node.sh):$PATH"
fi
npx -y @anthropic-ai/mcpb@2.1.2 validate manifest.json

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
npx -y @anthropic-ai/mcpb@2.1.2 pack . "$out/aoai-batch-mcp.mcpb" >/dev/null
size=$(wc -c <"$out/aoai-batch-mcp.mcpb")
echo "bundle: $size bytes"
# A uv bundle carries sources, not a virtual environment: anything near a megabyte means .mcpbignore leaks.
if [ "$size" -gt 1000000 ]; then
    echo "the bundle is $size bytes: check .mcpbignore (no .venv, tests or caches)" >&2
    exit 1
fi
