#!/usr/bin/env bash
# Reliability tests (the CI part; see docs/RELIABILITY.md for the long runs).
#
#   Tests/run-reliability-tests.sh LIBPATH
#
#   regress  the reproducers of past findings, Tests/reliability/regress/*.c, each
#            run with LD_PRELOAD=LIBPATH; each must exit 0
#   fuzz     Tests/reliability/fuzz_alloc.c built with libFuzzer (clang
#            -fsanitize=fuzzer: the Swift toolchain's clang, or any clang that has
#            it; without one, the harness's own random driver built with cc) and
#            run for FUZZ_SECONDS (20) in all from the seed corpus
#            Tests/reliability/corpus/ against LIBPATH: 3/5 of the time in the default
#            configuration, 1/5 with SWIFTMALLOC_STATS=1 SWIFTMALLOC_CHECK=1, 1/5 with
#            SWIFTMALLOC_PROFILE_SAMPLE=1; passes if no check failed and nothing crashed
#   faults   Tests/reliability/faultdrv.c under LD_PRELOAD="failmap.so LIBPATH":
#            the Nth mmap failing for every N the sequence makes, the Nth mremap
#            for every N, every mmap after the Nth failing, every Kth mmap and
#            mremap failing (K = 1..7), and the Nth-mmap sweep again with
#            SWIFTMALLOC_STATS=1 SWIFTMALLOC_CHECK=1 and with SWIFTMALLOC_PROFILE=1;
#            every run must end with "faultdrv: ok"
#   soak     Tests/reliability/soak.sh --redis-only SOAK_SECONDS (20): Redis under
#            load, preloaded, no crash, and the same data as with glibc
#
# RELIABILITY_TESTS="regress fuzz faults soak" picks parts; FUZZ_SECONDS and
# SOAK_SECONDS change the durations. Takes about a minute on 2 cores.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rel="$here/reliability"
# shellcheck source=lib.sh
source "$here/lib.sh"

if [ $# -lt 1 ] || [ ! -f "$1" ]; then
    echo "usage: $0 LIBPATH   (the library, e.g. .build/release/libswiftmalloc.so)" >&2
    exit 2
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/swiftmalloc-reliability.XXXXXX")
trap 'rm -rf "$work"' EXIT
ulimit -c 0 2>/dev/null || true
# The library may be rebuilt while the tests run: test a private copy.
cp "$1" "$work/libswiftmalloc.so"
lib="$work/libswiftmalloc.so"
parts=${RELIABILITY_TESTS:-regress fuzz faults soak}
fuzz_seconds=${FUZZ_SECONDS:-20}
soak_seconds=${SOAK_SECONDS:-20}
CC=${CC:-gcc}
start=$(date +%s)

wants() { case " $parts " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

show() {
    [ -s "$2" ] || return 0
    echo "    --- $1 (last ${3:-30} lines) ---"
    tail -n "${3:-30}" "$2" | sed 's/^/    /'
}

describe_rc() {
    case $1 in
        0) echo "exit status 0" ;;
        124) echo "timed out" ;;
        *) if [ "$1" -gt 128 ]; then echo "killed by signal $(($1 - 128))"; else echo "exit status $1"; fi ;;
    esac
}

