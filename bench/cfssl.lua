-- wrk script for bench/run.sh: cfssl serve /api/v1/cfssl/newcert (key + CSR + signature;
-- cfssl returns a PEM key, no PKCS#12). Prints one JSON line of results at the end.
wrk.method = "POST"
wrk.body = os.getenv("CFSSL_BODY") or '{"request":{"CN":"Bench User","names":[{"C":"SE","O":"Example AB"}],"key":{"algo":"rsa","size":2048}}}'
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  local s = summary.duration / 1e6
  local bad = summary.errors.status + summary.errors.connect + summary.errors.read
            + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    '{"requests":%d,"seconds":%.3f,"tokens_per_s":%.3f,"p50_ms":%.2f,"p99_ms":%.2f,"errors":%d}\n',
    summary.requests, s, (summary.requests - bad) / s, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, bad))
end
