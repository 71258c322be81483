# Shared helpers for the shell test scripts. Source it; call pass/fail/skip, and
# `summary` at the end. Results are also appended to $RESULTS_FILE when set, so
# scripts/test.sh can total several scripts.
: "${RESULTS_FILE:=}"
TESTS_PASSED=0
TESTS_FAILED=0
pass() { TESTS_PASSED=$((TESTS_PASSED + 1)); echo "PASS: $*"; [ -n "$RESULTS_FILE" ] && echo "PASS $*" >>"$RESULTS_FILE"; return 0; }
fail() { TESTS_FAILED=$((TESTS_FAILED + 1)); echo "FAIL: $*"; [ -n "$RESULTS_FILE" ] && echo "FAIL $*" >>"$RESULTS_FILE"; return 0; }
summary() { echo "$TESTS_PASSED passed, $TESTS_FAILED failed"; [ "$TESTS_FAILED" -eq 0 ]; }
