/*
 * mixed.c — blocks of 256 B to 2 KiB share mixed spans, where freed neighbours
 * merge and any of those sizes can reuse the space.
 *
 *  1. Reuse across sizes: 16 MiB of 256-512 B blocks, a random 90% freed, then
 *     8 MiB of 600-2000 B blocks. Merged holes take the new blocks: RSS grows by
 *     less than half of what it grows with SWIFTMALLOC_MIXED=0 (one-class spans,
 *     where a 512 B hole can only take a 512 B block), measured in a child run
 *     each way with the purger off. Every surviving byte is checked.
 *  2. Alignment: posix_memalign of 256-2000 B blocks at 32 B to 2 KiB.
 *  3. Sizes: malloc_usable_size covers the request without much slack, realloc
 *     within the block stays in place, and growth keeps the contents.
 *  4. Threads: four threads swap blocks of 256 B to 2 KiB through shared slots,
 *     so most blocks are freed by a thread that did not allocate them (into the
 *     return stacks and arenas of another shard); every byte checked.
 *  5. fork: the child frees and reallocates the parent's blocks.
 *
 * Skipped parts (1) when malloc is not SwiftMalloc's.
 */
#define _GNU_SOURCE
#define TEST_NAME "mixed"
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define FILL_BYTES ((size_t)16 << 20)
#define REFILL_BYTES ((size_t)8 << 20)

/* Phase 1 of part 1, run in a child: prints the RSS growth of the refill in KiB. */
static int reuse_child(void)
{
    rng_t r;
    rng_seed(&r, 42);
    size_t cap = FILL_BYTES / 256 + 16;
    unsigned char **p = malloc(cap * sizeof *p);
    uint32_t *n = malloc(cap * sizeof *n);
    CHECK(p && n, "malloc of the tables failed");
    size_t count = 0, bytes = 0;
    while (bytes < FILL_BYTES && count < cap) {
        n[count] = (uint32_t)rng_range(&r, 256, 512);
        p[count] = malloc(n[count]);
        CHECK(p[count] != NULL, "malloc(%u) failed", n[count]);
        pattern_fill(p[count], n[count], count);
        bytes += n[count];
        count++;
    }
    for (size_t i = 0; i < count; i++) {
        if (rng_next(&r) % 10 != 0) {
            free(p[i]);
            p[i] = NULL;
        }
    }
    malloc_trim(0);
    size_t before = rss_bytes();
    size_t rcap = REFILL_BYTES / 600 + 16, rcount = 0;
    unsigned char **q = malloc(rcap * sizeof *q);
    uint32_t *qn = malloc(rcap * sizeof *qn);
    CHECK(q && qn, "malloc of the tables failed");
    bytes = 0;
    while (bytes < REFILL_BYTES && rcount < rcap) {
        qn[rcount] = (uint32_t)rng_range(&r, 600, 2000);
        q[rcount] = malloc(qn[rcount]);
        CHECK(q[rcount] != NULL, "malloc(%u) failed", qn[rcount]);
        pattern_fill(q[rcount], qn[rcount], 1000000 + rcount);
        bytes += qn[rcount];
        rcount++;
    }
    size_t after = rss_bytes();
    for (size_t i = 0; i < count; i++) {
        if (p[i] == NULL) continue;
        size_t bad = pattern_check(p[i], n[i], i);
        CHECK(bad == (size_t)-1, "block %zu (%u B) changed at byte %zu", i, n[i], bad);
        free(p[i]);
    }
    for (size_t i = 0; i < rcount; i++) {
        size_t bad = pattern_check(q[i], qn[i], 1000000 + i);
        CHECK(bad == (size_t)-1, "refill block %zu (%u B) changed at byte %zu", i, qn[i], bad);
        free(q[i]);
    }
    printf("%zu\n", after > before ? (after - before) >> 10 : 0);
    return 0;
}

static size_t refill_growth_kib(const char *mixed)
{
    char setting[64];
    snprintf(setting, sizeof setting, "SWIFTMALLOC_MIXED=%s", mixed);
    char *env[] = { setting, "SWIFTMALLOC_BACKGROUND=0", NULL };
    char out[256];
    int status = run_self_child(env, 1, out, sizeof out);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child with %s failed (status %d)", setting, status);
    return (size_t)strtoull(out, NULL, 10);
}

