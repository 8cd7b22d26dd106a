#!/usr/bin/env bash
# bench/run.sh — ast-gateway benchmarks. Three modes:
#
# 0. The per-request overhead (the default: nothing set): `serve` on one core against the
#    in-process floor on the same core, interleaved.
#      cargo build --release && bench/run.sh          # ~3 minutes on 2 CPUs
#    Mode 1 with CORES=1, REPEAT=3, DURATION=10s, WRK_THREADS=1, CONNS=64: each round runs the
#    floor (`bench --threads 1 --no-pool`, pinned to CPU 0), then `serve` pinned to CPU 0 with
#    wrk pinned to CPU 1; three rounds, and the table shows the medians, the ratio of each round
#    and the CPU time a served token costs on each of the server's threads (issuance workers:
#    keys, certificates, PKCS#12, and the key pool's threads; database: SQLite's threads; HTTP and runtime: the async
#    workers) beside the floor's own stages. Needs at least 2 CPUs; keep the machine quiet.
#
# 1. Core scaling (CORES set): the in-process floor against `serve` over HTTP, per core count.
#      CORES="2 4 12" DURATION=30s bench/run.sh
#    Self-contained: needs only the release binary (BIN) and `wrk`, plus bash, coreutils, awk,
#    sed and taskset (util-linux); python3 with pyca/cryptography adds an optional peer row.
#    For each N in CORES and each job in JOBS (default "p256 default"): `bench --threads N
#    --no-pool` pinned to CPUs 0..N-1 (the floor), then `serve` pinned to CPUs 0..N-1 and driven
#    by wrk (CONNS connections, default 64; WRK_THREADS threads, default 4) pinned to the next
#    WRK_THREADS CPUs (shared with the server, and marked so, when the machine has no CPU
#    left). REPEAT (default 1) repeats each floor + HTTP pair; the table shows medians. Each serve run gets a fresh database (SQLite in WORKDIR, default /var/tmp, a disk,
#    not tmpfs: commits are fsynced; or DATABASE_URL=postgres://…) and a WARMUP (default 3s)
#    wrk run first. Prints a markdown table per job (tokens/s, HTTP ÷ floor, p50/p99, peak
#    RSS, the store stage and mean batch from /metrics) and writes it to OUT (default
#    bench/cores-last-run.md), with one JSON object per run in ${OUT%.md}.json.
#
# 2. Peers (PEERS=1): the comparison against other issuers on this machine.
#      cargo build --release && PEERS=1 bench/run.sh        # full run, ~10 minutes on 2 cores
#      PEERS=1 QUICK=1 bench/run.sh                         # smoke run, ~2 minutes
#
# Environment: BIN (default target/release/ast-gateway), DURATION (wrk, default 30s),
# CONC (wrk connections, default 4), TOKENS (in-process and pyca RSA tokens, default 200),
# OUT (markdown table, default bench/last-run.md), POOL_WAIT (seconds to wait for a full key
# pool before the light-load probe, default 180), SKIP_CFSSL=1, SKIP_OPENSSL=1.
#
# What runs (same CA key — the demo issuing CA, P-256 — and the same PKCS#12 parameters):
#   1. `ast-gateway bench`: the in-process floor, with and without the key pool, keygen only.
#   2. `ast-gateway serve` driven by wrk (bench/post.lua) at CONC connections, and a light-load
#      latency probe (bench/light.py: one request every 0.5 s, warm pool).
#   3. peers: pyca/cryptography (2 processes), the openssl CLI (2 parallel pipelines), cfssl
#      serve + wrk (key + certificate, no PKCS#12: less work).
# Jobs: "default" = 2 × RSA-2048, PKCS#12 at 10 000 iterations (the embedded default);
#       "p256"    = 1 × ECDSA P-256, PKCS#12 at 2 048 iterations.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
BIN=${BIN:-$repo/target/release/ast-gateway}

