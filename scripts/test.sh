#!/usr/bin/env bash
# The whole test suite. Installs what it needs, builds the library in release mode,
# runs the C tests (preloaded and linked), and the real programs under preload
# (a second time with mixed spans on).
# Prints "N passed, N failed" last; exits non-zero if anything failed.
set -u
cd "$(dirname "$0")/.."
scripts/install-deps.sh || { echo "dependency installation failed"; exit 1; }
swift build -c release 2>&1 | tail -n 3
lib="$PWD/.build/release/libswiftmalloc.so"
cli="$PWD/.build/release/swiftmalloc-cli"
[ -f "$lib" ] || { echo "build failed: $lib missing"; echo "0 passed, 1 failed"; exit 1; }
results=$(mktemp)
trap 'rm -f "$results"' EXIT
export RESULTS_FILE="$results"
for suite in Tests/run-c-tests.sh Tests/run-mode-tests.sh Tests/run-profiler-tests.sh Tests/run-examples-tests.sh \
             Tests/run-reliability-tests.sh Tests/programs/run-program-tests.sh Tests/run-bench-smoke.sh; do
    echo "== $suite"
    if [ ! -f "$suite" ]; then echo "FAIL $suite: missing" >>"$results"; continue; fi
    case "$suite" in
        *profiler*) bash "$suite" "$lib" "$cli" || true ;;
        *) bash "$suite" "$lib" || true ;;
    esac
done
# The real programs again with mixed spans on (SWIFTMALLOC_MIXED=1).
echo "== Tests/programs/run-program-tests.sh with SWIFTMALLOC_MIXED=1"
TEST_LABEL="[mixed spans]" SWIFTMALLOC_MIXED=1 PROGRAM_TESTS="python perl git sqlite3 gcc c++ thread-exit swift" \
    bash Tests/programs/run-program-tests.sh "$lib" || true
passed=$(grep -c '^PASS' "$results")
failed=$(grep -c '^FAIL' "$results")
if [ "$failed" -gt 0 ]; then
    echo "failures:"
    grep '^FAIL' "$results" | sed 's/^/  /'
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
