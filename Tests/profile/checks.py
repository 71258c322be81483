#!/usr/bin/env python3
"""Checks on the output of `swiftmalloc report` and `swiftmalloc diff`, used by
Tests/run-profiler-tests.sh. Each check prints what is wrong and exits 1, or
prints a one-line summary and exits 0.

    checks.py leaks JSON SCALE            leaky's live-at-exit sites, exact
    checks.py live JSON FUNCTION BYTES COUNT [ALLOCS]   one function's sites, exact
    checks.py sampled JSON FUNCTION BYTES TOLERANCE
    checks.py sampled-allocs JSON FUNCTION COUNT BYTES TOLERANCE   estimated allocations
    checks.py one-stack JSON FUNCTION COUNT DEPTH   all of a function's allocations at one stack
    checks.py caller-live JSON FUNCTION BYTES COUNT   live blocks whose second frame is FUNCTION
    checks.py collapsed FILE              folded stacks of a leaky run
    checks.py diff JSON                   leaky LEAKY_SCALE=1 -> 2
    checks.py png FILE                    a rendered SVG is not blank
    checks.py fixture-json JSON LINES     a.report / b.report of fixtures/
    checks.py fixture-diff JSON LINES     diff a.report b.report
    checks.py fixture-sampled JSON
"""
import json
import re
import struct
import sys
import zlib

# leaky.c: function -> (live bytes, live blocks) at LEAKY_SCALE=1.
LEAKY = {
    "leak_small": (480, 10),
    "leak_medium": (15000, 3),
    "leak_large": (300000, 1),
    "leak_in_thread": (700, 7),
    "leak_calloc": (500, 5),
    "leak_realloc": (4096, 1),
}

problems = []


def problem(message):
    problems.append(message)


def finish(summary):
    if problems:
        for p in problems:
            print("    " + p)
        sys.exit(1)
    print("    " + summary)
    sys.exit(0)


def load(path):
    with open(path) as fh:
        return json.load(fh)


def top_function(site):
    return site["frames"][0]["function"] if site["frames"] else None


def top_file(site):
    return (site["frames"][0].get("file") or "") if site["frames"] else ""


def describe(site):
    frames = " <- ".join(
        f"{f['function']}" + (f" ({f['file'].rsplit('/', 1)[-1]}:{f['line']})" if f.get("file") else "")
        for f in site["frames"][:4]
    )
    return f"site {site.get('id')}: {site['live_bytes']} B in {site['live_count']} blocks at {frames or '(no stack)'}"


def live_by_function(doc):
    """function -> [live bytes, live blocks] over live sites, by top frame."""
    out = {}
    for site in doc["sites"]:
        if site["live_bytes"] == 0 and site["live_count"] == 0:
            continue
        f = top_function(site)
        acc = out.setdefault(f, [0, 0])
        acc[0] += site["live_bytes"]
        acc[1] += site["live_count"]
    return out


def check_leaks(path, scale):
    doc = load(path)
    if doc["source"]["mode"] != "full":
        problem(f"mode is {doc['source']['mode']!r}, expected 'full'")
    live = live_by_function(doc)
    for function, (bytes_, count) in LEAKY.items():
        want = (bytes_ * scale, count * scale)
        got = tuple(live.get(function, (0, 0)))
        if got != want:
            problem(f"{function}: live {got[0]} B in {got[1]} blocks, expected {want[0]} B in {want[1]} blocks")
    for site in doc["sites"]:
        if site["live_bytes"] == 0 and site["live_count"] == 0:
            continue
        if top_file(site).endswith("leaky.c") and top_function(site) not in LEAKY:
            problem("unexpected live site in leaky.c: " + describe(site))
    for site in doc["sites"]:
        if site["live_bytes"] > site["live_held_bytes"]:
            problem("live bytes exceed held bytes: " + describe(site))
    # Every block the program holds has its stack: none is left without one (the
    # profiler's own allocations are reported apart, as profiler_own).
    for site in doc["sites"]:
        if not site["frames"] and site["live_count"] > 0:
            problem("live blocks without a stack: " + describe(site))
    own = doc.get("profiler_own") or {}
    if doc["source"].get("unwinder") == "libunwind" and own.get("alloc_count", 0) == 0:
        problem("no profiler_own allocations: loading libunwind allocates, and those must be set apart")
    # The leak sites must have been symbolized to leaky.c with a line number.
    for site in doc["sites"]:
        if top_function(site) in LEAKY and site["live_bytes"] > 0:
            f = site["frames"][0]
            if not (f.get("file") or "").endswith("leaky.c") or not f.get("line"):
                problem(f"{top_function(site)}: top frame not resolved to leaky.c:LINE: {f}")
    live_sites = [s for s in doc["sites"] if s["live_bytes"] > 0]
    finish(f"six leak functions exact at scale {scale} ({len(live_sites)} live sites in all)")


