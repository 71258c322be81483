#!/usr/bin/env bash
# Soak tests: real programs under load for a while, with libswiftmalloc.so preloaded.
#
#   Tests/reliability/soak.sh [options] [SECONDS]
#
#   SECONDS           how long the Redis load runs (default 600)
#   --lib PATH        the library (default .build/release/libswiftmalloc.so; it is
#                     copied to a temporary directory first)
#   --redis-only      only the Redis soak
#   --python-only     only the Python test-module comparison
#   --compare         also run the same Redis load with glibc's malloc and print
#                     both RSS series' summaries
#   --keep            keep the work directory (RSS samples, logs)
#
# Redis: redis-server (Debian's, apt-get install redis-server when missing) is
# started on 127.0.0.1 at a free port with --save '' (no persistence) and
# LD_PRELOAD=libswiftmalloc.so, and driven with redis-benchmark in rounds
# (SET, GET, INCR, LPUSH, RPUSH, LPOP, RPOP, SADD, HSET, SPOP, ZADD, MSET; values
# of 32 B to 64 KiB; with and without pipelining), every round bounded by -n and
# by `timeout`, until SECONDS have passed. The server's RSS is sampled every 2 s.
# Checked:
#   - the server never dies and answers PING after the load; it shuts down cleanly
#     and printed no "swiftmalloc:" error;
#   - RSS is stable after warm-up (for runs of 60 s or more): the mean of the last
#     third of the samples is within 20% of the mean of the middle third;
#   - data: redis_datacheck.py writes a deterministic data set through every
#     common type and reads it back; its digest must equal the digest from a
#     second server using glibc's malloc (Debian's redis-server links jemalloc;
#     preloading libc.so.6 makes it use glibc's malloc).
#
# Python: a set of 40 regression-test modules from Debian's libpython3.11-testsuite
# (each under 5 s with glibc; different from the 13 that
# Tests/programs/run-program-tests.sh runs) is run with /usr/bin/python3 and
# PYTHONMALLOC=malloc, once with glibc and once preloaded; each module's
# result (SUCCESS / FAILURE / ...) must be the same.
#
# Prints PASS/FAIL lines (Tests/lib.sh) and "N passed, N failed" last.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=../lib.sh
source "$root/Tests/lib.sh"

lib_arg="$root/.build/release/libswiftmalloc.so"
duration=600
do_redis=1 do_python=1 compare=0 keep=0
while [ $# -gt 0 ]; do
    case $1 in
        --lib) lib_arg=$2; shift 2 ;;
        --redis-only) do_python=0; shift ;;
        --python-only) do_redis=0; shift ;;
        --compare) compare=1; shift ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,/^set -u/p' "$0" | sed 's/^# \{0,1\}//; /^set -u/d'; exit 0 ;;
        [0-9]*) duration=$1; shift ;;
        *) echo "soak.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ ! -f "$lib_arg" ]; then
    echo "soak.sh: no library at $lib_arg" >&2
    exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/swiftmalloc-soak.XXXXXX")
