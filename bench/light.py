#!/usr/bin/env python3
"""Light load for bench/run.sh: N sequential POSTs spaced INTERVAL seconds apart (so a warm key
pool stays warm), each timed end to end. Prints one JSON line: p50_ms, p99_ms, ok, requests."""
import http.client
import json
import sys
import time

host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
n, interval = int(sys.argv[4]), float(sys.argv[5])
headers = {
    "Content-Type": "application/x-www-form-urlencoded",
    "commonname": "Bench User", "country": "SE", "organization": "Example AB",
    "email": "bench.user@example.com",
}
lat, ok = [], 0
for _ in range(n):
    conn = http.client.HTTPConnection(host, port, timeout=60)
    started = time.perf_counter()
    conn.request("POST", path, body="password=bench-pin-000000", headers=headers)
    resp = conn.getresponse()
    body = resp.read()
    lat.append((time.perf_counter() - started) * 1000)
    ok += resp.status == 200 and len(body) > 0
    conn.close()
    time.sleep(interval)
lat.sort()
pick = lambda q: lat[max(0, min(len(lat) - 1, -(-int(q * 100) * len(lat) // 100) - 1))]
print(json.dumps({"requests": n, "ok": ok, "p50_ms": round(pick(0.50), 2), "p99_ms": round(pick(0.99), 2)}))
