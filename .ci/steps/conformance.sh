#!/usr/bin/env bash
# The MCP conformance suite against `serve --transport http` on the embedded emulator.
# Every generic scenario must pass; ../shared/conformance/baseline.yml lists only the scenarios that need
# the suite's own test_* tools, resources and prompts, which a production server does not ship.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$(pwd)"
python="$root/.venv/bin/python"
baseline="$root/../shared/conformance/baseline.yml"

node_bin="$(bash .ci/node.sh)"
export PATH="$node_bin:$PATH"

tmp="$(mktemp -d)"
port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
env -u AZURE_OPENAI_ENDPOINT -u OPENAI_API_KEY -u AOAI_BATCH_PROVIDER \
    AOAI_BATCH_HOME="$tmp/home" AOAI_BATCH_WORKSPACE="$tmp/ws" AOAI_EMULATOR_TIME_SCALE=6000 \
    "$python" -m server serve --transport http --host 127.0.0.1 --port "$port" >"$tmp/server.log" 2>&1 &
server_pid=$!
cleanup() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

for _ in $(seq 1 100); do
    if "$python" -c "import socket, sys; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "the server exited early:" >&2; cat "$tmp/server.log" >&2; exit 1
    fi
    sleep 0.1
done

status=0
npx -y @modelcontextprotocol/conformance@0.1.16 server \
    --url "http://127.0.0.1:$port/mcp" --expected-failures "$baseline" || status=$?
if [ "$status" -ne 0 ]; then
    echo "conformance failed; server log:" >&2; cat "$tmp/server.log" >&2
fi
exit "$status"
