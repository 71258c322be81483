#!/bin/bash
# Thread scaling: larson, prodcons, contention at 1..16 threads under each allocator,
# alternating allocators within each round: wall time and peak RSS (bin/measure:
# ru_maxrss of the child). Writes $OUT/scaling.csv.
# Every lib/libswiftmalloc*.so is an allocator of its own (libswiftmalloc-NAME.so
# as swiftmalloc-NAME), so two builds can be compared in one run.
#   ROUNDS (3), THREADS ("1 2 4 8 16") and WORKLOADS ("larson prodcons contention")
#   narrow a run; the single-threaded workloads (small realloc frag large) can be
#   named too and run once per round, without a thread count. SCALE_<workload>
#   overrides a workload's scale (e.g. SCALE_larson=1, the runner's full size).
#   VARIANTS adds runs of libswiftmalloc.so under settings, as space-separated
#   NAME:VAR=VALUE[,VAR=VALUE] (e.g. "shards1:SWIFTMALLOC_SHARDS=1").
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
declare -A ENVS=()
for v in ${VARIANTS:-}; do
    name=swiftmalloc-${v%%:*}
    LIB[$name]=$here/lib/libswiftmalloc.so
    ENVS[$name]=${v#*:}
    allocs="$allocs $name"
done
declare -A SCALE=( [larson]=0.5 [prodcons]=0.25 [contention]=2 [small]=1 [realloc]=1 [frag]=1 [large]=1 )
declare -A THREADED=( [larson]=1 [prodcons]=1 [contention]=1 )
echo "workload,threads,round,allocator,seconds,maxrss_kib" > "$out/scaling.csv"
for w in $workloads; do
  scale_var=SCALE_$w; scale=${!scale_var:-${SCALE[$w]}}
  wthreads=$threads; [ -n "${THREADED[$w]:-}" ] || wthreads=1
  for t in $wthreads; do
    targ=(); [ -n "${THREADED[$w]:-}" ] && targ=("$t")
    for r in $(seq 1 "$rounds"); do
      for a in $allocs; do
        pre=(); [ -n "${LIB[$a]}" ] && pre=(-p "${LIB[$a]}")
        vars=(); [ -n "${ENVS[$a]:-}" ] && IFS=, read -ra vars <<< "${ENVS[$a]}"
        env "${vars[@]}" "$here/bin/measure" "${pre[@]}" -t 60 -o "$out/one.txt" -- "$here/bin/$w" "$scale" "${targ[@]}" >/dev/null 2>"$out/err.txt"
        secs=$(sed -n 's/^wall_s=//p' "$out/one.txt"); rss=$(sed -n 's/^maxrss_kib=//p' "$out/one.txt")
        grep -qx 'exit=0' "$out/one.txt" || secs="FAIL"
        echo "$w,$t,$r,$a,$secs,$rss" >> "$out/scaling.csv"
      done
    done
    echo "done $w t=$t"
  done
done
python3 - "$out/scaling.csv" $allocs <<'PY'
import csv,sys,statistics,collections
d=collections.defaultdict(list); m=collections.defaultdict(list)
for row in csv.DictReader(open(sys.argv[1])):
    k=(row['workload'],int(row['threads']),row['allocator'])
    try: d[k].append(float(row['seconds']))
    except ValueError: d[k].append(float('nan'))
    try: m[k].append(int(row['maxrss_kib'])/1024)
    except ValueError: m[k].append(float('nan'))
allocs=sys.argv[2:]
for w in sorted({k[0] for k in d}, key=['small','larson','prodcons','realloc','frag','large','contention'].index):
    for title,v,fmt in (("median seconds",d,"{:>20.3f}"),("median peak RSS, MiB",m,"{:>20.1f}")):
        print(f"\n{w}: {title} by threads")
        print("threads " + " ".join(f"{a:>20}" for a in allocs))
        for t in sorted({k[1] for k in d if k[0]==w}):
            print(f"{t:>7} " + " ".join(fmt.format(statistics.median(v[(w,t,a)])) for a in allocs))
PY
