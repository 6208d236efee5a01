#!/usr/bin/env bash
# A bounded schemathesis run of the emulator against Azure's files + batches OpenAPI (2024-10-21):
# no server errors, and every answer conforms to the spec's schemas (as corrected by the seeds, below).
set -euo pipefail
cd "$(dirname "$0")/../.."

SPEC="${AOAI_SPECS_DIR:-../shared/specs}/azure-authoring-stable-2024-10-21-azureopenai.json"
if [ ! -f "$SPEC" ]; then
    echo "schemathesis: the spec $SPEC is missing" >&2
    exit 1
fi
WORK="$(mktemp -d)"
KEY="schemathesis-key"
cleanup() {
    if [ -n "${EMULATOR_PID:-}" ]; then kill "$EMULATOR_PID" 2>/dev/null || true; wait "$EMULATOR_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

AOAI_EMULATOR_KEY="$KEY" .venv/bin/aoai-batch-mcp emulator --host 127.0.0.1 --port 0 --home "$WORK/home" \
    >"$WORK/emulator.log" 2>&1 &
EMULATOR_PID=$!

URL=""
for _ in $(seq 1 200); do
    URL="$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$WORK/emulator.log" | head -n 1 || true)"
    if [ -n "$URL" ] && .venv/bin/python -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1])" \
        "$URL/openai/batches?api-version=2024-10-21" 2>/dev/null; then
        break
    fi
    # A 401 (no key sent) also means it is up.
    if [ -n "$URL" ] && .venv/bin/python - "$URL" <<'PY' 2>/dev/null
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(sys.argv[1] + "/openai/batches?api-version=2024-10-21")
except urllib.error.HTTPError:
    sys.exit(0)
sys.exit(1)
PY
    then
        break
    fi
    sleep 0.1
done
if [ -z "$URL" ]; then
    echo "schemathesis: the emulator did not start" >&2
    cat "$WORK/emulator.log" >&2
    exit 1
fi

# A file and a batch to exist, so the operations on one id reach real answers, not only 404s.
read -r FILE_ID BATCH_ID < <(.venv/bin/python - "$URL" "$KEY" <<'PY'
import sys

import httpx2

url, key = sys.argv[1], sys.argv[2]
line = b'{"custom_id": "a", "method": "POST", "url": "/chat/completions", "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}}\n'
with httpx2.Client(base_url=f"{url}/openai", headers={"api-key": key}, params={"api-version": "2024-10-21"}) as http:
    file = http.post("/files", data={"purpose": "batch"}, files={"file": ("in.jsonl", line)}).raise_for_status().json()
    body = {"input_file_id": file["id"], "endpoint": "/chat/completions", "completion_window": "24h"}
    batch = http.post("/batches", json=body).raise_for_status().json()
print(file["id"], batch["id"])
PY
)

# Where the 2024-10-21 schema and the seeds (Azure's own docs) disagree, the seeds win (SPEC §6), so the
# answers are checked against a copy of the spec corrected to what the seeds show, made here at run time:
# - a batch carries every field, null when unset (the seeds' samples and the spec's own examples do so;
#   the schema marks none of its fields nullable);
# - `errors.data` is a list of errors (the schema says one object), whose `line` is a number or null and
#   whose `param` may be null (the schema says strings).
.venv/bin/python - "$SPEC" "$WORK/spec.json" <<'PY'
import json
import sys

source, target = sys.argv[1], sys.argv[2]
with open(source, encoding="utf-8") as handle:
    spec = json.load(handle)
definitions = spec["definitions"]
batch = definitions["Batch"]["properties"]
for name, field in batch.items():
    if name not in {"id", "object", "input_file_id", "completion_window", "status", "request_counts"}:
        field["x-nullable"] = True
definitions["BatchErrors"]["x-nullable"] = True  # `errors` is a $ref: nullable where it is defined
definitions["BatchErrors"]["properties"]["data"] = {"type": "array", "items": {"$ref": "#/definitions/BatchErrorData"}}
error_data = definitions["BatchErrorData"]["properties"]
error_data["line"] = {**error_data["line"], "type": "integer", "x-nullable": True}
error_data["param"]["x-nullable"] = True
with open(target, "w", encoding="utf-8") as handle:
    json.dump(spec, handle)
PY

cat >"$WORK/schemathesis.toml" <<TOML
[parameters]
"api-version" = "2024-10-21"
"batch-id" = "$BATCH_ID"
"file-id" = "$FILE_ID"
TOML

.venv/bin/st --config-file "$WORK/schemathesis.toml" run "$WORK/spec.json" \
    --url "$URL/openai" \
    --include-path-regex '^/(files|batches)' \
    --checks not_a_server_error,response_schema_conformance \
    --header "api-key: $KEY" \
    --max-examples 30 \
    --phases examples,coverage,fuzzing \
    --seed 1 \
    --request-timeout 30 \
    --no-shrink
