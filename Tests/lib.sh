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
skip() { echo "SKIP: ${TEST_LABEL:+$TEST_LABEL }$*"; return 0; }
summary() { echo "$TESTS_PASSED passed, $TESTS_FAILED failed"; [ "$TESTS_FAILED" -eq 0 ]; }

# The cached stack walker's check line in FILE (a run of Tests/profile/walk.c with
# SWIFTMALLOC_PROFILE_WALK=check): sets WALK_COMPARED and WALK_DIFFERED (empty when
# the line is missing); true when at least 8000 of walk.c's 9,000 stacks came from
# learned rules and none differed from libunwind's.
walk_check_ok() {
    local line
    line=$(grep '^swiftmalloc: stack walk check: ' "$1")
    WALK_COMPARED=$(echo "$line" | sed -n 's/.*check: \([0-9]*\) cached walks.*/\1/p')
    WALK_DIFFERED=$(echo "$line" | sed -n 's/.*libunwind, \([0-9]*\) differed.*/\1/p')
    [ -n "$WALK_COMPARED" ] && [ -n "$WALK_DIFFERED" ] && [ "$WALK_COMPARED" -ge 8000 ] && [ "$WALK_DIFFERED" -eq 0 ]
}
