#!/usr/bin/env bash
# WebSocket library benchmark + feature checks for the router.
#
#   bash bench/wslib/run.sh
#
# Server pinned to core 0, picows load client pinned to core 1.
# Env knobs: DURATION (s per case, default 5), WARMUP (1), REPEATS (3),
#            LIBS, PY (python of the venv), OUT (raw JSON lines).
# Needs aiohttp and wsproto in the venv for the measurement only
# (pip install aiohttp wsproto) - they are not project dependencies.
set -euo pipefail
cd "$(dirname "$0")/../.."

PY=${PY:-.venv/bin/python}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
REPEATS=${REPEATS:-3}
LIBS=${LIBS:-"picows picows-uvloop websockets aiohttp wsproto"}
OUT=${OUT:-bench/wslib/results.jsonl}
# name conns outstanding size
CASES=("small 50 20 100" "64k 10 2 65536")

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

SRV_PID=""
cleanup() { if [ -n "$SRV_PID" ]; then kill "$SRV_PID" 2>/dev/null || true; wait "$SRV_PID" 2>/dev/null || true; fi; }
trap cleanup EXIT

start_server() {  # lib port [extra args]
  local lib=$1 port=$2; shift 2
  local log; log=$(mktemp)
  taskset -c 0 "$PY" bench/wslib/servers.py "$lib" --port "$port" "$@" >"$log" 2>&1 &
  SRV_PID=$!
  for _ in $(seq 100); do grep -q '^READY' "$log" && break; sleep 0.1; done
  grep -q '^READY' "$log" || { echo "server $lib failed:"; cat "$log"; exit 1; }
  rm -f "$log"
}

stop_server() { kill "$SRV_PID"; wait "$SRV_PID" 2>/dev/null || true; SRV_PID=""; }

echo "# python: $("$PY" -c 'import sys; print(sys.version.split()[0])')  $("$PY" -c '
import importlib.metadata as m
print("  ".join(f"{p} {m.version(p)}" for p in ("picows","aiofastnet","websockets","aiohttp","wsproto","uvloop")))')"
echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; duration ${DURATION}s warmup ${WARMUP}s repeats ${REPEATS}"

: >"$OUT"
for rep in $(seq "$REPEATS"); do
  for lib in $LIBS; do
    port=$(free_port)
    start_server "$lib" "$port"
    for c in "${CASES[@]}"; do
      set -- $c
      taskset -c 1 "$PY" bench/wslib/client.py --port "$port" --server-pid "$SRV_PID" \
        --label "$lib" --case "$1" --conns "$2" --outstanding "$3" --size "$4" \
        --duration "$DURATION" --warmup "$WARMUP" | tee -a "$OUT"
    done
    stop_server
  done
done

echo
"$PY" bench/wslib/summarize.py "$OUT"

echo
echo "## feature checks (each server started with --ping-interval 0.5 --max-size 1048576)"
"$PY" bench/wslib/features.py --libs "$LIBS"

echo
echo "## picows HTTP/subprotocol demo"
bash bench/wslib/picows_demo.sh
