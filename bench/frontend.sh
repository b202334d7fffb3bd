#!/usr/bin/env bash
# The frontend's weight and speed: the WebAssembly bundle's size (raw and gzipped) and the time
# until the page is interactive in headless Chromium, with the release build of all three services.
#
#   bench/frontend.sh            # 10 page loads
#   LOADS=30 bench/frontend.sh
#
# Needs chromium, chromium-driver, curl and gzip. Prints Markdown tables.
set -euo pipefail

cd "$(dirname "$0")/.."
LOADS=${LOADS:-10}
BASE_PORT=${BASE_PORT:-18500}

# shellcheck source=bench/common.sh
source bench/common.sh
needs curl gzip chromium chromedriver
cargo build --quiet --release -p die-service -p dice-roller -p frontend
cargo build --quiet --release -p lab-tests --bin page-bench

export OTEL_SDK_DISABLED=true
"$bin/die-service" --listen "127.0.0.1:$((BASE_PORT + 2))" >/dev/null & pids+=($!)
"$bin/dice-roller" --listen "127.0.0.1:$((BASE_PORT + 1))" --die-service-url "http://127.0.0.1:$((BASE_PORT + 2))" >/dev/null & pids+=($!)
"$bin/frontend" --listen "127.0.0.1:$BASE_PORT" --die-service-url "http://127.0.0.1:$((BASE_PORT + 2))" \
  --dice-roller-url "http://127.0.0.1:$((BASE_PORT + 1))" >/dev/null & pids+=($!)
url="http://127.0.0.1:$BASE_PORT"
wait_ready "$url/healthz"

size() { # path -> "raw KiB | gzip KiB"
  local raw gz
  raw=$(curl -fs "$url$1" | wc -c)
  gz=$(curl -fs "$url$1" | gzip -9 | wc -c)
  awk -v r="$raw" -v g="$gz" 'BEGIN { printf "%.1f KiB | %.1f KiB", r / 1024, g / 1024 }'
}
echo
echo "| asset | raw | gzip -9 |"
echo "|---|---:|---:|"
echo "| \`frontend_ui_bg.wasm\` | $(size /assets/frontend_ui_bg.wasm) |"
echo "| \`frontend_ui.js\` | $(size /assets/frontend_ui.js) |"
echo "| \`/\` (server-rendered page) | $(size /) |"
echo
"$bin/page-bench" "$url" "$LOADS"
