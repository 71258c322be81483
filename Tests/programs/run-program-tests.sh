#!/usr/bin/env bash
# Real-program tests for libswiftmalloc.so.
#
#   Tests/programs/run-program-tests.sh [LIBPATH]
#
# Every case runs a real program twice: once with the system allocator (glibc)
# and once with LD_PRELOAD=LIBPATH, and compares stdout and exit statuses.
# LIBPATH defaults to .build/release/libswiftmalloc.so. Any malloc replacement
# can be passed (e.g. /usr/lib/x86_64-linux-gnu/libjemalloc.so.2) to check the
# harness itself; the exported-symbol check (case "symbols") only applies to
# libswiftmalloc.so and is skipped for other libraries.
#
# Cases: preload sanity, python3 workload (also with PYTHONMALLOC=malloc),
# python3 regression-test modules, perl, git, sqlite3, gcc, g++ and a
# multi-threaded C++ program, process exit through pthread_exit(), an ordinary
# Swift program, sort, the library's dependencies and exported symbols, and
# trivial commands. A run that leaves processes behind fails as well.
#
# Python: Debian's /usr/bin/python3 is used for everything (not a pyenv or
# other python3 earlier on PATH), because the regression-test modules come
# from Debian's libpython3.X-testsuite package, which matches that
# interpreter.
#
# Missing tools are installed with apt-get when running as root (or with
# passwordless sudo). Environment knobs:
#   PROGRAM_TEST_TIMEOUT  seconds allowed for each program run (default 120)
#   KEEP_WORK=1           keep the temporary directory for inspection
#   PROGRAM_TESTS="a b"   run only the named cases: preload python perl git
#                         sqlite3 gcc c++ thread-exit swift sort symbols trivial
#   FORCE_SYMBOL_CHECK=1  run the symbol check against any library

set -u

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=../lib.sh
source "$ROOT/Tests/lib.sh"

LIB_ARG="${1:-$ROOT/.build/release/libswiftmalloc.so}"
STEP_TIMEOUT="${PROGRAM_TEST_TIMEOUT:-120}"
export LC_ALL=C TZ=UTC

if [ ! -f "$LIB_ARG" ]; then
    fail "programs/setup: library not found: $LIB_ARG"
    summary
    exit 1
fi
LIB="$(readlink -f "$LIB_ARG")"
LIB_NAME="$(basename "$LIB_ARG")"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/swiftmalloc-programs.XXXXXX")"
RES="$WORK/results"
RUN_DIR="$WORK/run"
mkdir -p "$RES"

# Every program run gets MARK in its environment, which its descendants
# inherit, so that processes left running after a run can be found (and
# killed) afterwards.
MARK="SWIFTMALLOC_PROGRAM_TEST=$WORK"

# Pids of live processes carrying MARK. A thread-group leader that has exited
# while another thread of its process still runs has an empty environ, so
# every thread's environ is looked at.
marked_pids() {
    grep -lzxF "$MARK" /proc/[0-9]*/task/[0-9]*/environ 2>/dev/null |
        cut -d/ -f3 | sort -un
}

