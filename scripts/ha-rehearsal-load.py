#!/usr/bin/env python3
"""Load driver and checker of scripts/ha-rehearsal.sh (Python standard library plus the
`cryptography` package for reading PKCS#12 files).

  drive  --seconds S --form URL --api URL[,URL] --cert PEM --key PEM --ca PEM --out FILE
         [--form-workers N] [--api-workers N] [--api-only]
      Issues soft tokens for S seconds: form workers POST /pgwy/ast through the front (nginx;
      no retry: a refused user tries again), API workers POST /pgwy/api/softtokens straight to
      the gateway nodes with an Idempotency-Key, retrying the same key on the other node after
      a 5xx or a lost connection (at most 60 s, waiting at most 1 s between tries, whatever
      Retry-After says, so the measured window is the database's, not the client's patience).
      One JSON line per request (and per API attempt) to FILE.
  check  --results FILE[,FILE] --psql 'psql …' [--since T] [--kill T --promoted T]
      Every token answered 200 has its certificates and its `issued` audit row in the database
      psql reaches; no serial twice; the unavailability window (first to last refused request
      after the kill); throughput before the kill and when it was back. Prints one JSON object.
"""

import argparse
import json
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

PIN = "Str0ng-Pass!"


def canonical_serial(n):
    text = "%x" % n
    return text if len(text) % 2 == 0 else "0" + text


def p12_serials(body):
    _, cert, extra = pkcs12.load_key_and_certificates(body, PIN.encode())
    # The leaves (the token's own certificates) are not CAs; the chain is.
    serials = []
    for c in ([cert] if cert else []) + list(extra or []):
        try:
            if c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
                continue
        except x509.ExtensionNotFound:
            pass
        serials.append(canonical_serial(c.serial_number))
    return sorted(set(serials))


class Recorder:
    def __init__(self, path):
        self.file = open(path, "a", buffering=1)
        self.lock = threading.Lock()

    def write(self, record):
        with self.lock:
            self.file.write(json.dumps(record) + "\n")


def form_worker(args, recorder, stop, worker):
    n = 0
    while time.time() < stop:
        n += 1
        name = "Form %d-%d-%s" % (worker, n, uuid.uuid4().hex[:6])
        data = urllib.parse.urlencode({"password": PIN}).encode()
        request = urllib.request.Request(args.form, data=data, method="POST")
        request.add_header("commonname", name)
        request.add_header("givenname", "Form")
        request.add_header("surname", "User")
        request.add_header("email", "form%d.%d@example.com" % (worker, n))
        request.add_header("country", "SE")
        started = time.time()
        record = {"kind": "form", "start": started}
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                body = response.read()
                record.update(status=response.status, serials=p12_serials(body))
        except urllib.error.HTTPError as e:
            record.update(status=e.code, code=e.headers.get("x-ast-error", ""),
                          retry_after=e.headers.get("retry-after"))
        except Exception as e:  # connection refused, reset, timeout
            record.update(status=0, error=type(e).__name__)
        record["end"] = time.time()
        recorder.write(record)
        if record["status"] != 200:
            time.sleep(0.2)


def api_context(args):
    context = ssl.create_default_context(cafile=args.ca)
    context.load_cert_chain(args.cert, args.key)
    context.check_hostname = False
    return context


