#!/usr/bin/env bash
# Throughput, latency and memory of the die-service and dice-roller under wrk, with telemetry on
# (spans exported to a local OTLP sink, JSON logs written to a file) and with OTEL_SDK_DISABLED=true,
# side by side in one run. Rolls have zero delay, so this measures the services, not the sleep.
#
#   bench/run.sh                  # 10 s per cell
#   DURATION=30s CONNECTIONS=16 bench/run.sh
#
# Needs wrk (Debian: apt-get install wrk). Prints a Markdown table.
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-8}
THREADS=${THREADS:-1}
BASE_PORT=${BASE_PORT:-18400}
ROLLER_PORT=$((BASE_PORT + 1))
DICE_PORT=$((BASE_PORT + 2))
SINK_PORT=$((BASE_PORT + 18))

command -v wrk >/dev/null || { echo "bench: wrk is needed (apt-get install wrk)" >&2; exit 1; }
cargo build --quiet --release -p die-service -p dice-roller
cargo build --quiet --release -p lab-tests --bin otlp-sink
bin=target/release
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

wait_ready() { # url
  for _ in $(seq 100); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "bench: $1 never became ready" >&2; exit 1
}

peak_rss_mib() { # pid
  awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}

"$bin/otlp-sink" "127.0.0.1:$SINK_PORT" >"$work/sink.out" 2>&1 &
pids+=($!)

# endpoint and connections: throughput under load for the first two, single-request latency for the
# large batch.
endpoints=("/roll?die=fair" "/roll-async?die=fair&times=100" "/roll-async?die=fair&times=1000")
declare -A conns=([/roll?die=fair]=$CONNECTIONS [/roll-async?die=fair&times=100]=$CONNECTIONS [/roll-async?die=fair&times=1000]=1)
declare -A rps p50 p99 rss_dice rss_roller

for telemetry in on off; do
  env_common=(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$SINK_PORT")
  [ "$telemetry" = off ] && env_common+=(OTEL_SDK_DISABLED=true)
  env "${env_common[@]}" "$bin/die-service" --listen "127.0.0.1:$DICE_PORT" >"$work/dice-$telemetry.log" &
  dice_pid=$!; pids+=("$dice_pid")
  env "${env_common[@]}" "$bin/dice-roller" --listen "127.0.0.1:$ROLLER_PORT" \
    --die-service-url "http://127.0.0.1:$DICE_PORT" --roll-delay-ms 0 --max-times 1000 \
    >"$work/roller-$telemetry.log" &
  roller_pid=$!; pids+=("$roller_pid")
  wait_ready "http://127.0.0.1:$DICE_PORT/healthz"
  wait_ready "http://127.0.0.1:$ROLLER_PORT/healthz"

  for endpoint in "${endpoints[@]}"; do
    url="http://127.0.0.1:$ROLLER_PORT$endpoint"
    wrk -t1 -c2 -d1s "$url" >/dev/null  # warm-up
    out=$(wrk -t"$THREADS" -c"${conns[$endpoint]}" -d"$DURATION" --latency "$url")
    key="$telemetry $endpoint"
    rps[$key]=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
    p50[$key]=$(awk '$1 == "50%" { print $2 }' <<<"$out")
    p99[$key]=$(awk '$1 == "99%" { print $2 }' <<<"$out")
    errors=$(awk '/Non-2xx|Socket errors/' <<<"$out")
    [ -z "$errors" ] || echo "bench: $key: $errors" >&2
  done
  rss_dice[$telemetry]=$(peak_rss_mib "$dice_pid")
  rss_roller[$telemetry]=$(peak_rss_mib "$roller_pid")
  kill -TERM "$dice_pid" "$roller_pid"
  wait "$dice_pid" "$roller_pid" || true
done

echo
echo "wrk: $THREADS thread(s), $DURATION per row; $(nproc) cores; zero roll delay; JSON logs to a file"
echo
echo "| endpoint | connections | telemetry | requests/s | p50 | p99 | throughput vs. off |"
echo "|---|---:|---|---:|---:|---:|---:|"
for endpoint in "${endpoints[@]}"; do
  for telemetry in on off; do
    key="$telemetry $endpoint"
    ratio=$(awk -v a="${rps[$key]}" -v b="${rps[off $endpoint]}" 'BEGIN { printf "%.0f%%", 100 * a / b }')
    echo "| \`$endpoint\` | ${conns[$endpoint]} | $telemetry | ${rps[$key]} | ${p50[$key]} | ${p99[$key]} | $ratio |"
  done
done
echo
echo "| service | peak RSS, telemetry on | peak RSS, telemetry off |"
echo "|---|---:|---:|"
echo "| die-service | ${rss_dice[on]} MiB | ${rss_dice[off]} MiB |"
echo "| dice-roller | ${rss_roller[on]} MiB | ${rss_roller[off]} MiB |"
kill -TERM "${pids[0]}" 2>/dev/null || true
wait "${pids[0]}" 2>/dev/null || true
echo
cat "$work/sink.out" | grep -v listening || true
