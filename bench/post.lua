-- wrk script for bench/run.sh: POST the PIN form with the identity headers a trusted
-- authenticating proxy would add, and print one JSON line of results at the end.
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
    '{"requests":%d,"seconds":%.3f,"tokens_per_s":%.3f,"p50_ms":%.2f,"p99_ms":%.2f,"errors":%d}\n',
    summary.requests, s, (summary.requests - bad) / s, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, bad))
end
