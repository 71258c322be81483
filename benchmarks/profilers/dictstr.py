"""dictstr: a dict- and str-heavy Python program for measuring heap profilers.

    PYTHONMALLOC=malloc /usr/bin/python3 dictstr.py [SCALE]

Run with PYTHONMALLOC=malloc so that every object goes through malloc (CPython's
own small-object allocator would otherwise serve everything up to 512 bytes and
hide it from any malloc-level profiler). Each round builds a dictionary of
formatted string keys holding small records, joins, splits and counts the keys,
deletes half the dictionary and keeps every fourth one alive, so the heap grows
to tens of MiB and churns. Deterministic: prints one checksum line.
"""
import sys


def make_record(i, rnd, n):
    key = "item-%d-%d" % ((i * 7919) % n, rnd)
    return key, [key.upper(), str(i * rnd), key[::-1], {"i": i, "r": rnd, "tag": key[:6]}]


def build(n, rnd):
    d = {}
    for i in range(n):
        k, v = make_record(i, rnd, n)
        d[k] = v
    return d


def digest(d):
    joined = " ".join(k for k in d if k.endswith("3"))
    parts = joined.split(" ")
    counts = {}
    for p in parts:
        counts[p[:8]] = counts.get(p[:8], 0) + 1
    text = "\n".join("%s=%s" % (k, v[1]) for k, v in d.items())
    lines = text.splitlines()
    return len(parts) + len(counts) + len(lines) + len(text)


def main():
    scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    n = max(100, int(20000 * scale))
    kept = []
    total = 0
    for rnd in range(12):
        d = build(n, rnd)
        total += len(d) + digest(d)
        for idx, k in enumerate(list(d)):
            if idx % 2:
                del d[k]
        if rnd % 4 == 0:
            kept.append(d)
        ordered = sorted((v[2], k) for k, v in d.items())
        total += len(ordered[len(ordered) // 2][0])
    print("dictstr: checksum=%d" % (total + sum(len(x) for x in kept)))


main()
