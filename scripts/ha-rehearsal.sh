#!/usr/bin/env bash
# High-availability rehearsal on one machine (docs/high-availability.md): etcd, two PostgreSQL
# nodes managed by Patroni in synchronous mode, HAProxy routing to the primary by Patroni's REST
# health check, two gateway nodes (A through HAProxy, B with the multi-host URL) behind nginx.
# Drives issuance (form through nginx, API with Idempotency-Keys straight to both nodes), then
# per round: kill -9 of the primary's postmaster mid-load, the promotion, the checks (every
# token answered 200 has its certificates and audit row on the new primary, no serial twice,
# `audit verify` clean on both nodes' roots), the unavailability window and when throughput
# was back; the old primary comes back as a standby before the next round. Last, a
# `patronictl switchover` under API load: no 5xx may reach a client that retries.
#
#   scripts/ha-rehearsal.sh [--failovers N] [--load-seconds S] [--require-sync] [--keep]
#
# --require-sync sets `[database] require_synchronous_replication = true` on both gateway nodes:
# with two database nodes, issuance then stops after a failover until the old primary is back as
# a synchronous standby (Patroni's synchronous_mode alone already keeps a failover from losing
# acknowledged commits; the requirement also refuses to deliver a token held by one server only).
#
# Needs: etcd (etcd-server), patroni, haproxy, nginx, PostgreSQL server binaries
# (/usr/lib/postgresql/<v>/bin), python3 with cryptography, openssl, psql; root (PostgreSQL and
# Patroni run as the `postgres` user). Ports 23790-23800, 28008-28009, 28080-28082,
# 28443-28444, 29102-29103, 55000, 55432-55433 on 127.0.0.1 (not PostgreSQL's 5432).
# Everything lives in $WORK (default /tmp/ast-ha-rehearsal), removed at the end unless --keep.
set -euo pipefail
cd "$(dirname "$0")/.."
FAILOVERS=3 LOAD=45 KEEP=0 REQUIRE=false
while [ $# -gt 0 ]; do
  case "$1" in
    --failovers) FAILOVERS=$2; shift 2 ;;
    --load-seconds) LOAD=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --require-sync) REQUIRE=true; shift ;;
    *) echo "usage: $0 [--failovers N] [--load-seconds S] [--require-sync] [--keep]" >&2; exit 2 ;;
  esac
done
WORK=${WORK:-/tmp/ast-ha-rehearsal}
BIN=${AST_GATEWAY:-$( (ls -t target/release/ast-gateway target/debug/ast-gateway 2>/dev/null || true) | head -1)}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
LOADPY="python3 $(pwd)/scripts/ha-rehearsal-load.py"
for tool in etcd patroni patronictl haproxy nginx openssl psql python3 runuser; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
[ -x "$BIN" ] || { echo "no ast-gateway binary (cargo build --release)" >&2; exit 1; }
[ -x "$PGBIN/pg_ctl" ] || { echo "no PostgreSQL server binaries" >&2; exit 1; }
BIN=$(realpath "$BIN")

