"""Deterministic input generators for run-program-tests.sh.

    generate.py c-source FILE NFUNCS     C file with NFUNCS small functions
    generate.py sort-input FILE NLINES   text lines in pseudo-random order
    generate.py sql-inserts FILE NROWS   one INSERT statement per row
    generate.py tree DIR NFILES REV      files for the git repository (REV 0, 1, 2)

Inputs are generated with the system allocator, outside the runs that are
compared, and depend only on the arguments.
"""
import os
import sys


def lcg(seed):
    state = seed
    while True:
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        yield state >> 33


def c_source(path, nfuncs):
    rnd = lcg(1)
    out = ["#include <stdio.h>", "#include <string.h>", "#include <stdlib.h>", ""]
    out.append("struct pair { int a; long b; const char *s; };")
    out.append("static const char *names[] = {%s};" % ", ".join('"name%d"' % i for i in range(64)))
    for i in range(nfuncs):
        kind = i % 4
        k1, k2 = next(rnd) % 1000 + 1, next(rnd) % 17 + 2
        if kind == 0:
            out.append("""
int f%d(int x) {
    int acc = %d;
    for (int i = 0; i < (x & 63); i++) {
        acc = acc * %d + (i ^ x);
        if (acc > 1000000) acc %%= 9973;
    }
    return acc;
}""" % (i, k1, k2))
        elif kind == 1:
            out.append("""
int f%d(int x) {
    switch (x %% 6) {
    case 0: return x * %d;
    case 1: return x + %d;
    case 2: return (x << 2) - %d;
    case 3: return (int)strlen(names[x & 63]) + %d;
    case 4: return x / %d;
    default: return -x;
    }
}""" % (i, k1, k2, k1, k2, k2))
        elif kind == 2:
            out.append("""
int f%d(int x) {
    struct pair p[8];
    int sum = 0;
    for (int i = 0; i < 8; i++) {
        p[i].a = x + i * %d;
        p[i].b = (long)p[i].a * %d;
        p[i].s = names[(x + i) & 63];
    }
    for (int i = 0; i < 8; i++) sum += p[i].a + (int)(p[i].b %% 101) + p[i].s[4];
    return sum;
}""" % (i, k2, k1))
        else:
            out.append("""
int f%d(int x) {
    char buf[64];
    snprintf(buf, sizeof buf, "%%d-%%s-%d", x, names[x & 63]);
    unsigned h = %du;
    for (const char *c = buf; *c; c++) h = h * 31u + (unsigned char)*c;
    return (int)(h %% 65521u);
}""" % (i, k1, k2))
    # Deliberate warnings, so that diagnostics are compared too.
    out.append("""
int with_warnings(int x) {
    int unused_variable;
    int y;
    if (x > 3) y = x;
    return y;
}""")
    out.append("")
    out.append("typedef int (*fn)(int);")
    out.append("static fn table[] = {%s};" % ", ".join("f%d" % i for i in range(nfuncs)))
    out.append("""
int main(void) {
    unsigned long total = 0;
    for (unsigned i = 0; i < sizeof table / sizeof table[0]; i++)
        total = total * 1000003u + (unsigned)table[i]((int)(i * 7 + 3));
    printf("functions %zu checksum %lu\\n", sizeof table / sizeof table[0], total);
    return 0;
}""")
    with open(path, "w") as f:
        f.write("\n".join(out))


def sort_input(path, nlines):
    rnd = lcg(2)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    with open(path, "w") as f:
        for i in range(nlines):
            r = next(rnd)
            f.write("%s%06d %d %s\n" % (words[r % 8], r % 1000000, (r >> 8) % 100000, "x" * (r % 23)))


def sql_inserts(path, nrows):
    rnd = lcg(3)
    with open(path, "w") as f:
        f.write("BEGIN;\n")
        for i in range(nrows):
            r = next(rnd)
            f.write("INSERT INTO items(id, name, grp, price, note) VALUES(%d, 'item-%d', %d, %d.%02d, '%s');\n"
                    % (i, r % 100003, r % 97, r % 1000, r % 100, "n" * (r % 40)))
        f.write("COMMIT;\n")


def tree(root, nfiles, rev):
    rnd = lcg(4 + rev)
    for i in range(nfiles):
        if rev >= 1 and i % 10 == 0:
            continue  # deleted in later revisions
        d = os.path.join(root, "dir%02d" % (i % 17))
        os.makedirs(d, exist_ok=True)
        lines = []
        nlines = 20 + i % 40
        for j in range(nlines):
            lines.append("file %d line %d value %d" % (i, j, next(rnd) % 100000 if (rev and i % 4 == 0) else i * j))
        with open(os.path.join(d, "file%04d.txt" % i), "w") as f:
            f.write("\n".join(lines) + "\n")
    if rev >= 1:
        for i in range(nfiles, nfiles + 40 * rev):
            with open(os.path.join(root, "new%04d.txt" % i), "w") as f:
                f.write("new file %d revision %d\n" % (i, rev) * (i % 13 + 1))


def main():
    cmd = sys.argv[1]
    if cmd == "c-source":
        c_source(sys.argv[2], int(sys.argv[3]))
    elif cmd == "sort-input":
        sort_input(sys.argv[2], int(sys.argv[3]))
    elif cmd == "sql-inserts":
        sql_inserts(sys.argv[2], int(sys.argv[3]))
    elif cmd == "tree":
        tree(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit("unknown generator: " + cmd)


if __name__ == "__main__":
    main()
