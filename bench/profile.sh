#!/usr/bin/env bash
# bench/profile.sh — a CPU profile of `serve` issuing P-256 tokens on one core.
#
#   cargo build --release && bench/profile.sh [OUT]      # OUT: output prefix, default /tmp/ast-profile
#
# `serve` (P-256 procedure, PKCS#12 at 2 048 iterations, SQLite) pinned to CPU 0, wrk -t1 -c64
# pinned to CPU 1 for a 3 s warm-up and DURATION (default 10s) of load, `perf record` on the
# server meanwhile (CALL_GRAPH: dwarf (default) or fp; FREQ: default 299 Hz). Prints the rate,
# the server's CPU per request and its CPU per thread (issuance workers, SQLite, async workers);
# the profile is OUT.data:
#   perf report -i OUT.data --no-children --sort comm,dso,sym
#   perf report -i OUT.data --children --comms tokio-rt-worker --sort sym
# Needs: perf (linux-perf), wrk, taskset, curl; 2 CPUs or more.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-$(dirname "$here")/target/release/ast-gateway}
OUT=${1:-/tmp/ast-profile}
DURATION=${DURATION:-10s}
for tool in perf wrk taskset curl; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed" >&2; exit 2; }
done
work=$(mktemp -d "${WORKDIR:-/var/tmp}/ast-profile.XXXXXX")
pid=""
trap 'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi; rm -rf "$work"' EXIT
R=$work/root
"$BIN" --root "$R" init >/dev/null
sed -i -e 's/^request_timeout_secs = 60/request_timeout_secs = 60\nidentity_per_minute = 0\nofficer_per_minute = 0/' \
  -e 's/^iterations = 10000/iterations = 2048/' -e 's/^rsa-2048 = 32/rsa-2048 = 0/' "$R/conf/gateway.toml"
cat "$here/p256-procedure.toml" >> "$R/conf/gateway.toml"
sed -i 's/^handler.1.tokenprocedure = default/handler.1.tokenprocedure = p256/' "$R/conf/ast.properties"
port=${PORT:-18480}
RUST_LOG=warn taskset -c 0 "$BIN" --root "$R" serve --http "127.0.0.1:$port" --admin "127.0.0.1:$((port + 1))" 2>"$work/serve.log" &
pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
url="http://127.0.0.1:$port/pgwy/ast"
taskset -c 1 wrk -t1 -c64 -d3s -s "$here/post.lua" "$url" >/dev/null
declare -A before=()
for task in /proc/"$pid"/task/*; do before[$task]=$(awk '{print $14 + $15}' "$task/stat"); done
taskset -c 1 wrk -t1 -c64 -d"$DURATION" -s "$here/post.lua" "$url" > "$work/wrk.txt" &
load=$!
seconds=${DURATION%s}
perf record -F "${FREQ:-299}" --call-graph "${CALL_GRAPH:-dwarf}" -p "$pid" -o "$OUT.data" -- sleep "$((seconds - 1))" >/dev/null 2>&1
wait "$load"
requests=$(awk '$2 == "requests" {print $1}' "$work/wrk.txt")
hz=$(getconf CLK_TCK)
echo "$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt") requests/s over $DURATION (perf running), $requests requests"
for task in /proc/"$pid"/task/*; do
  echo "$(cat "$task/comm") $(( $(awk '{print $14 + $15}' "$task/stat") - ${before[$task]:-0} ))"
done | awk -v r="$requests" -v hz="$hz" '{ t[$1] += $2; all += $2 }
  END { for (k in t) if (t[k] > 0) printf "  %-16s %.3f ms CPU per request\n", k, 1000 * t[k] / hz / r;
        printf "  %-16s %.3f ms CPU per request\n", "total", 1000 * all / hz / r }'
echo "profile: $OUT.data"
