/*
 * gather.c — a large block takes resident pages of free runs instead of faulting.
 *
 * Two 6 MiB blocks are written and freed; a 1 MiB block kept between them keeps
 * their free runs apart, so neither fits the 10 MiB block asked for next. Without
 * gathering, that block's 2560 pages would all be faulted in fresh while the 12 MiB
 * of freed, resident pages wait to be purged. With it, the page heap moves those
 * resident pages under the new block (mremap with MREMAP_DONTUNMAP), so writing
 * the block takes few page faults. Checked with getrusage's minor fault count;
 * every byte of every live block is checked, before and after.
 *
 * Two 56 MiB blocks (never written, so never resident; below the 64 MiB at which
 * blocks get their own mapping) raise the page heap's pages in use, and with them
 * how many freed pages it keeps without the background purger: the test runs
 * with SWIFTMALLOC_BACKGROUND=0 (re-executing itself), so no purger thread runs
 * between its steps. Skipped when malloc is not
 * SwiftMalloc's, or when the kernel cannot move pages that way (before 5.7).
 */
#define _GNU_SOURCE
#define TEST_NAME "gather"
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "testutil.h"

#define MIB ((size_t)1 << 20)

static void fill(unsigned char *p, size_t n, unsigned char tag)
{
    memset(p, tag, n);
}

static void check_fill(const unsigned char *p, size_t n, unsigned char tag, const char *what)
{
    for (size_t i = 0; i < n; i++)
        CHECK(p[i] == tag, "%s: byte %zu of %zu is %u, not %u", what, i, n, p[i], tag);
}

int main(int argc, char **argv)
{
    (void)argc;
    if (!page_moves_testable()) return 0;
    run_without_purger(argv);

    unsigned char *big = malloc(56 * MIB), *big2 = malloc(56 * MIB); /* in use, never written */
    unsigned char *x1 = malloc(6 * MIB);
    unsigned char *sep = malloc(1 * MIB);
    unsigned char *x2 = malloc(6 * MIB);
    unsigned char *tail = malloc(1 * MIB);
    CHECK(big && big2 && x1 && sep && x2 && tail, "the first blocks could not be allocated");
    fill(x1, 6 * MIB, 1);
    fill(sep, 1 * MIB, 2);
    fill(x2, 6 * MIB, 3);
    fill(tail, 1 * MIB, 4);
    /* Read back before the frees, which also keeps the compiler from dropping the
     * writes as dead stores: the freed blocks' pages must be resident. */
    check_fill(x1, 6 * MIB, 1, "the first freed block");
    check_fill(x2, 6 * MIB, 3, "the second freed block");
    free(x1);
    free(x2);

    size_t c_size = 10 * MIB;
    long pages = (long)(c_size / 4096);
    unsigned char *c = malloc(c_size);
    CHECK(c != NULL, "malloc(%zu) failed", c_size);
    long before = minor_faults();
    fill(c, c_size, 5);
    long faults = minor_faults() - before;
    printf("%s: writing a %zu MiB block after freeing 12 MiB elsewhere took %ld page faults for %ld pages\n",
           TEST_NAME, c_size / MIB, faults, pages);
    CHECK(faults < pages / 4, "%ld page faults for %ld pages: the freed pages were not moved under the block",
          faults, pages);

    check_fill(c, c_size, 5, "the new block");
    check_fill(sep, 1 * MIB, 2, "the block between the freed ones");
    check_fill(tail, 1 * MIB, 4, "the last block");

    /* The moved-from ranges are free again and serve later blocks correctly. */
    unsigned char *d = malloc(6 * MIB);
    CHECK(d != NULL, "malloc(6 MiB) failed");
    fill(d, 6 * MIB, 6);
    check_fill(d, 6 * MIB, 6, "a block on moved-from pages");
    check_fill(c, c_size, 5, "the new block, later");

    free(d);
    free(c);
    free(tail);
    free(sep);
    free(big2);
    free(big);
    printf("%s: ok\n", TEST_NAME);
    return 0;
}
