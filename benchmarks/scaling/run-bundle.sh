#!/bin/bash
# Thread scaling: larson, prodcons, contention at 1..16 threads under each allocator,
# alternating allocators within each round. Writes $OUT/scaling.csv.
# Every lib/libswiftmalloc*.so is an allocator of its own (libswiftmalloc-NAME.so
# as swiftmalloc-NAME), so two builds can be compared in one run.
#   ROUNDS (3), THREADS ("1 2 4 8 16") and WORKLOADS ("larson prodcons contention")
#   narrow a run.
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-/tmp}
rounds=${ROUNDS:-3}
threads=${THREADS:-1 2 4 8 16}
workloads=${WORKLOADS:-larson prodcons contention}
nproc; uname -r; ldd --version | head -1
declare -A LIB=( [glibc]="" [jemalloc]="$here/lib/libjemalloc.so.2" [tcmalloc]="$here/lib/libtcmalloc_minimal.so.4" [mimalloc]="$here/lib/libmimalloc.so.2" )
allocs="glibc jemalloc tcmalloc mimalloc"
for f in "$here"/lib/libswiftmalloc*.so; do
    name=$(basename "$f" .so); name=${name#lib}
    LIB[$name]=$f
    allocs="$allocs $name"
done
declare -A SCALE=( [larson]=0.5 [prodcons]=0.25 [contention]=2 )
echo "workload,threads,round,allocator,seconds,maxrss_kib" > "$out/scaling.csv"
for w in $workloads; do
  for t in $threads; do
    for r in $(seq 1 "$rounds"); do
      for a in $allocs; do
        s=$(date +%s%N)
        if [ -n "${LIB[$a]}" ]; then LD_PRELOAD=${LIB[$a]} timeout 60 "$here/bin/$w" ${SCALE[$w]} $t >/dev/null 2>"$out/err.txt"; rc=$?
        else timeout 60 "$here/bin/$w" ${SCALE[$w]} $t >/dev/null 2>"$out/err.txt"; rc=$?; fi
        e=$(date +%s%N)
        secs=$(awk -v a=$s -v b=$e 'BEGIN{printf "%.4f", (b-a)/1e9}')
        [ $rc -eq 0 ] || secs="FAIL$rc"
        echo "$w,$t,$r,$a,$secs," >> "$out/scaling.csv"
      done
    done
    echo "done $w t=$t"
  done
done
python3 - "$out/scaling.csv" $allocs <<'PY'
import csv,sys,statistics,collections
d=collections.defaultdict(list)
for row in csv.DictReader(open(sys.argv[1])):
    try: d[(row['workload'],int(row['threads']),row['allocator'])].append(float(row['seconds']))
    except ValueError: d[(row['workload'],int(row['threads']),row['allocator'])].append(float('nan'))
allocs=sys.argv[2:]
for w in sorted({k[0] for k in d}, key=['larson','prodcons','contention'].index):
    print(f"\n{w}: median seconds by threads")
    print("threads " + " ".join(f"{a:>20}" for a in allocs))
    for t in sorted({k[1] for k in d if k[0]==w}):
        print(f"{t:>7} " + " ".join(f"{statistics.median(d[(w,t,a)]):>20.3f}" for a in allocs))
PY
