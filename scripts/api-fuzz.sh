#!/usr/bin/env bash
# Schema-driven fuzzing of the REST API: schemathesis (from PyPI) reads the served
# /pgwy/api/openapi.json and sends generated requests (valid and invalid) to every operation, over
# mutual TLS with an officer certificate holding every API role. It fails on any 5xx answer and
# on any answer that the document does not describe (status code, content type, JSON schema).
#
# Bounded in time: API_FUZZ_EXAMPLES cases per operation and phase (default 30), and
# API_FUZZ_MAX_TIME seconds for the run (default 90). Needs python3 and openssl; prints
# `skipped: …` and exits 0 when one is missing or schemathesis cannot be installed.
# The virtual environment is kept under target/ (API_FUZZ_VENV to move it).
set -euo pipefail
cd "$(dirname "$0")/.."

examples="${API_FUZZ_EXAMPLES:-30}"
max_time="${API_FUZZ_MAX_TIME:-90}"
venv="${API_FUZZ_VENV:-target/api-fuzz-venv}"
schemathesis="schemathesis==4.32.5"

for tool in python3 openssl; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "skipped: api-fuzz: $tool is not installed"
    exit 0
  fi
done
if [ ! -x "$venv/bin/st" ]; then
  if ! { python3 -m venv "$venv" && "$venv/bin/pip" install -q "$schemathesis"; }; then
    echo "skipped: api-fuzz: could not install $schemathesis from PyPI"
    exit 0
  fi
fi

cargo build --quiet --bin ast-gateway
bin="$PWD/target/debug/ast-gateway"
work="$(mktemp -d)"
server=""
cleanup() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

root="$work/root"
"$bin" init --root "$root" >/dev/null
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# HTTPS with officer client certificates; fast EC keys and few PBKDF2 iterations (the fuzzer
# issues many tokens); no RSA key pool and no admin listener.
sed -i \
  -e 's|^http = "127.0.0.1:8080"|http = "127.0.0.1:0"|' \
  -e "s|^# https = \"127.0.0.1:8443\"|https = \"127.0.0.1:$port\"|" \
  -e 's|^# tls_cert|tls_cert|' -e 's|^# tls_key|tls_key|' -e 's|^# client_ca|client_ca|' \
  -e 's|^admin = "127.0.0.1:9102"|admin = ""|' \
  -e 's|^rsa-2048 = 32|rsa-2048 = 0|' \
  -e 's|^iterations = 10000|iterations = 1000|' \
  -e 's|key = "rsa-2048"|key = "ec-p256"|' \
  "$root/conf/gateway.toml"
grep -q "^https = \"127.0.0.1:$port\"" "$root/conf/gateway.toml"
grep -q '^client_ca' "$root/conf/gateway.toml"

"$bin" officer issue --root "$root" --name "API Fuzzer" --roles api-read,api-issue,api-revoke \
  --out "$work/officer.p12" --password fuzz-officer >/dev/null 2>&1
openssl pkcs12 -in "$work/officer.p12" -passin pass:fuzz-officer -nodes -clcerts -out "$work/officer.pem" 2>/dev/null

RUST_LOG=warn "$bin" serve --root "$root" >"$work/serve.log" 2>&1 &
server=$!

status=0
"$venv/bin/st" run "https://localhost:$port/pgwy/api/openapi.json" \
  --wait-for-schema 60 \
  --tls-verify "$root/data/ca/root.pem" \
  --request-cert "$work/officer.pem" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
  --max-examples "$examples" \
  --max-time "$max_time" \
  --seed "${API_FUZZ_SEED:-20261201}" \
  --workers 2 \
  --report ndjson --report-ndjson-path "$work/events.ndjson" \
  --output-truncate false \
  2>&1 | tee "$work/st.log" || status=$?

cases="$(grep -Eo '[0-9]+ generated' "$work/st.log" | tail -1 | grep -Eo '[0-9]+' || true)"
echo "api-fuzz: ${cases:-unknown} test cases against $(grep -c '"operationId"' <(curl -s --cacert "$root/data/ca/root.pem" "https://localhost:$port/pgwy/api/openapi.json" 2>/dev/null || true) 2>/dev/null || echo '?') operations; schemathesis exit $status"
if [ "$status" -ne 0 ]; then
  echo "api-fuzz: failed; the last lines of the server log:"
  tail -n 40 "$work/serve.log"
fi
exit "$status"
