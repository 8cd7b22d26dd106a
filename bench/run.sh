#!/usr/bin/env bash
# bench/run.sh — the issue-7 benchmark: ast-gateway against other issuers on this machine.
#
#   cargo build --release && bench/run.sh            # full run, ~10 minutes on 2 cores
#   QUICK=1 bench/run.sh                             # smoke run, ~2 minutes
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
cat >> "$R2/conf/gateway.toml" <<'EOF'

[[token_procedure]]
name = "p256"

[[token_procedure.certificate]]
purpose = "authentication"
ca = "issuing"
key = "ec-p256"
validity = "365d"
key_usage = ["digitalSignature"]
extended_key_usage = ["clientAuth", "emailProtection"]
EOF
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
