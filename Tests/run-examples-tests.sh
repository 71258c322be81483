#!/usr/bin/env bash
# Packaging and examples tests: builds SwiftMalloc with CMake, installs it into a
# temporary prefix, checks the installed tree, and builds and runs every example
# in examples/ against that install.
#
# Usage: Tests/run-examples-tests.sh [PREFIX]
#   PREFIX  test an existing install (from `cmake --install`) instead of building
#           and installing one (a library file given instead, as to the other
#           suites, is ignored)
#
# Checks:
#   cmake      configure, build and install (Ninja, Release) into a temporary prefix
#   install    the libraries, header, CMake package and pkg-config files are there;
#              installing with `--prefix` elsewhere rewrites the pkg-config prefix
#   deps       both libraries depend on libc only
#   exports    libswiftmalloc.so exports the C allocation API and the swiftmalloc_
#              functions, nothing else; libswiftmalloc-prefixed.so only the
#              swiftmalloc_ functions, and imports no allocation function
#   version    header, pkg-config and soname agree
#   examples   preload, linked, cmake-consumer, pkg-config, prefixed, stats
#
# Environment: CC (default cc), EXAMPLE_TEST_TIMEOUT (seconds per program run,
# default 60), KEEP_WORK=1 keeps the temporary directory.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

CC=${CC:-cc}
export CC
timeout_s=${EXAMPLE_TEST_TIMEOUT:-60}
start=$(date +%s)

work=$(mktemp -d "${TMPDIR:-/tmp}/swiftmalloc-examples.XXXXXX")
if [ "${KEEP_WORK:-0}" = 1 ]; then
    echo "work directory: $work"
else
    trap 'rm -rf "$work"' EXIT
fi
ulimit -c 0 2>/dev/null || true # the cross-allocator free aborts on purpose

# Prints the last lines of a file, indented, after a failure.
show() {
    local label=$1 file=$2
    [ -s "$file" ] || return 0
    echo "    --- $label (last 30 lines) ---"
    tail -n 30 "$file" | sed 's/^/    /'
}

# step NAME LOG COMMAND...: runs a build step; pass or fail with its log.
step() {
    local name=$1 log=$2
    shift 2
    if "$@" >"$log" 2>&1; then
        pass "$name"
        return 0
    fi
    fail "$name"
    show "$name" "$log"
    return 1
}

# run NAME COMMAND...: runs a program with the time limit, output in $work/NAME.out
# and $work/NAME.err; sets rc and cur (the run the want_* checks look at).
run() {
    cur=$1
    shift
    timeout "$timeout_s" "$@" >"$work/$cur.out" 2>"$work/$cur.err"
    rc=$?
}

