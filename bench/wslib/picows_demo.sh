#!/usr/bin/env bash
# Proves the picows recipes: plain HTTP GET (curl), subprotocol selection
# (raw curl handshake, websockets client, picows client), Origin/path access,
# and pause_writing/resume_writing backpressure callbacks.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
LOG=$(mktemp)
"$PY" bench/wslib/picows_demo.py serve "$PORT" >"$LOG" 2>&1 &
SRV=$!
trap 'kill $SRV 2>/dev/null || true; wait $SRV 2>/dev/null || true; rm -f "$LOG"' EXIT
for _ in $(seq 50); do grep -q listening "$LOG" && break; sleep 0.1; done

echo "--- curl plain GET /static/index.html"
curl -si "http://127.0.0.1:$PORT/static/index.html"; echo
echo "--- curl WebSocket handshake offering 'wamp.2.cbor, wamp.2.msgpack' (headers only)"
curl -si --max-time 1 --http1.1 \
  -H "Connection: Upgrade" -H "Upgrade: websocket" -H "Sec-WebSocket-Version: 13" \
  -H "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==" \
  -H "Sec-WebSocket-Protocol: wamp.2.cbor, wamp.2.msgpack" \
  -H "Origin: https://app.example" \
  "http://127.0.0.1:$PORT/ws" | tr -d '\r' || true
echo "--- clients"
"$PY" bench/wslib/picows_demo.py check "$PORT"
sleep 0.2
echo "--- server log"
cat "$LOG"
