#!/usr/bin/env bash
# Builds and runs the frontend (:8400), the dice-roller (:8401) and the die-service (:8402) in the
# foreground, their JSON logs interleaved on this terminal. Ctrl-C stops all three; each flushes its
# spans before it exits. Settings come from the environment (see README.md), e.g.
# ROLL_DELAY_MS=0 ./run.sh
set -euo pipefail
cd "$(dirname "$0")"

cargo build --release --quiet -p die-service -p dice-roller -p frontend

pids=()
stop() {
  trap - INT TERM
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
trap 'stop; exit 0' INT TERM

target/release/die-service &
pids+=($!)
target/release/dice-roller &
pids+=($!)
target/release/frontend &
pids+=($!)

cat >&2 <<MSG

  the lab      http://${FRONTEND_LISTEN:-127.0.0.1:8400}/
  die-service  http://${DIE_SERVICE_LISTEN:-127.0.0.1:8402}/dice
  dice-roller  http://${DICE_ROLLER_LISTEN:-127.0.0.1:8401}/roll-async?die=fair&times=10
  traces go to ${OTEL_EXPORTER_OTLP_ENDPOINT:-http://127.0.0.1:4318} (OTLP/HTTP); Ctrl-C stops all three.

MSG

# If any service exits (a bad setting, a port in use), stop the others too.
wait -n "${pids[@]}" || status=$?
stop
exit "${status:-0}"
