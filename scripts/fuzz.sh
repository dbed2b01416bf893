#!/usr/bin/env bash
# Fuzz the API from its spec with schemathesis (PyPI) against a real server on a fresh database.
# Usage: scripts/fuzz.sh [max seconds, default 300]
set -euo pipefail
cd "$(dirname "$0")/.."
MAX_TIME="${1:-300}"
if [ ! -x .venv/bin/schemathesis ]; then
  python3 -m venv .venv
  .venv/bin/pip install -q schemathesis
fi
cargo build --release --bin boundstate
DIR=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BOUNDSTATE_BIND=127.0.0.1:$PORT BOUNDSTATE_DATABASE_URL="sqlite://$DIR/fuzz.db" BOUNDSTATE_LOG=warn \
  BOUNDSTATE_REQUEST_TIMEOUT=20 ./target/release/boundstate serve > "$DIR/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" > /dev/null && break; sleep 0.1; done
# Seed data so that stateful links and ids have something to find.
curl -sf -X POST -H 'Content-Type: text/plain' --data-binary @examples/data/digits4x4.txt \
  "http://127.0.0.1:$PORT/v1/datasets?name=digits4x4" > /dev/null
# A trained model with its census, and a landscape, for the model routes.
curl -sf -X POST -H 'Content-Type: application/json' "http://127.0.0.1:$PORT/v1/training-jobs" \
  -d '{"dataset_id": 1, "description": {"order": 2}, "method": "exact", "seed": 1}' > /dev/null
sleep 3
curl -sf -X POST -H 'Content-Type: application/json' "http://127.0.0.1:$PORT/v1/models/1/landscape" -d '{}' > /dev/null
sleep 2
.venv/bin/schemathesis run openapi/openapi.json --url "http://127.0.0.1:$PORT" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-time "$MAX_TIME" --workers 2 --suppress-health-check all --continue-on-failure "${@:2}"
STATUS=$?
if grep -q "panicked" "$DIR/server.log"; then
  echo "server log shows a panic:"; grep -B2 -A10 panicked "$DIR/server.log"; exit 1
fi
exit $STATUS
