#!/usr/bin/env bash
# The cost of telemetry: the die-service and dice-roller under wrk with telemetry on (spans
# exported to a local OTLP sink that counts them, JSON logs written to a file) and with
# OTEL_SDK_DISABLED=true, side by side in one run. Both stacks run at once and the rounds
# alternate between them, so the noise of a shared machine falls on both alike. Rolls have zero
# delay: this measures the services and their telemetry, not the simulated work.
#
# For each cell it prints requests/s and p50/p99 as wrk sees them, and the CPU each service spent
# per 1,000 requests it counted (from /proc/PID/stat over the cell, divided by the requests in its
# own http_requests_total): steadier than requests/s on a shared machine. Then the ratio of
# telemetry on to off, the cost of one `roll` span derived from it, every span and log line
# accounted for (the sink's spans per request; nothing dropped), and each service's peak RSS.
#
#   bench/run.sh                          # 3 rounds of 5 s per cell
#   ROUNDS=5 DURATION=10s CONNECTIONS=50 bench/run.sh
#   BENCH_ENV="OTEL_BSP_MAX_EXPORT_BATCH_SIZE=512" bench/run.sh   # try a setting on both stacks
#
# Needs wrk (Debian: apt-get install wrk) and curl. Prints Markdown tables.
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-50}
BASE_PORT=${BASE_PORT:-18400}
SINK_PORT=$((BASE_PORT + 18))

# shellcheck source=bench/common.sh
source bench/common.sh
needs wrk curl
cargo build --quiet --release -p die-service -p dice-roller
cargo build --quiet --release -p lab-tests --bin otlp-sink
# The log files live in memory where there is a tmpfs, and are emptied after every round: at full
# speed a service writes about a gigabyte a round, and a disk's writeback would be the limit.
logs=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
scratch+=("$logs")

# The requests a service counted, its /metrics scrapes left out.
served() { curl -fs "http://127.0.0.1:$1/metrics" | awk '/^http_requests_total\{/ && !/handler="\/metrics"/ { s += $2 } END { printf "%d", s }'; }
sink_spans() { curl -fs "http://127.0.0.1:$SINK_PORT/counts" | sed -E 's/.*"spans":([0-9]+).*/\1/'; }

"$bin/otlp-sink" "127.0.0.1:$SINK_PORT" >"$work/sink.out" 2>&1 &
pids+=($!)
wait_ready "http://127.0.0.1:$SINK_PORT/counts"

# Two stacks: telemetry on at BASE_PORT+1/+2, off at BASE_PORT+11/+12.
declare -A roller_port dice_port dice_pid roller_pid
for telemetry in on off; do
  offset=$([ "$telemetry" = on ] && echo 0 || echo 10)
  dice=$((BASE_PORT + offset + 2)); roller=$((BASE_PORT + offset + 1))
  env_common=(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$SINK_PORT" ${BENCH_ENV:-})
  [ "$telemetry" = off ] && env_common+=(OTEL_SDK_DISABLED=true)
  env "${env_common[@]}" "$bin/die-service" --listen "127.0.0.1:$dice" >>"$logs/dice-$telemetry.log" &
  dice_pid[$telemetry]=$!; pids+=($!)
  env "${env_common[@]}" "$bin/dice-roller" --listen "127.0.0.1:$roller" \
    --die-service-url "http://127.0.0.1:$dice" --roll-delay-ms 0 --max-times 1000 \
    >>"$logs/roller-$telemetry.log" &
  roller_pid[$telemetry]=$!; pids+=($!)
  roller_port[$telemetry]=$roller; dice_port[$telemetry]=$dice
  wait_ready "http://127.0.0.1:$dice/healthz"
  wait_ready "http://127.0.0.1:$roller/healthz"
done

# Each endpoint with its connections and the spans one request makes: throughput under load for
# the first two, one request at a time for the large batch.
endpoints=("/roll?die=fair" "/roll-async?die=fair&times=100" "/roll-async?die=fair&times=1000")
declare -A conns=([/roll?die=fair]=$CONNECTIONS [/roll-async?die=fair&times=100]=$CONNECTIONS [/roll-async?die=fair&times=1000]=1)
# Server spans of the roller and the die-service, the roller's client span, and the rolls.
declare -A expected=([/roll?die=fair]=4 [/roll-async?die=fair&times=100]=103 [/roll-async?die=fair&times=1000]=1003)

add() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a + b }'; }

