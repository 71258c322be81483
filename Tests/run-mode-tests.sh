#!/usr/bin/env bash
# Runs the C stress, fork, threads, cancellation, out-of-memory, late address-space limit and API tests again in the allocator's other
# modes: statistics (SWIFTMALLOC_STATS=1, tracking), profiling (SWIFTMALLOC_PROFILE=1
# and sampled), checking (SWIFTMALLOC_CHECK=1), without the background purger, and
# with several shards of central lists;
# and the invalid frees again in the tracking modes.
# Usage: Tests/run-mode-tests.sh LIBPATH
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/lib.sh"
lib=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ulimit -c 0
for t in api stress fork threads cancel oom_recovery late_address_limit; do
    gcc -O2 -g -pthread -Wall -I "$here/../include" -o "$work/$t" "$here/c/$t.c" || { fail "$t: does not compile"; continue; }
done
# Three shards of central lists (more than this machine may have CPUs) with tracked
# and sampled blocks: cross-thread frees and fork salvage meet blocks of every shard.
modes=("SWIFTMALLOC_STATS=1" "SWIFTMALLOC_PROFILE=1" "SWIFTMALLOC_PROFILE_SAMPLE=65536" "SWIFTMALLOC_CHECK=1" "SWIFTMALLOC_BACKGROUND=0"
       "SWIFTMALLOC_SHARDS=3 SWIFTMALLOC_STATS=1" "SWIFTMALLOC_SHARDS=3 SWIFTMALLOC_PROFILE_SAMPLE=4096")
for mode in "${modes[@]}"; do
    for t in api stress fork threads cancel oom_recovery late_address_limit; do
        [ -x "$work/$t" ] || continue
        # shellcheck disable=SC2086 # a mode is one or more NAME=VALUE words
        if (cd "$work" && env $mode SWIFTMALLOC_REPORT="$work/report.%p" LD_PRELOAD="$lib" \
                timeout 300 "./$t" >"$work/$t.out" 2>&1); then
            pass "$t ($mode)"
        else
            fail "$t ($mode): exit $?"
            tail -n 15 "$work/$t.out"
        fi
        rm -f "$work"/report.*
    done
done

# Every setting with values a user might mistype or push to the limit: the program
# still runs (a value that cannot be used is ignored or clamped, never a crash).
# SWIFTMALLOC_PROFILE_SAMPLE=2^64-1 once made the sampling gap overflow.
odd_ok=0
odd_bad=()
# odd_values SETTING... -- VAR...: the api test under each odd value of each VAR,
# with the SETTINGs (NAME=VALUE) as well.
odd_values() {
    local fixed=() var value
    while [ "$1" != -- ]; do fixed+=("$1"); shift; done
    shift
    for var in "$@"; do
        for value in "" 0 1 -1 abc 1x 65 18446744073709551615 9223372036854775807 99999999999999999999999; do
            if (cd "$work" && env "${fixed[@]}" "$var=$value" SWIFTMALLOC_PROFILE_QUIET=1 SWIFTMALLOC_REPORT="$work/report.%p" \
                    LD_PRELOAD="$lib" timeout 60 ./api >"$work/odd.out" 2>&1); then
                odd_ok=$((odd_ok + 1))
            else
                odd_bad+=("${fixed[*]} $var='$value' (exit $?)")
            fi
            rm -f "$work"/report.*
        done
    done
}
odd_values -- SWIFTMALLOC_SHARDS SWIFTMALLOC_PROFILE_DEPTH SWIFTMALLOC_PROFILE_SAMPLE SWIFTMALLOC_REPORT_INTERVAL \
    SWIFTMALLOC_GATHER_MAPPINGS SWIFTMALLOC_STATS SWIFTMALLOC_CHECK SWIFTMALLOC_MIXED SWIFTMALLOC_BACKGROUND \
    SWIFTMALLOC_THP SWIFTMALLOC_PROFILE SWIFTMALLOC_PROFILE_WALK SWIFTMALLOC_PROFILE_SIGNALS SWIFTMALLOC_STATS_FILE
# The profiler's own settings again with profiling on (SWIFTMALLOC_PROFILE_DEPTH=2^64-1
# once crashed the program at start-up then).
odd_values SWIFTMALLOC_PROFILE=1 -- SWIFTMALLOC_PROFILE_DEPTH SWIFTMALLOC_REPORT_INTERVAL SWIFTMALLOC_PROFILE_WALK \
    SWIFTMALLOC_PROFILE_SIGNALS
