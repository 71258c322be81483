#!/usr/bin/env bash
# A seconds-long smoke run of the benchmark runner (tiny sizes, one round): every
# workload under every allocator must run and print the same result as under glibc.
# No timing is checked. Usage: Tests/run-bench-smoke.sh LIBPATH
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/lib.sh"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if "$here/../benchmarks/run.sh" --quick --lib "$1" >"$out" 2>&1; then
    pass "benchmarks: quick run of every workload under every allocator"
else
    fail "benchmarks: quick run failed"
    tail -n 30 "$out"
fi
# The callgrind tables: a count for swiftmalloc on the fast path and per workload.
if grep -Eq '^\| swiftmalloc \| [0-9]+ \| [0-9]+ \| [0-9.]+ \|$' "$out" &&
   grep -Eq '^\| small( \| [0-9.]+)+ \| [0-9.]+ \|$' "$out"; then
    pass "benchmarks: instruction counts of the fast path and of the workloads"
else
    fail "benchmarks: no instruction counts in the quick run's tables"
    grep -A12 -E '^## (Fast path|Instructions)' "$out" | head -40
fi
summary
