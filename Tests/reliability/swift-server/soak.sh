#!/usr/bin/env bash
# Soak test: a SwiftNIO HTTP server under sustained load, with glibc's malloc
# and with SwiftMalloc preloaded.
#
#   Tests/reliability/swift-server/soak.sh LIBPATH [SECONDS]     (default 60)
#
# Builds Sources/SoakServer (release, reused afterwards), then for each
# allocator: starts the server on 127.0.0.1, drives it for SECONDS with wrk
# (installed with apt-get when missing; else the python3 client loadgen.py),
# samples VmRSS every 2 s, and checks
#   - the server never crashed (alive after the load, exits on SIGTERM only),
#   - every response was 200 (no non-200, no socket errors),
#   - GET /item/0..999 hashes to the same value under both allocators,
#   - under SwiftMalloc, RSS is stable after warm-up: the mean of the last third
#     of the samples is within 20% of the mean of the middle third (judged for
#     runs of 60 s or more).
# Prints requests/s for both. Exits 0 when every check passes.
# SOAK_LOADGEN=python3 forces the python3 client even when wrk is there.
set -u

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LIB="${1:-}"
SECS="${2:-60}"
if [ -z "$LIB" ] || [ ! -f "$LIB" ]; then
    echo "usage: $0 LIBPATH [SECONDS]   (LIBPATH: libswiftmalloc.so)" >&2
    exit 2
fi
LIB="$(readlink -f "$LIB")"   # absolute, symlinks resolved (as in /proc/PID/maps)
case "$SECS" in ''|*[!0-9]*) echo "SECONDS must be a whole number" >&2; exit 2 ;; esac
[ "$SECS" -ge 4 ] || { echo "SECONDS must be at least 4" >&2; exit 2; }

