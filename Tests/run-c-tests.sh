#!/usr/bin/env bash
# Runs the C tests in Tests/c/ against a built libswiftmalloc.so.
#
# Usage: Tests/run-c-tests.sh LIBPATH [TEST...]
#   LIBPATH  the library, e.g. .build/release/libswiftmalloc.so
#   TEST     names of tests to run (file names in Tests/c/ without .c); all by default
#
# Every Tests/c/*.c is compiled twice and each binary is run:
#   preload  a plain binary run with LD_PRELOAD=LIBPATH
#   linked   a binary linked to the library (-lswiftmalloc, with an rpath)
#   mixed    the plain binary preloaded with SWIFTMALLOC_MIXED=1 (MIXED_TESTS only)
#   twolevel the plain binary preloaded under an address-space limit that denies
#            the flat page map (TWOLEVEL_TESTS only)
# Each run has a time limit (C_TEST_TIMEOUT seconds, 120 by default). A test
# passes when it exits 0; its output is shown only when it fails.
#
# badfree is special: it is run once per case (badfree --list), and each case must
# die of SIGABRT after printing a line on stderr that starts with "swiftmalloc: "
# and names the call and the address the case announced on stdout.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

if [ $# -lt 1 ]; then
    echo "usage: $0 LIBPATH [TEST...]" >&2
    exit 2
fi
if [ ! -f "$1" ]; then
    echo "$0: no library at $1" >&2
    exit 2
fi
lib=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
libdir=$(dirname "$lib")
shift
timeout_s=${C_TEST_TIMEOUT:-120}
# These tests run a third time, preloaded with SWIFTMALLOC_MIXED=1 (mixed spans).
MIXED_TESTS="api badfree fork late_address_limit mixed pagemap_window refill rss shards stress threads"
# These run again preloaded under an address-space limit that leaves the library
# without its flat page map (the two-level lookup only).
TWOLEVEL_TESTS="api badfree fork stress threads"
# These open the library with dlopen instead of running preloaded or linked.
OPENED_TESTS="unload"
CC=${CC:-gcc}
CFLAGS=(-O2 -g -pthread -Wall -I "$root/include")

work=$(mktemp -d "${TMPDIR:-/tmp}/swiftmalloc-ctests.XXXXXX")
trap 'rm -rf "$work"' EXIT
ulimit -c 0 2>/dev/null || true # aborting tests must not leave core files

if [ $# -gt 0 ]; then
    tests=("$@")
else
    tests=()
    for src in "$root"/Tests/c/*.c; do
        tests+=("$(basename "$src" .c)")
    done
fi

# Prints the last lines of a test's output, indented, after a failure.
show() {
    local label=$1 file=$2
    [ -s "$file" ] || return 0
    echo "    --- $label (last 40 lines) ---"
    tail -n 40 "$file" | sed 's/^/    /'
}

# run_one NAME MODE BINARY [ARGS...]: runs a test binary in a mode; sets $rc and
# leaves its output in $work/out and $work/err.
run_one() {
    local mode=$2 bin=$3 vm_limit=
    shift 3
    local settings=("LD_PRELOAD=$lib")
    case $mode in
        # Statistics on: every small block is tracked (tracked bins, per-block records).
        tracking) settings+=(SWIFTMALLOC_STATS=1) ;;
        # Mixed spans on (SWIFTMALLOC_MIXED=1): blocks of 256 B to 2 KiB share spans.
        mixed) settings+=(SWIFTMALLOC_MIXED=1) ;;
        # Under an address-space limit the flat page map (a 32 GiB reservation) is
        # not made: free walks the two-level map instead.
        twolevel) vm_limit=8388608 ;;
        profiling) settings+=(SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_QUIET=1
                              "SWIFTMALLOC_REPORT=$work/profile.%p.report") ;;
        preload) ;;
        # Not preloaded: the test opens the library itself (Tests/c/unload.c).
        opened) settings=("SWIFTMALLOC_TEST_LIBRARY=$lib") ;;
        opened-profiling) settings=("SWIFTMALLOC_TEST_LIBRARY=$lib" SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_QUIET=1
                                    "SWIFTMALLOC_REPORT=$work/profile.%p.report") ;;
        *) settings=() ;;
    esac
    (cd "$work" && { [ -z "$vm_limit" ] || ulimit -v "$vm_limit"; } && timeout "$timeout_s" env "${settings[@]}" "$bin" "$@" \
        >"$work/out" 2>"$work/err") 2>/dev/null
    rc=$?
}

describe_rc() {
    case $1 in
        124) echo "timed out after ${timeout_s}s" ;;
        134) echo "killed by SIGABRT" ;;
        139) echo "killed by SIGSEGV" ;;
        135) echo "killed by SIGBUS" ;;
        137) echo "killed by SIGKILL" ;;
        *) if [ "$1" -gt 128 ]; then echo "killed by signal $(($1 - 128))"; else echo "exit status $1"; fi ;;
    esac
}

run_badfree() {
    local mode=$1 bin=$2 cases c line addr call
    if ! cases=$("$bin" --list); then
        fail "badfree --list ($mode)"
        return
    fi
    for c in $cases; do
        run_one badfree "$mode" "$bin" "$c"
        line=$(grep -m1 '^ADDR ' "$work/out")
        addr=$(echo "$line" | awk '{print $2}')
        call=$(echo "$line" | awk '{print $4}')
        if [ -z "$addr" ] || [ -z "$call" ]; then
            fail "badfree $c ($mode)"
            echo "    the case did not announce its address ($(describe_rc $rc))"
            show stdout "$work/out"
            show stderr "$work/err"
            continue
        fi
        local problems=()
        [ "$rc" -eq 134 ] || problems+=("expected death by SIGABRT (status 134), got: $(describe_rc $rc)")
        if ! awk -v a="$addr" -v c="$call" '
                index($0, "swiftmalloc: ") == 1 && index($0, c) > 0 {
                    s = $0
                    while ((i = index(s, a)) > 0) {
                        nxt = substr(s, i + length(a), 1)
                        if (nxt !~ /[0-9a-fA-FxX]/) { found = 1; exit }
                        s = substr(s, i + length(a))
                    }
                }
                END { exit !found }' "$work/err"; then
            problems+=("expected a stderr line starting 'swiftmalloc: ' naming $call and $addr")
        fi
        # An interior pointer is named as one, in small, mixed and page-sized blocks.
        case $c in interior-*)
            grep -q '^swiftmalloc: .*points inside a block' "$work/err" ||
                problems+=("expected the report to say the pointer points inside a block") ;;
        esac
        if [ ${#problems[@]} -eq 0 ]; then
            pass "badfree $c ($mode)"
        else
            fail "badfree $c ($mode)"
            printf '    %s\n' "${problems[@]}"
            show stdout "$work/out"
            show stderr "$work/err"
        fi
    done
}

# Plugins the tests open from beside their own binary ($ORIGIN): Tests/c/plugins/*.c.
for src in "$root"/Tests/c/plugins/*.c; do
    "$CC" -O2 -g -shared -fPIC "$src" -o "$work/lib$(basename "$src" .c).so" >"$work/cc.log" 2>&1 ||
        { fail "plugin $(basename "$src"): compile"; show "compiler" "$work/cc.log"; }
done

start=$(date +%s)
for t in "${tests[@]}"; do
    src="$root/Tests/c/$t.c"
    if [ ! -f "$src" ]; then
        fail "$t (no such test: $src)"
        continue
    fi
    plain="$work/$t.preload"
    linked="$work/$t.linked"
    if ! "$CC" "${CFLAGS[@]}" "$src" -o "$plain" -ldl >"$work/cc.log" 2>&1; then
        fail "$t (preload): compile"
        show "compiler" "$work/cc.log"
        plain=
    fi
    if ! "$CC" "${CFLAGS[@]}" "$src" -o "$linked" -L"$libdir" -Wl,--no-as-needed -lswiftmalloc \
            -Wl,-rpath,"$libdir" -ldl >"$work/cc.log" 2>&1; then
        fail "$t (linked): compile"
        show "compiler" "$work/cc.log"
        linked=
    fi
    modes=(preload linked)
    # These run a third time with mixed spans on (preloaded).
    case " $MIXED_TESTS " in *" $t "*) modes+=(mixed) ;; esac
    case " $TWOLEVEL_TESTS " in *" $t "*) modes+=(twolevel) ;; esac
    case " $OPENED_TESTS " in *" $t "*) modes=(opened opened-profiling) ;; esac
    for mode in "${modes[@]}"; do
        if [ "$mode" = linked ]; then bin=$linked; else bin=$plain; fi
        [ -n "$bin" ] || continue
        if [ "$t" = badfree ]; then
            run_badfree "$mode" "$bin"
            # Tracking and full profiling keep their own bins and detect double
            # frees by the block's record: every case again, preloaded.
            if [ "$mode" = preload ]; then
                run_badfree tracking "$bin"
                run_badfree profiling "$bin"
            fi
            continue
        fi
        t0=$(date +%s)
        run_one "$t" "$mode" "$bin"
        secs=$(($(date +%s) - t0))
        if [ "$rc" -eq 0 ]; then
            pass "$t ($mode)"
        else
            fail "$t ($mode)"
            echo "    $(describe_rc $rc) after ${secs}s"
            show stdout "$work/out"
            show stderr "$work/err"
        fi
    done
done
echo "C tests took $(($(date +%s) - start))s"
summary