def check_live(path, function, bytes_, count, allocs=None):
    doc = load(path)
    got = tuple(live_by_function(doc).get(function, (0, 0)))
    if got != (bytes_, count):
        problem(f"{function}: live {got[0]} B in {got[1]} blocks, expected {bytes_} B in {count} blocks")
    made = sum(s["alloc_count"] for s in doc["sites"] if top_function(s) == function)
    freed = sum(s["free_count"] for s in doc["sites"] if top_function(s) == function)
    if allocs is not None and (made, freed) != (allocs, allocs - count):
        problem(f"{function}: {made} allocations and {freed} frees, expected {allocs} and {allocs - count}")
    finish(f"{function}: {bytes_} B in {count} blocks live" + (f" of {made} allocated" if allocs is not None else ""))


def check_sampled(path, function, expected, tolerance):
    doc = load(path)
    if doc["source"]["mode"] != "sampled":
        problem(f"mode is {doc['source']['mode']!r}, expected 'sampled'")
    got = live_by_function(doc).get(function, [0, 0])[0]
    low, high = expected * (1 - tolerance), expected * (1 + tolerance)
    if not low <= got <= high:
        problem(f"{function}: estimated {got} B live, expected {expected} B within +-{tolerance:.0%} "
                f"({low:.0f}..{high:.0f})")
    finish(f"{function}: estimated {got} B live, truth {expected} B ({(got - expected) / expected:+.1%})")


def check_sampled_allocs(path, function, count, bytes_, tolerance):
    doc = load(path)
    if doc["source"]["mode"] != "sampled":
        problem(f"mode is {doc['source']['mode']!r}, expected 'sampled'")
    made = sum(s["alloc_count"] for s in doc["sites"] if top_function(s) == function)
    size = sum(s["alloc_bytes"] for s in doc["sites"] if top_function(s) == function)
    for what, got, truth in (("allocations", made, count), ("bytes", size, bytes_)):
        if not truth * (1 - tolerance) <= got <= truth * (1 + tolerance):
            problem(f"{function}: estimated {got} {what}, expected {truth} within +-{tolerance:.0%}")
    finish(f"{function}: estimated {made} allocations ({(made - count) / count:+.1%}) "
           f"and {size} B ({(size - bytes_) / bytes_:+.1%})")


def check_one_stack(path, function, count, depth):
    doc = load(path)
    sites = [s for s in doc["sites"] if top_function(s) == function]
    if len(sites) != 1:
        problem(f"{function}: {len(sites)} sites, expected one: " + "; ".join(
            f"{s['alloc_count']} allocations at " + " <- ".join(f["address"] for f in s["frames"]) for s in sites))
    else:
        s = sites[0]
        frames = [f["address"] for f in s["frames"]]
        if s["alloc_count"] != count or len(frames) != depth or "0x0" in frames:
            problem(f"{function}: {s['alloc_count']} allocations at {' <- '.join(frames)}, "
                    f"expected {count} at a stack of {depth} frames")
    finish(f"{function}: {count} allocations at one stack of {depth} frame(s)")