cleanup() {
    # Programs of an interrupted run may still be going; end them (they are
    # recognised by MARK).
    local pids
    pids="$(marked_pids)"
    # shellcheck disable=SC2086
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null
    if [ "${KEEP_WORK:-0}" = 1 ]; then
        echo "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

SCRIPT_START=$SECONDS
echo "program tests: library $LIB (case timeout ${STEP_TIMEOUT}s, work dir $WORK)"

# ---------------------------------------------------------------------------
# Installing what is missing.

APT_UPDATED=0
SUDO=""
install_packages() {
    [ $# -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            SUDO="sudo -n"
        else
            echo "note: cannot install $* (not root, no sudo)"
            return 1
        fi
    fi
    echo "installing: $*"
    if [ "$APT_UPDATED" = 0 ]; then
        $SUDO apt-get update -qq >"$WORK/apt-update.log" 2>&1 || { tail -5 "$WORK/apt-update.log"; }
        APT_UPDATED=1
    fi
    if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >"$WORK/apt-install.log" 2>&1; then
        echo "note: apt-get install $* failed:"
        tail -5 "$WORK/apt-install.log"
        return 1
    fi
}

missing=()
[ -x /usr/bin/python3 ] || missing+=(python3)
command -v perl >/dev/null 2>&1 && perl -MDigest::MD5 -e1 2>/dev/null || missing+=(perl)
command -v git >/dev/null 2>&1 || missing+=(git)
command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
for tool in sort timeout sha256sum; do command -v $tool >/dev/null 2>&1 || { missing+=(coreutils); break; }; done
for tool in objdump nm readelf; do command -v $tool >/dev/null 2>&1 || { missing+=(binutils); break; }; done
command -v ldd >/dev/null 2>&1 || missing+=(libc-bin)
command -v diff >/dev/null 2>&1 || missing+=(diffutils)
install_packages "${missing[@]}"

PY=/usr/bin/python3
PY_VERSION="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo unknown)"
PY_TEST_MODULES=(test_dict test_list test_tuple test_set test_string test_unicode test_bytes test_json
    test_re test_collections test_deque test_sort test_threading)
py_has_tests() { [ -f "/usr/lib/python$PY_VERSION/test/test_dict.py" ]; }
if [ "$PY_VERSION" != unknown ] && ! py_has_tests; then
    install_packages "libpython$PY_VERSION-testsuite" || true
fi

# ---------------------------------------------------------------------------
# Running programs in both modes.

# Extra environment for the current run: empty for glibc, LD_PRELOAD=... for
# the preloaded run, plus any per-variant assignments, and always MARK.
MODE_ENV=()

# check_leftovers LABEL: after a run, wait a little for its processes to go
# away; record (in $RES/LABEL.leftover) and kill the ones that do not.
check_leftovers() {
    local label=$1 i pids
    for i in $(seq 1 20); do
        pids="$(marked_pids)"
        [ -z "$pids" ] && return 0
        sleep 0.25
    done
    {
        echo "processes still running 5s after the run ended:"
        local pid t
        for pid in $pids; do
            echo "  pid $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-120)"
            for t in /proc/"$pid"/task/*; do
                echo "    thread $(basename "$t") '$(cat "$t/comm" 2>/dev/null)' $(grep '^State' "$t/status" 2>/dev/null)"
            done
        done
    } >"$RES/$label.leftover"
    # shellcheck disable=SC2086
    kill -9 $pids 2>/dev/null
    sleep 0.5
}

# x CMD...: run one program of a case under the current mode, with a timeout.
# timeout and env themselves are never preloaded. The command line is logged
# so that a failure can be reproduced by hand.
x() {
    {
        printf '+ %s' "${MODE_ENV[*]:1}${MODE_ENV[1]:+ }"
        printf '%q ' "$@"
        printf '\n'
    } >>"$CMD_LOG"
    timeout -k 10 "$STEP_TIMEOUT" env ${MODE_ENV[@]+"${MODE_ENV[@]}"} "$@"
}

# run_variant LABEL SPEC CMD...: run CMD (a command or shell function) in a
# fresh $RUN_DIR under the mode given by SPEC ("glibc" or "preload", followed
# by optional VAR=value words). stdout goes to $RES/LABEL.out, with the exit
# status appended; stderr to $RES/LABEL.err.
run_variant() {
    local label=$1 spec=$2
    shift 2
    local -a words
    read -ra words <<<"$spec"
    MODE_ENV=("$MARK")
    [ "${words[0]}" = preload ] && MODE_ENV+=("LD_PRELOAD=$LIB")
    MODE_ENV+=("${words[@]:1}")
    CUR_LABEL=$label
    CMD_LOG="$RES/$label.cmds"
    : >"$CMD_LOG"
    rm -rf "$RUN_DIR"
    mkdir -p "$RUN_DIR"
    local rc
    (cd "$RUN_DIR" && "$@") >"$RES/$label.out" 2>"$RES/$label.err"
    rc=$?
    echo "exit status: $rc" >>"$RES/$label.out"
    MODE_ENV=()
    check_leftovers "$label"
    return 0
}

# show_failure BASE OTHER: print what differs, the preloaded run's stderr and
# the commands it ran.
show_failure() {
    local base=$1 other=$2
    echo "---- diff $base.out $other.out (first 40 lines)"
    diff -u "$RES/$base.out" "$RES/$other.out" | head -n 40
    if [ -s "$RES/$other.err" ]; then
        echo "---- stderr of $other (last 20 lines)"
        tail -n 20 "$RES/$other.err"
    fi
    echo "---- commands of $other (run in a scratch directory; last 10)"
    tail -n 10 "$RES/$other.cmds"
    echo "----"
}

# check_same NAME BASE OTHER: pass if OTHER's output equals BASE's and the
# preloaded run did not report a dynamic-loader problem. Processes left
# running by either run are a failure of their own.
check_same() {
    local name=$1 base=$2 other=$3 l
    for l in "$base" "$other"; do
        if [ -f "$RES/$l.leftover" ]; then
            fail "$name: run $l left processes running"
            cat "$RES/$l.leftover"
            tail -n 3 "$RES/$l.cmds"
            rm -f "$RES/$l.leftover"
        fi
    done
    if grep -q "cannot be preloaded\|ld.so: object" "$RES/$other.err" 2>/dev/null; then
        fail "$name: library was not preloaded: $(grep -m1 'ld.so' "$RES/$other.err")"
    elif cmp -s "$RES/$base.out" "$RES/$other.out"; then
        pass "$name"
    else
        fail "$name: output differs from the glibc run"
        show_failure "$base" "$other"
    fi
}

# compare NAME [--variant SPEC]... -- CMD...: run CMD with glibc, then
# preloaded (and once more per --variant), comparing each with glibc. With
# --base SPEC the glibc run uses SPEC instead of plain "glibc"; --no-plain
# (before any --variant) drops the plain preloaded run.
compare() {
    local name=$1
    shift
    local base_spec=glibc
    local -a variants=(preload)
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        case $1 in
            --variant) variants+=("$2"); shift 2 ;;
            --no-plain) variants=("${variants[@]:1}"); shift ;;
            --base) base_spec=$2; shift 2 ;;
            *) echo "compare: bad option $1" >&2; return 1 ;;
        esac
    done
    shift
    local slug=${name//\//_}
    run_variant "$slug.glibc" "$base_spec" "$@"
    local i=0 v
    for v in "${variants[@]}"; do
        local label="$slug.v$i"
        run_variant "$label" "$v" "$@"
        local shown=$name
        [ "$v" != preload ] && shown="$name [$v]"
        check_same "$shown" "$slug.glibc" "$label"
        i=$((i + 1))
    done
}

want() {
    [ -z "${PROGRAM_TESTS:-}" ] && return 0
    case " $PROGRAM_TESTS " in *" $1 "*) return 0 ;; esac
    return 1
}

timed() {
    local name=$1 start=$SECONDS rc
    shift
    "$@"
    rc=$?
    echo "   ($name: $((SECONDS - start))s)"
    return $rc
}

# ---------------------------------------------------------------------------
# Case: the library really replaces malloc in a preloaded process.

case_preload() {
    cat >"$WORK/whose_malloc.c" <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
int main(void) {
    void *(*volatile m)(size_t) = malloc;
    Dl_info info;
    if (!dladdr((void *)m, &info)) return 2;
    void *p = malloc(100);
    free(p);
    printf("%s\n", info.dli_fname);
    return 0;
}
EOF
    if ! gcc -O1 -o "$WORK/whose_malloc" "$WORK/whose_malloc.c" -ldl 2>"$RES/whose_malloc.err"; then
        fail "preload/setup: cannot compile probe"
        cat "$RES/whose_malloc.err"
        return 1
    fi
    local got
    got="$(timeout 30 env LD_PRELOAD="$LIB" "$WORK/whose_malloc" 2>"$RES/whose_malloc.err")"
    local rc=$?
    if [ $rc -ne 0 ]; then
        fail "preload/active: probe exited with status $rc under LD_PRELOAD=$LIB"
        tail -n 5 "$RES/whose_malloc.err"
        return 1
    fi
    if [ "$(readlink -f "$got")" = "$LIB" ]; then
        pass "preload/active: malloc resolves to $(basename "$LIB")"
    else
        fail "preload/active: malloc resolves to '$got', not $LIB"
        tail -n 5 "$RES/whose_malloc.err"
        return 1
    fi
}

# ---------------------------------------------------------------------------
# Case: python3.

# Timings and ordering of regrtest's output vary; print only the result
# section (which tests passed, failed, skipped), and return its exit status.
py_regrtest() {
    # --timeout: a hung test module is reported (with tracebacks) and ends
    # the run, instead of running into the case timeout.
    x "$PY" -m test --timeout 60 "${PY_TEST_MODULES[@]}" >"$RUN_DIR/regrtest.log" 2>&1
    local rc=$?
    sed -n '/^== Tests result/,/^Total duration/p' "$RUN_DIR/regrtest.log" |
        grep -v '^Total duration' | sed 's/ in [0-9].*//'
    if [ "$rc" -ne 0 ]; then
        echo "---- regrtest log tail" >&2
        tail -n 30 "$RUN_DIR/regrtest.log" >&2
        echo "---- failing or hanging tests" >&2
        grep -E 'Timeout \(|^(FAIL|ERROR): |\.\.\. (FAIL|ERROR)|^test_[a-z_]+ (failed|crashed)| line [0-9]+ in test_' \
            "$RUN_DIR/regrtest.log" | tail -n 10 >&2
    fi
    return "$rc"
}

case_python() {
    compare python/workload --variant "preload PYTHONMALLOC=malloc" -- \
        x "$PY" "$HERE/python_workload.py" 200000

    if ! py_has_tests; then
        pass "python/test-modules (skipped: Python $PY_VERSION regression tests not installed; needs libpython$PY_VERSION-testsuite)"
        return 0
    fi
    # PYTHONMALLOC=malloc on both sides: every object goes through malloc.
    compare python/test-modules --base "glibc PYTHONMALLOC=malloc" --no-plain \
        --variant "preload PYTHONMALLOC=malloc" -- py_regrtest
}

# ---------------------------------------------------------------------------
# Case: perl.

case_perl() {
    compare perl/workload -- x perl "$HERE/perl_workload.pl" 200000
    # shellcheck disable=SC2016
    compare perl/one-liner -- x perl -e '
        my %h; $h{join("-", $_, $_ * 7 % 1013)} = "v" x ($_ % 50) for 1 .. 150000;
        my $t = 0; $t += length $h{$_} for keys %h;
        my $s = join ",", sort { $a cmp $b } keys %h;
        $s =~ s/(\d+)-(\d+)/$2:$1/g;
        printf "%d %d %d %s\n", scalar(keys %h), $t, length($s), substr($s, 5000, 40);'
}

# ---------------------------------------------------------------------------
# Case: git.

git_steps() {
    export HOME="$RUN_DIR/home" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
    export GIT_AUTHOR_NAME="Ada Tester" GIT_AUTHOR_EMAIL="ada@example.com"
    export GIT_COMMITTER_NAME="Bob Committer" GIT_COMMITTER_EMAIL="bob@example.com"
    mkdir -p "$HOME"
    x git init -q -b main repo; echo "init: $?"
    cd repo || return 1
    x git config pack.threads 2
    "$PY" "$HERE/generate.py" tree . 400 0
    export GIT_AUTHOR_DATE="2024-01-01T10:00:00Z" GIT_COMMITTER_DATE="2024-01-01T10:00:00Z"
    x git add -A; echo "add: $?"
    x git commit -q -m "Initial import"; echo "commit 1: $?"
    find . -path ./.git -prune -o -name '*.txt' -print | sort | sed -n '1~10p' | xargs rm -f
    "$PY" "$HERE/generate.py" tree . 400 1
    export GIT_AUTHOR_DATE="2024-01-02T11:30:00Z" GIT_COMMITTER_DATE="2024-01-02T12:00:00Z"
    x git add -A; echo "add 2: $?"
    x git commit -q -m "Second revision: edit, delete and add files"; echo "commit 2: $?"
    x git mv dir03 renamed03; echo "mv: $?"
    "$PY" "$HERE/generate.py" tree . 400 2
    export GIT_AUTHOR_DATE="2024-01-03T09:15:00Z" GIT_COMMITTER_DATE="2024-01-03T09:15:00Z"
    x git add -A; echo "add 3: $?"
    x git commit -q -m "Third revision: rename a directory"; echo "commit 3: $?"
    x git tag -a v1 -m "version one"; echo "tag: $?"
    x git gc -q; echo "gc: $?"
    x git rev-parse HEAD HEAD~1 HEAD~2 v1
    x git log --stat --format='%H %an <%ae> %ad %cn %cd%n%s' --date=iso-strict
    # Outputs go to files rather than pipes: a process left running by a
    # program must not hold up the test (it is detected afterwards).
    x git diff --stat -M HEAD~2 HEAD >../diffstat.txt; echo "diff: $?"
    tail -n 3 ../diffstat.txt
    x git fsck --full --strict; echo "fsck: $?"
    x git count-objects -v >../count.txt; echo "count-objects: $?"
    grep -E '^(count|in-pack|packs|prune-packable|garbage):' ../count.txt
    x git cat-file --batch-all-objects --batch-check >../objects.txt; echo "cat-file: $?"
    sort ../objects.txt | sha256sum
    x git grep -c 'line 7 ' HEAD -- dir01 >../grep.txt; echo "grep: $?"
    head -n 5 ../grep.txt
    x git blame --line-porcelain HEAD -- renamed03/file0003.txt >../blame.txt; echo "blame: $?"
    sha256sum <../blame.txt
    x git archive --format=tar HEAD >../archive.tar; echo "archive: $?"
    sha256sum <../archive.tar
}

case_git() {
    compare git/repository -- git_steps
}

# ---------------------------------------------------------------------------
# Case: sqlite3.

sqlite_steps() {
    "$PY" "$HERE/generate.py" sql-inserts inserts.sql 100000
    cat >schema.sql <<'EOF'
CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, price REAL, note TEXT);
CREATE TABLE seq(x INTEGER PRIMARY KEY, sq INTEGER, label TEXT);
EOF
    cat >queries.sql <<'EOF'
BEGIN;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000)
INSERT INTO seq SELECT x, x * x % 1000003, printf('label-%06d-%s', x % 77777, substr('abcdefghijklmnop', 1 + x % 16)) FROM c;
COMMIT;
CREATE INDEX items_grp ON items(grp, price);
CREATE INDEX items_name ON items(name);
CREATE INDEX seq_label ON seq(label);
SELECT count(*), sum(grp), round(sum(price), 2), max(length(note)) FROM items;
SELECT grp, count(*), round(avg(price), 3), min(name), max(name) FROM items GROUP BY grp ORDER BY grp LIMIT 10;
SELECT count(DISTINCT name), count(DISTINCT note) FROM items;
SELECT label, count(*) FROM seq GROUP BY label ORDER BY count(*) DESC, label LIMIT 5;
SELECT i.grp, count(*), sum(s.sq) FROM items i JOIN seq s ON s.x = i.id WHERE i.grp < 5 GROUP BY i.grp ORDER BY i.grp;
SELECT id, name, rank() OVER (PARTITION BY grp ORDER BY price DESC, id) AS r FROM items WHERE grp = 42 ORDER BY r, id LIMIT 5;
SELECT length(group_concat(name, ',')) FROM (SELECT name FROM items ORDER BY name);
SELECT json_group_array(json_object('id', id, 'n', name)) FROM (SELECT id, name FROM items WHERE id % 5000 = 0 ORDER BY id);
DELETE FROM items WHERE grp % 3 = 0;
UPDATE items SET note = note || note WHERE grp % 5 = 1;
VACUUM;
SELECT count(*), sum(length(note)) FROM items;
PRAGMA integrity_check;
EOF
    x sqlite3 test.db <schema.sql; echo "schema: $?"
    x sqlite3 test.db <inserts.sql; echo "inserts: $?"
    x sqlite3 test.db <queries.sql; echo "queries: $?"
    x sqlite3 :memory: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000)
        SELECT count(*), sum(length(s)) FROM (SELECT printf('%0*d', x % 300, x) AS s FROM c ORDER BY s DESC);"
}