# The want_* checks collect problems; verdict NAME passes or fails on them.
problems=()
verdict() {
    local name=$1
    if [ ${#problems[@]} -eq 0 ]; then
        pass "$name"
    else
        fail "$name"
        printf '    %s\n' "${problems[@]}"
        show stdout "$work/$cur.out"
        show stderr "$work/$cur.err"
    fi
    problems=()
}
want_rc() { [ "$rc" -eq "$1" ] || problems+=("expected exit status $1, got $rc"); }
want_out() { grep -q -- "$1" "$work/$cur.out" || problems+=("stdout lacks: $1"); }
want_err() { grep -q -- "$1" "$work/$cur.err" || problems+=("stderr lacks: $1"); }

# ---- Build and install ------------------------------------------------------------
if [ $# -ge 1 ] && [ -f "$1" ]; then
    # A library path, as the other suites take: this suite builds its own.
    echo "ignoring $1: this suite builds and installs its own libraries with CMake"
    shift
fi
if [ $# -ge 1 ]; then
    prefix=$(cd "$1" && pwd) || { echo "$0: no such prefix: $1" >&2; exit 2; }
    echo "testing the install in $prefix"
else
    prefix=$work/prefix
    build=$work/build
    generator=()
    command -v ninja >/dev/null && generator=(-G Ninja)
    step "cmake configure" "$work/configure.log" \
        cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_INSTALL_PREFIX="$prefix" || { summary; exit 1; }
    step "cmake build (both libraries)" "$work/build.log" \
        cmake --build "$build" || { summary; exit 1; }
    step "cmake install" "$work/install.log" cmake --install "$build" || { summary; exit 1; }
fi

pcfile=$(find "$prefix" -path '*/pkgconfig/swiftmalloc.pc' | head -n 1)
pcdir=$(dirname "${pcfile:-$prefix/lib/pkgconfig/swiftmalloc.pc}")
export PKG_CONFIG_PATH="$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
libdir=$(pkg-config --variable=libdir swiftmalloc 2>/dev/null || echo "$prefix/lib")
lib=$libdir/libswiftmalloc.so
plib=$libdir/libswiftmalloc-prefixed.so

# ---- The installed tree -------------------------------------------------------------
missing=()
for f in "$lib" "$plib" "$prefix/include/swiftmalloc.h" "$pcdir/swiftmalloc.pc" "$pcdir/swiftmalloc-prefixed.pc"; do
    [ -e "$f" ] || missing+=("$f")
done
cmakedir=$(find "$prefix" -name swiftmalloc-config.cmake -printf '%h\n' | head -n 1)
for f in swiftmalloc-config.cmake swiftmalloc-config-version.cmake swiftmalloc-targets.cmake; do
    [ -n "$cmakedir" ] && [ -e "$cmakedir/$f" ] || missing+=("lib/cmake/swiftmalloc/$f")
done
if [ ${#missing[@]} -eq 0 ]; then pass "install: files"; else fail "install: files"; printf '    missing: %s\n' "${missing[@]}"; fi

if [ -n "${build:-}" ]; then
    step "install: --prefix elsewhere" "$work/install2.log" cmake --install "$build" --prefix "$work/prefix2" &&
        if grep -qx "prefix=$work/prefix2" "$work/prefix2/${pcdir#"$prefix"/}/swiftmalloc.pc"; then
            pass "install: pkg-config prefix follows --prefix"
        else
            fail "install: pkg-config prefix follows --prefix"
            show swiftmalloc.pc "$work/prefix2/${pcdir#"$prefix"/}/swiftmalloc.pc"
        fi
fi

# ---- Dependencies and symbols --------------------------------------------------------
for l in "$lib" "$plib"; do
    name=$(basename "$l")
    needed=$(readelf -d "$l" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
    if [ "$needed" = "libc.so.6 " ]; then pass "deps: $name needs libc only"; else fail "deps: $name needs libc only"; echo "    NEEDED: $needed"; fi
done

# Debug information a debugger reads whole: no references into the Swift compiler's
# module cache (gdb looked for each .pcm file and warned) and no name index, which
# the linker concatenates object by object (gdb warned and ignored it). The
# SwiftPM build, which has debug information in release mode, too.
for l in "$lib" "$plib" "$root/.build/release/libswiftmalloc.so"; do
    [ -f "$l" ] || continue
    if readelf -S "$l" | grep -q '\.debug_names' || readelf --debug-dump=info "$l" 2>/dev/null | grep -q '\.pcm'; then
        fail "debug info: $l has no module-cache references or name index"
    else
        pass "debug info: $(basename "$l") has no module-cache references or name index"
    fi
done

# The libraries load under glibc 2.34 and later (Ubuntu 22.04, RHEL 9): no symbol
# version above GLIBC_2.34 (the standard library's hash seeding once brought in
# arc4random_buf, GLIBC_2.36; scripts/other-glibc.sh runs the tests under such a glibc).
for l in "$lib" "$plib"; do
    name=$(basename "$l")
    newest=$(objdump -T "$l" | grep -o 'GLIBC_[0-9.]*' | sort -V | tail -n 1)
    if [ -n "$newest" ] && [ "$(printf '%s\nGLIBC_2.34\n' "$newest" | sort -V | tail -n 1)" = GLIBC_2.34 ]; then
        pass "deps: $name needs glibc 2.34 at most ($newest)"
    else
        fail "deps: $name needs glibc 2.34 at most"; echo "    newest symbol version: ${newest:-none}"
        objdump -T "$l" | grep -E 'GLIBC_2\.(3[5-9]|[4-9][0-9])' | sed 's/^/    /'
    fi
done

# Global symbols a library defines (local TLS symbols can show in .dynsym; skip them).
exported() { nm -D --defined-only "$1" | awk '$2 ~ /^[A-Z]$/ {print $3}' | sed 's/@.*//' | sort; }
imported() { nm -D --undefined-only "$1" | awk '{print $NF}' | sed 's/@.*//' | sort; }
api="malloc free calloc realloc reallocarray posix_memalign aligned_alloc memalign valloc pvalloc
     malloc_usable_size malloc_trim mallinfo2 mallinfo malloc_stats malloc_info mallopt free_sized free_aligned_sized cfree
     __libc_malloc __libc_calloc __libc_realloc __libc_free __libc_memalign __libc_valloc __libc_pvalloc
     __libc_mallinfo __libc_mallopt"
prefixed_api="swiftmalloc_malloc swiftmalloc_free swiftmalloc_calloc swiftmalloc_realloc swiftmalloc_reallocarray
     swiftmalloc_posix_memalign swiftmalloc_aligned_alloc swiftmalloc_memalign swiftmalloc_valloc swiftmalloc_pvalloc
     swiftmalloc_usable_size swiftmalloc_free_sized swiftmalloc_free_aligned_sized swiftmalloc_trim
     swiftmalloc_mallinfo2 swiftmalloc_mallinfo swiftmalloc_malloc_stats swiftmalloc_info swiftmalloc_mallopt
     swiftmalloc_stats_print"
# Every function the header declares must be exported by both libraries.
declared=$(sed -n 's/^[a-z].*[ *]\(swiftmalloc_[a-z0-9_]*\)(.*/\1/p' "$root/include/swiftmalloc.h" | sort -u)

check_exports() { # NAME LIB EXPECTED-LIST
    local name=$1 l=$2 expected=$3 got extra absent
    got=$(exported "$l")
    extra=$(comm -23 <(echo "$got") <(echo "$expected" | tr -s ' \n' '\n' | grep . | sort -u) | grep -v '^swiftmalloc_' | tr '\n' ' ')
    absent=$(comm -13 <(echo "$got") <(echo "$expected" | tr -s ' \n' '\n' | grep . | sort -u) | tr '\n' ' ')
    if [ -z "$extra" ] && [ -z "$absent" ]; then
        pass "exports: $name"
    else
        fail "exports: $name"
        [ -n "$extra" ] && echo "    unexpected: $extra"
        [ -n "$absent" ] && echo "    missing: $absent"
    fi
}
check_exports libswiftmalloc.so "$lib" "$api dlopen dlclose sigaction signal unshare setns _exit _Exit exit $prefixed_api $declared"
check_exports libswiftmalloc-prefixed.so "$plib" "$prefixed_api $declared"
bad=$(imported "$plib" | grep -x -E 'malloc|free|calloc|realloc|reallocarray|posix_memalign|aligned_alloc|memalign|valloc|pvalloc|malloc_usable_size|cfree' | tr '\n' ' ')
if [ -z "$bad" ]; then pass "imports: prefixed library uses no allocation function"; else fail "imports: prefixed library uses no allocation function"; echo "    imports: $bad"; fi

# ---- Version --------------------------------------------------------------------------
hv=$(sed -n 's/^#define SWIFTMALLOC_VERSION_STRING "\(.*\)"/\1/p' "$prefix/include/swiftmalloc.h")
pv=$(pkg-config --modversion swiftmalloc 2>/dev/null)
ppv=$(pkg-config --modversion swiftmalloc-prefixed 2>/dev/null)
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
if [ -n "$hv" ] && [ "$hv" = "$pv" ] && [ "$hv" = "$ppv" ] && [ "$soname" = "libswiftmalloc.so.${hv%%.*}" ]; then
    pass "version: header $hv, pkg-config, soname $soname"
else
    fail "version: header '$hv', pkg-config '$pv' / '$ppv', soname '$soname'"
fi
flags=$(pkg-config --cflags --libs swiftmalloc 2>&1)
pflags=$(pkg-config --cflags --libs swiftmalloc-prefixed 2>&1)
if [[ "$flags" == *"-lswiftmalloc"* && "$flags" == *"-I"* && "$pflags" == *"-lswiftmalloc-prefixed"* ]]; then
    pass "pkg-config --cflags --libs"
else
    fail "pkg-config --cflags --libs"
    echo "    swiftmalloc: $flags"
    echo "    swiftmalloc-prefixed: $pflags"
fi

# ---- Examples -----------------------------------------------------------------------
ex=$root/examples
# build_c NAME SOURCE PACKAGE: compiles an example against the install with pkg-config.
build_c() {
    local name=$1 src=$2 pkg=$3
    step "examples/$name: build" "$work/$name.cc.log" \
        "$CC" -O2 -Wall -Wextra -Werror "$src" $(pkg-config --cflags --libs "$pkg") \
        -Wl,-rpath,"$(pkg-config --variable=libdir "$pkg")" -ldl -o "$work/$name"
}

# (a) preload: a plain program and sort, preloaded, and the statistics at exit.
run preload bash "$ex/preload/preload.sh" "$lib"
want_rc 0
want_out "malloc comes from .*libc\.so"
want_out "malloc comes from $libdir/libswiftmalloc"
want_out "sort wrote 20000 lines, the first is 20000"
want_err "swiftmalloc: statistics for pid .* (requested sizes tracked)"
verdict "examples/preload: preload.sh"

# (b) linked: libc's own allocations land in SwiftMalloc.
if build_c linked "$ex/linked/libc_allocations.c" swiftmalloc; then
    run linked "$work/linked"
    want_rc 0
    want_out "every libc allocation above went through SwiftMalloc"
    want_err "swiftmalloc: statistics for pid"
    readelf -d "$work/linked" | grep -q 'NEEDED.*libswiftmalloc\.so\.' || problems+=("the program does not need libswiftmalloc")
    verdict "examples/linked: strdup, getline, fopen in SwiftMalloc"
fi

# (c) CMake consumer: find_package(swiftmalloc), both imported targets, ctest.
if step "examples/cmake-consumer: configure" "$work/consumer-configure.log" \
        cmake -S "$ex/cmake-consumer" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release &&
    step "examples/cmake-consumer: build" "$work/consumer-build.log" cmake --build "$work/consumer"; then
    step "examples/cmake-consumer: ctest (linked, prefixed, preloaded)" "$work/consumer-ctest.log" \
        ctest --test-dir "$work/consumer" --output-on-failure --timeout "$timeout_s"
fi

# (d) Makefile consumer with pkg-config.
cp -r "$ex/pkg-config" "$work/makefile-consumer"
if step "examples/pkg-config: make" "$work/make.log" make -C "$work/makefile-consumer"; then
    echo "to be or not to be that is the question To BE" >"$work/words.txt"
    run wordfreq "$work/makefile-consumer/wordfreq" <"$work/words.txt"
    want_rc 0
    want_out "^ *3 be$"
    want_out "^ *3 to$"
    want_out "8 distinct words; SwiftMalloc bytes in use: [1-9]"
    verdict "examples/pkg-config: wordfreq"
fi

# (e) prefixed: both allocators side by side; the cross-allocator free is caught.
if build_c prefixed "$ex/prefixed/side_by_side.c" swiftmalloc-prefixed; then
    run prefixed "$work/prefixed"
    want_rc 0
    want_out "^malloc  *comes from .*libc\.so"
    want_out "^swiftmalloc_malloc comes from .*libswiftmalloc-prefixed\.so"
    want_out "the cross-allocator free was caught"
    addr=$(sed -n 's/^swiftmalloc_free(\(0x[0-9a-f]*\)), a block from glibc.*/\1/p' "$work/prefixed.out")
    if [ -z "$addr" ]; then
        problems+=("the program did not announce the address it frees")
    else
        want_err "^swiftmalloc: free(): invalid pointer $addr (not allocated by swiftmalloc, or already freed)$"
    fi
    verdict "examples/prefixed: side by side, cross-allocator free caught"
    readelf -d "$work/prefixed" | grep -q 'NEEDED.*libswiftmalloc-prefixed' &&
        ! readelf -d "$work/prefixed" | grep -q 'NEEDED.*libswiftmalloc\.so' &&
        pass "examples/prefixed: needs only the prefixed library" ||
        fail "examples/prefixed: needs only the prefixed library"
fi

# (f) stats: the table from code, with and without SWIFTMALLOC_STATS, and to a file.
if build_c stats "$ex/stats/stats_dump.c" swiftmalloc; then
    run stats "$work/stats"
    want_rc 0
    [ "$(grep -c '^swiftmalloc: statistics for pid .*not tracked' "$work/stats.err")" -eq 2 ] ||
        problems+=("expected two tables (requested sizes not tracked) on stderr")
    want_err "^---- half of the blocks freed"
    want_err "^Arena 0:"
    want_out '^malloc_info: <total type="fast" count="[0-9]*" size="[0-9]*"/>'
    want_out '^malloc_info: <system type="current" size="[1-9][0-9]*"/>'
    want_out "after freeing everything and malloc_trim: in use"
    verdict "examples/stats: swiftmalloc_stats_print, malloc_stats, malloc_info"

    run stats-tracked env SWIFTMALLOC_STATS=1 "$work/stats"
    want_rc 0
    [ "$(grep -c '^swiftmalloc: statistics for pid .*(requested sizes tracked)' "$work/stats-tracked.err")" -eq 3 ] ||
        problems+=("expected three tables with requested sizes (two from code, one at exit)")
    want_err "utilization [0-9]"
    verdict "examples/stats: SWIFTMALLOC_STATS=1"

    run stats-file "$work/stats" "$work/stats.txt"
    want_rc 0
    [ "$(grep -c '^swiftmalloc: statistics for pid' "$work/stats.txt" 2>/dev/null)" = 2 ] ||
        problems+=("expected two tables in the file")
    grep -q '^swiftmalloc: statistics' "$work/stats-file.err" && problems+=("a table went to stderr instead of the file")
    verdict "examples/stats: tables written to a file"
fi

echo "examples tests took $(($(date +%s) - start))s"
summary
