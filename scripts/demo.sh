#!/usr/bin/env bash
# The main job in one command: build libswiftmalloc.so and the swiftmalloc
# command, preload the allocator into a real program with the heap profiler on,
# and show where the memory went (call sites, leaks, fragmentation, timeline).
# The flame graph is written to swiftmalloc-demo.svg in the current directory.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
(cd "$root" && swift build -c release 2>&1 | tail -n 1)
swiftmalloc="$root/.build/release/swiftmalloc-cli"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A Python program that builds and keeps some structures, with every object
# allocated through malloc (CPython's own small-object pool would hide them).
cat >"$work/demo.py" <<'PY'
import json
cache = {}
def load(n):
    return {f"user{i}": {"name": "x" * (i % 50), "tags": [str(j) for j in range(i % 7)]} for i in range(n)}
def remember(key, value):
    cache[key] = json.dumps(value)
users = load(60000)
for i in range(0, 60000, 3):
    remember(i, users[f"user{i}"])
del users
print(len(cache), "entries cached")
PY

echo "== python3, profiled with SwiftMalloc (swiftmalloc run -- python3 demo.py)"
PYTHONMALLOC=malloc "$swiftmalloc" run --top 8 --report "$work/demo.%p.report" -- python3 "$work/demo.py"
report=$(ls "$work"/demo.*.report | head -n 1)
"$swiftmalloc" report "$report" --format svg --metric peak-bytes --output swiftmalloc-demo.svg >/dev/null
echo
echo "flame graph (bytes live at the peak) and utilization timeline: $PWD/swiftmalloc-demo.svg"