def api_attempt(url, context, key, body):
    request = urllib.request.Request(url + "/pgwy/api/softtokens", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("Accept", "application/json")
    request.add_header("Idempotency-Key", key)
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as response:
            answer = json.loads(response.read())
            return response.status, "", [c["serial"] for c in answer["certificates"]], None
    except urllib.error.HTTPError as e:
        text = e.read()
        serials = []
        try:
            serials = json.loads(text)["error"].get("serials", [])
        except Exception:
            pass
        return e.code, e.headers.get("x-ast-error", ""), serials, e.headers.get("retry-after")
    except Exception as e:
        return 0, type(e).__name__, [], None


def api_worker(args, recorder, stop, worker, context):
    urls = args.api.split(",")
    n = 0
    while time.time() < stop:
        n += 1
        key = "rehearsal-%d-%d-%s" % (worker, n, uuid.uuid4().hex[:8])
        body = json.dumps({"password": PIN, "fields": {
            "commonname": "Api %d-%d" % (worker, n), "givenname": "Api", "surname": "User",
            "email": "api%d.%d@example.com" % (worker, n), "country": "SE"}}).encode()
        started = time.time()
        attempts = 0
        node = (worker + n) % len(urls)
        while True:
            attempts += 1
            t = time.time()
            status, code, serials, retry_after = api_attempt(urls[node], context, key, body)
            recorder.write({"kind": "api-attempt", "start": t, "end": time.time(),
                            "status": status, "code": code, "node": node})
            final = status in (200, 409) or (status and status < 500) or time.time() - started > 60
            if final:
                break
            node = (node + 1) % len(urls)
            wait = 1.0
            if retry_after and retry_after.isdigit():
                wait = min(wait, float(retry_after))
            time.sleep(wait)
        recorder.write({"kind": "api", "start": started, "end": time.time(), "status": status,
                        "code": code, "serials": sorted(serials), "attempts": attempts,
                        "key": key})


def drive(args):
    recorder = Recorder(args.out)
    stop = time.time() + args.seconds
    threads = []
    if not args.api_only:
        for w in range(args.form_workers):
            threads.append(threading.Thread(target=form_worker, args=(args, recorder, stop, w)))
    context = api_context(args)
    for w in range(args.api_workers):
        threads.append(threading.Thread(target=api_worker,
                                        args=(args, recorder, stop, w, context)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def psql_lines(psql, sql):
    out = subprocess.run(psql + " -At -c " + json.dumps(sql), shell=True, check=True,
                         capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line]


def rate(records, start, end):
    n = sum(1 for r in records if r["status"] == 200 and start <= r["end"] < end)
    return n / max(end - start, 1e-9)


def check(args):
    records = []
    for path in args.results.split(","):
        with open(path) as f:
            records.extend(json.loads(line) for line in f if line.strip())
    answers = [r for r in records if r["kind"] in ("form", "api") and r["start"] >= args.since]
    delivered = [s for r in answers if r["status"] == 200 for s in r["serials"]]
    recorded = set(psql_lines(args.psql, "SELECT serial FROM certificates"))
    audited = set()
    for line in psql_lines(args.psql, "SELECT detail FROM audit WHERE event = 'issued'"):
        audited.update(json.loads(line).get("serials", []))
    duplicates = psql_lines(
        args.psql, "SELECT serial FROM certificates GROUP BY serial HAVING count(*) > 1")
    result = {
        "requests": len(answers),
        "delivered_tokens": sum(1 for r in answers if r["status"] == 200),
        "delivered_certificates": len(delivered),
        "delivered_not_recorded": len([s for s in delivered if s not in recorded]),
        "delivered_not_audited": len([s for s in delivered if s not in audited]),
        "serials_delivered_twice": len(delivered) - len(set(delivered)),
        "duplicate_serials_in_database": len(duplicates),
        "refused": {},
        "api_5xx_final": sum(1 for r in answers if r["kind"] == "api" and r["status"] >= 500),
        "api_lost_final": sum(1 for r in answers if r["kind"] == "api" and r["status"] == 0),
        "api_already_issued": sum(1 for r in answers if r["kind"] == "api" and r["status"] == 409),
        "api_retried": sum(1 for r in answers if r["kind"] == "api" and r.get("attempts", 1) > 1),
    }
    for r in records:
        if r["kind"] in ("form", "api-attempt") and r["status"] != 200 and r["start"] >= args.since:
            label = "%s %s %s" % (r["kind"], r["status"], r.get("code") or r.get("error", ""))
            result["refused"][label] = result["refused"].get(label, 0) + 1
    if args.kill:
        failed = [r for r in records if r["kind"] in ("form", "api-attempt")
                  and r["status"] != 200 and r["end"] >= args.kill]
        if failed:
            first = min(r["start"] for r in failed)
            last = max(r["end"] for r in failed)
            result["window_s"] = round(last - max(first, args.kill) if first < args.kill
                                       else last - first, 2)
            result["first_refusal_after_kill_s"] = round(max(first - args.kill, 0), 2)
            result["last_refusal_after_kill_s"] = round(last - args.kill, 2)
        else:
            result["window_s"] = 0
        ok = [r for r in answers if r["status"] == 200]
        result["rate_before"] = round(rate(ok, args.kill - 10, args.kill), 2)
        if args.promoted:
            result["promoted_after_kill_s"] = round(args.promoted - args.kill, 2)
            back = None
            t = args.promoted
            last_end = max((r["end"] for r in ok), default=t)
            while t + 5 <= last_end:
                if rate(ok, t, t + 5) >= 0.8 * result["rate_before"]:
                    back = round(t + 5 - args.promoted, 1)
                    break
                t += 1
            result["throughput_back_after_promotion_s"] = back
            result["rate_after"] = round(rate(ok, args.promoted + 5, last_end), 2)
    print(json.dumps(result, sort_keys=True))
    bad = (result["delivered_not_recorded"] or result["delivered_not_audited"]
           or result["serials_delivered_twice"] or result["duplicate_serials_in_database"])
    return 1 if bad else 0


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("drive")
    d.add_argument("--seconds", type=float, required=True)
    d.add_argument("--form", required=True)
    d.add_argument("--api", required=True)
    d.add_argument("--cert", required=True)
    d.add_argument("--key", required=True)
    d.add_argument("--ca", required=True)
    d.add_argument("--out", required=True)
    d.add_argument("--form-workers", type=int, default=2)
    d.add_argument("--api-workers", type=int, default=2)
    d.add_argument("--api-only", action="store_true")
    c = sub.add_parser("check")
    c.add_argument("--results", required=True)
    c.add_argument("--psql", required=True)
    c.add_argument("--since", type=float, default=0)
    c.add_argument("--kill", type=float)
    c.add_argument("--promoted", type=float)
    args = parser.parse_args()
    if args.command == "drive":
        drive(args)
        return 0
    return check(args)


if __name__ == "__main__":
    sys.exit(main())
