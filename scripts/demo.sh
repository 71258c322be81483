#!/usr/bin/env bash
# The main job in one command: build libswiftmalloc.so, preload it into real
# programs with statistics on, and show what the allocator reports for each.
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release 2>&1 | tail -n 1
lib="$PWD/.build/release/libswiftmalloc.so"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

run() {
    local title=$1; shift
    echo
    echo "=== $title"
    SWIFTMALLOC_STATS=1 LD_PRELOAD="$lib" "$@"
}

run "python3: 200,000-key dict of strings" python3 -c '
d = {f"key{i}": str(i) * 3 for i in range(200000)}
print(len(d), sum(len(v) for v in d.values()))'

run "sqlite3: 100,000 inserts and an index" sqlite3 "$work/demo.db" '
create table t(id integer primary key, name text, n integer);
with recursive c(i) as (select 1 union all select i + 1 from c where i < 100000)
insert into t(name, n) select printf("name-%d", i), i % 97 from c;
create index t_n on t(n);
select count(*), sum(n) from t;'

mkdir -p "$work/repo"
for i in $(seq 1 200); do echo "file $i" >"$work/repo/f$i.txt"; done
run "git: init, add and commit 200 files" sh -c "cd '$work/repo' && git init -q && git add . && git -c user.name=demo -c user.email=demo@example.com commit -qm demo && git log --oneline | wc -l"
