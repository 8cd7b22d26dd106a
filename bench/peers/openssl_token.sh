#!/bin/sh
# Peer issuer for bench/run.sh: one token with the `openssl` CLI (Debian's OpenSSL 3.0).
# Usage: openssl_token.sh ROOT WORKDIR ITERATIONS KEYTYPE...   (KEYTYPE: rsa-2048 | ec-p256)
# Per key: genpkey, req, x509 -req signed by the gateway's issuing CA, pkcs12 -export with
# PBES2/AES-256-CBC for key and certificates and an HMAC-SHA256 MAC at ITERATIONS.
set -eu
root=$1; work=$2; iter=$3; shift 3
d=$(mktemp -d "$work/tok.XXXXXX")
i=0
for kt in "$@"; do
  i=$((i + 1))
  case $kt in
    rsa-*) openssl genpkey -quiet -algorithm RSA -pkeyopt "rsa_keygen_bits:${kt#rsa-}" -out "$d/k$i.pem" ;;
    ec-p256) openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/k$i.pem" ;;
    *) echo "unsupported key type $kt" >&2; exit 2 ;;
  esac
  openssl req -new -key "$d/k$i.pem" -subj "/CN=Bench User/C=SE/O=Example AB" -out "$d/r$i.pem"
  openssl x509 -req -in "$d/r$i.pem" -CA "$root/data/ca/issuing.pem" -CAkey "$root/data/ca/issuing.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 365 -sha256 -out "$d/c$i.pem" 2>/dev/null
  openssl pkcs12 -export -inkey "$d/k$i.pem" -in "$d/c$i.pem" -certfile "$root/data/ca/issuing.pem" \
    -keypbe AES-256-CBC -certpbe AES-256-CBC -iter "$iter" -macalg sha256 -passout pass:bench-pin-000000 \
    -out "$d/t$i.p12"
done
rm -rf "$d"
