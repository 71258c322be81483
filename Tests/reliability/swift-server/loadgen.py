#!/usr/bin/env python3
"""Client side of soak.sh, talking to 127.0.0.1 only.

  loadgen.py datacheck PORT            GET /item/0..999, POST /echo checks;
                                       prints "HASH <sha256> BYTES <n>"
  loadgen.py load PORT SECONDS THREADS keep-alive load (used when wrk is
                                       missing); prints "REQUESTS n OK n NON200 n
                                       ERRORS n RPS x"

Every loop is bounded both in count and in time.
"""
import hashlib
import http.client
import sys
import threading
import time

HOST = "127.0.0.1"
MAX_REQUESTS_PER_THREAD = 5_000_000


def datacheck(port):
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    h = hashlib.sha256()
    total = 0
    bad = 0
    for n in range(1000):
        conn.request("GET", "/item/%d" % n)
        r = conn.getresponse()
        body = r.read()
        if r.status != 200:
            bad += 1
        h.update(b"%d:" % n)
        h.update(body)
        total += len(body)
    for size in (0, 1, 100, 4096, 65536):
        payload = bytes((i * 31 + size) & 0xFF for i in range(size))
        conn.request("POST", "/echo", body=payload)
        r = conn.getresponse()
        body = r.read()
        if r.status != 200 or body != payload:
            bad += 1
    conn.close()
    print("HASH %s BYTES %d" % (h.hexdigest(), total))
    if bad:
        print("datacheck: %d bad responses" % bad)
        return 1
    return 0


def load(port, seconds, nthreads):
    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    totals = {"requests": 0, "ok": 0, "non200": 0, "errors": 0}

    def worker(tid):
        counts = {"requests": 0, "ok": 0, "non200": 0, "errors": 0}
        conn = None
        i = tid
        for _ in range(MAX_REQUESTS_PER_THREAD):
            if time.monotonic() >= deadline:
                break
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(HOST, port, timeout=10)
                i += 1
                if i % 10 == 0:
                    conn.request("POST", "/echo", body=b"x" * (16 * (i % 512)))
                else:
                    conn.request("GET", "/item/%d" % ((i * 7919) % 5000))
                r = conn.getresponse()
                r.read()
                counts["requests"] += 1
                if r.status == 200:
                    counts["ok"] += 1
                else:
                    counts["non200"] += 1
            except (OSError, http.client.HTTPException):
                counts["errors"] += 1
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.05)
        if conn is not None:
            conn.close()
        with lock:
            for k in totals:
                totals[k] += counts[k]

    start = time.monotonic()
    threads = [threading.Thread(target=worker, args=(t,)) for t in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 60)
    elapsed = time.monotonic() - start
    print("REQUESTS %d OK %d NON200 %d ERRORS %d RPS %.1f" % (
        totals["requests"], totals["ok"], totals["non200"], totals["errors"],
        totals["requests"] / elapsed if elapsed > 0 else 0.0))
    return 0 if totals["non200"] == 0 and totals["errors"] == 0 else 1


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "datacheck":
        return datacheck(int(sys.argv[2]))
    if len(sys.argv) >= 5 and sys.argv[1] == "load":
        return load(int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
