/*
 * peakreuse.c — a freed large block is kept for the next one while the heap is
 * below its recent peak.
 *
 * Two 24 MiB blocks are allocated and written, the first is freed, and a third
 * 24 MiB block is allocated and written. The heap's recent peak (48 MiB in use)
 * allows the freed block's pages to stay resident, so the third block takes them
 * and writing it takes few page faults. A library that measured the peak only
 * when pages were released saw a peak of 24 MiB at that first release, gave most
 * of the freed pages back, and faulted them in again (about 4,000 faults here).
 * Checked with getrusage's minor fault count; the live blocks are checked byte by
 * byte.
 *
 * Skipped when malloc is not SwiftMalloc's, and when SWIFTMALLOC_BACKGROUND=0
 * turns the purger off (without it the page heap keeps only a small reserve).
 */
#define _GNU_SOURCE
#define TEST_NAME "peakreuse"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define BLOCK ((size_t)24 << 20)

static void check_fill(const unsigned char *p, unsigned char tag, const char *what)
{
    for (size_t i = 0; i < BLOCK; i++)
        CHECK(p[i] == tag, "%s: byte %zu is %u, not %u", what, i, p[i], tag);
}

int main(void)
{
    if (!purger_testable()) return 0;
    unsigned char *a = malloc(BLOCK), *b = malloc(BLOCK);
    CHECK(a != NULL && b != NULL, "malloc(%zu) returned NULL", BLOCK);
    memset(a, 0xa1, BLOCK);
    memset(b, 0xb2, BLOCK);
    check_fill(a, 0xa1, "the block to free"); /* also keeps its writes from being optimized away */
    free(a);

    long before = minor_faults();
    unsigned char *c = malloc(BLOCK);
    CHECK(c != NULL, "malloc(%zu) returned NULL", BLOCK);
    memset(c, 0xc3, BLOCK);
    long faults = minor_faults() - before;
    long pages = (long)(BLOCK / 4096);
    printf("%s: writing a %ld-page block after freeing one took %ld minor faults\n", TEST_NAME, pages, faults);
    CHECK(faults < pages / 4, "writing the new block took %ld faults for %ld pages: the freed block's pages "
          "were given back although the heap was below its recent peak", faults, pages);

    check_fill(b, 0xb2, "the block kept");
    check_fill(c, 0xc3, "the new block");
    free(b);
    free(c);
    printf("%s: ok\n", TEST_NAME);
    return 0;
}
