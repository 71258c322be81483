"""dictstr: a dict- and str-heavy Python program (run under the allocator).

    python3 dictstr.py [SCALE]

Builds dictionaries of formatted string keys holding lists of derived strings,
joins, splits and counts them, deletes half of each dictionary and keeps a
few alive, so the heap grows to tens of MiB and churns. Deterministic: prints
one checksum line.
"""
import sys

scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
n = max(100, int(25000 * scale))
rounds = 12
kept = []
total = 0
for rnd in range(rounds):
    d = {}
    for i in range(n):
        k = "key-%d-%d" % ((i * 7919) % n, rnd)
        d[k] = [k.upper(), str(i * rnd), k[::-1], {"i": i, "r": rnd}]
    joined = " ".join(k for k in d if k.endswith("1"))
    parts = joined.split(" ")
    counts = {}
    for p in parts:
        counts[p[:7]] = counts.get(p[:7], 0) + 1
    text = "\n".join("%s=%s" % (k, v[1]) for k, v in d.items())
    lines = text.splitlines()
    total += len(d) + len(parts) + len(counts) + len(lines) + len(text)
    for idx, k in enumerate(list(d)):
        if idx % 2:
            del d[k]
    if rnd % 4 == 0:
        kept.append(d)
    tuples = sorted((v[2], k) for k, v in d.items())
    total += len(tuples[len(tuples) // 2][0])
print("checksum=%d" % (total + sum(len(x) for x in kept)))