def check_caller_live(path, function, bytes_, count):
    doc = load(path)
    sites = [s for s in doc["sites"] if len(s["frames"]) > 1 and s["frames"][1]["function"] == function]
    got = (sum(s["live_bytes"] for s in sites), sum(s["live_count"] for s in sites))
    if got != (bytes_, count):
        problem(f"{function}: live {got[0]} B in {got[1]} blocks one frame below the top, expected {bytes_} B in {count} blocks")
    finish(f"{function}: {bytes_} B in {count} blocks live one frame below the top")


def parse_collapsed(path):
    stacks = []
    with open(path) as fh:
        for number, line in enumerate(fh, 1):
            line = line.rstrip("\n")
            m = re.fullmatch(r"(.+) (\d+)", line)
            if not m:
                problem(f"line {number} is not 'frame;frame;... VALUE': {line!r}")
                continue
            frames = m.group(1).split(";")
            if any(f == "" for f in frames):
                problem(f"line {number} has an empty frame: {line!r}")
            if int(m.group(2)) <= 0:
                problem(f"line {number} has a zero value: {line!r}")
            stacks.append((frames, int(m.group(2))))
    return stacks


def check_collapsed(path):
    stacks = parse_collapsed(path)
    roots = {"leak_in_thread": "thread_main"}
    for function, (bytes_, _) in LEAKY.items():
        mine = [(frames, v) for frames, v in stacks if frames[-1] == function]
        if not mine:
            problem(f"no stack ends in {function} (leaf frames must come last)")
            continue
        total = sum(v for _, v in mine)
        if total != bytes_:
            problem(f"{function}: {total} live bytes in folded stacks, expected {bytes_}")
        caller = roots.get(function, "main")
        for frames, _ in mine:
            if caller not in frames:
                problem(f"{function}: {caller} missing from {';'.join(frames)}")
            elif frames.index(caller) > frames.index(function):
                problem(f"not root-first: {caller} after {function} in {';'.join(frames)}")
    finish(f"{len(stacks)} folded stacks, root first, leak functions as leaves with exact bytes")


def check_diff(path):
    doc = load(path)
    sites = doc["sites"]
    if not sites:
        problem("no sites in the diff")
        finish("")
    first = sites[0]
    if top_function(first) != "leak_large" or first["delta"]["live_bytes"] != 300000:
        problem(f"largest growth is {top_function(first)} {first['delta']['live_bytes']:+} B, "
                "expected leak_large +300000 B")
    grew = {}
    for s in sites:
        acc = grew.setdefault(top_function(s), [0, 0])
        acc[0] += s["delta"]["live_bytes"]
        acc[1] += s["delta"]["live_count"]
    for function, (bytes_, count) in LEAKY.items():
        if tuple(grew.get(function, (0, 0))) != (bytes_, count):
            problem(f"{function}: grew {tuple(grew.get(function, (0, 0)))}, expected (+{bytes_} B, +{count} blocks)")
    finish("leak_large grew most (+300000 B); every leak function grew by exactly one scale step")


def decode_png(path):
    with open(path, "rb") as fh:
        data = fh.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    pos, idat = 8, b""
    width = height = depth = ctype = None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + length
    if depth != 8 or ctype not in (2, 6):
        raise ValueError(f"unsupported PNG (bit depth {depth}, colour type {ctype})")
    bpp = 4 if ctype == 6 else 3
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev, at = [], bytearray(stride), 0
    for _ in range(height):
        filt = raw[at]
        line = bytearray(raw[at + 1:at + 1 + stride])
        at += 1 + stride
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if filt == 1:
                line[i] = (line[i] + a) & 255
            elif filt == 2:
                line[i] = (line[i] + b) & 255
            elif filt == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif filt == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def check_png(path):
    try:
        width, height, bpp, rows = decode_png(path)
    except (ValueError, zlib.error, struct.error) as e:
        problem(f"{path}: {e}")
        finish("")
    nonwhite = warm = blue = 0
    for row in rows:
        for x in range(0, len(row), bpp):
            r, g, b = row[x], row[x + 1], row[x + 2]
            alpha = row[x + 3] if bpp == 4 else 255
            if alpha < 128:
                continue
            if not (r > 245 and g > 245 and b > 245):
                nonwhite += 1
            if r > 190 and b < 80 and g < 240:
                warm += 1   # flame graph frames
            if b > 150 and r < 80:
                blue += 1   # the requested-bytes line of the timeline
    total = width * height
    if nonwhite < total // 50:
        problem(f"only {nonwhite} of {total} pixels are not white: the image is blank")
    if warm < 500:
        problem(f"only {warm} flame-coloured pixels: no flame graph frames drawn")
    if blue < 100:
        problem(f"only {blue} blue pixels: no requested-bytes line in the timeline")
    finish(f"{width}x{height}, {nonwhite} non-white pixels, {warm} flame-coloured, {blue} timeline-blue")


