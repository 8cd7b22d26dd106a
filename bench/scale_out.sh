#!/usr/bin/env bash
# bench/scale_out.sh — two `ast-gateway serve` nodes on one PostgreSQL database, the workload of
# the scale-out end-to-end test (a token of two P-256 certificates, PKCS#12 at 10 000
# iterations, one CA shared by both nodes), driven by wrk on both nodes at once.
#
#   BIN=target/release/ast-gateway DURATION=15s bench/scale_out.sh
#
# Needs the release binary, wrk, and either DATABASE_URL (an empty PostgreSQL database) or
# createdb/dropdb for a fresh one on postgres://postgres@127.0.0.1:5432 (trust auth). CONNS
# connections per node (default 32). Prints one line per node and the total, as JSON.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-$(dirname "$here")/target/release/ast-gateway}
DURATION=${DURATION:-15s}
CONNS=${CONNS:-32}
[ -x "$BIN" ] || { echo "no binary at $BIN" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk is not on PATH" >&2; exit 2; }

work=$(mktemp -d "${WORKDIR:-/var/tmp}/ast-scale.XXXXXX")
pids=()
db=""
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "$db" ]; then dropdb -h 127.0.0.1 -U postgres "$db" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

if [ -z "${DATABASE_URL:-}" ]; then
  db="ast_bench_$RANDOM$RANDOM"
  createdb -h 127.0.0.1 -U postgres "$db"
  DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
fi

"$BIN" --root "$work/a" init >/dev/null
sed -i -e "s|^url = \"sqlite://data/ast-gateway.db\"|url = \"$DATABASE_URL\"\nmax_connections = 4|" \
  -e 's/^key = "rsa-2048"/key = "ec-p256"/' -e 's/^rsa-2048 = 32/rsa-2048 = 0/' \
  -e 's/^admin = "127.0.0.1:9102"/admin = ""/' "$work/a/conf/gateway.toml"
# No rate limit for the one benchmark identity (a binary from before rate limits has none).
sed -i 's/^request_timeout_secs = 60/request_timeout_secs = 60\nidentity_per_minute = 0/' "$work/a/conf/gateway.toml"
"$BIN" --root "$work/a" config check >/dev/null 2>&1 || sed -i '/^identity_per_minute = 0$/d' "$work/a/conf/gateway.toml"
cp -a "$work/a" "$work/b"

port() { echo $(( 10000 + RANDOM % 20000 )); }  # below the ephemeral port range
http_ok() { # PORT: /readyz answers 200
  local fd
  exec {fd}<>"/dev/tcp/127.0.0.1/$1" 2>/dev/null || return 1
  printf 'GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&"$fd"
  head -1 <&"$fd" | grep -q ' 200'
}
ports=()
for node in a b; do
  p=$(port)
  RUST_LOG=warn "$BIN" --root "$work/$node" serve --http "127.0.0.1:$p" 2>"$work/$node.log" &
  pids+=($!); ports+=("$p")
done
for p in "${ports[@]}"; do
  for _ in $(seq 300); do http_ok "$p" && break; sleep 0.2; done
done

cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "password=bench-pin-000000"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["commonname"] = "Bench User"
wrk.headers["country"] = "SE"
wrk.headers["email"] = "bench.user@example.com"
done = function(summary, latency, requests)
  local bad = summary.errors.status + summary.errors.connect + summary.errors.read
            + summary.errors.write + summary.errors.timeout
  io.write(string.format('{"tokens_per_s":%.3f,"p50_ms":%.2f,"p99_ms":%.2f,"errors":%d}\n',
    (summary.requests - bad) / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, bad))
end
LUA
loads=()
for p in "${ports[@]}"; do
  wrk -t1 -c"$CONNS" -d"$DURATION" --timeout 30s -s "$work/post.lua" "http://127.0.0.1:$p/pgwy/ast" > "$work/wrk-$p.out" &
  loads+=($!)
done
wait "${loads[@]}"
for p in "${ports[@]}"; do tail -1 "$work/wrk-$p.out" > "$work/wrk-$p.json"; done
total=0
for p in "${ports[@]}"; do
  line=$(cat "$work/wrk-$p.json")
  echo "node 127.0.0.1:$p $line"
  total=$(awk -v t="$total" -v x="$(printf '%s' "$line" | grep -o '"tokens_per_s":[0-9.]*' | cut -d: -f2)" 'BEGIN {printf "%.1f", t + x}')
done
echo "{\"nodes\":2,\"total_tokens_per_s\":$total,\"connections_per_node\":$CONNS,\"duration\":\"$DURATION\"}"
