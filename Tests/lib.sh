# Shared helpers for the shell test scripts. Source it; call pass/fail/skip, and
# `summary` at the end. Results are also appended to $RESULTS_FILE when set, so
# scripts/test.sh can total several scripts. TEST_LABEL, when set, prefixes every
# result's name (a suite run a second time under other settings).
: "${RESULTS_FILE:=}"
: "${TEST_LABEL:=}"
TESTS_PASSED=0
TESTS_FAILED=0
pass() { TESTS_PASSED=$((TESTS_PASSED + 1)); echo "PASS: ${TEST_LABEL:+$TEST_LABEL }$*"; [ -n "$RESULTS_FILE" ] && echo "PASS ${TEST_LABEL:+$TEST_LABEL }$*" >>"$RESULTS_FILE"; return 0; }
fail() { TESTS_FAILED=$((TESTS_FAILED + 1)); echo "FAIL: ${TEST_LABEL:+$TEST_LABEL }$*"; [ -n "$RESULTS_FILE" ] && echo "FAIL ${TEST_LABEL:+$TEST_LABEL }$*" >>"$RESULTS_FILE"; return 0; }
summary() { echo "$TESTS_PASSED passed, $TESTS_FAILED failed"; [ "$TESTS_FAILED" -eq 0 ]; }