# ---- regress ----------------------------------------------------------------------
if wants regress; then
    for src in "$rel"/regress/*.c; do
        [ -f "$src" ] || continue
        name=$(basename "$src" .c)
        if ! "$CC" -O2 -g -Wall -pthread "$src" -o "$work/$name" -ldl >"$work/$name.cc" 2>&1; then
            fail "regress $name: compile"
            show compiler "$work/$name.cc"
            continue
        fi
        (cd "$work" && timeout 120 env LD_PRELOAD="$lib" "$work/$name" >"$work/$name.out" 2>&1) 2>/dev/null
        rc=$?
        if [ "$rc" = 0 ]; then
            pass "regress $name"
        else
            fail "regress $name ($(describe_rc $rc); see docs/RELIABILITY.md)"
            show output "$work/$name.out" 20
        fi
    done
fi

# ---- fuzz -------------------------------------------------------------------------
# A clang with libFuzzer: FUZZ_CC, else the Swift toolchain's (next to swiftc), else
# clang on PATH.
find_fuzz_cc() {
    local c cands=()
    [ -n "${FUZZ_CC:-}" ] && cands+=("$FUZZ_CC")
    command -v swiftc >/dev/null 2>&1 && cands+=("$(dirname "$(readlink -f "$(command -v swiftc)")")/clang")
    cands+=(/opt/swift/usr/bin/clang clang clang-16 clang-15 clang-14)
    for c in "${cands[@]}"; do
        command -v "$c" >/dev/null 2>&1 || continue
        if echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return 0; }' |
            "$c" -x c -fsanitize=fuzzer - -o "$work/fuzzcheck" >/dev/null 2>&1; then
            echo "$c"
            return 0
        fi
    done
    return 1
}

# fuzz_libfuzzer LABEL SECONDS [VAR=VALUE...]: one libFuzzer run from the seed corpus
# in a mode (allocator settings in the environment).
fuzz_libfuzzer() {
    local label=$1 secs=$2 rc runs cov
    shift 2
    rm -rf "$work/corpus" "$work/artifacts"
    mkdir -p "$work/corpus" "$work/artifacts"
    cp "$rel"/corpus/* "$work/corpus/"
    (cd "$work" && timeout $((secs + 120)) env "$@" ./fuzz_alloc -max_total_time="$secs" -max_len=4096 \
        -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
        corpus >"$work/fuzz.log" 2>&1) 2>/dev/null
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log")
    cov=$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "$work/fuzz.log" | tail -1 |
        sed -n 's/.*cov: \([0-9]*\) ft: \([0-9]*\).*/\1 edges, \2 features/p')
    if [ "$rc" = 0 ] && [ -n "$runs" ]; then
        pass "fuzz ($label): libFuzzer ${secs}s, $runs inputs, $cov, no failure"
    else
        fail "fuzz ($label): libFuzzer run failed ($(describe_rc $rc))"
        grep -E 'CHECK FAILED|swiftmalloc:|ERROR: libFuzzer|deadly signal|Test unit written' "$work/fuzz.log" |
            head -5 | sed 's/^/    /'
        show "fuzz log" "$work/fuzz.log" 25
        for a in "$work"/artifacts/*; do
            [ -f "$a" ] && echo "    input $(basename "$a"), hex: $(od -An -tx1 -v "$a" | tr -d ' \n' | head -c 600)"
        done
    fi
}

if wants fuzz; then
    export SWIFTMALLOC_FUZZ_LIB="$lib"
    # FUZZ_SKIP_KNOWN=1 would steer around the findings of docs/RELIABILITY.md; they
    # are fixed, so the fuzzer runs unsteered.
    if fcc=$(find_fuzz_cc); then
        if "$fcc" -g -O1 -fsanitize=fuzzer -rdynamic "$rel/fuzz_alloc.c" -o "$work/fuzz_alloc" -lpthread -ldl \
                >"$work/fuzz.cc" 2>&1; then
            # Most of the time in the default configuration; a little in the modes
            # that take other paths (tracking + checking, the sampling profiler).
            quarter=$((fuzz_seconds / 5))
            [ "$quarter" -ge 1 ] || quarter=1
            fuzz_libfuzzer default $((fuzz_seconds - 2 * quarter))
            fuzz_libfuzzer "SWIFTMALLOC_STATS=1 SWIFTMALLOC_CHECK=1" "$quarter" SWIFTMALLOC_STATS=1 SWIFTMALLOC_CHECK=1
            fuzz_libfuzzer "SWIFTMALLOC_PROFILE_SAMPLE=1" "$quarter" SWIFTMALLOC_PROFILE_SAMPLE=1 SWIFTMALLOC_REPORT=/dev/null
        else
            fail "fuzz: build with $fcc -fsanitize=fuzzer"
            show compiler "$work/fuzz.cc"
        fi
    else
        # No libFuzzer: the harness's random driver, same checks, no coverage guidance.
        if "$CC" -g -O2 -DFUZZ_STANDALONE "$rel/fuzz_alloc.c" -o "$work/fuzz_alloc" -lpthread -ldl >"$work/fuzz.cc" 2>&1; then
            (cd "$work" && timeout $((fuzz_seconds + 120)) ./fuzz_alloc "$rel/corpus" -runs=1000000000 \
                -max_total_time="$fuzz_seconds" -seed="$(date +%s)" >"$work/fuzz.log" 2>&1) 2>/dev/null
            rc=$?
            if [ "$rc" = 0 ]; then
                pass "fuzz: no libFuzzer here; random driver ${fuzz_seconds}s: $(tail -1 "$work/fuzz.log")"
            else
                fail "fuzz: random driver failed ($(describe_rc $rc))"
                show "fuzz log" "$work/fuzz.log" 25
            fi
        else
            fail "fuzz: build of the random driver"
            show compiler "$work/fuzz.cc"
        fi
    fi
fi

# ---- faults -----------------------------------------------------------------------
# fault_run LABEL VAR=VALUE...: one faultdrv process (with the settings in fault_env
# too); sets $frc and leaves $work/fault.out.
fault_env=()
fault_run() {
    shift
    # Finding 2 of docs/RELIABILITY.md is fixed, so the sweep no longer steers
    # around it (FAILMAP_SKIP_KNOWN=1 would).
    (cd "$work" && timeout 60 env LD_PRELOAD="$work/failmap.so $lib" "${fault_env[@]}" "$@" "$work/faultdrv" \
        >"$work/fault.out" 2>&1) 2>/dev/null
    frc=$?
}

# fault_sweep NAME VAR VALUES...: a run per value; one PASS for the sweep, a FAIL per bad run.
fault_sweep() {
    local name=$1 var=$2 v ok=0 bad=0 refused=0 cleanly=0 line
    shift 2
    for v in "$@"; do
        fault_run "$name" "$var=$v"
        line=$(grep -m1 '^faultdrv: ok' "$work/fault.out")
        if [ "$frc" = 0 ] && [ -n "$line" ]; then
            ok=$((ok + 1))
            refused=$((refused + $(echo "$line" | sed -n 's/.* \([0-9]*\) mappings refused.*/\1/p')))
            cleanly=$((cleanly + $(echo "$line" | sed -n 's/.* \([0-9]*\) failed cleanly.*/\1/p')))
        elif [ "$frc" = 127 ] && grep -qi 'cannot allocate memory' "$work/fault.out"; then
            # The loader itself could not get memory before main: a clean exit.
            ok=$((ok + 1))
        else
            bad=$((bad + 1))
            fail "faults: $var=$v ($(describe_rc $frc))"
            show output "$work/fault.out" 10
        fi
    done
    [ "$bad" = 0 ] && pass "faults: $name${fault_env[*]:+ (${fault_env[*]})}: $ok runs ($var = $1..${!#}), $refused mappings refused, $cleanly allocations failed cleanly, all recovered"
}