PIDS=()
cleanup() {
  set +e
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  sleep 2
  for n in 1 2; do
    [ -f "$WORK/node$n/data/postmaster.pid" ] &&
      runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/node$n/data" stop -m immediate >/dev/null 2>&1
  done
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
  [ "$KEEP" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT
rm -rf "$WORK"; mkdir -p "$WORK"; chmod 755 "$WORK"
log() { echo "[$(date +%T)] $*"; }
now() { date +%s.%N; }
start_bg() { # name command…: runs in its own session, output to $WORK/name.log
  local name=$1; shift
  setsid "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
}
wait_for() { # seconds description command…
  local until=$(( $(date +%s) + $1 )) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$until" ] || { echo "timed out waiting for $what" >&2; exit 1; }
    sleep 0.2
  done
}

# --- etcd (one member: the rehearsal is about PostgreSQL failover, not etcd's) ---------------
start_bg etcd etcd --name e1 --data-dir "$WORK/etcd" \
  --listen-client-urls http://127.0.0.1:23790 --advertise-client-urls http://127.0.0.1:23790 \
  --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
  --initial-cluster e1=http://127.0.0.1:23800
wait_for 30 etcd env ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:23790 endpoint health

# --- Patroni: two PostgreSQL nodes, synchronous mode, ttl 10 / loop_wait 2 ------------------
patroni_config() { # n pgport restport
  cat <<YML
scope: ast-ha
name: node$1
restapi: {listen: "127.0.0.1:$3", connect_address: "127.0.0.1:$3"}
etcd3: {hosts: "127.0.0.1:23790"}
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 2
    retry_timeout: 4
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    primary_start_timeout: 0
    postgresql:
      use_pg_rewind: true
      parameters: {wal_level: replica, hot_standby: "on", wal_log_hints: "on",
                   max_wal_senders: 5, max_replication_slots: 5, wal_keep_size: 256MB}
  initdb: [{encoding: UTF8}]
  pg_hba:
    - local all all trust
    - host replication replicator 127.0.0.1/32 trust
    - host all all 127.0.0.1/32 trust
postgresql:
  listen: "127.0.0.1:$2"
  connect_address: "127.0.0.1:$2"
  data_dir: $WORK/node$1/data
  bin_dir: $PGBIN
  pgpass: $WORK/node$1/pgpass
  authentication:
    replication: {username: replicator, password: rehearsal}
    superuser: {username: postgres, password: rehearsal}
    rewind: {username: postgres, password: rehearsal}
  parameters: {unix_socket_directories: "$WORK/node$1", shared_buffers: 32MB,
               max_connections: 60, fsync: "on"}
YML
}
for n in 1 2; do
  mkdir -p "$WORK/node$n"
  patroni_config "$n" $((55431 + n)) $((28007 + n)) >"$WORK/node$n.yml"
done
chown -R postgres: "$WORK"/node1 "$WORK"/node2 "$WORK"/node1.yml "$WORK"/node2.yml
start_bg patroni1 runuser -u postgres -- patroni "$WORK/node1.yml"
wait_for 90 "node1 to lead" sh -c "curl -sf http://127.0.0.1:28008/primary"
start_bg patroni2 runuser -u postgres -- patroni "$WORK/node2.yml"
PATRONICTL="patronictl -c $WORK/node1.yml"
sync_ready() { $PATRONICTL list -f json | python3 -c '
import json,sys; m=json.load(sys.stdin)
sys.exit(0 if any(x["Role"] in ("Sync Standby","Sync standby") and x["State"] in ("running","streaming") for x in m) and len(m)==2 else 1)'; }
wait_for 120 "a synchronous standby" sync_ready
$PATRONICTL list

# --- HAProxy: the primary only, by Patroni's REST check --------------------------------------
cat >"$WORK/haproxy.cfg" <<CFG
global
  maxconn 300
defaults
  mode tcp
  timeout connect 2s
  timeout client 30m
  timeout server 30m
  timeout check 2s
listen primary
  bind 127.0.0.1:55000
  option httpchk OPTIONS /primary
  http-check expect status 200
  default-server inter 1s fall 2 rise 1 on-marked-down shutdown-sessions
  server node1 127.0.0.1:55432 maxconn 100 check port 28008
  server node2 127.0.0.1:55433 maxconn 100 check port 28009
CFG
start_bg haproxy haproxy -db -f "$WORK/haproxy.cfg"
PSQL="psql -h 127.0.0.1 -p 55000 -U postgres"
# Servers count as up until their first check: wait until HAProxy reaches the primary only.
on_primary() { [ "$($PSQL -Atc 'SELECT pg_is_in_recovery()')" = f ]; }
sleep 3
wait_for 30 "HAProxy on the primary" on_primary
$PSQL -qc "CREATE DATABASE ast"

# --- Gateway nodes: A through HAProxy, B with the multi-host URL -----------------------------
HAPROXY_URL="postgres://postgres@127.0.0.1:55000/ast"
MULTI_URL="postgres://postgres@127.0.0.1:55432,127.0.0.1:55433/ast?target_session_attrs=read-write"
"$BIN" init --root "$WORK/gw-a" --http 127.0.0.1:28081 --public-url http://127.0.0.1:28080 >/dev/null
configure_node() { # root url https-port admin-port
  sed -i -e "s|^url = \"sqlite://data/ast-gateway.db\"|url = \"$2\"\nrequire_synchronous_replication = $REQUIRE|" \
    -e "s|^# https = \"127.0.0.1:8443\"|https = \"127.0.0.1:$3\"|" \
    -e 's|^# tls_cert|tls_cert|' -e 's|^# tls_key|tls_key|' -e 's|^# client_ca|client_ca|' \
    -e "s|^admin = \"127.0.0.1:9102\"|admin = \"127.0.0.1:$4\"|" \
    -e 's|key = "rsa-2048"|key = "ec-p256"|' -e 's|iterations = 10000|iterations = 2048|' \
    "$1/conf/gateway.toml"
}
configure_node "$WORK/gw-a" "$HAPROXY_URL" 28443 29102
# A new node takes conf/, the CA files, the TLS files and data/secret.key — never another
# node's data/audit-anchors.log (docs/scale-out.md, "Adding a node").
mkdir -p "$WORK/gw-b/data"
cp -a "$WORK/gw-a/conf" "$WORK/gw-b/"
cp -a "$WORK/gw-a/data/ca" "$WORK/gw-a/data/tls" "$WORK/gw-a/data/secret.key" "$WORK/gw-b/data/"
sed -i -e "s|$HAPROXY_URL|$MULTI_URL|" -e 's|127.0.0.1:28443|127.0.0.1:28444|' \
  -e 's|127.0.0.1:29102|127.0.0.1:29103|' -e 's|http = "127.0.0.1:28081"|http = "127.0.0.1:28082"|' \
  "$WORK/gw-b/conf/gateway.toml"
"$BIN" config check --root "$WORK/gw-b" | grep -E "durability|REFUSING|warning" || true
"$BIN" officer issue --root "$WORK/gw-a" --name "Rehearsal Officer" --roles api-issue \
  --out "$WORK/officer.p12" --password Officer-Pass-1 >/dev/null
openssl pkcs12 -in "$WORK/officer.p12" -passin pass:Officer-Pass-1 -nokeys -clcerts -out "$WORK/officer.pem" 2>/dev/null
openssl pkcs12 -in "$WORK/officer.p12" -passin pass:Officer-Pass-1 -nocerts -nodes -out "$WORK/officer.key" 2>/dev/null
for node in a b; do
  start_bg "gw-$node" env RUST_LOG=info,sqlx=warn "$BIN" serve --root "$WORK/gw-$node"
done
wait_for 60 "gateway A" curl -sf http://127.0.0.1:28081/readyz
wait_for 60 "gateway B" curl -sf http://127.0.0.1:28082/readyz

# --- nginx in front of both nodes ------------------------------------------------------------
mkdir -p "$WORK/nginx/logs"
cat >"$WORK/nginx/nginx.conf" <<CFG
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body; proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi; uwsgi_temp_path $WORK/nginx/uwsgi; scgi_temp_path $WORK/nginx/scgi;
  upstream gateways { server 127.0.0.1:28081 max_fails=1 fail_timeout=2s; server 127.0.0.1:28082 max_fails=1 fail_timeout=2s; }
  server {
    listen 127.0.0.1:28080;
    location / { proxy_pass http://gateways; proxy_set_header Host \$host; proxy_read_timeout 60s; }
  }
}
CFG
start_bg nginx nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;'
wait_for 10 nginx curl -sf http://127.0.0.1:28080/readyz

drive() { # seconds out [--api-only]
  $LOADPY drive --seconds "$1" --out "$2" --form http://127.0.0.1:28080/pgwy/ast \
    --api https://127.0.0.1:28443,https://127.0.0.1:28444 --cert "$WORK/officer.pem" \
    --key "$WORK/officer.key" --ca "$WORK/gw-a/data/ca/root.pem" "${@:3}"
}
leader() { $PATRONICTL list -f json | python3 -c '
import json,sys; print(next(x["Member"] for x in json.load(sys.stdin) if x["Role"] == "Leader"))'; }
audit_verify() {
  for node in a b; do
    "$BIN" audit verify --root "$WORK/gw-$node" | head -1 | sed "s/^/  gateway $node: /"
  done
}
SUMMARY="$WORK/summary.jsonl"
log "Patroni ttl 10, loop_wait 2, retry_timeout 4, primary_start_timeout 0, synchronous_mode on;" \
  "require_synchronous_replication = $REQUIRE; $BIN; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

# --- Failovers: kill -9 of the primary's postmaster under load --------------------------------
for round in $(seq 1 "$FAILOVERS"); do
  old=$(leader); n=${old#node}
  log "round $round: primary $old; load for ${LOAD}s, kill -9 after 15s"
  since=$(now)
  drive "$LOAD" "$WORK/round$round.jsonl" &
  driver=$!
  sleep 15
  pid=$(head -1 "$WORK/node$n/data/postmaster.pid")
  kill_at=$(now); kill -9 "$pid"
  log "killed postmaster $pid of $old"
  until new=$(leader 2>/dev/null) && [ -n "$new" ] && [ "$new" != "$old" ] &&
        curl -sf "http://127.0.0.1:$((28007 + ${new#node}))/primary" >/dev/null; do
    sleep 0.1
  done
  promoted_at=$(now)
  log "$new is primary ($(python3 -c "print(round($promoted_at - $kill_at, 1))") s after the kill)"
  wait "$driver"
  result=$($LOADPY check --results "$WORK/round$round.jsonl" --psql "$PSQL -d ast" \
    --since "$since" --kill "$kill_at" --promoted "$promoted_at") || { echo "$result"; exit 1; }
  echo "{\"round\": $round, \"kind\": \"kill -9\", \"from\": \"$old\", \"to\": \"$new\", \"result\": $result}" | tee -a "$SUMMARY"
  audit_verify
  log "waiting for $old to come back as a synchronous standby"
  wait_for 180 "the old primary back" sync_ready
done

# --- Planned switchover under API load (Idempotency-Key + retry: no 5xx may reach a client) --
old=$(leader); new=$([ "$old" = node1 ] && echo node2 || echo node1)
log "switchover $old -> $new under API load"
since=$(now)
drive "$LOAD" "$WORK/switchover.jsonl" --api-only --api-workers 4 &
driver=$!
sleep 15
switch_at=$(now)
$PATRONICTL switchover --leader "$old" --candidate "$new" --force >/dev/null
until [ "$(leader 2>/dev/null)" = "$new" ] && curl -sf "http://127.0.0.1:$((28007 + ${new#node}))/primary" >/dev/null; do sleep 0.1; done
switched_at=$(now)
wait "$driver"
result=$($LOADPY check --results "$WORK/switchover.jsonl" --psql "$PSQL -d ast" \
  --since "$since" --kill "$switch_at" --promoted "$switched_at") || { echo "$result"; exit 1; }
echo "{\"round\": \"switchover\", \"from\": \"$old\", \"to\": \"$new\", \"result\": $result}" | tee -a "$SUMMARY"
audit_verify
python3 - "$SUMMARY" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
bad = [r for r in rows if r["result"]["delivered_not_recorded"] or r["result"]["serials_delivered_twice"]]
switch = [r for r in rows if r["round"] == "switchover"]
if switch and (switch[0]["result"]["api_5xx_final"] or switch[0]["result"]["api_lost_final"]):
    bad.append(switch[0])
print("rehearsal:", "FAILED" if bad else "passed", "—", len(rows), "rounds")
sys.exit(1 if bad else 0)
PY
grep -h "database" "$WORK"/gw-a.log | grep -E "durability|writable server|unreachable|reachable again" | tail -5 || true