def fixture_site(doc, function, caller):
    for s in doc["sites"]:
        names = [f["function"] for f in s["frames"]]
        if names[:1] == [function] and (caller is None or names[1:2] == [caller]):
            return s
    problem(f"no site {function} <- {caller}")
    return None


def check_fixture_json(path, lines_path):
    doc = load(path)
    lines = load(lines_path)
    # Frames land on the marked lines of sites.c, in PIE and fixed-address builds alike.
    expect = [
        ("make_small", "parse_config", ["make_small", "parse_config", "main>parse_config"]),
        ("make_buffer", "load_table", ["make_buffer", "load_table", "main>load_table"]),
        ("churn", "main", ["churn", "main>churn"]),
        ("grow", "main", ["grow", "main>grow"]),
        ("make_small", "main", ["make_small", "main>make_small"]),
    ]
    for function, caller, markers in expect:
        s = fixture_site(doc, function, caller)
        if s is None:
            continue
        for frame, marker in zip(s["frames"], markers):
            if not (frame.get("file") or "").endswith("sites.c") or frame.get("line") != lines[marker]:
                problem(f"{function} <- {caller}: frame {frame['function']} at "
                        f"{frame.get('file')}:{frame.get('line')}, expected sites.c:{lines[marker]}")
        if len(s["frames"]) != len(markers):
            problem(f"{function} <- {caller}: {len(s['frames'])} frames, expected {len(markers)}")
    s = fixture_site(doc, "make_small", "parse_config")
    if s:
        if sorted(s["raw_site_ids"]) != [1, 2]:
            problem(f"raw sites 1 and 2 (same lines, other addresses) should merge; got {s['raw_site_ids']}")
        want = (480, 10) if doc["source"]["pid"] == 4242 else (960, 20)
        if (s["live_bytes"], s["live_count"]) != want:
            problem(f"make_small <- parse_config: {s['live_bytes']} B / {s['live_count']}, expected {want}")
        if s["pinned_pages"] != 1:
            problem(f"make_small <- parse_config: pinned_pages {s['pinned_pages']}, expected 1")
    s = fixture_site(doc, "make_buffer", "load_table")
    if s and (s["live_bytes"], s["live_held_bytes"], s["live_count"]) != (15000, 15360, 3):
        problem(f"make_buffer: {s['live_bytes']}/{s['live_held_bytes']}/{s['live_count']}, expected 15000/15360/3")
    for s in doc["sites"]:
        for f in s["frames"]:
            if "libswiftmalloc" in (f.get("module") or ""):
                problem(f"allocator frame not dropped: {f}")
    nostack = [s for s in doc["sites"] if not s["frames"]]
    if len(nostack) != 1 or nostack[0]["live_bytes"] != 1024:
        problem(f"expected one site without a stack holding 1024 B, got {nostack}")
    if doc["source"]["pid"] == 4242:
        s = fixture_site(doc, "libmystery.so+0x2abc", "0xdeadbeef")
        if s and s["frames"][0]["resolved"]:
            problem("libmystery frame should be unresolved")
    totals = doc["totals"]
    if totals["live_bytes"] != sum(s["live_bytes"] for s in doc["sites"]):
        problem("totals.live_bytes is not the sum over sites")
    if len(doc["timeline"]) != 10 or doc["timeline"][-1] != {"elapsed_ns": 10000000, "requested_bytes": 20800,
                                                               "held_bytes": 36864}:
        problem(f"timeline: {doc['timeline'][-1:]} ({len(doc['timeline'])} samples), expected 10 ending at 10 ms")
    if doc["heap"]["peak_requested_bytes"] != 23872 or len(doc["classes"]) != 7:
        problem("heap or classes not as in the fixture")
    if doc["live_sites"][:1] != [1] or doc["sites"][0]["live_bytes"] != 15000:
        problem(f"live_sites should start with the 15000 B site: {doc['live_sites']}")
    finish(f"{len(doc['sites'])} sites: frames on the right lines, duplicates merged, allocator frames dropped")


