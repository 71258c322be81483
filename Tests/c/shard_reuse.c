/*
 * shard_reuse.c — memory freed back to one shard is reused by the others.
 *
 * Runs itself as a child with SWIFTMALLOC_SHARDS=3 and checks three things:
 *
 *  1. A thread takes the shard of one that exited: main mallocs a 48-byte block
 *     (shard 0); thread A mallocs one and exits; thread B, created after, gets its
 *     first block from A's span (same page), not from main's or from a third
 *     shard's. (Dealt in creation order, B would take shard 2.)
 *  2. Spans whose blocks came back to an idle list are taken over: main fills
 *     4096 blocks of 200 bytes, a thread frees all but the first block of each
 *     page, and after 100 ms (a list counts as idle after about 17 ms without a
 *     refill) another thread's 2000 new blocks of that size come from main's
 *     pages (at least 90% of them) instead of new ones.
 *  3. Spans change shards while threads free into them: waves of short-lived
 *     threads swap blocks through shared slots in bursts with pauses of up to
 *     25 ms (every block freed by a thread other than the one that allocated it,
 *     every byte checked), so lists go idle and other threads take over spans
 *     that others are freeing into.
 *  4. The statistics printed at exit (SWIFTMALLOC_STATS=1) count the shards and
 *     the spans that moved between them.
 *
 * Skipped when malloc is not SwiftMalloc's.
 */
#define _GNU_SOURCE
#define TEST_NAME "shard_reuse"
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define FILL 4096
#define SIZE 200
#define REFILL 2000
#define SLOTS 2048
#define WAVES 3
#define WAVE_THREADS 8
#define BURSTS 10

static void *thread_malloc48(void *arg)
{
    (void)arg;
    void *p = malloc(48);
    CHECK(p != NULL, "malloc(48) returned NULL");
    return p;
}

static void *fill[FILL];
static uintptr_t fill_pages[FILL];
static size_t npages;

