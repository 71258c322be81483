/*
 * gather_limit.c — moving pages under large blocks stops at the mapping limit.
 *
 * Each page move (see gather.c) leaves the moved piece as a mapping of its own,
 * so the page heap counts the process's mappings every 256 moves and stops
 * moving for good past SWIFTMALLOC_GATHER_MAPPINGS (by default an eighth of
 * vm.max_map_count). The test sets that limit to 64 more mappings than the
 * process has at start (re-executing itself with it), churns large blocks that
 * keep being filled by moves, and checks that the mapping count ends below the
 * limit plus what 256 moves can add. With no limit the same churn ends with
 * several thousand mappings. Every block's pages are checked before it is freed.
 * Skipped when malloc is not SwiftMalloc's, or when the kernel cannot move pages
 * that way (before 5.7).
 */
#define _GNU_SOURCE
#define TEST_NAME "gather_limit"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "testutil.h"

#define SLOTS 16
#define STEPS 8000
#define HEADROOM 64
#define MOVES_BETWEEN_COUNTS 256

static long count_mappings(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (f == NULL) return -1;
    long lines = 0;
    int c;
    while ((c = fgetc(f)) != EOF) lines += c == '\n';
    fclose(f);
    return lines;
}

int main(int argc, char **argv)
{
    (void)argc;
    if (!page_moves_testable()) return 0;
    const char *set = getenv("SWIFTMALLOC_GATHER_MAPPINGS");
    if (set == NULL) {
        char limit[32];
        snprintf(limit, sizeof limit, "%ld", count_mappings() + HEADROOM);
        setenv("SWIFTMALLOC_GATHER_MAPPINGS", limit, 1);
        execv("/proc/self/exe", argv);
        FAIL("cannot re-execute itself");
    }
    long limit = atol(set);
    long start = count_mappings();

    unsigned char *slot[SLOTS] = {0};
    size_t size[SLOTS] = {0};
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    for (int step = 0; step < STEPS; step++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        int i = (int)(rng % SLOTS);
        if (slot[i] != NULL) {
            size_t bad = page_check(slot[i], size[i], (unsigned char)i);
            CHECK(bad == size[i], "step %d: page at offset %zu of a %zu-byte block changed", step, bad, size[i]);
            free(slot[i]);
        }
        size[i] = (size_t)(256 << 10) + (size_t)((rng >> 20) % (4u << 20));
        slot[i] = malloc(size[i]);
        CHECK(slot[i] != NULL, "malloc(%zu) failed", size[i]);
        page_fill(slot[i], size[i], (unsigned char)i);
    }
    long end = count_mappings();
    printf("%s: limit %s mappings; %ld at start, %ld after %d steps of large-block churn\n", TEST_NAME, set, start,
           end, STEPS);
    if (limit > 0) {
        CHECK(end <= limit + 2 * MOVES_BETWEEN_COUNTS + HEADROOM,
              "%ld mappings, more than the limit %ld allows (moves went on past it)", end, limit);
    }
    for (int i = 0; i < SLOTS; i++) {
        if (slot[i] == NULL) continue;
        CHECK(page_check(slot[i], size[i], (unsigned char)i) == size[i], "a block changed before the end");
        free(slot[i]);
    }
    printf("%s: ok\n", TEST_NAME);
    return 0;
}
