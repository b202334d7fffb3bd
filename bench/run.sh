#!/usr/bin/env bash
# Throughput, latency and memory of the die-service and dice-roller under wrk, with telemetry on
# (spans exported to a local OTLP sink, JSON logs written to a file) and with OTEL_SDK_DISABLED=true,
# side by side in one run. Both stacks run at once and the rounds alternate between them, so the
# noise of a shared machine falls on both alike. Rolls have zero delay: this measures the
# services and their telemetry, not the simulated work.
#
#   bench/run.sh                          # 3 rounds of 5 s per cell
#   ROUNDS=5 DURATION=10s CONNECTIONS=16 bench/run.sh
#
# Needs wrk (Debian: apt-get install wrk) and curl. Prints Markdown tables.
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-8}
BASE_PORT=${BASE_PORT:-18400}
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
  for _ in $(seq 200); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "bench: $1 never became ready" >&2; exit 1
}

"$bin/otlp-sink" "127.0.0.1:$SINK_PORT" >"$work/sink.out" 2>&1 &
pids+=($!)

# Two stacks: telemetry on at BASE_PORT+1/+2, off at BASE_PORT+11/+12.
declare -A roller_port dice_pid roller_pid
for telemetry in on off; do
  offset=$([ "$telemetry" = on ] && echo 0 || echo 10)
  dice=$((BASE_PORT + offset + 2)); roller=$((BASE_PORT + offset + 1))
  env_common=(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$SINK_PORT")
  [ "$telemetry" = off ] && env_common+=(OTEL_SDK_DISABLED=true)
  env "${env_common[@]}" "$bin/die-service" --listen "127.0.0.1:$dice" >"$work/dice-$telemetry.log" &
  dice_pid[$telemetry]=$!; pids+=($!)
  env "${env_common[@]}" "$bin/dice-roller" --listen "127.0.0.1:$roller" \
    --die-service-url "http://127.0.0.1:$dice" --roll-delay-ms 0 --max-times 1000 \
    >"$work/roller-$telemetry.log" &
  roller_pid[$telemetry]=$!; pids+=($!)
  roller_port[$telemetry]=$roller
  wait_ready "http://127.0.0.1:$dice/healthz"
  wait_ready "http://127.0.0.1:$roller/healthz"
done

# Each endpoint with its connections: throughput under load for the first two, the latency of one
# request at a time for the large batch.
endpoints=("/roll?die=fair" "/roll-async?die=fair&times=100" "/roll-async?die=fair&times=1000")
declare -A conns=([/roll?die=fair]=$CONNECTIONS [/roll-async?die=fair&times=100]=$CONNECTIONS [/roll-async?die=fair&times=1000]=1)

to_ms() { # wrk duration (us, ms, s) -> milliseconds
  awk -v d="$1" 'BEGIN { v = d + 0; if (d ~ /us$/) v /= 1000; else if (d ~ /[0-9]s$/) v *= 1000; printf "%.3f", v }'
}

declare -A rps p50 p99
for endpoint in "${endpoints[@]}"; do
  for telemetry in on off; do
    url="http://127.0.0.1:${roller_port[$telemetry]}$endpoint"
    wrk -t1 -c2 -d1s "$url" >/dev/null  # warm-up
    rps["$telemetry $endpoint"]=0; p50["$telemetry $endpoint"]=0; p99["$telemetry $endpoint"]=0
  done
  for round in $(seq "$ROUNDS"); do
    for telemetry in on off; do
      key="$telemetry $endpoint"
      out=$(wrk -t1 -c"${conns[$endpoint]}" -d"$DURATION" --latency "http://127.0.0.1:${roller_port[$telemetry]}$endpoint")
      if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
        echo "bench: $key: $(grep -E 'Non-2xx|Socket errors' <<<"$out")" >&2
      fi
      rps[$key]=$(awk -v a="${rps[$key]}" '/^Requests\/sec/ { printf "%.2f", a + $2 }' <<<"$out")
      p50[$key]=$(awk -v a="${p50[$key]}" -v b="$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")" 'BEGIN { printf "%.3f", a + b }')
      p99[$key]=$(awk -v a="${p99[$key]}" -v b="$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")" 'BEGIN { printf "%.3f", a + b }')
    done
  done
done

peak_rss_mib() { awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

echo
echo "wrk, 1 thread; $ROUNDS alternating rounds of $DURATION per cell (means shown); $(nproc) cores; zero roll delay; JSON logs to a file"
echo
echo "| endpoint | connections | telemetry | requests/s | p50 | p99 | throughput vs. off |"
echo "|---|---:|---|---:|---:|---:|---:|"
for endpoint in "${endpoints[@]}"; do
  for telemetry in on off; do
    key="$telemetry $endpoint"
    awk -v e="$endpoint" -v c="${conns[$endpoint]}" -v t="$telemetry" -v n="$ROUNDS" \
        -v r="${rps[$key]}" -v off="${rps[off $endpoint]}" -v a="${p50[$key]}" -v b="${p99[$key]}" \
        'BEGIN { printf "| `%s` | %s | %s | %.0f | %.2f ms | %.2f ms | %.0f%% |\n", e, c, t, r / n, a / n, b / n, 100 * r / off }'
  done
done
echo
echo "| service | peak RSS, telemetry on | peak RSS, telemetry off |"
echo "|---|---:|---:|"
echo "| die-service | $(peak_rss_mib "${dice_pid[on]}") MiB | $(peak_rss_mib "${dice_pid[off]}") MiB |"
echo "| dice-roller | $(peak_rss_mib "${roller_pid[on]}") MiB | $(peak_rss_mib "${roller_pid[off]}") MiB |"
