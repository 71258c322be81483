#!/usr/bin/env python3
"""Deterministic data check for a Redis server: writes a fixed data set through
every common type (strings of 0 B to 256 KiB, APPEND, SETRANGE, INCRBY, lists,
hashes, sets, sorted sets, deletions and overwrites), reads all of it back and
prints one line:

    datacheck KEYS BYTES SHA256

The same line from two servers (one using SwiftMalloc, one glibc's malloc)
means they hold and return the same data. Usage: redis_datacheck.py PORT [ROUNDS]

Talks RESP over a plain socket to 127.0.0.1 (no client library needed) and
FLUSHALLs the database first.
"""
import hashlib
import socket
import sys


class Resp:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = b""
        self.pending = 0

    def send(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            elif isinstance(a, int):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.s.sendall(b"".join(out))
        self.pending += 1

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RuntimeError("server error: " + rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RuntimeError("bad reply %r" % line)

    def call(self, *args):
        self.flush()
        self.send(*args)
        self.pending -= 1
        return self.reply()

    def flush(self):
        while self.pending:
            self.pending -= 1
            self.reply()


def rng(seed):
    x = seed & 0xFFFFFFFFFFFFFFFF or 1
    while True:
        x ^= (x << 13) & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 7
        x ^= (x << 17) & 0xFFFFFFFFFFFFFFFF
        yield x


def value(r, n):
    # Printable, position-dependent, cheap to build.
    seed = next(r)
    unit = ("%016x" % seed).encode()
    return (unit * (n // 16 + 1))[:n]


def size(r):
    k = next(r) % 100
    if k < 60:
        return next(r) % 200
    if k < 85:
        return next(r) % 4096
    if k < 97:
        return next(r) % 40000
    return next(r) % 262144


def main():
    port = int(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    c = Resp(port)
    c.call("FLUSHALL")
    r = rng(0x5EED)
    nkeys = 1500
    for rnd in range(rounds):
        for i in range(nkeys):
            k = next(r) % 8
            key = "dc:%d" % (next(r) % nkeys)
            if k == 0:
                c.send("SET", "s:" + key, value(r, size(r)))
            elif k == 1:
                c.send("APPEND", "s:" + key, value(r, size(r) // 4))
            elif k == 2:
                c.send("SETRANGE", "s:" + key, next(r) % 5000, value(r, next(r) % 300))
            elif k == 3:
                c.send("RPUSH", "l:" + key, *[value(r, next(r) % 300) for _ in range(1 + next(r) % 8)])
                if next(r) % 3 == 0:
                    c.send("LPOP", "l:" + key)
            elif k == 4:
                c.send("HSET", "h:" + key, "f%d" % (next(r) % 50), value(r, size(r) % 2000))
            elif k == 5:
                c.send("SADD", "z:" + key, *["m%d" % (next(r) % 500) for _ in range(1 + next(r) % 6)])
            elif k == 6:
                c.send("ZADD", "o:" + key, next(r) % 1000, "e%d" % (next(r) % 300))
                c.send("INCRBY", "n:" + key, next(r) % 1000)
            else:
                c.send("DEL", "s:" + key, "l:" + key)
            if c.pending > 200:
                c.flush()
        c.flush()
    # Read everything back in a fixed order.
    keys = sorted(k.decode() for k in c.call("KEYS", "*"))
    h = hashlib.sha256()
    total = 0
    for key in keys:
        t = c.call("TYPE", key)
        if t == b"string":
            v = [c.call("GET", key)]
        elif t == b"list":
            v = c.call("LRANGE", key, 0, -1)
        elif t == b"hash":
            flat = c.call("HGETALL", key)
            v = sorted(flat[i] + b"=" + flat[i + 1] for i in range(0, len(flat), 2))
        elif t == b"set":
            v = sorted(c.call("SMEMBERS", key))
        elif t == b"zset":
            v = c.call("ZRANGE", key, 0, -1, "WITHSCORES")
        else:
            v = [t]
        h.update(key.encode() + b"\0" + t + b"\0")
        for item in v:
            item = item if isinstance(item, bytes) else str(item).encode()
            total += len(item)
            h.update(b"%d:" % len(item) + item)
    print("datacheck %d %d %s" % (len(keys), total, h.hexdigest()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
