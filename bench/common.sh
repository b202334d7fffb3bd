# What the benchmark scripts share; each sources it after `cd` to the repository's root.
#
# `needs TOOL...` stops with the tool to install; `pids` collects the processes a script starts,
# which end (with `work`, a scratch directory, and whatever is in `scratch`) when the script does;
# `wait_ready URL` waits for a service; `cpu_ticks PID` reads the process's CPU time in clock
# ticks from /proc/PID/stat, `cpu_seconds T0 T1` turns two readings into seconds; `to_ms` reads
# one of wrk's durations in milliseconds; `metric PORT NAME` sums a metric's samples on a /metrics page;
# `rss_mib PID VmRSS|VmHWM` reads its memory.

needs() {
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is needed (Debian: apt-get install $tool)" >&2; exit 1; }
  done
}

bin=target/release
work=$(mktemp -d)
scratch=()
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work" "${scratch[@]}"
}
trap cleanup EXIT

wait_ready() { # url
  for _ in $(seq 200); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "bench: $1 never became ready" >&2; exit 1
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
cpu_seconds() { awk -v a="$1" -v b="$2" -v hz="$hz" 'BEGIN { printf "%.3f", (b - a) / hz }'; } # ticks0 ticks1
to_ms() { # wrk duration (us, ms, s) -> milliseconds
  awk -v d="$1" 'BEGIN { v = d + 0; if (d ~ /us$/) v /= 1000; else if (d ~ /[0-9]s$/) v *= 1000; printf "%.3f", v }'
}
metric() { # port name -> the sum of the metric's samples
  curl -fs "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m || index($1, m "{") == 1 { s += $2 } END { printf "%d", s }'
}
rss_mib() { awk -v k="$2" '$1 == k ":" { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