# --- mode 1: core scaling -------------------------------------------------------------------
scaling() {
  local DURATION=${DURATION:-30s} CONNS=${CONNS:-64} WRK_THREADS=${WRK_THREADS:-4}
  local WARMUP=${WARMUP:-3s} JOBS=${JOBS:-"p256 default"} REPEAT=${REPEAT:-1}
  local OUT=${OUT:-$here/cores-last-run.md}
  local JSON=${OUT%.md}.json
  [ -x "$BIN" ] || { echo "no binary at $BIN: cargo build --release (or set BIN)" >&2; exit 2; }
  command -v wrk >/dev/null || { echo "wrk is not on PATH" >&2; exit 2; }
  command -v taskset >/dev/null || { echo "taskset (util-linux) is not on PATH" >&2; exit 2; }
  local total; total=$(nproc)
  for n in $CORES; do
    [ "$n" -le "$total" ] || { echo "CORES has $n but this machine has $total CPUs" >&2; exit 2; }
  done
  # Global (not local): the EXIT trap runs after this function has returned.
  work=$(mktemp -d "${WORKDIR:-/var/tmp}/ast-bench.XXXXXX")
  server_pid=""
  trap 'if [ -n "${server_pid:-}" ]; then kill "$server_pid" 2>/dev/null || true; fi; rm -rf "${work:-/nonexistent}"' EXIT
  say() { printf '== %s\n' "$*" >&2; }

  # A GET over bash's /dev/tcp (no curl needed): the whole response, headers included.
  http_get() { # PORT PATH
    local fd
    exec {fd}<>"/dev/tcp/127.0.0.1/$1" || return 1
    printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$2" >&"$fd"
    cat <&"$fd"
    exec {fd}<&-
  }
  free_port() {
    local p
    for _ in $(seq 200); do
      p=$(( 10000 + RANDOM % 20000 ))  # below the ephemeral range (32768+) wrk's sockets use
      if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
    done
    echo "no free port" >&2; exit 2
  }
  json_num() { # JSON KEY: the first number under "KEY":
    printf '%s' "$1" | grep -o "\"$2\": *[-0-9.eE+]*" | head -1 | cut -d: -f2 | tr -d ' ' || true
  }

  # Roots: the embedded default (job "default": 2 × RSA-2048, PKCS#12 10 000 iterations) and
  # "p256" (1 × P-256, 2 048 iterations). No rate limits: the load has one identity.
  local R
  for job in $JOBS; do
    R=$work/root-$job
    "$BIN" --root "$R" init >/dev/null
    sed -i -e 's/^request_timeout_secs = 60/request_timeout_secs = 60\nidentity_per_minute = 0\nofficer_per_minute = 0/' "$R/conf/gateway.toml"
    if [ -n "${DATABASE_URL:-}" ]; then
      sed -i "s|^url = \"sqlite://data/ast-gateway.db\"|url = \"$DATABASE_URL\"|" "$R/conf/gateway.toml"
    fi
    case $job in
      default) ;;
      p256)
        sed -i -e 's/^iterations = 10000/iterations = 2048/' -e 's/^rsa-2048 = 32/rsa-2048 = 0/' "$R/conf/gateway.toml"
        cat "$here/p256-procedure.toml" >> "$R/conf/gateway.toml"
        sed -i 's/^handler.1.tokenprocedure = default/handler.1.tokenprocedure = p256/' "$R/conf/ast.properties"
        ;;
      *) echo "unknown job $job (use p256, default)" >&2; exit 2 ;;
    esac
    if ! "$BIN" --root "$R" config check >/dev/null 2>&1; then
      # A binary from before the [limits] rate limits (a "before" measurement): it has none.
      sed -i -e '/^identity_per_minute = 0$/d' -e '/^officer_per_minute = 0$/d' "$R/conf/gateway.toml"
      "$BIN" --root "$R" config check >/dev/null
    fi
  done

  cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "password=bench-pin-000000"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["commonname"] = "Bench User"
wrk.headers["country"] = "SE"
wrk.headers["organization"] = "Example AB"
wrk.headers["email"] = "bench.user@example.com"
done = function(summary, latency, requests)
  local s = summary.duration / 1e6
  local bad = summary.errors.status + summary.errors.connect + summary.errors.read
            + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    '{"requests":%d,"seconds":%.3f,"tokens_per_s":%.3f,"p50_ms":%.3f,"p99_ms":%.3f,"errors":%d,"non2xx":%d}\n',
    summary.requests, s, (summary.requests - bad) / s, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, bad, summary.errors.status))