if [ ${#odd_bad[@]} -eq 0 ]; then
    pass "odd setting values: the api test passes under each of $odd_ok"
else
    fail "odd setting values: ${odd_bad[*]}"
    tail -n 5 "$work/odd.out"
fi

# Tracking modes (statistics, full profiling) send free through their own entry:
# every invalid free must still abort with a report naming the pointer.
if gcc -O2 -g -Wall -I "$here/../include" -o "$work/badfree" "$here/c/badfree.c"; then
    for mode in "SWIFTMALLOC_STATS=1" "SWIFTMALLOC_PROFILE=1"; do
        bad=()
        for c in $("$work/badfree" --list); do
            (cd "$work" && env "$mode" SWIFTMALLOC_REPORT=/dev/null SWIFTMALLOC_PROFILE_QUIET=1 LD_PRELOAD="$lib" \
                timeout 60 ./badfree "$c" >"$work/b.out" 2>"$work/b.err") 2>/dev/null
            rc=$?
            addr=$(awk '/^ADDR /{print $2; exit}' "$work/b.out")
            if [ $rc -ne 134 ] || [ -z "$addr" ] || ! grep '^swiftmalloc: ' "$work/b.err" | grep -qF "$addr"; then
                bad+=("$c (exit $rc)")
            fi
        done
        if [ ${#bad[@]} -eq 0 ]; then
            pass "badfree: every case aborts with a report naming the pointer ($mode)"
        else
            fail "badfree ($mode): ${bad[*]}"
        fi
    done
else
    fail "Tests/c/badfree.c does not compile"
fi

# Hardened mode: each corruption must abort with a one-line report.
if gcc -O0 -g -Wall -I "$here/../include" -o "$work/hardened" "$here/check/hardened.c"; then
    for c in overflow-small overflow-large overflow-realloc write-after-free write-after-free-deep \
             write-after-free-drained write-after-free-drained-many double-free-late \
             overflow-exact-32 overflow-exact-4096 overflow-exact-65536 usable-freed \
             sized-small sized-large sized-aligned; do
        (cd "$work" && SWIFTMALLOC_CHECK=1 LD_PRELOAD="$lib" timeout 60 ./hardened "$c" >"$work/h.out" 2>"$work/h.err") 2>/dev/null
        rc=$?
        if [ $rc -eq 134 ] && grep -q '^swiftmalloc: ' "$work/h.err"; then
            pass "check mode catches $c: $(grep '^swiftmalloc: ' "$work/h.err" | head -n 1 | cut -c1-100)"
        else
            fail "check mode did not catch $c (exit $rc)"; cat "$work/h.out" "$work/h.err"
        fi
    done
    if (cd "$work" && SWIFTMALLOC_CHECK=1 LD_PRELOAD="$lib" timeout 60 ./hardened usable >"$work/h.out" 2>&1); then
        pass "check mode: malloc_usable_size is the requested size, and writing up to it is fine"
    else
        fail "check mode: usable size"; cat "$work/h.out"
    fi
    if (cd "$work" && SWIFTMALLOC_CHECK=1 LD_PRELOAD="$lib" timeout 60 ./hardened sized >"$work/h.out" 2>&1); then
        pass "check mode: sized frees with the sizes and alignments blocks were allocated with pass"
    else
        fail "check mode: sized frees of correct sizes"; cat "$work/h.out"
    fi
else
    fail "Tests/check/hardened.c does not compile"
fi

# SWIFTMALLOC_STATS_FILE: the fork test's parent and children each write their
# statistics to a file of their own (%p), and none reach stderr; a file that
# cannot be made is named on stderr with the reason.
if [ -x "$work/fork" ]; then
    mkdir -p "$work/stats"
    (cd "$work" && SWIFTMALLOC_STATS_FILE="$work/stats/s.%p" LD_PRELOAD="$lib" timeout 300 ./fork >"$work/sf.out" 2>"$work/sf.err")
    rc=$?
    files=$(ls "$work/stats" | wc -l)
    whole=$(grep -l '^total: held' "$work/stats"/s.* 2>/dev/null | wc -l)
    if [ $rc -eq 0 ] && [ "$files" -ge 2 ] && [ "$whole" -eq "$files" ] && ! grep -q 'swiftmalloc' "$work/sf.err"; then
        pass "statistics file: $files processes wrote their own, none on stderr"
    else
        fail "statistics file: exit $rc, $files files, $whole with the totals"; tail -n 5 "$work/sf.err"
    fi
    (cd "$work" && SWIFTMALLOC_STATS_FILE="$work/no/such/dir/s.%p" LD_PRELOAD="$lib" timeout 60 ./api >/dev/null 2>"$work/sf.err")
    rc=$?
    if [ $rc -eq 0 ] && grep -q "^swiftmalloc: could not write the statistics to $work/no/such/dir/s\.[0-9]* (ENOENT)" "$work/sf.err"; then
        pass "statistics file that cannot be made: named, with ENOENT"
    else
        fail "statistics file that cannot be made: exit $rc"; tail -n 5 "$work/sf.err"
    fi
fi
summary
