"""Dict/string-heavy Python workload with deterministic output.

Used by run-program-tests.sh: the output under the system allocator and under
the preloaded allocator (with and without PYTHONMALLOC=malloc) must match.
Everything printed is independent of hash randomisation and of addresses.
"""
import hashlib
import json
import sys
import threading


def digest(obj):
    return hashlib.sha256(repr(obj).encode()).hexdigest()[:16]


def lcg(seed):
    state = seed
    while True:
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        yield state >> 33


def dict_phase(n):
    rnd = lcg(42)
    d = {}
    for i in range(n):
        key = "key-%06d-%x" % (i, next(rnd) & 0xFFFF)
        d[key] = [i, str(i) * (i % 7 + 1), (i * 31) % 1009]
    # Delete a third, grow again, so tables are resized in both directions.
    for i, k in enumerate(sorted(d)):
        if i % 3 == 0:
            del d[k]
    for i in range(n // 2):
        d["extra-%d" % i] = {"v": i, "s": "x" * (i % 50)}
    keys = sorted(d)
    total = sum(len(k) for k in keys)
    print("dict: size=%d keylen=%d first=%s last=%s digest=%s"
          % (len(d), total, keys[0], keys[-1], digest(keys[::997])))


def string_phase(n):
    parts = []
    for i in range(n):
        parts.append(("%d:" % i) + "abcdefghij"[i % 10] * (i % 40))
    joined = ",".join(parts)
    split = joined.split(",")
    upper = joined.upper()
    replaced = joined.replace("a", "AA").replace("j", "")
    words = [s[::-1] for s in split]
    words.sort()
    builder = []
    for w in words[:20000]:
        builder.append(w)
        builder.append("|")
    s = "".join(builder)
    print("strings: joined=%d split=%d upper=%s replaced=%d built=%d digest=%s"
          % (len(joined), len(split), hashlib.sha256(upper.encode()).hexdigest()[:16],
             len(replaced), len(s), digest(words[::1000])))


def sort_phase(n):
    rnd = lcg(7)
    nums = [next(rnd) % 1000003 for _ in range(n)]
    strs = ["%08d" % (x * 7919 % 100000007) for x in nums]
    tuples = sorted(zip(strs, nums), key=lambda t: (t[1] % 97, t[0]))
    print("sort: nums=%s strs=%s tuples=%s"
          % (digest(sorted(nums)[::1000]), digest(sorted(strs)[::1000]), digest(tuples[::1000])))


def json_phase(n):
    doc = {
        "items": [
            {"id": i, "name": "item-%d" % i, "tags": ["t%d" % (i % 13), "u%d" % (i % 7)],
             "price": i * 0.25, "nested": {"a": [i, i + 1, i + 2], "b": None, "c": i % 2 == 0}}
            for i in range(n)
        ],
        "meta": {"count": n, "title": "caf\u00e9 \u2603 " * 10},
    }
    text = json.dumps(doc, sort_keys=True)
    back = json.loads(text)
    again = json.dumps(back, sort_keys=True, indent=1)
    assert back == doc
    print("json: len=%d indented=%d sha=%s"
          % (len(text), len(again), hashlib.sha256(text.encode()).hexdigest()[:16]))


def object_phase(n):
    class Node:
        __slots__ = ("value", "children", "label")

        def __init__(self, value):
            self.value = value
            self.children = []
            self.label = "node%d" % value

    rnd = lcg(99)
    root = Node(0)
    nodes = [root]
    for i in range(1, n):
        node = Node(i)
        # Bias towards recent nodes so the tree gets some depth.
        back = next(rnd) % min(len(nodes), 64)
        nodes[len(nodes) - 1 - back].children.append(node)
        nodes.append(node)
    # Iterative traversal, so deep trees do not hit the recursion limit.
    total, depth_max, stack = 0, 0, [(root, 0)]
    while stack:
        node, depth = stack.pop()
        total += node.value
        depth_max = max(depth_max, depth)
        stack.extend((c, depth + 1) for c in node.children)
    sets = [set(range(i, i + 50)) for i in range(0, 5000, 5)]
    union = set().union(*sets)
    print("objects: total=%d depth=%d union=%d bytes=%d"
          % (total, depth_max, len(union), len(bytes(range(256)) * 1000)))


def thread_phase():
    results = [None] * 4

    def work(idx):
        d = {}
        for i in range(40000):
            d["t%d-%d" % (idx, i)] = "v" * (i % 30)
        results[idx] = (len(d), sum(len(v) for v in d.values()))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("threads: %s" % (results,))


def main():
    scale = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
    dict_phase(scale)
    string_phase(scale // 2)
    sort_phase(scale // 2)
    json_phase(scale // 20)
    object_phase(scale // 4)
    thread_phase()
    print("done")


if __name__ == "__main__":
    main()
