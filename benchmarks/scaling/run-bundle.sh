#!/bin/bash
# Thread scaling: larson, prodcons, contention at 1..16 threads under each allocator,
# alternating allocators within each round. Writes $OUT/scaling.csv.
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-/tmp}
nproc; uname -r; ldd --version | head -1
declare -A LIB=( [glibc]="" [jemalloc]="$here/lib/libjemalloc.so.2" [tcmalloc]="$here/lib/libtcmalloc_minimal.so.4" [mimalloc]="$here/lib/libmimalloc.so.2" [swiftmalloc]="$here/lib/libswiftmalloc.so" )
declare -A SCALE=( [larson]=0.5 [prodcons]=0.25 [contention]=2 )
echo "workload,threads,round,allocator,seconds,maxrss_kib" > "$out/scaling.csv"
for w in larson prodcons contention; do
  for t in 1 2 4 8 16; do
    for r in 1 2 3; do
      for a in glibc jemalloc tcmalloc mimalloc swiftmalloc; do
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
python3 - "$out/scaling.csv" <<'PY'
import csv,sys,statistics,collections
d=collections.defaultdict(list)
for row in csv.DictReader(open(sys.argv[1])):
    try: d[(row['workload'],int(row['threads']),row['allocator'])].append(float(row['seconds']))
    except ValueError: d[(row['workload'],int(row['threads']),row['allocator'])].append(float('nan'))
allocs=['glibc','jemalloc','tcmalloc','mimalloc','swiftmalloc']
for w in ['larson','prodcons','contention']:
    print(f"\n{w}: median seconds by threads")
    print("threads " + " ".join(f"{a:>11}" for a in allocs))
    for t in [1,2,4,8,16]:
        print(f"{t:>7} " + " ".join(f"{statistics.median(d[(w,t,a)]):>11.3f}" for a in allocs))
PY
