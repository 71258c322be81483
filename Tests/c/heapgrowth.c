/*
 * heapgrowth.c — the page heap grows by what it lacks, below a free run.
 *
 * A 24 MiB block is allocated and freed, leaving a 24 MiB free run at the heap's
 * lowest address. A 40 MiB block then fits nowhere, so the heap must grow. It
 * should map only the 16 MiB missing right below that run (rounded up to its
 * 4 MiB unit), merge them, and place the new block over the old block's pages,
 * not map a separate 40 MiB. Checked through mallinfo2().arena (bytes mapped for
 * the page heap) and the blocks' addresses; every byte written is checked.
 *
 * Runs with the background purger off (SWIFTMALLOC_BACKGROUND=0, set by
 * re-executing itself), so no thread stack is mapped between the steps. Skipped
 * when malloc is not SwiftMalloc's.
 */
#define _GNU_SOURCE
#define TEST_NAME "heapgrowth"
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#define MIB ((size_t)1 << 20)

static void fill(unsigned char *p, size_t n, unsigned char tag)
{
    page_fill(p, n, tag);
    p[n - 1] = tag;
}

static void check_fill(const unsigned char *p, size_t n, unsigned char tag)
{
    size_t i = page_check(p, n, tag);
    CHECK(i == n, "byte %zu of a %zu-byte block changed", i, n);
    CHECK(p[n - 1] == tag, "last byte of a %zu-byte block changed", n);
}

int main(int argc, char **argv)
{
    (void)argc;
    if (!malloc_is_swiftmalloc()) {
        printf("%s: skipped (malloc is not SwiftMalloc's)\n", TEST_NAME);
        return 0;
    }
    run_without_purger(argv);

    void *warm = malloc(100); /* the heap and its first chunk exist from here */
    CHECK(warm != NULL, "malloc(100) failed");

    size_t a_size = 24 * MIB, b_size = 40 * MIB;
    unsigned char *a = malloc(a_size);
    CHECK(a != NULL, "malloc(%zu) failed", a_size);
    fill(a, a_size, 3);
    check_fill(a, a_size, 3);
    uintptr_t a_start = (uintptr_t)a, a_end = a_start + a_size;
    size_t mapped_before = mallinfo2().arena;
    free(a);

    unsigned char *b = malloc(b_size);
    CHECK(b != NULL, "malloc(%zu) failed", b_size);
    size_t grown = mallinfo2().arena - mapped_before;
    uintptr_t b_start = (uintptr_t)b, b_end = b_start + b_size;
    printf("%s: heap grew by %zu MiB for a %zu MiB block after freeing %zu MiB\n", TEST_NAME, grown / MIB,
           b_size / MIB, a_size / MIB);
    CHECK(grown <= b_size - a_size + 4 * MIB, "the heap grew by %zu MiB, not by the %zu MiB missing", grown / MIB,
          (b_size - a_size) / MIB);
    CHECK(b_start < a_end && b_end > a_start, "the new block [%#lx, %#lx) does not reuse the freed one's pages [%#lx, %#lx)",
          (unsigned long)b_start, (unsigned long)b_end, (unsigned long)a_start, (unsigned long)a_end);
    fill(b, b_size, 9);
    check_fill(b, b_size, 9);
    free(b);
    free(warm);
    printf("%s: ok\n", TEST_NAME);
    return 0;
}