case_sqlite() {
    compare sqlite3/database -- sqlite_steps
}

# ---------------------------------------------------------------------------
# Case: gcc.

gcc_steps() {
    "$PY" "$HERE/generate.py" c-source gen.c 1000
    # Diagnostics go to stdout so they are compared as well.
    x gcc -O2 -Wall -c gen.c -o gen.o 2>&1; echo "compile: $?"
    sha256sum gen.o
    objdump -d gen.o | sha256sum
    x gcc -O2 -o gen gen.o; echo "link: $?"
    x ./gen; echo "run: $?"
    x gcc -O0 -fsyntax-only -Wall -Wextra gen.c >syntax.txt 2>&1; echo "syntax-only: $?"
    grep -c warning syntax.txt
}

case_gcc() {
    compare gcc/compile -- gcc_steps
}

# ---------------------------------------------------------------------------
# Case: multi-threaded C++ (g++ compiling it is compared too).

cxx_steps() {
    x g++ -O2 -pthread -Wall -Wextra -o cxx_threads "$HERE/cxx_threads.cpp" 2>&1; echo "compile: $?"
    objdump -d cxx_threads | tail -n +3 | sha256sum
    cp cxx_threads "$WORK/$CUR_LABEL.bin" 2>/dev/null
    return 0
}

