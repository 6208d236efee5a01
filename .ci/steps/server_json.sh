#!/usr/bin/env bash
# server.json (the MCP Registry's description of the server) against the pinned copy of its schema,
# https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json in .ci/server.schema.json
# (tests/test_server_json.py also checks it against pyproject's version, the README's mcp-name and the settings).
set -euo pipefail
cd "$(dirname "$0")/../.."

.venv/bin/python - <<'PY'
import json
import sys

from jsonschema import Draft7Validator

schema = json.load(open(".ci/server.schema.json", encoding="utf-8"))
server = json.load(open("server.json", encoding="utf-8"))
if server.get("$schema") != schema["$id"]:
    sys.exit(f"server.json names the schema {server.get('$schema')!r}, the pinned copy is {schema['$id']!r}")
errors = sorted(Draft7Validator(schema).iter_errors(server), key=lambda error: list(error.absolute_path))
for error in errors:
    print(f"server.json {'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}", file=sys.stderr)
if errors:
    sys.exit(1)
print(f"server.json: valid against {schema['$id']}")
PY
