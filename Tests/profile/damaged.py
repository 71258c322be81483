#!/usr/bin/env python3
"""Damaged report files never crash `swiftmalloc report` or `swiftmalloc diff`.

    damaged.py CLI REPORT ROUNDS

Feeds the CLI copies of REPORT that are cut short, have bytes overwritten, have
their lines shuffled, carry out-of-range numbers (negative, past 2^63, a frame
count far beyond the frames on the line) or extra records with huge figures,
plus a few fixed cases, in every output format and through `diff`. Each run
must end with status 0 (the file was read, skipping what it could not) or 1
(refused with a message); a signal or a Swift runtime failure fails the check.
Deterministic: the damage comes from a fixed seed.
"""
import os
import random
import subprocess
import sys
import tempfile

BIG = b"72057594037927936"  # 2^56: the largest figure the reader accepts
ODD = [b"-1", b"99999999999999999999", b"0x", b"", b"1e400", b"nan", b"-9223372036854775808",
       BIG, b"0xffffffffffffffff", b"9223372036854775807", b"0"]
FIXED = [
    b"site 5 1125463570828656 0x1",                       # frame count past the line
    b"\n".join([b"stat 5 " + b" ".join([BIG] * 7) + b" 1"] * 40),   # sums past 2^62
    b"\n".join([b"pin 5 17592186044416"] * 40),
    b"sample " + b" ".join([BIG] * 3),
    b"heap " + b" ".join([BIG] * 7),
    b"own 0\nown 18446744073709551615",
]


def damaged(data, rng, i):
    kind = i % 5
    if kind == 0:
        return data[:rng.randrange(len(data))]
    if kind == 1:
        d = bytearray(data)
        for _ in range(10):
            d[rng.randrange(len(d))] = rng.choice(b" 0123456789abcdefx\n-")
        return bytes(d)
    lines = data.split(b"\n")
    if kind == 2:
        rng.shuffle(lines)
    elif kind == 3:
        for _ in range(8):
            j = rng.randrange(len(lines))
            f = lines[j].split(b" ")
            if len(f) > 1:
                f[rng.randrange(1, len(f))] = rng.choice(ODD)
            lines[j] = b" ".join(f)
    else:
        lines.insert(rng.randrange(1, len(lines)), rng.choice(FIXED))
    return b"\n".join(lines)


def main():
    cli, source, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    data = open(source, "rb").read()
    header, rest = data.split(b"\n", 1)
    rng = random.Random(20261127)
    cases = [damaged(data, rng, i) for i in range(rounds)]
    cases += [header + b"\n" + extra + b"\n" + rest for extra in FIXED]
    failures = []
    runs = 0
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "damaged.report")
        for n, case in enumerate(cases):
            with open(path, "wb") as fh:
                fh.write(case)
            for cmd in ([cli, "report", path, "--format", f] for f in ("text", "json", "collapsed", "svg")):
                runs += 1
                r = subprocess.run(cmd, capture_output=True)
                if r.returncode not in (0, 1) or b"runtime failure" in r.stderr or b"Fatal error" in r.stderr:
                    failures.append((n, cmd[2:], r.returncode, r.stderr.decode("utf-8", "replace")))
            runs += 1
            r = subprocess.run([cli, "diff", source, path], capture_output=True)
            if r.returncode not in (0, 1) or b"runtime failure" in r.stderr or b"Fatal error" in r.stderr:
                failures.append((n, ["diff"], r.returncode, r.stderr.decode("utf-8", "replace")))
            if failures:
                keep = os.path.join(os.path.dirname(os.path.abspath(source)), f"damaged-{n}.report")
                with open(keep, "wb") as fh:
                    fh.write(case)
                break
    for n, cmd, status, err in failures:
        where = max(err.find("runtime failure"), err.find("Fatal error"))
        said = err[where:].split("\n", 1)[0] if where >= 0 else err.strip().split("\n", 1)[0]
        print(f"    case {n} ({' '.join(cmd)}): status {status}: {said[:200]}")
    if failures:
        sys.exit(1)
    print(f"    {len(cases)} damaged files, {runs} runs: each read or refused, none crashed")


if __name__ == "__main__":
    main()