case_cxx() {
    compare g++/compile -- cxx_steps
    local bin="$WORK/g++_compile.glibc.bin"
    if [ ! -x "$bin" ]; then
        fail "c++/threads: g++ failed to compile cxx_threads.cpp"
        return 0
    fi
    # Run the glibc-compiled binary several times (thread interleavings vary).
    compare "c++/threads" -- x "$bin"
    local i
    for i in 1 2; do
        run_variant "cxx.repeat$i" preload x "$bin"
        check_same "c++/threads (repeat $i)" "c++_threads.glibc" "cxx.repeat$i"
    done
}

# ---------------------------------------------------------------------------
# Case: a process whose threads all leave with pthread_exit() still ends
# (see thread_exit.c; Python's test_threading depends on it).

case_thread_exit() {
    if ! gcc -O2 -Wall -pthread -o "$WORK/thread_exit" "$HERE/thread_exit.c" 2>"$RES/thread_exit.cc.err"; then
        fail "c/thread-exit: cannot compile thread_exit.c"
        cat "$RES/thread_exit.cc.err"
        return 0
    fi
    compare c/thread-exit -- x "$WORK/thread_exit"
}

# ---------------------------------------------------------------------------
# Case: an ordinary Swift program.

swift_steps() {
    x swiftc -O -o swift_program "$HERE/swift_program.swift" 2>&1; echo "compile: $?"
    cp swift_program "$WORK/$CUR_LABEL.bin" 2>/dev/null
    return 0
}

