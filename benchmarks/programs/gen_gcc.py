"""Writes the C file of the gcc workload to stdout.

    python3 gen_gcc.py FUNCTIONS > big.c
    gcc -O2 -c big.c -o big.o

FUNCTIONS functions, each with its own struct type, a loop around a switch,
branches and floating point, and a main that calls them all: enough for
cc1's optimizer to build and discard large amounts of IR. Deterministic.
"""
import sys

nfun = int(sys.argv[1]) if len(sys.argv) > 1 else 180
out = sys.stdout
out.write("#include <stdio.h>\n#include <string.h>\n\n")
for i in range(nfun):
    out.write(
        """struct s%(i)d { int a[8]; double d; char name[16]; };
static int f%(i)d(struct s%(i)d *p, int n) {
    int acc = %(i)d;
    for (int i = 0; i < n; i++) {
        switch ((i + acc) & 7) {
        case 0: acc += p->a[i & 7] * %(k1)d; break;
        case 1: acc -= p->a[(i + 1) & 7] ^ %(k2)d; break;
        case 2: acc ^= (acc << 3) + i; break;
        case 3: p->a[i & 7] = acc + %(k3)d; break;
        case 4: acc += (int)(p->d * %(k1)d.5); break;
        case 5: p->d += acc * 0.25; break;
        case 6: acc = acc * 33 + p->name[i & 15]; break;
        default: acc -= i * %(k2)d; break;
        }
        if (acc > %(k3)d) acc ^= i << 2; else acc += %(k1)d;
    }
    snprintf(p->name, sizeof p->name, "f%%d", acc & 1023);
    return acc + (int)strlen(p->name);
}

"""
        % {"i": i, "k1": (i * 31) % 97 + 1, "k2": (i * 17) % 89 + 3, "k3": (i * 13) % 1000 + 100}
    )
out.write("int main(void) {\n    long total = 0;\n")
for i in range(nfun):
    out.write("    { struct s%d v; memset(&v, 0, sizeof v); total += f%d(&v, %d); }\n" % (i, i, 10 + i % 50))
out.write('    printf("%ld\\n", total);\n    return 0;\n}\n')