declare -A rps p50 p99 roller_cpu roller_reqs dice_cpu dice_reqs spans
for endpoint in "${endpoints[@]}"; do
  for telemetry in on off; do
    wrk -t1 -c2 -d1s "http://127.0.0.1:${roller_port[$telemetry]}$endpoint" >/dev/null  # warm-up
    key="$telemetry $endpoint"
    for stat in rps p50 p99 roller_cpu roller_reqs dice_cpu dice_reqs spans; do
      declare -n cell=$stat; cell[$key]=0; unset -n cell
    done
  done
  sleep 0.5  # the warm-up's spans leave within the batch delay
  for _ in $(seq "$ROUNDS"); do
    for telemetry in on off; do
      key="$telemetry $endpoint"
      r=${roller_port[$telemetry]}; d=${dice_port[$telemetry]}
      r0=$(served "$r"); d0=$(served "$d"); s0=$(sink_spans)
      rt0=$(cpu_ticks "${roller_pid[$telemetry]}"); dt0=$(cpu_ticks "${dice_pid[$telemetry]}")
      out=$(wrk -t1 -c"${conns[$endpoint]}" -d"$DURATION" --latency "http://127.0.0.1:$r$endpoint")
      rt1=$(cpu_ticks "${roller_pid[$telemetry]}"); dt1=$(cpu_ticks "${dice_pid[$telemetry]}")
      [ "$telemetry" = on ] && sleep 0.5  # the last batch's spans
      r1=$(served "$r"); d1=$(served "$d"); s1=$(sink_spans)
      if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
        echo "bench: $key: $(grep -E 'Non-2xx|Socket errors' <<<"$out")" >&2
      fi
      rps[$key]=$(add "${rps[$key]}" "$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")")
      p50[$key]=$(add "${p50[$key]}" "$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")")
      p99[$key]=$(add "${p99[$key]}" "$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")")
      roller_cpu[$key]=$(add "${roller_cpu[$key]}" "$(cpu_seconds "$rt0" "$rt1")")
      dice_cpu[$key]=$(add "${dice_cpu[$key]}" "$(cpu_seconds "$dt0" "$dt1")")
      roller_reqs[$key]=$((${roller_reqs[$key]%.*} + r1 - r0))
      dice_reqs[$key]=$((${dice_reqs[$key]%.*} + d1 - d0))
      [ "$telemetry" = on ] && spans[$key]=$((${spans[$key]%.*} + s1 - s0))
      for file in "$logs"/*.log; do : >"$file"; done
    done
  done
done

per_thousand() { awk -v cpu="$1" -v n="$2" 'BEGIN { printf "%.1f", (n > 0 ? 1e6 * cpu / n : 0) }'; } # ms per 1,000

echo
echo "wrk, 1 thread; $ROUNDS alternating rounds of $DURATION per cell (means shown); $(nproc) cores; zero roll delay; JSON logs to a file"
echo
echo "| endpoint | connections | telemetry | requests/s | p50 | p99 | dice-roller CPU per 1,000 requests | die-service CPU per 1,000 of its requests |"
echo "|---|---:|---|---:|---:|---:|---:|---:|"
for endpoint in "${endpoints[@]}"; do
  for telemetry in on off; do
    key="$telemetry $endpoint"
    awk -v e="$endpoint" -v c="${conns[$endpoint]}" -v t="$telemetry" -v n="$ROUNDS" \
        -v r="${rps[$key]}" -v a="${p50[$key]}" -v b="${p99[$key]}" \
        -v rc="$(per_thousand "${roller_cpu[$key]}" "${roller_reqs[$key]}")" \
        -v dc="$(per_thousand "${dice_cpu[$key]}" "${dice_reqs[$key]}")" \
        'BEGIN { printf "| `%s` | %s | %s | %.0f | %.2f ms | %.2f ms | %s ms | %s ms |\n", e, c, t, r / n, a / n, b / n, rc, dc }'
  done
done

ratio() { # service key-on key-off
  local cpu reqs; declare -n cpu="${1}_cpu" reqs="${1}_reqs"
  awk -v on="$(per_thousand "${cpu[$2]}" "${reqs[$2]}")" -v off="$(per_thousand "${cpu[$3]}" "${reqs[$3]}")" \
    'BEGIN { printf "%.2f", (off > 0 ? on / off : 0) }'
}
roll="/roll?die=fair"; batch="/roll-async?die=fair&times=100"
echo
echo "| CPU per request, telemetry on ÷ off | measured | target |"
echo "|---|---:|---:|"
echo "| dice-roller, \`/roll\` | $(ratio roller "on $roll" "off $roll")× | ≤ 1.15× |"
echo "| dice-roller, \`/roll-async?times=100\` | $(ratio roller "on $batch" "off $batch")× | ≤ 1.30× |"
echo "| die-service (under \`/roll\`) | $(ratio dice "on $roll" "off $roll")× | ≤ 1.15× |"
span_us=$(awk -v on="$(per_thousand "${roller_cpu[on $batch]}" "${roller_reqs[on $batch]}")" \
              -v off="$(per_thousand "${roller_cpu[off $batch]}" "${roller_reqs[off $batch]}")" \
              'BEGIN { printf "%.2f", (on - off) / 100 }')
echo "| one \`roll\` span, created, logged and exported: (on − off) ÷ 100 rolls | $span_us µs | < 2 µs |"

echo
echo "| every span and line accounted for | spans per request at the sink (expected) | spans dropped | log lines dropped |"
echo "|---|---:|---:|---:|"
dropped_spans=$(( $(metric "${roller_port[on]}" telemetry_spans_dropped_total) + $(metric "${dice_port[on]}" telemetry_spans_dropped_total) ))
dropped_lines=$(( $(metric "${roller_port[on]}" telemetry_log_lines_dropped_total) + $(metric "${dice_port[on]}" telemetry_log_lines_dropped_total) ))
for endpoint in "${endpoints[@]}"; do
  key="on $endpoint"
  awk -v e="$endpoint" -v s="${spans[$key]}" -v n="${roller_reqs[$key]}" -v x="${expected[$endpoint]}" \
    'BEGIN { printf "| `%s` | %.2f (%d) |", e, (n > 0 ? s / n : 0), x }'
  echo " $dropped_spans in all | $dropped_lines in all |"
done

echo
echo "| service | peak RSS, telemetry on | peak RSS, telemetry off | target |"
echo "|---|---:|---:|---:|"
echo "| die-service | $(rss_mib "${dice_pid[on]}" VmHWM) MiB | $(rss_mib "${dice_pid[off]}" VmHWM) MiB | < 20 MiB |"
echo "| dice-roller | $(rss_mib "${roller_pid[on]}" VmHWM) MiB | $(rss_mib "${roller_pid[off]}" VmHWM) MiB | < 20 MiB |"
