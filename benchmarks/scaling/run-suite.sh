#!/bin/bash
# The bundle's C workloads at the benchmark runner's full size (scale 1) and its
# default thread counts (larson 4, prodcons 2, contention 16), ROUNDS (5)
# alternating rounds each: one folder per group under $OUT, each with its
# scaling.csv and the printed table (table.txt).
here=$(cd "$(dirname "$0")" && pwd)
o=${OUT:-/tmp}
export ROUNDS=${ROUNDS:-5}
for spec in "small realloc frag large:1" "larson:4" "prodcons:2" "contention:16"; do
    ws=${spec%%:*}; t=${spec##*:}
    d="$o/$(echo "$ws" | tr ' ' '-')"; mkdir -p "$d"
    OUT=$d WORKLOADS="$ws" THREADS=$t SCALE_larson=1 SCALE_prodcons=1 SCALE_contention=1 "$here/scaling.sh" > "$d/table.txt" 2>&1
    rm -f "$d/one.txt" "$d/err.txt"
    echo "done $ws"
done