def check_fixture_diff(path, lines_path):
    doc = load(path)
    sites = doc["sites"]
    names = [[f["function"] for f in s["frames"]] for s in sites]
    if names[:2] != [["make_small", "parse_config", "main"], ["make_small", "main"]]:
        problem(f"growth order: {names[:2]}, expected make_small<-parse_config then make_small<-main")
    else:
        if sites[0]["delta"]["live_bytes"] != 480 or sites[0]["delta"]["live_count"] != 10:
            problem(f"make_small <- parse_config delta {sites[0]['delta']}")
        if sites[0]["status"] != "both" or sites[1]["delta"]["live_bytes"] != 16:
            problem(f"statuses/deltas wrong: {sites[0]['status']} {sites[1]['delta']}")
    last = sites[-1]
    if last["status"] != "gone" or last["delta"]["live_bytes"] != -200:
        problem(f"last site should be the gone libmystery site at -200 B: {last['status']} {last['delta']}")
    if doc["delta"]["live_bytes"] != 296:
        problem(f"total live delta {doc['delta']['live_bytes']}, expected +296")
    finish("growth ranked, new and gone sites marked, totals +296 B")


def check_fixture_sampled(path):
    doc = load(path)
    if doc["source"]["mode"] != "sampled" or doc["source"]["sample_mean_bytes"] != 4096:
        problem(f"mode {doc['source']['mode']} / {doc['source']['sample_mean_bytes']}, expected sampled / 4096")
    s = fixture_site(doc, "make_buffer", "load_table")
    if s and (s["live_bytes"], s["live_count"]) != (63000, 13):
        problem(f"fractional estimates should round: {s['live_bytes']} / {s['live_count']}, expected 63000 / 13")
    finish("sampled mode and rounded estimates")


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "leaks":
        check_leaks(args[0], int(args[1]))
    elif cmd == "live":
        check_live(args[0], args[1], int(args[2]), int(args[3]), int(args[4]) if len(args) > 4 else None)
    elif cmd == "caller-live":
        check_caller_live(args[0], args[1], int(args[2]), int(args[3]))
    elif cmd == "one-stack":
        check_one_stack(args[0], args[1], int(args[2]), int(args[3]))
    elif cmd == "sampled-allocs":
        check_sampled_allocs(args[0], args[1], int(args[2]), int(args[3]), float(args[4]))
    elif cmd == "sampled":
        check_sampled(args[0], args[1], int(args[2]), float(args[3]))
    elif cmd == "collapsed":
        check_collapsed(args[0])
    elif cmd == "diff":
        check_diff(args[0])
    elif cmd == "png":
        check_png(args[0])
    elif cmd == "fixture-json":
        check_fixture_json(args[0], args[1])
    elif cmd == "fixture-diff":
        check_fixture_diff(args[0], args[1])
    elif cmd == "fixture-sampled":
        check_fixture_sampled(args[0])
    else:
        raise SystemExit(f"unknown check {cmd}\n{__doc__}")


if __name__ == "__main__":
    main()