WORK="$(mktemp -d /tmp/swift-server-soak.XXXXXX)"
SERVER_PID=""
SAMPLER_PID=""
cleanup() {
    [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null
    [ -n "$SERVER_PID" ] && kill -KILL "$SERVER_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

FAILS=0
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
pass() { echo "ok:   $*"; }

# ---- build ----------------------------------------------------------------
echo "== building SoakServer (release)"
if ! timeout 1800 swift build -c release --package-path "$HERE" --scratch-path "$HERE/.build" \
        > "$WORK/build.log" 2>&1; then
    tail -30 "$WORK/build.log"
    echo "FAIL: build"
    exit 1
fi
BIN="$(swift build -c release --package-path "$HERE" --scratch-path "$HERE/.build" --show-bin-path 2>/dev/null)/SoakServer"
[ -x "$BIN" ] || { echo "FAIL: no binary at $BIN"; exit 1; }

# ---- load generator -----------------------------------------------------------
if ! command -v wrk > /dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null 2>&1; then
    timeout 300 apt-get install -y -qq wrk > "$WORK/apt.log" 2>&1 \
        || { timeout 300 apt-get update -qq > /dev/null 2>&1 && timeout 300 apt-get install -y -qq wrk >> "$WORK/apt.log" 2>&1; }
fi
if [ "${SOAK_LOADGEN:-}" = python3 ]; then LOADGEN=python3            # force the fallback client
elif command -v wrk > /dev/null 2>&1; then LOADGEN=wrk; else LOADGEN=python3; fi
CORES="$(nproc 2>/dev/null || echo 2)"
WRK_THREADS=$(( CORES < 4 ? 2 : CORES / 2 ))
WRK_CONNS=32
echo "== load generator: $LOADGEN, $SECS s per allocator"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_ready() {  # PORT PID
    local i
    for i in $(seq 1 200); do
        kill -0 "$2" 2>/dev/null || return 1
        if python3 - "$1" <<'PY' 2>/dev/null
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=1)
c.request("GET", "/health"); sys.exit(0 if c.getresponse().status == 200 else 1)
PY
        then return 0; fi
        sleep 0.1
    done
    return 1
}

# run_one NAME PRELOAD  -> sets RPS_<NAME>, REQ_<NAME>, HASH_<NAME>; writes $WORK/NAME.rss
run_one() {
    local name="$1" preload="$2" port rc
    port="$(free_port)"
    echo
    echo "== $name: server on 127.0.0.1:$port"
    if [ -n "$preload" ]; then
        LD_PRELOAD="$preload" "$BIN" "$port" > "$WORK/$name.server.log" 2>&1 &
    else
        "$BIN" "$port" > "$WORK/$name.server.log" 2>&1 &
    fi
    SERVER_PID=$!
    if ! wait_ready "$port" "$SERVER_PID"; then
        fail "$name: server did not start"; cat "$WORK/$name.server.log"
        kill -KILL "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; SERVER_PID=""
        return
    fi

    if [ -n "$preload" ]; then
        if grep -qF "$preload" "/proc/$SERVER_PID/maps"; then pass "$name: $(basename "$preload") is mapped in the server"
        else fail "$name: $preload is not mapped in the server"; fi
    fi

    # RSS sampler: one sample every 2 s, bounded in count.
    : > "$WORK/$name.rss"
    (
        n=0
        while [ "$n" -lt $(( SECS / 2 + 10 )) ] && kill -0 "$SERVER_PID" 2>/dev/null; do
            awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status" >> "$WORK/$name.rss" 2>/dev/null
            n=$((n + 1))
            sleep 2
        done
    ) &
    SAMPLER_PID=$!

    if [ "$LOADGEN" = wrk ]; then
        timeout $(( SECS + 60 )) wrk -t "$WRK_THREADS" -c "$WRK_CONNS" -d "${SECS}s" --timeout 10s \
            -s "$HERE/load.lua" "http://127.0.0.1:$port/" > "$WORK/$name.load" 2>&1
        rc=$?
        local ok non200 sockerr
        ok="$(sed -n 's/^SOAK ok=\([0-9]*\).*/\1/p' "$WORK/$name.load")"
        non200="$(sed -n 's/^SOAK .*non200=\([0-9]*\).*/\1/p' "$WORK/$name.load")"
        sockerr="$(grep -c 'Socket errors' "$WORK/$name.load")"
        eval "REQ_$name=\"$(awk '/requests in/ {print $1}' "$WORK/$name.load")\""
        eval "RPS_$name=\"$(awk '/^Requests\/sec:/ {print $2}' "$WORK/$name.load")\""
        if [ "$rc" -ne 0 ] || [ -z "$ok" ]; then
            fail "$name: wrk failed (rc $rc)"; cat "$WORK/$name.load"
        elif [ "$non200" != 0 ] || [ "$sockerr" != 0 ]; then
            fail "$name: $non200 non-200 responses, socket errors: $(grep 'Socket errors' "$WORK/$name.load")"
        else
            pass "$name: all $ok responses 200"
        fi
    else
        timeout $(( SECS + 90 )) python3 "$HERE/loadgen.py" load "$port" "$SECS" 8 > "$WORK/$name.load" 2>&1
        rc=$?
        eval "REQ_$name=\"$(awk '/^REQUESTS/ {print $2}' "$WORK/$name.load")\""
        eval "RPS_$name=\"$(awk '/^REQUESTS/ {print $10}' "$WORK/$name.load")\""
        if [ "$rc" -eq 0 ]; then pass "$name: $(cat "$WORK/$name.load")"
        else fail "$name: load: $(cat "$WORK/$name.load")"; fi
    fi

    kill "$SAMPLER_PID" 2>/dev/null; wait "$SAMPLER_PID" 2>/dev/null; SAMPLER_PID=""

    # Data check after the load: deterministic bodies, /echo round trips.
    if timeout 120 python3 "$HERE/loadgen.py" datacheck "$port" > "$WORK/$name.data" 2>&1; then
        eval "HASH_$name=\"$(awk '/^HASH/ {print $2}' "$WORK/$name.data")\""
        pass "$name: data check $(head -1 "$WORK/$name.data")"
    else
        fail "$name: data check: $(cat "$WORK/$name.data")"
    fi

    # Crash check: still alive, exits through SIGTERM (143), no allocator error.
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID"
        local i
        for i in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID"; rc=$?
        if [ "$rc" -eq 143 ]; then pass "$name: server alive after load, stopped by SIGTERM"
        else fail "$name: server exit status $rc after SIGTERM"; fi
    else
        wait "$SERVER_PID"; rc=$?
        fail "$name: server died during the run (exit status $rc)"
        tail -20 "$WORK/$name.server.log"
    fi
    SERVER_PID=""
    if grep -q 'swiftmalloc:' "$WORK/$name.server.log"; then
        fail "$name: allocator error: $(grep -m1 'swiftmalloc:' "$WORK/$name.server.log")"
    fi

    python3 - "$WORK/$name.rss" "$name" <<'PY'
import sys
v = [int(x) for x in open(sys.argv[1]).read().split()]
if v:
    print("      %s RSS KiB: %d samples, first %d, min %d, max %d, last %d" % (
        sys.argv[2], len(v), v[0], min(v), max(v), v[-1]))
    print("      %s RSS samples: %s" % (sys.argv[2], " ".join(map(str, v))))
PY
}

run_one glibc ""
run_one swiftmalloc "$LIB"

echo
echo "== summary"
if [ -n "${HASH_glibc:-}" ] && [ "${HASH_glibc:-}" = "${HASH_swiftmalloc:-}" ]; then
    pass "data hash identical under both allocators: $HASH_glibc"
else
    fail "data hash differs: glibc ${HASH_glibc:-none}, swiftmalloc ${HASH_swiftmalloc:-none}"
fi

# RSS stability under SwiftMalloc: mean of the last third vs the middle third.
RSS_VERDICT="$(python3 - "$WORK/swiftmalloc.rss" "$SECS" <<'PY'
import sys
v = [int(x) for x in open(sys.argv[1]).read().split()]
secs = int(sys.argv[2])
k = len(v) // 3
if k == 0:
    print("skip too few RSS samples (%d)" % len(v)); sys.exit()
mid = sum(v[k:2 * k]) / k
last = sum(v[len(v) - k:]) / k
change = (last - mid) / mid * 100 if mid else 0.0
msg = "middle third mean %.0f KiB, last third mean %.0f KiB (%+.1f%%)" % (mid, last, change)
if secs < 60:
    print("skip " + msg + "; not judged under 60 s")
elif abs(change) <= 20.0:
    print("pass " + msg)
else:
    print("fail " + msg)
PY
)"
case "$RSS_VERDICT" in
    pass*) pass "swiftmalloc RSS stable: ${RSS_VERDICT#pass }" ;;
    fail*) fail "swiftmalloc RSS not stable: ${RSS_VERDICT#fail }" ;;
    *)     echo "skip: swiftmalloc RSS: ${RSS_VERDICT#skip }" ;;
esac

echo "requests: glibc ${REQ_glibc:-?}, swiftmalloc ${REQ_swiftmalloc:-?} ($LOADGEN, $SECS s each)"
echo "requests/s: glibc ${RPS_glibc:-?}, swiftmalloc ${RPS_swiftmalloc:-?}"
if [ "$FAILS" -eq 0 ]; then
    echo "swift-server soak: all checks passed"
    exit 0
fi
echo "swift-server soak: $FAILS check(s) failed"
exit 1
