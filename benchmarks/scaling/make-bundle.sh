#!/usr/bin/env bash
# Builds a self-contained folder for measuring thread scaling on another machine
# (one without package registries): the C workloads, libswiftmalloc.so and
# the peers' libraries, the measuring tool and the script that runs them.
#   benchmarks/scaling/make-bundle.sh DIR && copy DIR there && OUT=. DIR/scaling.sh
# The script prints tables of medians per thread count (1, 2, 4, 8, 16): wall time
# and peak RSS; it writes scaling.csv (results/*-scaling-16core.csv are such runs).
# DIR/suite.sh runs every C workload at the runner's full size instead
# (results/*-suite-16core.csv).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:?usage: make-bundle.sh DIR}
mkdir -p "$dir/bin" "$dir/lib"
for w in larson prodcons contention small realloc frag large; do
    gcc -O2 -pthread -o "$dir/bin/$w" "$root/benchmarks/workloads/$w.c" -I"$root/benchmarks/workloads" -lm
done
gcc -O2 -o "$dir/bin/measure" "$root/benchmarks/tools/measure.c"
cp "$root/.build/release/libswiftmalloc.so" "$dir/lib/" && strip "$dir/lib/libswiftmalloc.so"
for l in libjemalloc.so.2 libtcmalloc_minimal.so.4 libmimalloc.so.2; do cp -L "/usr/lib/x86_64-linux-gnu/$l" "$dir/lib/"; done
cp "$root/benchmarks/scaling/run-bundle.sh" "$dir/scaling.sh"
cp "$root/benchmarks/scaling/run-suite.sh" "$dir/suite.sh"
chmod +x "$dir/scaling.sh" "$dir/suite.sh"
echo "bundle ready in $dir"