case_swift() {
    if ! command -v swiftc >/dev/null 2>&1; then
        fail "swift/program: swiftc not found on PATH"
        return 0
    fi
    # The Swift driver is itself a Swift program: compiling under the preload
    # already exercises the Swift runtime next to the library.
    run_variant swift.compile.glibc glibc swift_steps
    if [ ! -x "$WORK/swift.compile.glibc.bin" ]; then
        fail "swift/compile: swiftc failed with glibc"
        cat "$RES/swift.compile.glibc.out"
        return 0
    fi
    run_variant swift.compile.preload preload swift_steps
    check_same "swift/compile (swiftc preloaded)" swift.compile.glibc swift.compile.preload
    compare swift/program -- x "$WORK/swift.compile.glibc.bin"
    if [ -x "$WORK/swift.compile.preload.bin" ]; then
        run_variant swift.built-preloaded glibc x "$WORK/swift.compile.preload.bin"
        check_same "swift/program (built by preloaded swiftc)" swift_program.glibc swift.built-preloaded
    fi
}

# ---------------------------------------------------------------------------
# Case: sort.

sort_steps() {
    mkdir -p tmp
    x sort -S 16M -T tmp --parallel=2 "$WORK/sort-input.txt" >sorted.txt; echo "sort: $?"
    sha256sum sorted.txt
    x sort -S 16M -T tmp --parallel=2 -t ' ' -k3,3n -k1,1 -s "$WORK/sort-input.txt" >numeric.txt; echo "sort -n: $?"
    sha256sum numeric.txt
    x sort -u -S 64M -T tmp -k1,1 "$WORK/sort-input.txt" >unique.txt; echo "sort -u: $?"
    sha256sum unique.txt
    x sort -c sorted.txt; echo "check: $?"
}