static int cmp_page(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

static int in_fill_pages(const void *p)
{
    uintptr_t page = (uintptr_t)p >> 12;
    return bsearch(&page, fill_pages, npages, sizeof page, cmp_page) != NULL;
}

/* Frees every block of the fill except the first one on each page (so no span
 * empties), then exits: its cache gives the blocks back to main's shard. */
static void *thin_out(void *arg)
{
    (void)arg;
    uintptr_t last = 0;
    for (int i = 0; i < FILL; i++) {
        uintptr_t page = (uintptr_t)fill[i] >> 12;
        if (page != last) {
            last = page;
            continue;
        }
        free(fill[i]);
        fill[i] = NULL;
    }
    return NULL;
}

static void *refill[REFILL];

static void *reuse(void *arg)
{
    long *hits = arg;
    for (int i = 0; i < REFILL; i++) {
        refill[i] = malloc(SIZE);
        CHECK(refill[i] != NULL, "malloc(%d) returned NULL", SIZE);
        memset(refill[i], 0x5a, SIZE);
        if (in_fill_pages(refill[i])) (*hits)++;
    }
    return NULL;
}

static _Atomic(uintptr_t) slots[SLOTS];

/* Replaces random slots' blocks with its own (testutil.h), in bursts. */
static void *swapper(void *arg)
{
    rng_t r;
    rng_seed(&r, (uint64_t)(uintptr_t)arg);
    for (int burst = 0; burst < BURSTS; burst++) {
        swap_tagged_blocks(slots, SLOTS, 2000 + (long)(rng_next(&r) % 4000), rng_next(&r), 16, 400);
        usleep((useconds_t)(rng_next(&r) % 25000));
    }
    return NULL;
}

static int child(void)
{
    /* 1. the shard of an exited thread */
    void *mine = malloc(48);
    pthread_t t;
    void *a = NULL, *b = NULL;
    CHECK(pthread_create(&t, NULL, thread_malloc48, NULL) == 0, "pthread_create failed");
    pthread_join(t, &a);
    CHECK(pthread_create(&t, NULL, thread_malloc48, NULL) == 0, "pthread_create failed");
    pthread_join(t, &b);
    CHECK(((uintptr_t)b >> 12) == ((uintptr_t)a >> 12),
          "a thread created after another exited did not take its shard: %p and %p on different pages", a, b);
    CHECK(((uintptr_t)b >> 12) != ((uintptr_t)mine >> 12), "a new thread took the main thread's shard");
    free(a);
    free(b);
    free(mine);

    /* 2. spans of an idle shard are taken over */
    for (int i = 0; i < FILL; i++) {
        fill[i] = malloc(SIZE);
        CHECK(fill[i] != NULL, "malloc(%d) returned NULL", SIZE);
        memset(fill[i], 0xa5, SIZE);
        fill_pages[i] = (uintptr_t)fill[i] >> 12;
    }
    qsort(fill_pages, FILL, sizeof fill_pages[0], cmp_page);
    npages = 0;
    for (int i = 0; i < FILL; i++)
        if (npages == 0 || fill_pages[npages - 1] != fill_pages[i]) fill_pages[npages++] = fill_pages[i];
    CHECK(pthread_create(&t, NULL, thin_out, NULL) == 0, "pthread_create failed");
    pthread_join(t, NULL);
    usleep(100 * 1000);
    long hits = 0;
    CHECK(pthread_create(&t, NULL, reuse, &hits) == 0, "pthread_create failed");
    pthread_join(t, NULL);
    CHECK(hits * 10 >= REFILL * 9, "only %ld of %d new blocks reused the %zu pages freed back to the main thread's shard",
          hits, REFILL, npages);
    for (int i = 0; i < FILL; i++) {
        if (fill[i] == NULL) continue;
        for (int k = 0; k < SIZE; k++)
            CHECK(((unsigned char *)fill[i])[k] == 0xa5, "kept block %p changed at byte %d", fill[i], k);
        free(fill[i]);
    }
    for (int i = 0; i < REFILL; i++) {
        for (int k = 0; k < SIZE; k++)
            CHECK(((unsigned char *)refill[i])[k] == 0x5a, "new block %p changed at byte %d", refill[i], k);
        free(refill[i]);
    }

    /* 3. spans change shards under concurrent frees */
    for (long wave = 0; wave < WAVES; wave++) {
        pthread_t w[WAVE_THREADS];
        for (long i = 0; i < WAVE_THREADS; i++)
            CHECK(pthread_create(&w[i], NULL, swapper, (void *)(wave * WAVE_THREADS + i + 1)) == 0,
                  "pthread_create failed");
        for (int i = 0; i < WAVE_THREADS; i++) pthread_join(w[i], NULL);
    }
    free_tagged_slots(slots, SLOTS);
    printf("reused=%ld\n", hits);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "child") == 0) return child();
    if (!malloc_is_swiftmalloc()) {
        printf("%s: skipped (malloc is not SwiftMalloc's)\n", TEST_NAME);
        return 0;
    }
    static char err[65536];
    char *env[] = {"SWIFTMALLOC_SHARDS=3", "SWIFTMALLOC_STATS=1", NULL};
    int status = run_self_child(env, 2, err, sizeof err);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child with 3 shards failed (status %d): %s", status,
          strlen(err) > 2000 ? err + strlen(err) - 2000 : err);
    const char *line = strstr(err, " shards, ");
    CHECK(line != NULL, "the statistics name no shard count:\n%s", err);
    CHECK(strncmp(line - 2, " 3 shards", 9) == 0, "the statistics do not count 3 shards:\n%s", err);
    unsigned long moved = strtoul(line + strlen(" shards, "), NULL, 10);
    CHECK(moved >= 1, "the statistics count no span moved between shards:\n%s", err);
    printf("%s: ok (%lu spans moved between shards)\n", TEST_NAME, moved);
    return 0;
}