if wants faults; then
    if "$CC" -O2 -Wall -shared -fPIC "$rel/failmap.c" -o "$work/failmap.so" >"$work/failmap.cc" 2>&1 &&
        "$CC" -O2 -g -Wall -pthread "$rel/faultdrv.c" -o "$work/faultdrv" >"$work/faultdrv.cc" 2>&1; then
        # How many maps the sequence makes, with nothing failing.
        fault_run count FAILMAP_LOG="$work/failmap.log"
        read -r _ maps _ _ mremaps _ <"$work/failmap.log" 2>/dev/null || maps=0
        if [ "$frc" = 0 ] && grep -q '^faultdrv: ok: .* 0 failed cleanly' "$work/fault.out" && [ "${maps:-0}" -gt 0 ]; then
            pass "faults: baseline (no injection): $maps mmap calls, $mremaps mremap calls, nothing failed"
            fault_sweep "Nth mmap fails" FAILMAP_AT $(seq 1 $((maps + 1)))
            fault_sweep "Nth mremap fails" FAILMAP_MREMAP_AT $(seq 1 $((mremaps + 1)))
            # mprotect refused (a sandbox): the flat page map cannot make its leaves
            # writable, so they are mapped on their own; nothing may fail.
            fault_run mprotect FAILMAP_MPROTECT=1
            if [ "$frc" = 0 ] && grep -q '^faultdrv: ok: .* 0 failed cleanly' "$work/fault.out"; then
                pass "faults: every mprotect refused: the sequence runs with no allocation failing"
            else
                fail "faults: every mprotect refused ($(describe_rc $frc))"
                show output "$work/fault.out" 10
            fi
            fault_sweep "every mmap after the Nth fails" FAILMAP_AFTER $(seq 1 "$maps")
            fault_sweep "every Kth mmap and mremap fail" FAILMAP_EVERY 1 2 3 4 5 6 7
            for k in 1 2 3; do
                fault_run "mremap every $k" FAILMAP_MREMAP_EVERY=$k FAILMAP_EVERY=$((k + 2))
                if [ "$frc" = 0 ] && grep -q '^faultdrv: ok' "$work/fault.out"; then :; else
                    fail "faults: FAILMAP_MREMAP_EVERY=$k FAILMAP_EVERY=$((k + 2)) ($(describe_rc $frc))"
                    show output "$work/fault.out" 10
                fi
            done
        else
            fail "faults: baseline run without injection ($(describe_rc $frc); ${maps:-?} maps)"
            show output "$work/fault.out" 10
        fi
        # The same single-failure sweep in the modes whose own metadata comes from
        # more mappings (per-block records, the profiler's tables).
        for mode in "SWIFTMALLOC_STATS=1 SWIFTMALLOC_CHECK=1" "SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_REPORT=/dev/null"; do
            read -r -a fault_env <<<"$mode"
            fault_run count FAILMAP_LOG="$work/failmap.log"
            read -r _ maps _ <"$work/failmap.log" 2>/dev/null || maps=0
            if [ "$frc" = 0 ] && [ "${maps:-0}" -gt 0 ]; then
                fault_sweep "Nth mmap fails" FAILMAP_AT $(seq 1 $((maps + 1)))
            else
                fail "faults: baseline run with $mode ($(describe_rc $frc))"
                show output "$work/fault.out" 10
            fi
        done
        fault_env=()
    else
        fail "faults: compile failmap.so / faultdrv"
        show compiler "$work/failmap.cc"
        show compiler "$work/faultdrv.cc"
    fi
fi

# ---- soak -------------------------------------------------------------------------
if wants soak; then
    # soak.sh reports through the same pass/fail; take its lines over.
    while IFS= read -r line; do
        case $line in
            "PASS: "*) pass "soak: ${line#PASS: }" ;;
            "FAIL: "*) fail "soak: ${line#FAIL: }" ;;
            *" passed, "*" failed") ;;
            *) echo "$line" ;;
        esac
    done < <(RESULTS_FILE='' bash "$rel/soak.sh" --lib "$lib" --redis-only "$soak_seconds" 2>&1)
fi

echo "reliability tests took $(($(date +%s) - start))s"
summary
