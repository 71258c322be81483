#!/usr/bin/env bash
# The library under another distribution's C library, without a container: the
# release's libc6 package is downloaded and unpacked, and test programs built here
# run through its dynamic loader (ld-linux-x86-64.so.2 --library-path DIR
# --preload libswiftmalloc.so PROGRAM). Checks the allocator (Tests/c: api,
# stress, threads, fork), the cached stack walk against libunwind's
# (Tests/profile/walk.c), stacks through a plugin unloaded and replaced
# (Tests/profile/dlclose.c: the library's dlclose is passed on to this libc's),
# the profile of a process that SIGTERM ends (Tests/profile/signal_end.c), the
# profiles of processes ending with _exit (Tests/profile/underscore_exit.c), and
# what full profiling costs on the profiler benchmark's churn program against the
# same program unprofiled.
#
#   scripts/other-glibc.sh [RELEASE...]     RELEASE: ubuntu-noble (default),
#                                           debian-trixie, ubuntu-jammy
#
# Needs network access to the release's package archive, curl, xz and dpkg-deb;
# builds the library first (swift build -c release). Not part of scripts/test.sh,
# which runs offline. Exits non-zero if a check fails.
set -u
cd "$(dirname "$0")/.."
root=$PWD
# shellcheck source=../Tests/lib.sh
source "$root/Tests/lib.sh"   # walk_check_ok
releases=("$@")
[ ${#releases[@]} -eq 0 ] && releases=(ubuntu-noble)

swift build -c release 2>&1 | tail -n 1
lib="$root/.build/release/libswiftmalloc.so"
cli="$root/.build/release/swiftmalloc-cli"
[ -f "$lib" ] && [ -x "$cli" ] || { echo "build failed: $lib or $cli missing"; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/swiftmalloc-glibc.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Programs, built once against this system's glibc (they need no newer symbols).
for t in api stress threads fork; do
    gcc -O1 -g -pthread -I"$root/Tests/c" -o "$work/$t" "$root/Tests/c/$t.c" || exit 1
done
gcc -O2 -g -fomit-frame-pointer -pthread -o "$work/walk" "$root/Tests/profile/walk.c" || exit 1
gcc -O2 -g -o "$work/churn" "$root/benchmarks/profilers/churn.c" || exit 1
gcc -O2 -g -fomit-frame-pointer -shared -fPIC -DFRAME=8 -o "$work/plugin-a.so" "$root/Tests/profile/dlclose_plugin.c" || exit 1
gcc -O2 -g -fomit-frame-pointer -shared -fPIC -DFRAME=88 -o "$work/plugin-b.so" "$root/Tests/profile/dlclose_plugin.c" || exit 1
gcc -O2 -g -o "$work/dlclose" "$root/Tests/profile/dlclose.c" -ldl || exit 1
gcc -O2 -g -pthread -o "$work/signal_end" "$root/Tests/profile/signal_end.c" || exit 1
gcc -O2 -g -o "$work/underscore_exit" "$root/Tests/profile/underscore_exit.c" || exit 1

failed=0
check() { # NAME COMMAND...: runs COMMAND, prints PASS or FAIL with its last line
    local name=$1; shift
    if "$@" >"$work/out" 2>&1; then
        echo "PASS: $name: $(tail -n 1 "$work/out")"
    else
        echo "FAIL: $name (exit $?)"; tail -n 5 "$work/out" | sed 's/^/    /'
        failed=$((failed + 1))
    fi
}
seconds() { # COMMAND...: wall seconds of COMMAND (output discarded)
    local t0 t1
    t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N)
    echo "$t0 $t1" | awk '{printf "%.2f", $2 - $1}'
}

for release in "${releases[@]}"; do
    case $release in
        ubuntu-noble)  archive=http://archive.ubuntu.com/ubuntu; dist=noble-updates ;;
        ubuntu-jammy)  archive=http://archive.ubuntu.com/ubuntu; dist=jammy-updates ;;
        debian-trixie) archive=http://deb.debian.org/debian; dist=trixie ;;
        *) echo "unknown release: $release"; failed=$((failed + 1)); continue ;;
    esac
    dir="$work/$release"
    mkdir -p "$dir"
    echo "== $release ($archive, $dist)"
    if ! curl -fsS -o "$dir/Packages.xz" "$archive/dists/$dist/main/binary-amd64/Packages.xz"; then
        echo "FAIL: $release: cannot fetch the package index"; failed=$((failed + 1)); continue
    fi
    deb=$(xz -dc "$dir/Packages.xz" | awk '/^Package: libc6$/ {p = 1} p && /^Filename:/ {print $2; exit}')
    if [ -z "$deb" ] || ! curl -fsS -o "$dir/libc6.deb" "$archive/$deb" || ! dpkg-deb -x "$dir/libc6.deb" "$dir/root"; then
        echo "FAIL: $release: cannot fetch or unpack libc6"; failed=$((failed + 1)); continue
    fi
    # /usr/lib/x86_64-linux-gnu since the merged /usr, /lib/x86_64-linux-gnu before.
    libc=$(find "$dir/root" -path '*x86_64-linux-gnu/libc.so.6' | head -n 1)
    if [ -z "$libc" ] || [ ! -e "$(dirname "$libc")/ld-linux-x86-64.so.2" ]; then
        echo "FAIL: $release: no libc.so.6 and loader in the package"; failed=$((failed + 1)); continue
    fi
    libdir=$(dirname "$libc")
    loader=("$libdir/ld-linux-x86-64.so.2" --library-path "$libdir:/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu")
    echo "libc6 $(basename "$deb" .deb | sed 's/^libc6_//')"
    for t in api stress threads fork; do
        check "$release: $t" "${loader[@]}" --preload "$lib" "$work/$t"
    done
    walk_check() {
        env SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_QUIET=1 SWIFTMALLOC_PROFILE_WALK=check \
            SWIFTMALLOC_REPORT="$dir/walk.report" "${loader[@]}" --preload "$lib" "$work/walk" >"$dir/walk.out" 2>&1 || return 1
        walk_check_ok "$dir/walk.out" || return 1
        echo "$WALK_COMPARED of 9,000 stacks came from learned rules, $WALK_DIFFERED differed from libunwind's"
    }
    check "$release: cached stack walks equal libunwind's" walk_check
    dlclose_check() {
        env SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_QUIET=1 SWIFTMALLOC_REPORT="$dir/dlclose.report" \
            "${loader[@]}" --preload "$lib" "$work/dlclose" "$work/plugin-a.so" "$work/plugin-b.so" >"$dir/dlclose.out" 2>&1 || return 1
        "$cli" report "$dir/dlclose.report" --format collapsed --metric alloc-count >"$dir/dlclose.folded" || return 1
        local through cut
        through=$(grep ';main;call_plugin;plugin_alloc;inner_alloc ' "$dir/dlclose.folded" | awk '{s += $NF} END {print s + 0}')
        cut=$(grep -v '^\[no stack\] ' "$dir/dlclose.folded" | grep -c -v '^_start;')
        echo "$through allocations through the plugins named in whole stacks, $cut cut short ($(grep -o 'B loaded.*' "$dir/dlclose.out"))"
        [ "$through" -eq 6006 ] && [ "$cut" -eq 0 ]
    }
    check "$release: stacks through an unloaded and replaced plugin" dlclose_check
    signal_check() {
        local status=0
        ( env SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_QUIET=1 SWIFTMALLOC_REPORT="$dir/signal.report" \
            "${loader[@]}" --preload "$lib" "$work/signal_end" TERM >"$dir/signal.out" 2>&1 ) 2>/dev/null || status=$?
        grep -q "^reason signal" "$dir/signal.report" || return 1
        echo "ended by SIGTERM (status $status), profile written"
        [ "$status" -eq 143 ]
    }
    check "$release: a process that SIGTERM ends writes its profile" signal_check
    exit_check() {
        local status=0
        mkdir -p "$dir/exit"
        env SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_QUIET=1 SWIFTMALLOC_REPORT="$dir/exit/%p.report" \
            "${loader[@]}" --preload "$lib" "$work/underscore_exit" >"$dir/exit.out" 2>&1 || status=$?
        local reports
        reports=$(ls "$dir/exit" | wc -l)
        echo "exit status $status, $reports profiles (parent's _exit, forked child's _Exit; none from vfork or posix_spawn)"
        [ "$status" -eq 3 ] && [ "$reports" -eq 2 ] && [ "$(grep -l '^reason exit' "$dir"/exit/*.report | wc -l)" -eq 2 ]
    }
    check "$release: processes ending with _exit write their profiles" exit_check
    off=$(seconds "${loader[@]}" --preload "$lib" "$work/churn" 2)
    full=$(seconds env SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_QUIET=1 SWIFTMALLOC_REPORT="$dir/churn.report" \
        "${loader[@]}" --preload "$lib" "$work/churn" 2)
    echo "churn, 2 M pairs: unprofiled $off s, full profiling $full s"
done
echo "$failed failed"
[ "$failed" -eq 0 ]