case_sort() {
    "$PY" "$HERE/generate.py" sort-input "$WORK/sort-input.txt" 1500000
    compare sort/large-file -- sort_steps
    rm -f "$WORK/sort-input.txt"
}

# ---------------------------------------------------------------------------
# Case: dependencies and exported symbols of the library.

case_symbols() {
    if [ "$LIB_NAME" != libswiftmalloc.so ] && [ "${FORCE_SYMBOL_CHECK:-0}" != 1 ]; then
        pass "symbols/check (skipped: only meaningful for libswiftmalloc.so, got $LIB_NAME)"
        return 0
    fi
    local runtime='swift|Foundation|dispatch|BlocksRuntime|icu'
    local needed
    needed="$(readelf -d "$LIB" | grep NEEDED)"
    if echo "$needed" | grep -Eiq "$runtime"; then
        fail "symbols/needed: NEEDED entries name a Swift runtime library"
        echo "$needed"
    else
        pass "symbols/needed: no Swift runtime in NEEDED ($(echo "$needed" | sed -n 's/.*\[\(.*\)\]/\1/p' | tr '\n' ' '))"
    fi
    local deps
    deps="$(ldd "$LIB" 2>&1)"
    if echo "$deps" | grep -Eiq "$runtime|not found"; then
        fail "symbols/ldd: ldd shows a Swift runtime library or a missing dependency"
        echo "$deps"
    else
        pass "symbols/ldd: no Swift runtime among the loaded dependencies"
    fi

    local defined
    defined="$(nm -D --defined-only "$LIB" | awk '{print $NF}' | sed 's/@.*//')"
    local leaked
    # swift_* runtime entry points, and mangled names in the standard
    # library's namespace ($ss..., $sS...), would interpose on libswiftCore's.
    leaked="$(echo "$defined" | grep -E 'swift_|^_?\$s[sS]' | grep -v SwiftMalloc | head -n 20)"
    if [ -n "$leaked" ]; then
        fail "symbols/no-swift-runtime: library exports Swift runtime or standard library symbols"
        echo "$leaked"
    else
        pass "symbols/no-swift-runtime: no swift_* or Swift standard library symbols exported"
    fi
    local mangled
    mangled="$(echo "$defined" | grep -c '^\$s' || true)"
    [ "$mangled" -gt 0 ] && echo "   note: $mangled other Swift-mangled symbols are exported"

    local required="malloc free calloc realloc reallocarray posix_memalign aligned_alloc memalign valloc pvalloc malloc_usable_size malloc_trim mallinfo2 malloc_stats mallopt"
    local functions
    functions="$(nm -D --defined-only "$LIB" | awk '$2 ~ /^[TWi]$/ {print $3}' | sed 's/@.*//')"
    local missing_syms=() sym
    for sym in $required; do
        echo "$functions" | grep -qx "$sym" || missing_syms+=("$sym")
    done
    if [ ${#missing_syms[@]} -eq 0 ]; then
        pass "symbols/exports: all $(echo "$required" | wc -w) allocator entry points exported"
    else
        fail "symbols/exports: not exported as functions: ${missing_syms[*]}"
    fi
}

# ---------------------------------------------------------------------------
# Case: trivial commands.

case_trivial() {
    compare trivial/ls -- x ls -la /usr/lib
    compare trivial/true -- x true
}

# ---------------------------------------------------------------------------

if want preload; then
    timed preload case_preload || {
        echo "the library is not active in preloaded processes; other cases would prove nothing"
        summary
        exit 1
    }
fi
want python && timed python case_python
want perl && timed perl case_perl
want git && timed git case_git
want sqlite3 && timed sqlite3 case_sqlite
want gcc && timed gcc case_gcc
want c++ && timed c++ case_cxx
want thread-exit && timed thread-exit case_thread_exit
want swift && timed swift case_swift
want sort && timed sort case_sort
want symbols && timed symbols case_symbols
want trivial && timed trivial case_trivial

echo "program tests took $((SECONDS - SCRIPT_START))s"
summary