cp "$lib_arg" "$work/libswiftmalloc.so"
lib="$work/libswiftmalloc.so"
glibc_preload=$(/sbin/ldconfig -p 2>/dev/null | awk '/libc\.so\.6 .*x86-64/ {print $NF; exit}')
[ -n "$glibc_preload" ] || glibc_preload=/lib/x86_64-linux-gnu/libc.so.6
servers=()
cleanup() {
    local pid
    for pid in "${servers[@]}"; do kill -9 "$pid" 2>/dev/null; done
    if [ "$keep" = 1 ]; then echo "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

apt_install() {
    [ "$(id -u)" = 0 ] || return 1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 && return 0
    apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1
}

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server NAME PRELOAD: starts redis-server; sets $server_pid and $server_port.
start_server() {
    local name=$1 preload=$2
    server_port=$(free_port)
    mkdir -p "$work/$name"
    (cd "$work/$name" && exec env ${preload:+LD_PRELOAD="$preload"} redis-server --port "$server_port" \
        --bind 127.0.0.1 --save '' --appendonly no --daemonize no --dir "$work/$name" \
        --logfile "$work/$name/redis.log" >"$work/$name/stdout" 2>"$work/$name/stderr") &
    server_pid=$!
    servers+=("$server_pid")
    for _ in $(seq 1 100); do
        if redis-cli -h 127.0.0.1 -p "$server_port" ping 2>/dev/null | grep -q PONG; then return 0; fi
        kill -0 "$server_pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# stop_server: SHUTDOWN NOSAVE and wait (at most 20 s); sets $server_status.
stop_server() {
    server_status=
    redis-cli -h 127.0.0.1 -p "$server_port" shutdown nosave >/dev/null 2>&1
    for _ in $(seq 1 200); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$server_pid" 2>/dev/null; then
        kill -9 "$server_pid" 2>/dev/null
        server_status=killed
    fi
    wait "$server_pid" 2>/dev/null
    local rc=$?
    [ "${server_status:-}" = killed ] || server_status=$rc
}

used_memory() {
    redis-cli -h 127.0.0.1 -p "$server_port" info memory 2>/dev/null | tr -d '\r' |
        awk -F: '$1 == "used_memory" { printf "%.1f", $2 / 1048576 }'
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }

# load NAME SECONDS: the benchmark rounds against $server_port until SECONDS pass;
# RSS samples to $work/NAME/rss (seconds-since-start kib). Sets $requests.
load() {
    local name=$1 secs=$2 start now left round=0 d r n p out
    local sizes=(32 512 4096 65536)
    : >"$work/$name/rss"
    start=$(date +%s)
    (   # sampler: bounded by the deadline and by the server's life
        while kill -0 "$server_pid" 2>/dev/null; do
            now=$(date +%s)
            [ $((now - start)) -le $((secs + 30)) ] || break
            echo "$((now - start)) $(rss_kib "$server_pid")" >>"$work/$name/rss"
            sleep 2
        done
    ) &
    local sampler=$!
    requests=0
    while :; do
        now=$(date +%s)
        left=$((start + secs - now))
        [ "$left" -gt 0 ] || break
        kill -0 "$server_pid" 2>/dev/null || break
        d=${sizes[$((round % 4))]}
        # 64 KiB values go to a small key range (bounded memory); the rest share 10000 keys.
        if [ "$d" -ge 65536 ]; then r=100; n=2000; else r=10000; n=20000; fi
        if [ $((round % 2)) = 1 ]; then p=16; else p=1; fi
        out=$(timeout $((left < 60 ? left + 5 : 65)) redis-benchmark -h 127.0.0.1 -p "$server_port" -q \
            -n "$n" -r "$r" -d "$d" -P "$p" -c 20 \
            -t set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,mset 2>&1 | tr '\r' '\n')
        requests=$((requests + n * $(echo "$out" | grep -c 'requests per second')))
        round=$((round + 1))
    done
    kill "$sampler" 2>/dev/null
    wait "$sampler" 2>/dev/null
    rounds=$round
}

# rss_summary FILE: "samples N, first F MiB, max M MiB, middle third X MiB, last third Y MiB, ratio R"
rss_summary() {
    awk '{ t[NR] = $1; v[NR] = $2 } END {
        n = NR; if (n == 0) { print "no samples"; exit }
        a = int(n / 3); b = int(2 * n / 3); mx = 0
        for (i = 1; i <= n; i++) if (v[i] > mx) mx = v[i]
        m = 0; c = 0; for (i = a + 1; i <= b; i++) { m += v[i]; c++ }; if (c) m /= c
        l = 0; c = 0; for (i = b + 1; i <= n; i++) { l += v[i]; c++ }; if (c) l /= c
        printf "samples %d, first %.1f MiB, max %.1f MiB, middle third %.1f MiB, last third %.1f MiB, ratio %.3f\n",
            n, v[1] / 1024, mx / 1024, m / 1024, l / 1024, (m > 0 ? l / m : 0) }' "$1"
}

rss_ratio() { rss_summary "$1" | sed -n 's/.*ratio \([0-9.]*\).*/\1/p'; }

redis_soak() {
    if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
        apt_install redis-server redis-tools || true
    fi
    if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
        fail "redis soak: redis-server/redis-benchmark not available (apt-get install redis-server)"
        return
    fi
    # The reference digest, from a server using glibc's malloc.
    local ref="" got="" rc
    if start_server glibc "$glibc_preload"; then
        ref=$(timeout 120 /usr/bin/python3 "$here/redis_datacheck.py" "$server_port" 2>"$work/glibc/datacheck.err")
        stop_server
    fi
    if [ -z "$ref" ]; then
        fail "redis soak: the glibc reference run did not complete"
        tail -5 "$work/glibc/datacheck.err" 2>/dev/null | sed 's/^/    /'
        return
    fi

    if ! start_server swiftmalloc "$lib"; then
        fail "redis soak: redis-server did not start under LD_PRELOAD=libswiftmalloc.so"
        tail -20 "$work/swiftmalloc/stderr" "$work/swiftmalloc/redis.log" 2>/dev/null | sed 's/^/    /'
        return
    fi
    if ! grep -q "$(basename "$lib")" "/proc/$server_pid/maps" 2>/dev/null; then
        fail "redis soak: libswiftmalloc.so is not mapped in the server"
    fi
    local t0
    t0=$(date +%s)
    load swiftmalloc "$duration"
    local took=$(($(date +%s) - t0))
    local alive=1
    kill -0 "$server_pid" 2>/dev/null && redis-cli -h 127.0.0.1 -p "$server_port" ping 2>/dev/null | grep -q PONG || alive=0
    local summary idle
    summary=$(rss_summary "$work/swiftmalloc/rss")
    sleep 3
    idle=$(rss_kib "$server_pid")
    echo "    redis under SwiftMalloc: $rounds rounds, $requests requests in ${took}s; RSS $summary; 3 s after the load $((${idle:-0} / 1024)) MiB, used_memory $(used_memory) MiB"
    if [ "$alive" = 1 ]; then
        got=$(timeout 120 /usr/bin/python3 "$here/redis_datacheck.py" "$server_port" 2>"$work/swiftmalloc/datacheck.err")
    fi
    local rss_after
    rss_after=$(rss_kib "$server_pid")
    stop_server
    if [ "$alive" = 1 ] && [ "$server_status" = 0 ] && ! grep -q 'swiftmalloc:' "$work/swiftmalloc/stderr"; then
        pass "redis soak: ${took}s of load, $requests requests, no crash, clean shutdown"
    else
        fail "redis soak: server alive after load: $alive, shutdown status: $server_status"
        tail -20 "$work/swiftmalloc/stderr" "$work/swiftmalloc/redis.log" 2>/dev/null | sed 's/^/    /'
    fi
    if [ -n "$got" ] && [ "$got" = "$ref" ]; then
        pass "redis data check: same data as with glibc ($got)"
    else
        fail "redis data check: SwiftMalloc '$got' vs glibc '$ref'"
        tail -5 "$work/swiftmalloc/datacheck.err" 2>/dev/null | sed 's/^/    /'
    fi
    echo "    RSS after the data check: $((${rss_after:-0} / 1024)) MiB"
    if [ "$duration" -ge 60 ]; then
        local ratio
        ratio=$(rss_ratio "$work/swiftmalloc/rss")
        if awk -v r="${ratio:-9}" 'BEGIN { exit !(r <= 1.20) }'; then
            pass "redis RSS stable after warm-up (last third / middle third = $ratio)"
        else
            fail "redis RSS grew after warm-up (last third / middle third = $ratio; limit 1.20)"
            awk '{ printf "%s:%d ", $1, $2 / 1024 } END { print "" }' "$work/swiftmalloc/rss" | fold -w 120 | sed 's/^/    /'
        fi
    else
        echo "    (RSS stability is judged for runs of 60 s or more)"
    fi
    if [ "$compare" = 1 ]; then
        if start_server glibc-load "$glibc_preload"; then
            load glibc-load "$duration"
            sleep 3
            idle=$(rss_kib "$server_pid")
            echo "    redis under glibc: $rounds rounds, $requests requests; RSS $(rss_summary "$work/glibc-load/rss"); 3 s after the load $((${idle:-0} / 1024)) MiB, used_memory $(used_memory) MiB"
            stop_server
        fi
    fi
}

# Each < 5 s with glibc on the reference machine; none of them is in
# Tests/programs/run-program-tests.sh.
PY_MODULES=(test_array test_heapq test_itertools test_functools test_operator test_struct test_copy test_enum
    test_dataclasses test_textwrap test_difflib test_zlib test_base64 test_binascii test_csv test_fractions
    test_memoryview test_long test_float test_complex test_slice test_mmap test_gc test_ordered_dict
    test_codecs test_random test_ipaddress test_contextlib test_generators test_pprint test_ast test_marshal
    test_decimal test_statistics test_math test_bz2 test_unicodedata test_hashlib test_xml_etree test_typing)

python_tests() {
    local py=/usr/bin/python3 ver m
    ver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || ver=
    if [ -z "$ver" ]; then
        fail "python tests: $py not found"
        return
    fi
    [ -f "/usr/lib/python$ver/test/test_array.py" ] || apt_install "libpython$ver-testsuite" || true
    if [ ! -f "/usr/lib/python$ver/test/test_array.py" ]; then
        fail "python tests: libpython$ver-testsuite is not installed"
        return
    fi
    mkdir -p "$work/python"
    local same=0 differ=() t0 rg rs
    t0=$(date +%s)
    for m in "${PY_MODULES[@]}"; do
        [ -f "/usr/lib/python$ver/test/$m.py" ] || [ -d "/usr/lib/python$ver/test/$m" ] || continue
        rg=$(cd "$work/python" && PYTHONMALLOC=malloc timeout 120 "$py" -m test "$m" 2>&1 | tee "$work/python/$m.glibc" |
            sed -n 's/^Tests result: //p' | tail -1)
        [ -n "$rg" ] || rg="no result (status ${PIPESTATUS[0]})"
        rs=$(cd "$work/python" && LD_PRELOAD="$lib" PYTHONMALLOC=malloc timeout 120 "$py" -m test "$m" 2>&1 |
            tee "$work/python/$m.swiftmalloc" | sed -n 's/^Tests result: //p' | tail -1)
        [ -n "$rs" ] || rs="no result ($(tail -1 "$work/python/$m.swiftmalloc"))"
        if [ "$rg" = "$rs" ]; then
            same=$((same + 1))
            [ "$rs" = SUCCESS ] || echo "    $m: $rs with both allocators"
        else
            differ+=("$m: glibc $rg, SwiftMalloc $rs")
        fi
    done
    if [ ${#differ[@]} -eq 0 ]; then
        pass "python tests: $same modules, same results with SwiftMalloc as with glibc ($(($(date +%s) - t0))s)"
    else
        fail "python tests: ${#differ[@]} of $((same + ${#differ[@]})) modules differ"
        printf '    %s\n' "${differ[@]}"
        for d in "${differ[@]}"; do
            m=${d%%:*}
            echo "    --- $m under SwiftMalloc (last 15 lines) ---"
            tail -15 "$work/python/$m.swiftmalloc" | sed 's/^/    /'
        done
    fi
}

[ "$do_redis" = 1 ] && redis_soak
[ "$do_python" = 1 ] && python_tests
summary
