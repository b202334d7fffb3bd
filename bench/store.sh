#!/usr/bin/env bash
# The lab's store under the services' full load, and the page's trace reads, as `dice-lab up` runs
# them (release builds; the services export to the store, the frontend reads traces back from it):
#
# 1. ingest: wrk drives the dice-roller's /roll-async?times=100 with zero roll delay, for
#    DURATION; the store's spans/s, its CPU (from /proc/PID/stat) beside the services', and the
#    spans the services had to drop (none, if the store keeps up);
# 2. memory: the store's RSS once its budget (MAX_MIB) is full and the oldest traces are evicted;
# 3. reads: p50/p99 of the frontend's GET /api/traces/{id} for a trace of 1,000 rolls (1,005 spans),
#    one request at a time, and of the store's own Tempo route for the same trace;
# 4. freshness: how long after a Roll Multiple's answer its whole trace (10 rolls) can be read
#    through the frontend, over CLICKS clicks with the lab's default batch delay.
#
#   bench/store.sh
#   DURATION=20s MAX_MIB=32 bench/store.sh
#
# Needs wrk, curl and python3. Prints Markdown tables.
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-8}
MAX_MIB=${MAX_MIB:-64}
CLICKS=${CLICKS:-20}
BASE_PORT=${BASE_PORT:-19400}
TEMPO=$((BASE_PORT + 20)); OTLP=$((BASE_PORT + 21)); LOKI=$((BASE_PORT + 22))
FRONTEND=$BASE_PORT; ROLLER=$((BASE_PORT + 1)); DICE=$((BASE_PORT + 2))

# shellcheck source=bench/common.sh
source bench/common.sh
needs wrk curl python3
cargo build --quiet --release -p dice-lab -p die-service -p dice-roller -p frontend

mkdir -p "$work/logs"
"$bin/dice-lab" serve store --listen "127.0.0.1:$TEMPO" --otlp-listen "127.0.0.1:$OTLP" \
  --loki-listen "127.0.0.1:$LOKI" --max-mib "$MAX_MIB" --log-dir "$work/logs" >"$work/store.log" 2>&1 &
store=$!; pids+=($!)
wait_ready "http://127.0.0.1:$TEMPO/ready"
export OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$OTLP"
"$bin/die-service" --listen "127.0.0.1:$DICE" >"$work/logs/die-service.log" 2>&1 &
dice=$!; pids+=($!)
"$bin/dice-roller" --listen "127.0.0.1:$ROLLER" --die-service-url "http://127.0.0.1:$DICE" \
  --roll-delay-ms 0 --max-times 1000 >"$work/logs/dice-roller.log" 2>&1 &
roller=$!; pids+=($!)
"$bin/frontend" --listen "127.0.0.1:$FRONTEND" --die-service-url "http://127.0.0.1:$DICE" \
  --dice-roller-url "http://127.0.0.1:$ROLLER" --max-times 1000 \
  --trace-query-url "http://127.0.0.1:$TEMPO" --log-query-url "http://127.0.0.1:$LOKI" \
  >"$work/logs/frontend.log" 2>&1 &
frontend=$!; pids+=($!)
for port in $DICE $ROLLER $FRONTEND; do wait_ready "http://127.0.0.1:$port/healthz"; done

# 1. Ingest at the services' full speed.
wrk -t1 -c2 -d1s "http://127.0.0.1:$ROLLER/roll-async?die=fair&times=100" >/dev/null
sleep 1
spans0=$(metric "$TEMPO" store_spans_received_total)
declare -A ticks0
for name in store dice roller; do ticks0[$name]=$(cpu_ticks "${!name}"); done
started=$(date +%s.%N)
out=$(wrk -t1 -c"$CONNECTIONS" -d"$DURATION" "http://127.0.0.1:$ROLLER/roll-async?die=fair&times=100")
# The exporters' last batches leave within the batch delay.
sleep 1
elapsed=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
spans=$(( $(metric "$TEMPO" store_spans_received_total) - spans0 ))
declare -A cpu
for name in store dice roller; do
  cpu[$name]=$(cpu_seconds "${ticks0[$name]}" "$(cpu_ticks "${!name}")")
done
requests=$(awk '/requests in/ { print $1 }' <<<"$out")
rps=$(awk '/^Requests\/sec/ { printf "%.0f", $2 }' <<<"$out")
dropped=$(( $(metric "$ROLLER" telemetry_spans_dropped_total) + $(metric "$DICE" telemetry_spans_dropped_total) ))
refused=$(( $(metric "$TEMPO" store_export_requests_total) - $(metric "$TEMPO" 'store_export_requests_total{outcome="accepted"}') ))

# 2. Memory at the budget, right after the load.
evicted=$(metric "$TEMPO" store_traces_evicted_total)
kept=$(metric "$TEMPO" store_kept_bytes)
rss_loaded="$(rss_mib "$store" VmRSS) MiB / $(rss_mib "$store" VmHWM) MiB"