end
LUA

  local machine fs version
  machine="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $total CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
  fs=$(stat -f -c %T "$work")
  version=$("$BIN" --version 2>/dev/null || echo ast-gateway)
  : > "$JSON"
  declare -A v acc
  median() { # VALUES...: the median of the numeric ones, "–" if none
    printf '%s\n' "$@" | grep -E '^[-0-9.eE+]+$' | sort -g | awk '{a[NR] = $1} END {
      if (NR == 0) print "–"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }' || true
  }
  local n job
  for job in $JOBS; do
    R=$work/root-$job
    for n in $CORES; do
      local cpus="0-$((n - 1))" wrk_cpus shared=false w
      if [ $((total - n)) -ge 1 ]; then
        w=$(( total - n < WRK_THREADS ? total - n : WRK_THREADS ))
        wrk_cpus="$n-$((n + w - 1))"
      else
        w=$WRK_THREADS; wrk_cpus="0-$((total - 1))"; shared=true
      fi
      local rep field
      for rep in $(seq "$REPEAT"); do
      # The floor: the same recipe in-process, one thread per server core, no pool.
      local tokens
      if [ "$job" = p256 ]; then tokens=$(( ${FLOOR_P256_PER_CORE:-3000} * n )); else tokens=$(( ${FLOOR_RSA_PER_CORE:-25} * n )); fi
      say "$job, $n cores: bench --threads $n --no-pool --tokens $tokens on CPUs $cpus"
      local floor
      floor=$(taskset -c "$cpus" "$BIN" --root "$R" bench --procedure "$job" --threads "$n" --no-pool --tokens "$tokens" --json)
      v[$job:$n:floor]=$(json_num "$floor" tokens_per_second)

      # The service: fresh database, pinned, warmed up, then measured.
      rm -f "$R"/data/ast-gateway.db*
      local port aport
      port=$(free_port); aport=$(free_port)
      say "$job, $n cores: serve on CPUs $cpus, wrk -t$w -c$CONNS -d$DURATION on CPUs $wrk_cpus$($shared && echo ' (shared)' || true)"
      RUST_LOG=warn taskset -c "$cpus" "$BIN" --root "$R" serve --http "127.0.0.1:$port" --admin "127.0.0.1:$aport" 2>"$work/serve.log" &
      server_pid=$!
      local ready=false
      for _ in $(seq 300); do
        if http_get "$port" /readyz 2>/dev/null | head -1 | grep -q ' 200'; then ready=true; break; fi
        sleep 0.2
      done
      $ready || { echo "serve did not become ready:" >&2; cat "$work/serve.log" >&2; exit 1; }
      local warm
      warm=$(taskset -c "$wrk_cpus" wrk -t"$w" -c"$CONNS" -d"$WARMUP" --timeout 30s -s "$work/post.lua" "http://127.0.0.1:$port/pgwy/ast" | tail -1)
      local before after out task
      # CPU time (clock ticks) of each server thread before and after the measured run.
      declare -A ticks0=()
      for task in /proc/"$server_pid"/task/*; do ticks0[$task]=$(awk '{print $14 + $15}' "$task/stat" 2>/dev/null || echo 0); done
      before=$(http_get "$aport" /metrics)
      out=$(taskset -c "$wrk_cpus" wrk -t"$w" -c"$CONNS" -d"$DURATION" --timeout 30s -s "$work/post.lua" "http://127.0.0.1:$port/pgwy/ast" | tail -1)
      after=$(http_get "$aport" /metrics)
      # CPU ms per served token by thread role (the thread's name says its role).
      local hz requests role_ticks
      hz=$(getconf CLK_TCK)
      requests=$(json_num "$out" requests)
      role_ticks=$(for task in /proc/"$server_pid"/task/*; do
          printf '%s %s\n' "$(cat "$task/comm" 2>/dev/null)" $(( $(awk '{print $14 + $15}' "$task/stat" 2>/dev/null || echo 0) - ${ticks0[$task]:-0} ))
        done | awk '{ r = "http"; if ($1 ~ /^ast-(issuance|key-pool)/) r = "recipe"; else if ($1 ~ /^sqlx-sqlite/) r = "database"; t[r] += $2; all += $2 }
                    END { printf "%d %d %d %d", t["recipe"], t["database"], t["http"], all }')
      read -r tr td th ta <<< "$role_ticks"
      for field in tr td th ta; do
        v[$job:$n:cpu_$field]=$(awk -v t="${!field}" -v r="${requests:-0}" -v hz="$hz" 'BEGIN { if (r > 0) printf "%.3f", 1000 * t / hz / r; else print "–" }')
      done
      v[$job:$n:ratio]=$(awk -v a="$(json_num "$out" tokens_per_s)" -v b="${v[$job:$n:floor]}" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "–" }')
      v[$job:$n:floor_cpu]=$(awk -v f="${v[$job:$n:floor]}" 'BEGIN { if (f > 0) printf "%.3f", 1000 / f; else print "–" }')
      local stages_json
      stages_json=$(printf '%s' "$floor" | grep -o '"stage_mean_ms": *{[^}]*}' || true)
      v[$job:$n:floor_stages]=$(for stage in keygen sign pkcs12; do json_num "$stages_json" "$stage"; done | awk '{ s = s (NR > 1 ? " / " : "") sprintf("%.3f", $1) } END { print s }')
      v[$job:$n:http]=$(json_num "$out" tokens_per_s)
      v[$job:$n:p50]=$(json_num "$out" p50_ms)
      v[$job:$n:p99]=$(json_num "$out" p99_ms)
      v[$job:$n:errors]=$(json_num "$out" errors)
      v[$job:$n:non2xx]=$(json_num "$out" non2xx)
      v[$job:$n:rss]=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$server_pid/status")
      # Deltas over the measured run, from the service's own /metrics.
      delta() { # NAME: after - before of a sample line
        local a b
        a=$(printf '%s\n' "$after" | awk -v n="$1" '$1 == n {print $2; exit}')
        b=$(printf '%s\n' "$before" | awk -v n="$1" '$1 == n {print $2; exit}')
        awk -v a="${a:-0}" -v b="${b:-0}" 'BEGIN {printf "%.6f", a - b}'
      }
      local ss sc bs bc shed
      ss=$(delta 'ast_issuance_stage_seconds_sum{stage="store"}')
      sc=$(delta 'ast_issuance_stage_seconds_count{stage="store"}')
      bs=$(delta 'ast_store_batch_size_sum')
      bc=$(delta 'ast_store_batch_size_count')
      shed=$(awk -v a="$(delta 'ast_issuance_shed_total{queue="cpu"}')" -v b="$(delta 'ast_issuance_shed_total{queue="write"}')" 'BEGIN {print a + b}')
      v[$job:$n:store]=$(awk -v s="$ss" -v c="$sc" 'BEGIN {if (c > 0) printf "%.2f", 1000 * s / c; else print "–"}')
      v[$job:$n:batch]=$(awk -v s="$bs" -v c="$bc" 'BEGIN {if (c > 0) printf "%.1f", s / c; else print "–"}')
      v[$job:$n:shed]=$shed
      v[$job:$n:shared]=$shared
      kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
      # Every token answered 200 must be in the database (a few more may be: requests wrk cut
      # off at the end of a run were committed but never read).
      local answered recorded=""
      answered=$(( $(json_num "$warm" requests) - $(json_num "$warm" errors) + $(json_num "$out" requests) - $(json_num "$out" errors) ))
      if [ -z "${DATABASE_URL:-}" ] && command -v sqlite3 >/dev/null; then
        recorded=$(sqlite3 "$R/data/ast-gateway.db" 'SELECT count(*) FROM tokens' 2>/dev/null || true)
      fi
      v[$job:$n:recorded]="$answered answered / ${recorded:-?} recorded"
      if [ -n "$recorded" ] && [ "$recorded" -lt "$answered" ]; then
        echo "LOST TOKENS: $answered answered 200 but only $recorded recorded" >&2
        v[$job:$n:recorded]+=" LOST"
      fi
      printf '{"job":"%s","cores":%s,"server_cpus":"%s","wrk_cpus":"%s","wrk_shares_cpus":%s,"floor_tokens_per_s":%s,"http_tokens_per_s":%s,"p50_ms":%s,"p99_ms":%s,"errors":%s,"non2xx":%s,"peak_rss_mb":%s,"store_ms":"%s","mean_batch":"%s","shed":%s,"connections":%s,"duration":"%s","database":"%s","filesystem":"%s"}\n' \
        "$job" "$n" "$cpus" "$wrk_cpus" "$shared" "${v[$job:$n:floor]:-0}" "${v[$job:$n:http]:-0}" "${v[$job:$n:p50]:-0}" \
        "${v[$job:$n:p99]:-0}" "${v[$job:$n:errors]:-0}" "${v[$job:$n:non2xx]:-0}" "${v[$job:$n:rss]:-0}" "${v[$job:$n:store]}" \
        "${v[$job:$n:batch]}" "${v[$job:$n:shed]:-0}" "$CONNS" "$DURATION" "${DATABASE_URL:+postgres}${DATABASE_URL:-sqlite}" "$fs" >> "$JSON"
      say "$job, $n cores, run $rep: floor ${v[$job:$n:floor]}/s, HTTP ${v[$job:$n:http]}/s, p50 ${v[$job:$n:p50]} ms, p99 ${v[$job:$n:p99]} ms, CPU ms/token ${v[$job:$n:cpu_ta]} (workers ${v[$job:$n:cpu_tr]}, database ${v[$job:$n:cpu_td]}, HTTP/runtime ${v[$job:$n:cpu_th]}), ${v[$job:$n:recorded]}"
      v[$job:$n:records]+="${v[$job:$n:records]:+; }${v[$job:$n:recorded]}"
      for field in floor http p50 p99 errors non2xx rss store batch shed ratio cpu_tr cpu_td cpu_th cpu_ta floor_cpu; do
        acc[$job:$n:$field]+=" ${v[$job:$n:$field]:-}"
      done
      v[$job:$n:ratios]+="${v[$job:$n:ratios]:+ }${v[$job:$n:ratio]}×"
      done
      # The table shows the median of the runs.
      for field in floor http p50 p99 errors non2xx rss store batch shed ratio cpu_tr cpu_td cpu_th cpu_ta floor_cpu; do
        v[$job:$n:$field]=$(median ${acc[$job:$n:$field]})
      done
    done
    # Optional peer row: pyca/cryptography, one process per core, pinned like the server.
    if [ -z "${SKIP_PYCA:-}" ] && [ -f "$here/peers/pyca_issuer.py" ] && python3 -c 'import cryptography' 2>/dev/null; then
      for n in $CORES; do
        local keys iter count
        if [ "$job" = p256 ]; then keys=ec-p256; iter=2048; count=$(( 1000 * n )); else keys=rsa-2048,rsa-2048; iter=10000; count=$(( 25 * n )); fi
        say "$job, $n cores: pyca/cryptography, $n processes"
        local py
        py=$(taskset -c "0-$((n - 1))" python3 "$here/peers/pyca_issuer.py" --root "$R" --procs "$n" --keys "$keys" --iterations "$iter" --tokens "$count" 2>/dev/null || true)
        v[$job:$n:pyca]=$(json_num "$py" tokens_per_s)
      done
    fi
  done

  # --- the table ---
  fmt() { awk -v x="$1" 'BEGIN { if (x == "" || x == "–") print "–"; else printf "%.1f", x }'; }
  ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "–"; else printf "%.2f×", a / b }'; }
  {
    echo "Machine: $machine. $version. Database: ${DATABASE_URL:+PostgreSQL}${DATABASE_URL:-SQLite on $fs} (synchronous=FULL). wrk: -c$CONNS -d$DURATION after a $WARMUP warm-up, pinned to its own CPUs (marked † where it shares the server's). Medians of $REPEAT run(s) per cell; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
    for job in $JOBS; do
      local title
      if [ "$job" = p256 ]; then title="P-256 token, PKCS#12 2 048 iterations"; else title="RSA default token (2 × RSA-2048), PKCS#12 10 000 iterations"; fi
      echo
      local head="| $title |" rule="|---|"
      for n in $CORES; do head+=" $n cores$(${v[$job:$n:shared]} && echo ' †' || true) |"; rule+="---:|"; done
      echo "$head"; echo "$rule"
      row() { # LABEL FIELD-PRINTER
        local line="| $1 |"
        for n in $CORES; do line+=" $($2 "$n") |"; done
        echo "$line"
      }
      f_floor() { fmt "${v[$job:$1:floor]:-}"; }
      f_http() { fmt "${v[$job:$1:http]:-}"; }
      f_ratio() { echo "$(awk -v x="${v[$job:$1:ratio]:-}" 'BEGIN { if (x == "" || x == "–") print "–"; else printf "%.2f×", x }') (runs: ${v[$job:$1:ratios]:-–})"; }
      f_cpu() { echo "${v[$job:$1:cpu_ta]:-–} = ${v[$job:$1:cpu_tr]:-–} + ${v[$job:$1:cpu_td]:-–} + ${v[$job:$1:cpu_th]:-–}"; }
      f_records() { echo "${v[$job:$1:records]:-–}"; }
      f_floor_cpu() { echo "${v[$job:$1:floor_cpu]:-–} (keygen / sign / pkcs12: ${v[$job:$1:floor_stages]:-–})"; }
      f_lat() { echo "$(fmt "${v[$job:$1:p50]:-}") / $(fmt "${v[$job:$1:p99]:-}")"; }
      f_tail() { ratio "${v[$job:$1:p99]:-}" "${v[$job:$1:p50]:-}"; }
      f_err() { echo "${v[$job:$1:errors]:-–} / ${v[$job:$1:shed]:-–}"; }
      f_rss() { fmt "${v[$job:$1:rss]:-}"; }
      f_store() { echo "${v[$job:$1:store]:-–}"; }
      f_batch() { echo "${v[$job:$1:batch]:-–}"; }
      f_pyca() { fmt "${v[$job:$1:pyca]:-}"; }
      row '`ast-gateway bench` in-process floor (N threads, no pool), tokens/s' f_floor
      [ -n "${v[$job:${CORES%% *}:pyca]:-}" ] && row 'pyca/cryptography, same job (N processes), tokens/s' f_pyca
      row "\`ast-gateway serve\` over HTTP, $CONNS connections, tokens/s" f_http
      row "HTTP ÷ floor (median of the rounds' ratios)" f_ratio
      row 'CPU ms per served token = issuance workers + database threads + HTTP/runtime threads' f_cpu
      row 'floor CPU ms per token (its stages, wall = CPU on one thread)' f_floor_cpu
      row 'HTTP p50 / p99 ms' f_lat
      row 'p99 ÷ p50' f_tail
      row 'errors (incl. non-2xx) / shed 503s' f_err
      row 'tokens answered 200 / recorded in the database, per run' f_records
      row 'server peak RSS MB' f_rss
      row '`store` stage mean ms (/metrics)' f_store
      row 'issuances per commit (/metrics)' f_batch
    done
  } | tee "$OUT"
  echo >&2
  echo "table written to $OUT, one JSON object per run in $JSON" >&2
}

if [ -n "${CORES:-}" ]; then
  scaling
  exit 0
fi
if [ -z "${PEERS:-}" ]; then
  # Mode 0: the per-request overhead on one core, interleaved with its floor.
  CORES=1 REPEAT=${REPEAT:-3} DURATION=${DURATION:-10s} WRK_THREADS=1 CONNS=${CONNS:-64} \
    OUT=${OUT:-$here/overhead-last-run.md} scaling
  exit 0
fi
DURATION=${DURATION:-30s}
CONC=${CONC:-4}
TOKENS=${TOKENS:-200}
OUT=${OUT:-$here/last-run.md}
POOL_WAIT=${POOL_WAIT:-180}
if [ -n "${QUICK:-}" ]; then DURATION=${DURATION_QUICK:-8s}; TOKENS=${TOKENS_QUICK:-20}; POOL_WAIT=20; fi
P256_TOKENS=$((TOKENS * 10))
OPENSSL_TOKENS=$((TOKENS / 10 > 4 ? TOKENS / 10 : 4))

[ -x "$BIN" ] || { echo "no binary at $BIN: run cargo build --release first" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }

work=$(mktemp -d /tmp/ast-bench.XXXXXX)
results=$work/results.jsonl
pids=()
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

log() { printf '\n== %s\n' "$*" >&2; }
# record NAME JOB JSON: one result line, tagged.
record() { python3 -c 'import json,sys; d=json.loads(sys.argv[3]); d["name"]=sys.argv[1]; d["job"]=sys.argv[2]; print(json.dumps(d))' "$1" "$2" "$3" >> "$results"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# peak RSS in MB of a finished command, from GNU time's %M (largest process, KB).
rss_of() { awk '{printf "%.1f", $1/1024}' "$1"; }

# --- roots --------------------------------------------------------------------------------
R1=$work/root-default
R2=$work/root-p256
"$BIN" --root "$R1" init >/dev/null
"$BIN" --root "$R2" init >/dev/null
sed -i -e 's/^iterations = 10000/iterations = 2048/' -e 's/^rsa-2048 = 32/rsa-2048 = 0/' "$R2/conf/gateway.toml"
cat "$here/p256-procedure.toml" >> "$R2/conf/gateway.toml"
sed -i 's/^handler.1.tokenprocedure = default/handler.1.tokenprocedure = p256/' "$R2/conf/ast.properties"
"$BIN" --root "$R2" config check >/dev/null

machine="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) vCPU, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# --- 1. in-process floor ------------------------------------------------------------------
inproc() { # NAME JOB ROOT ARGS...
  local name=$1 job=$2 root=$3; shift 3
  log "ast-gateway bench $* ($name)"
  local json
  json=$(/usr/bin/time -f '%M' -o "$work/rss" "$BIN" --root "$root" bench --json "$@")
  echo "$json" >&2
  record "$name" "$job" "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(json.dumps({"tokens_per_s":d["tokens_per_second"],"keys_per_s":d["keys_per_second"],"p50_ms":d["latency_ms"]["p50"],"p99_ms":d["latency_ms"]["p99"],"peak_rss_mb":float(sys.argv[2]),"stages":d["stage_mean_ms"],"tokens":d["tokens"]}))' "$json" "$(rss_of "$work/rss")")"
}
inproc "ast-gateway bench --no-pool" default "$R1" --tokens "$TOKENS" --no-pool
inproc "ast-gateway bench (warm pool)" default "$R1" --tokens "$TOKENS"
inproc "ast-gateway bench --no-pool" p256 "$R2" --procedure p256 --tokens "$P256_TOKENS" --no-pool

# RSA keygen varies a lot per key (random prime search) and the machine may be shared:
# alternate ast-gateway and pyca KEYGEN_ROUNDS times; the table shows the median per issuer.
for round in $(seq "${KEYGEN_ROUNDS:-3}"); do
  inproc "ast-gateway bench --keygen-only" keygen "$R1" --tokens "$TOKENS" --keygen-only
  if python3 -c 'import cryptography' 2>/dev/null; then
    log "pyca keygen only, round $round"
    json=$(python3 "$here/peers/pyca_issuer.py" --root "$R1" --procs 2 --keys rsa-2048,rsa-2048 --tokens "$TOKENS" --keygen-only)
    echo "$json" >&2
    record "pyca/cryptography ×2 proc" keygen "$json"
  fi
done

# --- 2. HTTP server + wrk -------------------------------------------------------------------
serve_and_load() { # JOB ROOT
  local job=$1 root=$2 port aport pid
  port=$(free_port); aport=$(free_port)
  log "ast-gateway serve ($job) on 127.0.0.1:$port, metrics on $aport"
  RUST_LOG=warn "$BIN" --root "$root" serve --http "127.0.0.1:$port" --admin "127.0.0.1:$aport" 2>"$work/serve-$job.log" &
  pid=$!; pids+=("$pid")
  for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
  # Wait for a full key pool (if any): keys == capacity for every pooled type.
  for _ in $(seq "$POOL_WAIT"); do
    python3 - "$aport" <<'PY' && break
import re, sys, urllib.request
t = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics").read().decode()
caps = dict(re.findall(r'^ast_key_pool_capacity\{key_type="([^"]+)"\} (\S+)', t, re.M))
keys = dict(re.findall(r'^ast_key_pool_keys\{key_type="([^"]+)"\} (\S+)', t, re.M))
sys.exit(0 if all(float(keys.get(k, 0)) >= float(v) for k, v in caps.items()) else 1)
PY
    sleep 1
  done
  if [ "$job" = default ]; then
    local fill
    fill=$(curl -fsS "http://127.0.0.1:$aport/metrics" | awk '/^ast_key_pool_keys\{key_type="rsa-2048"\}/ {print $2}')
    log "light load: 40 requests, one every 0.5 s (pool holds ${fill:-?} RSA-2048 keys at the start)"
    local light
    light=$(python3 "$here/light.py" 127.0.0.1 "$port" /pgwy/ast 40 0.5 | python3 -c 'import json,sys; d=json.load(sys.stdin); d["pool_keys_at_start"]=sys.argv[1]; print(json.dumps(d))' "${fill:-?}")
    fill=$(curl -fsS "http://127.0.0.1:$aport/metrics" | awk '/^ast_key_pool_keys\{key_type="rsa-2048"\}/ {print $2}')
    light=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["pool_keys_at_end"]=sys.argv[2]; print(json.dumps(d))' "$light" "${fill:-?}")
    echo "$light" >&2
    record "ast-gateway HTTP, light load (warm pool)" "$job-light" "$light"
  fi
  log "wrk -t2 -c$CONC -d$DURATION ($job)"
  local out
  out=$(wrk -t2 -c"$CONC" -d"$DURATION" --timeout 30s -s "$here/post.lua" "http://127.0.0.1:$port/pgwy/ast" | tail -1)
  echo "$out" >&2
  local rss
  rss=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$pid/status")
  curl -fsS "http://127.0.0.1:$aport/metrics" > "${OUT%.md}-metrics-$job.txt" || true
  record "ast-gateway HTTP (wrk -c$CONC)" "$job" "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["peak_rss_mb"]=float(sys.argv[2]); print(json.dumps(d))' "$out" "$rss")"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
serve_and_load default "$R1"
serve_and_load p256 "$R2"

# --- 3. peers -----------------------------------------------------------------------------
if python3 -c 'import cryptography' 2>/dev/null; then
  pyver=$(python3 -c 'import cryptography; from cryptography.hazmat.backends.openssl.backend import backend as b; print(cryptography.__version__, "/", b.openssl_version_text())')
  pyca() { # NAME JOB ARGS...
    local name=$1 job=$2; shift 2
    log "pyca/cryptography $pyver: $*"
    local json
    json=$(python3 "$here/peers/pyca_issuer.py" --root "$R1" --procs 2 "$@")
    echo "$json" >&2
    record "$name" "$job" "$json"
  }
  pyca "pyca/cryptography ×2 proc" default --keys rsa-2048,rsa-2048 --iterations 10000 --tokens "$TOKENS"
  pyca "pyca/cryptography ×2 proc" p256 --keys ec-p256 --iterations 2048 --tokens "$P256_TOKENS"
else
  echo "skipped: pyca/cryptography not installed (pip install cryptography)" >&2
fi

if [ -z "${SKIP_OPENSSL:-}" ]; then
  openssl_cli() { # JOB ITER N KEYTYPES...
    local job=$1 iter=$2 n=$3; shift 3
    log "openssl CLI ($(openssl version | cut -d' ' -f1-2)), $n tokens, 2 parallel pipelines: $*"
    mkdir -p "$work/ossl"
    local started ended
    started=$(date +%s.%N)
    seq "$n" | /usr/bin/time -f '%M' -o "$work/rss" xargs -P2 -I{} sh -c \
      's=$(date +%s%N); "$0" "$1" "$2" "$3" '"$*"'; echo $(( ($(date +%s%N) - s) / 1000 ))' \
      "$here/peers/openssl_token.sh" "$R1" "$work/ossl" "$iter" > "$work/ossl-lat"
    ended=$(date +%s.%N)
    record "openssl CLI ×2 pipelines" "$job" "$(python3 -c '
import json, sys
lat = sorted(int(l) / 1000 for l in open(sys.argv[1]) if l.strip())
n = len(lat); s = float(sys.argv[3]) - float(sys.argv[2])
pick = lambda q: lat[max(0, min(n - 1, -(-int(q * 100) * n // 100) - 1))]
print(json.dumps({"tokens": n, "tokens_per_s": n / s, "p50_ms": pick(0.5), "p99_ms": pick(0.99), "peak_rss_mb": float(sys.argv[4])}))
' "$work/ossl-lat" "$started" "$ended" "$(rss_of "$work/rss")")"
  }
  openssl_cli default 10000 "$OPENSSL_TOKENS" rsa-2048 rsa-2048
  openssl_cli p256 2048 "$((OPENSSL_TOKENS * 5))" ec-p256
fi

if [ -z "${SKIP_CFSSL:-}" ] && command -v cfssl >/dev/null; then
  cport=$(free_port)
  cat > "$work/cfssl.json" <<'EOF'
{"signing": {"default": {"expiry": "8760h", "usages": ["digital signature", "client auth", "email protection"]}}}
EOF
  log "cfssl serve on 127.0.0.1:$cport (newcert: key + certificate, PEM key, no PKCS#12)"
  cfssl serve -address 127.0.0.1 -port "$cport" -ca "$R1/data/ca/issuing.pem" -ca-key "$R1/data/ca/issuing.key" \
    -config "$work/cfssl.json" -loglevel 2 2>"$work/cfssl.log" &
  cpid=$!; pids+=("$cpid")
  for _ in $(seq 50); do
    rc=0; curl -sS -o /dev/null -X POST -d '{}' "http://127.0.0.1:$cport/api/v1/cfssl/newcert" 2>/dev/null || rc=$?
    [ "$rc" -ne 7 ] && break; sleep 0.2
  done
  cfssl_load() { # JOB BODY
    local out
    out=$(CFSSL_BODY=$2 wrk -t2 -c"$CONC" -d"$DURATION" --timeout 30s -s "$here/cfssl.lua" "http://127.0.0.1:$cport/api/v1/cfssl/newcert" | tail -1)
    echo "$out" >&2
    local rss
    rss=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$cpid/status")
    record "cfssl serve newcert (wrk -c$CONC)" "$1" "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["peak_rss_mb"]=float(sys.argv[2]); print(json.dumps(d))' "$out" "$rss")"
  }
  # One RSA-2048 key per request: two requests make one "default" token (halved below).
  cfssl_load default-1key '{"request":{"CN":"Bench User","names":[{"C":"SE","O":"Example AB"}],"key":{"algo":"rsa","size":2048}}}'
  cfssl_load p256 '{"request":{"CN":"Bench User","names":[{"C":"SE","O":"Example AB"}],"key":{"algo":"ecdsa","size":256}}}'
  kill "$cpid" 2>/dev/null || true
else
  echo "skipped: cfssl (install Debian golang-cfssl, or SKIP_CFSSL is set)" >&2
fi

# --- table ----------------------------------------------------------------------------------
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
python3 - "$results" "$OUT" "$machine" "$load_before" "$load_after" "$CONC" "$DURATION" <<'PY'
import json, sys
raw = [json.loads(l) for l in open(sys.argv[1])]
# Repeated runs of the same issuer and job: keep the median of every number.
def median(xs):
    xs = sorted(xs); n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2
rows, groups = [], {}
for r in raw:
    groups.setdefault((r["job"], r["name"]), []).append(r)
for (job, name), rs in groups.items():
    m = dict(rs[0])
    for k, v in rs[0].items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            m[k] = median([x[k] for x in rs if isinstance(x.get(k), (int, float))])
    if len(rs) > 1:
        m["name"] = f"{name} (median of {len(rs)} runs)"
    rows.append(m)
out, machine, lb, la, conc, dur = sys.argv[2:8]
# cfssl makes one key per request: two requests = one 2-key "default" token.
for r in rows:
    if r["job"] == "default-1key":
        r["job"] = "default"; r["tokens_per_s"] = r["tokens_per_s"] / 2
        r["name"] += " (2 requests = 1 token)"
per_token = {"default": 2, "p256": 1, "default-light": 2}
for r in rows:
    if "keys_per_s" not in r and r.get("tokens_per_s") and r["job"] in per_token:
        r["keys_per_s"] = r["tokens_per_s"] * per_token[r["job"]]
titles = {
    "default": "Job `default`: 2 × RSA-2048 + PKCS#12 (10 000 iterations)",
    "default-light": "Light load, job `default`: one request every 0.5 s, warm key pool",
    "keygen": "RSA-2048 key generation only (2 keys per item)",
    "p256": "Job `p256`: 1 × ECDSA P-256 + PKCS#12 (2 048 iterations)",
}
lines = [f"Machine: {machine}. Load average before/after: {lb} / {la}. wrk: -t2 -c{conc} -d{dur}.", ""]
for job, title in titles.items():
    rs = [r for r in rows if r["job"] == job]
    if not rs:
        continue
    ref = next((r for r in rs if r["name"].startswith("ast-gateway HTTP")), rs[0])
    lines += [f"### {title}", "", "| issuer | tokens/s | keys/s | p50 ms | p99 ms | peak RSS MB | ratio tokens/s vs " + ref["name"] + " |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rs:
        tps = r.get("tokens_per_s")
        ratio = f"{tps / ref['tokens_per_s']:.2f}×" if tps and ref.get("tokens_per_s") else "–"
        f = lambda k, d=1: (f"{r[k]:.{d}f}" if isinstance(r.get(k), (int, float)) else "–")
        lines.append(f"| {r['name']} | {f('tokens_per_s')} | {f('keys_per_s')} | {f('p50_ms')} | {f('p99_ms')} | {f('peak_rss_mb')} | {ratio} |")
    lines.append("")
    stages = [r for r in rs if "stages" in r]
    for r in stages:
        s = r["stages"]
        lines.append(f"- {r['name']}: mean per token keygen {s['keygen']:.2f} ms, sign {s['sign']:.2f} ms, pkcs12 {s['pkcs12']:.2f} ms")
    try:
        import re
        m = open(out[:-3] + f"-metrics-{job}.txt").read()
        st = {k: float(v) for k, v in re.findall(r'^ast_issuance_stage_seconds_sum\{stage="(\w+)"\} (\S+)', m, re.M)}
        n = {k: float(v) for k, v in re.findall(r'^ast_issuance_stage_seconds_count\{stage="(\w+)"\} (\S+)', m, re.M)}
        parts = [f"{k} {1000 * st[k] / n[k]:.2f} ms" for k in ("keygen", "sign", "pkcs12", "store") if n.get(k)]
        if parts:
            lines.append("- ast-gateway HTTP, from its /metrics after the run: mean per token " + ", ".join(parts))
            stages = True
    except OSError:
        pass
    if stages:
        lines.append("")
text = "\n".join(lines)
open(out, "w").write(text + "\n")
print(text)
PY
echo >&2
cp "$results" "${OUT%.md}.jsonl"
echo "table written to $OUT, raw results to ${OUT%.md}.jsonl" >&2
