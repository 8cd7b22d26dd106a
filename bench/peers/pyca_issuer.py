#!/usr/bin/env python3
"""Peer issuer for bench/run.sh: pyca/cryptography (its wheel bundles its own OpenSSL).

Per token and per key type given: generate the key, build a leaf certificate like the
gateway's (subject, SAN email, KU, EKU) signed by the gateway's issuing CA (same key, same
SHA-256 signature), and write a PKCS#12 with PBES2/PBKDF2-HMAC-SHA256/AES-256-CBC for key and
certificates and an HMAC-SHA256 MAC at the same iteration count as the gateway.
pyca writes one key per PKCS#12, so a two-key token is two PKCS#12 files (slightly more
PBKDF2 work than the gateway's single file with two key bags).

Prints one JSON object: tokens, seconds, tokens_per_s, keys_per_s, p50_ms, p99_ms,
peak_rss_mb (largest single process) and processes.
"""
import argparse
import datetime
import json
import multiprocessing as mp
import os
import resource
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA = {}


def init(root):
    with open(os.path.join(root, "data/ca/issuing.key"), "rb") as f:
        CA["key"] = serialization.load_pem_private_key(f.read(), None)
    with open(os.path.join(root, "data/ca/issuing.pem"), "rb") as f:
        CA["cert"] = x509.load_pem_x509_certificate(f.read())
    with open(os.path.join(root, "data/ca/root.pem"), "rb") as f:
        CA["root"] = x509.load_pem_x509_certificate(f.read())


def keygen(kind):
    if kind.startswith("rsa-"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[4:]))
    if kind == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    raise SystemExit(f"unsupported key type {kind}")


def one_token(args):
    kinds, iterations, keygen_only = args
    started = time.perf_counter()
    now = datetime.datetime.now(datetime.timezone.utc)
    for kind in kinds:
        key = keygen(kind)
        if keygen_only:
            continue
        subject = x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, "Bench User"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example AB"),
        ])
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(CA["cert"].subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName([x509.RFC822Name("bench.user@example.com")]), False)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
            .sign(CA["key"], hashes.SHA256())
        )
        encryption = (
            serialization.PrivateFormat.PKCS12.encryption_builder()
            .kdf_rounds(iterations)
            .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
            .hmac_hash(hashes.SHA256())
            .build(b"bench-pin-000000")
        )
        p12 = pkcs12.serialize_key_and_certificates(b"Bench User", key, cert, [CA["cert"], CA["root"]], encryption)
        assert len(p12) > 0
    return time.perf_counter() - started


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True, help="ast-gateway root (for the issuing CA)")
    ap.add_argument("--keys", default="rsa-2048,rsa-2048", help="key types of one token")
    ap.add_argument("--iterations", type=int, default=10000)
    ap.add_argument("--tokens", type=int, default=100)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--keygen-only", action="store_true")
    a = ap.parse_args()
    kinds = a.keys.split(",")
    with mp.Pool(a.procs, initializer=init, initargs=(a.root,)) as pool:
        # Warm up every worker (imports, CA load) outside the timed part.
        pool.map(time.sleep, [0.05] * a.procs)
        started = time.perf_counter()
        lat = list(pool.imap_unordered(one_token, [(kinds, a.iterations, a.keygen_only)] * a.tokens, chunksize=1))
        seconds = time.perf_counter() - started
    lat.sort()
    pick = lambda q: lat[max(0, min(len(lat) - 1, int(-(-q * len(lat) // 1)) - 1))] * 1000
    rss_kb = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    print(json.dumps({
        "tokens": a.tokens, "seconds": seconds, "tokens_per_s": a.tokens / seconds,
        "keys_per_s": a.tokens * len(kinds) / seconds, "p50_ms": pick(0.50), "p99_ms": pick(0.99),
        "peak_rss_mb": rss_kb / 1024, "processes": a.procs + 1,
    }))


if __name__ == "__main__":
    main()
