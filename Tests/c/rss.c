/*
 * rss.c — memory goes back to the system after a large working set is freed.
 *
 * About 200 MiB are allocated in small (16–512 B), medium (1–64 KiB) and large
 * (256 KiB–4 MiB) blocks, all touched, then freed in a shuffled order. With no
 * further calls, the resident set must fall below 30% of its peak within a few
 * seconds (SwiftMalloc returns freed pages by itself). After malloc_trim(0) it
 * must be below that bound as well.
 *
 * glibc's malloc keeps freed heap memory until malloc_trim() is called, so the
 * first check only applies when malloc in this process is SwiftMalloc's; with
 * any other allocator the figure is reported and not checked.
 */
#define _GNU_SOURCE
#define TEST_NAME "rss"
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "testutil.h"

#define SMALL_BYTES ((size_t)100 << 20)
#define MEDIUM_BYTES ((size_t)50 << 20)
#define LARGE_BYTES ((size_t)50 << 20)
#define MAX_BLOCKS 1000000
#define BOUND_PERCENT 30
#define WAIT_SECONDS 3.0

struct blk { unsigned char *p; uint32_t n; uint32_t seed; };

static struct blk *blocks; /* mmap'ed, so it is not part of the heap under test */
static size_t nblocks;

static void add(size_t n, rng_t *r)
{
    CHECK(nblocks < MAX_BLOCKS, "too many blocks");
    unsigned char *p = malloc(n);
    CHECK(p != NULL, "malloc(%zu) returned NULL after %zu blocks", n, nblocks);
    uint32_t seed = (uint32_t)rng_next(r);
    memset(p, (int)(seed & 0xff), n); /* touch every page */
    blocks[nblocks].p = p;
    blocks[nblocks].n = (uint32_t)n;
    blocks[nblocks].seed = seed;
    nblocks++;
}

/* True when malloc in this process is SwiftMalloc's. */
int main(void)
{
    blocks = mmap(NULL, sizeof(struct blk) * MAX_BLOCKS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(blocks != MAP_FAILED, "mmap of the block table failed");

    size_t start_rss = rss_bytes();
    rng_t r;
    rng_seed(&r, 2024);
    /* Interleave the three kinds so they share the heap as in a real program. */
    size_t small = 0, medium = 0, large = 0;
    while (small < SMALL_BYTES || medium < MEDIUM_BYTES || large < LARGE_BYTES) {
        for (int i = 0; i < 64 && small < SMALL_BYTES; i++) {
            size_t n = rng_range(&r, 16, 512);
            add(n, &r);
            small += n;
        }
        if (medium < MEDIUM_BYTES) {
            size_t n = rng_range(&r, 1024, 65536);
            add(n, &r);
            medium += n;
        }
        if (large < LARGE_BYTES && (rng_next(&r) % 16) == 0) {
            size_t n = rng_log_range(&r, 256 << 10, 4 << 20);
            add(n, &r);
            large += n;
        }
    }
    size_t peak = rss_bytes();
    printf("rss: %zu blocks, %.1f MiB requested; RSS %.1f MiB at start, %.1f MiB at peak\n", nblocks,
           (small + medium + large) / 1048576.0, start_rss / 1048576.0, peak / 1048576.0);
    CHECK(peak >= start_rss + ((size_t)180 << 20), "the working set is not resident: RSS %.1f MiB", peak / 1048576.0);

    /* Check contents, then free in a shuffled order. */
    for (size_t i = nblocks - 1; i > 0; i--) {
        size_t j = (size_t)(rng_next(&r) % (uint64_t)(i + 1));
        struct blk t = blocks[i];
        blocks[i] = blocks[j];
        blocks[j] = t;
    }
    for (size_t i = 0; i < nblocks; i++) {
        unsigned char want = (unsigned char)(blocks[i].seed & 0xff);
        CHECK(blocks[i].p[0] == want && blocks[i].p[blocks[i].n - 1] == want && blocks[i].p[blocks[i].n / 2] == want,
              "block %p (%u bytes) was changed while live", (void *)blocks[i].p, blocks[i].n);
        free(blocks[i].p);
    }

    size_t bound = peak / 100 * BOUND_PERCENT;
    double t0 = now_seconds();
    size_t rss = rss_bytes();
    while (rss > bound && now_seconds() - t0 < WAIT_SECONDS) {
        usleep(50 * 1000);
        rss = rss_bytes();
    }
    double waited = now_seconds() - t0;
    printf("rss: after free: %.1f MiB (%.0f%% of peak) after %.2f s\n", rss / 1048576.0, 100.0 * rss / peak, waited);
    if (malloc_is_swiftmalloc()) {
        CHECK(rss <= bound,
              "RSS still %.1f MiB (%.0f%% of the %.1f MiB peak) %.1f s after freeing everything; expected below %d%% "
              "without malloc_trim",
              rss / 1048576.0, 100.0 * rss / peak, peak / 1048576.0, waited, BOUND_PERCENT);
    } else if (rss > bound) {
        printf("rss: note: not SwiftMalloc; the allocator keeps freed memory until malloc_trim (not checked)\n");
    }

    int t = malloc_trim(0);
    CHECK(t == 0 || t == 1, "malloc_trim(0) returned %d", t);
    rss = rss_bytes();
    printf("rss: after malloc_trim(0) = %d: %.1f MiB (%.0f%% of peak)\n", t, rss / 1048576.0, 100.0 * rss / peak);
    CHECK(rss <= bound, "RSS %.1f MiB after malloc_trim(0): %.0f%% of the %.1f MiB peak, expected below %d%%",
          rss / 1048576.0, 100.0 * rss / peak, peak / 1048576.0, BOUND_PERCENT);

    /* The allocator is fully usable afterwards and reuses the memory. */
    for (size_t i = 0; i < 100000; i++) {
        size_t n = rng_range(&r, 16, 512);
        blocks[i].p = malloc(n);
        CHECK(blocks[i].p != NULL, "malloc(%zu) after the trim returned NULL", n);
        blocks[i].n = (uint32_t)n;
        memset(blocks[i].p, (int)(i & 0xff), n);
    }
    for (size_t i = 0; i < 100000; i++) {
        CHECK(blocks[i].p[0] == (unsigned char)(i & 0xff) && blocks[i].p[blocks[i].n - 1] == (unsigned char)(i & 0xff),
              "block %zu changed after the trim", i);
        free(blocks[i].p);
    }
    munmap(blocks, sizeof(struct blk) * MAX_BLOCKS);
    printf("rss: all checks passed\n");
    return 0;
}