static void test_reuse(void)
{
    if (!malloc_is_swiftmalloc()) {
        printf("mixed: reuse skipped (malloc is not SwiftMalloc's)\n");
        return;
    }
    size_t with = refill_growth_kib("1"), without = refill_growth_kib("0");
    printf("mixed: 8 MiB of 600-2000 B blocks after 16 MiB of 256-512 B, 90%% freed: RSS grew %zu KiB "
           "(one-class spans: %zu KiB)\n", with, without);
    CHECK(without > 4096, "one-class spans grew only %zu KiB: the test no longer measures reuse", without);
    CHECK(with * 2 < without, "mixed spans grew %zu KiB, not under half of one-class spans' %zu KiB", with, without);
}

static void test_alignment(void)
{
    static const size_t sizes[] = { 256, 300, 700, 1500, 2000 };
    for (size_t a = 32; a <= 2048; a *= 2) {
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            void *p[8];
            for (int k = 0; k < 8; k++) {
                CHECK(posix_memalign(&p[k], a, sizes[i]) == 0, "posix_memalign(%zu, %zu) failed", a, sizes[i]);
                CHECK(is_aligned(p[k], a), "posix_memalign(%zu, %zu) gave %p", a, sizes[i], p[k]);
                memset(p[k], 0x5A, sizes[i]);
            }
            for (int k = 0; k < 8; k++) free(p[k]);
        }
    }
}

static void test_sizes(void)
{
    for (size_t n = 250; n <= 2048; n += 37) {
        unsigned char *p = malloc(n);
        CHECK(p != NULL, "malloc(%zu) failed", n);
        size_t us = malloc_usable_size(p);
        CHECK(us >= n && us <= n + n / 4 + 64, "malloc_usable_size(malloc(%zu)) = %zu", n, us);
        pattern_fill(p, us, n);
        CHECK(realloc(p, us) == p, "realloc to the usable size %zu moved the block", us);
        CHECK(realloc(p, us - us / 8) == p, "a small shrink of a %zu B block moved it", us);
        unsigned char *q = realloc(p, 3000);
        CHECK(q != NULL, "realloc(%zu -> 3000) failed", n);
        size_t bad = pattern_check(q, us - us / 8, n);
        CHECK(bad == (size_t)-1, "realloc(%zu -> 3000) lost byte %zu", n, bad);
        free(q);
    }
}

#define SLOTS 4096
static _Atomic(uintptr_t) slots[SLOTS];

static void *swapper(void *arg)
{
    swap_tagged_blocks(slots, SLOTS, 150000, (uint64_t)(uintptr_t)arg, 256, 2048);
    return NULL;
}

static void test_threads(void)
{
    pthread_t t[4];
    for (uintptr_t i = 0; i < 4; i++)
        CHECK(pthread_create(&t[i], NULL, swapper, (void *)(i + 7)) == 0, "pthread_create failed");
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    free_tagged_slots(slots, SLOTS);
}

static void test_fork(void)
{
    enum { n = 2000 };
    unsigned char *p[n];
    rng_t r;
    rng_seed(&r, 9);
    for (int i = 0; i < n; i++) {
        size_t size = rng_range(&r, 256, 2048);
        p[i] = malloc(size);
        CHECK(p[i] != NULL, "malloc failed");
        memset(p[i], i & 0xff, size);
    }
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork failed");
    if (pid == 0) {
        for (int i = 0; i < n; i += 2) {
            if (p[i][0] != (unsigned char)(i & 0xff)) _exit(2);
            free(p[i]);
            p[i] = malloc(700);
            if (p[i] == NULL) _exit(3);
            memset(p[i], 0x11, 700);
        }
        for (int i = 0; i < n; i++) free(p[i]);
        _exit(0);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid failed");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child failed (status %d)", status);
    for (int i = 0; i < n; i++) {
        CHECK(p[i][0] == (unsigned char)(i & 0xff), "block %d changed in the parent", i);
        free(p[i]);
    }
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "child") == 0) return reuse_child();
    test_reuse();
    test_alignment();
    test_sizes();
    test_threads();
    test_fork();
    printf("mixed: ok\n");
    return 0;
}
