#!/usr/bin/env python3
"""Writes the hand-made seed inputs of fuzz_alloc.c into corpus/ (next to this file).

Each seed is a short program in the harness's input encoding (see run_input in
fuzz_alloc.c): an operation byte (taken modulo 32), a slot byte (modulo 64),
then the operation's arguments. The seeds are checked in; rerun this script
after changing the encoding.
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")

MALLOC, CALLOC, REALLOC, POSIX_MEMALIGN, ALIGNED_ALLOC, MEMALIGN, VALLOC = 0, 7, 9, 12, 13, 14, 15
FREE, HANDOFF, REMOTE_ALLOC, DRAIN, REALLOCARRAY, ABSURD, TUNE, INSPECT, THREAD, BURST = (
    16, 22, 24, 25, 26, 27, 28, 29, 30, 31)


def size(n):
    """Encodes a size with take_size's exact buckets."""
    if n <= 128:
        return bytes([0x00, n])
    if n <= 1024:
        return bytes([0x60]) + struct.pack("<H", n)
    if n <= 32768:
        return bytes([0x80]) + struct.pack("<H", n)
    if n < 32768 + (1 << 20):
        return bytes([0xA0]) + struct.pack("<I", n - 32768)[:3]
    if n <= 4 << 20:
        return bytes([0xB1]) + struct.pack("<I", n - 1)[:3]
    raise ValueError(n)


def special(i):
    return bytes([0xC0, i])


def align(shift):
    return bytes([shift])  # 1 << (shift % 21) for shift < 180


def op(code, slot, *args):
    return bytes([code, slot]) + b"".join(args)


def b(*vals):
    return bytes(vals)


seeds = {}

# Small blocks of every size up to 128 bytes, freed in a different order.
p = b"".join(op(MALLOC, s, size(s * 2)) for s in range(64))
p += b"".join(op(FREE, (s * 7) % 64, b(s)) for s in range(64))
seeds["small-sizes"] = p

# Every boundary value of the size table, malloc then calloc over the same slots.
p = b"".join(op(MALLOC, i % 64, special(i)) for i in range(160))
p += b"".join(op(CALLOC, i % 64, special(i), b(i % 5)) for i in range(0, 160, 3))
p += op(INSPECT, 0, b(0))
seeds["boundaries"] = p

# One block grown by realloc from 1 byte through the classes, large and 4 MiB,
# then shrunk back; a second one grown in small steps (in-place paths).
p = op(MALLOC, 1, size(1))
for n in [8, 24, 100, 129, 700, 1500, 5000, 20000, 32768, 40000, 300000, 1 << 20, 4 << 20, 70000, 3000, 17, 0]:
    p += op(REALLOC, 1, size(n))
p += op(MALLOC, 2, size(33000))
for k in range(1, 20):
    p += op(REALLOC, 2, size(33000 + k * 5000))
seeds["realloc-chain"] = p

# Aligned allocations: every power of two up to 1 MiB with the three calls, odd
# and invalid alignments (posix_memalign must say EINVAL).
p = b""
for sh in range(21):
    p += op(POSIX_MEMALIGN, sh, align(sh), size(100 + sh * 50), b(0))
    p += op(ALIGNED_ALLOC, 21 + sh, align(sh), size(40000 if sh > 12 else 3000), b(0))
    p += op(MEMALIGN, 42 + sh, align(sh), size(sh), b(0))
p += op(ALIGNED_ALLOC, 63, b(190, 77), size(500), b(0))  # not a power of two: 16384 + 78
p += op(POSIX_MEMALIGN, 62, b(245), size(64), b(0))     # 24: invalid
p += op(ALIGNED_ALLOC, 61, b(200), size(64), b(0))      # alignment 0
p += op(VALLOC, 60, size(5000), b(0)) + op(VALLOC, 59, size(0), b(1))
p += op(INSPECT, 0, b(0))
seeds["aligned"] = p

# Cross-thread traffic: blocks handed to the other thread, blocks it allocates.
p = b""
for s in range(48):
    p += op(MALLOC, s, size([16, 48, 200, 1000, 9000, 50000][s % 6]))
for s in range(0, 48, 2):
    p += op(HANDOFF, s, b(s))
for s in range(48, 64):
    p += op(REMOTE_ALLOC, s, size([32, 128, 4000, 70000][s % 4]))
p += op(DRAIN, 0)
for s in range(1, 48, 2):
    p += op(HANDOFF, s, b(s))
p += op(INSPECT, 0, b(1))
seeds["cross-thread"] = p

# Sizes that must fail (above PTRDIFF_MAX, overflowing products), realloc of a
# live block to them, and very large sizes that may fail.
p = op(MALLOC, 5, size(1000)) + op(MALLOC, 6, size(100000))
for i in range(11):
    for w in range(9):
        p += op(ABSURD, 5 if w < 8 else 6, b(i, w) + (b(3, 5) if w == 6 else b""))
p += op(INSPECT, 0, b(0))
seeds["absurd"] = p

# A low huge-block threshold: blocks from 1 MiB get their own mapping and are
# resized with mremap; trims in both threads.
p = op(TUNE, 0, b(0 | (2 << 2)))  # M_MMAP_THRESHOLD = 1 MiB
p += op(MALLOC, 3, size(2 << 20)) + op(REALLOC, 3, size(3 << 20)) + op(REALLOC, 3, size(1500000))
p += op(REALLOC, 3, size(500000)) + op(REALLOC, 3, size(4 << 20))
p += op(TUNE, 0, b(1 | (1 << 2)))  # M_TRIM_THRESHOLD = 0
p += op(MALLOC, 4, size(200000)) + op(FREE, 4, b(0)) + op(TUNE, 0, b(2)) + op(TUNE, 0, b(3))
p += op(TUNE, 0, b(0))  # back to 64 MiB
p += op(REALLOC, 3, size(3 << 20)) + op(INSPECT, 0, b(1))
seeds["huge-threshold"] = p

# Short-lived threads that free blocks and leave blocks behind.
p = b"".join(op(MALLOC, s, size(64 + s * 300)) for s in range(16))
for t in range(6):
    p += op(THREAD, 0, b(4, 3), b(t * 2, t * 2 + 1, 20 + t, 30 + t), size(100), size(5000), size(40000),
            b(40 + t, 50 + t, 60))
p += op(INSPECT, 0, b(0))
seeds["threads"] = p

# Bursts: many blocks of one size freed FIFO, LIFO, interleaved, scattered, some
# by the other thread; then reallocarray.
p = b""
for k, (n, cnt) in enumerate([(16, 255), (48, 200), (1024, 100), (4000, 64), (33000, 20), (200000, 5)]):
    p += op(BURST, 0, b(cnt), size(n), b(k))
    p += op(BURST, 0, b(cnt), size(n), b(4 + k))
p += op(MALLOC, 7, size(10)) + op(REALLOCARRAY, 7, size(1000), b(3)) + op(REALLOCARRAY, 7, size(100000), b(7))
seeds["bursts"] = p


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        print(f"{name}: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