# 3. Reads of a 1,000-roll trace, one at a time.
big=$(curl -fs "http://127.0.0.1:$FRONTEND/api/roll-async?die=fair&times=1000" | python3 -c 'import json,sys; print(json.load(sys.stdin)["trace_id"])')
python3 - "$FRONTEND" "$big" <<'EOF'
import json, sys, time, urllib.request
port, trace = sys.argv[1], sys.argv[2]
deadline = time.monotonic() + 20
while True:
    try:
        answer = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/traces/{trace}"))
        if not answer["waiting_for"] and sum(s["name"] == "roll" for s in answer["spans"]) == 1000:
            break
    except Exception:
        pass
    if time.monotonic() > deadline:
        sys.exit(f"bench: the 1,000-roll trace {trace} never became whole")
    time.sleep(0.1)
EOF
read_latency() { # url -> "p50 p99" in ms
  local out
  out=$(wrk -t1 -c1 -d5s --latency "$1")
  printf '%.2f %.2f' "$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")" \
    "$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")"
}
read -r page50 page99 <<<"$(read_latency "http://127.0.0.1:$FRONTEND/api/traces/$big")"
read -r tempo50 tempo99 <<<"$(read_latency "http://127.0.0.1:$TEMPO/api/traces/$big")"
spans_big=$(curl -fs "http://127.0.0.1:$FRONTEND/api/traces/$big" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["spans"]))')
bytes_big=$(curl -fs "http://127.0.0.1:$FRONTEND/api/traces/$big" | wc -c)

# 4. Freshness: from a click's answer to its whole trace in the frontend's API.
fresh=$(python3 - "$FRONTEND" "$CLICKS" <<'EOF'
import json, sys, time, urllib.request
port, clicks = sys.argv[1], int(sys.argv[2])
def get(path):
    return json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}{path}"))
waits = []
for _ in range(clicks):
    trace = get("/api/roll-async?die=fair&times=10")["trace_id"]
    answered = time.monotonic()
    while True:
        try:
            answer = get(f"/api/traces/{trace}")
            if not answer["waiting_for"] and sum(s["name"] == "roll" for s in answer["spans"]) == 10:
                break
        except Exception:
            pass
        time.sleep(0.01)
    waits.append(time.monotonic() - answered)
    time.sleep(0.3)
waits.sort()
print(f"{waits[len(waits) // 2] * 1000:.0f} {waits[-1] * 1000:.0f}")
EOF
)
read -r fresh50 freshmax <<<"$fresh"

total_cpu=$(awk -v a="${cpu[store]}" -v b="${cpu[dice]}" -v c="${cpu[roller]}" 'BEGIN { printf "%.2f", a + b + c }')
echo
echo "Store under the services' full load: wrk -c$CONNECTIONS for $DURATION on /roll-async?die=fair&times=100 (zero roll delay); $(nproc) cores; budget $MAX_MIB MiB"
echo
echo "| measure | value |"
echo "|---|---:|"
echo "| requests (requests/s) | $requests ($rps) |"
awk -v s="$spans" -v t="$elapsed" 'BEGIN { printf "| spans received by the store | %d (%.0f/s) |\n", s, s / t }'
echo "| spans the services dropped; export requests the store refused | $dropped; $refused |"
awk -v s="${cpu[store]}" -v d="${cpu[dice]}" -v r="${cpu[roller]}" -v all="$total_cpu" -v n="$spans" \
  'BEGIN { printf "| CPU: store / dice-roller / die-service | %.2f s / %.2f s / %.2f s (store %.0f%% of the three) |\n", s, r, d, 100 * s / all;
           printf "| store CPU per 1,000 spans | %.1f ms |\n", 1e6 * s / (n > 0 ? n : 1) }'
echo "| traces evicted; bytes kept against the budget | $evicted; $(awk -v k="$kept" 'BEGIN { printf "%.1f MiB", k / 1048576 }') |"
echo "| store RSS after the load: now / peak | $rss_loaded |"
echo "| store RSS after the reads below: now / peak | $(rss_mib "$store" VmRSS) MiB / $(rss_mib "$store" VmHWM) MiB |"
echo
echo "| read of a trace of $spans_big spans ($((bytes_big / 1024)) KiB as the page gets it), one at a time | p50 | p99 |"
echo "|---|---:|---:|"
echo "| frontend \`GET /api/traces/{id}\` (through the store) | $page50 ms | $page99 ms |"
echo "| store \`GET /api/traces/{id}\` (Tempo's JSON) | $tempo50 ms | $tempo99 ms |"
echo
echo "From a Roll Multiple's answer to its whole trace in the frontend's API, over $CLICKS clicks: median $fresh50 ms, slowest $freshmax ms"
