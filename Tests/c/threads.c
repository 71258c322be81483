/*
 * threads.c — 10,000 short-lived threads, 16 at a time.
 *
 * Each thread first frees blocks that earlier threads left behind (checking
 * their contents), then allocates a few hundred blocks of mixed sizes, frees
 * most of them, and leaves a few in a shared pool for a later thread to free.
 * Whatever per-thread state the allocator keeps must be reclaimed when a thread
 * exits: the resident set after all 10,000 threads may not exceed the resident
 * set after the first 1,000 by more than 16 MiB.
 */
#define _GNU_SOURCE
#define TEST_NAME "threads"
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define NTHREADS 10000
#define CONCURRENT 16
#define PER_THREAD 300
#define LEAVE 20
#define POOL_CAP (CONCURRENT * LEAVE * 2)
#define BASELINE_AFTER 1000
#define MAX_GROWTH ((size_t)16 << 20)

struct left { unsigned char *p; size_t n; uint64_t seed; };

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct left pool[POOL_CAP];
static int pool_count;

static size_t size_for(rng_t *r)
{
    uint64_t k = rng_next(r) % 1000;
    if (k < 850)
        return rng_range(r, 1, 512);
    if (k < 985)
        return rng_range(r, 513, 16384);
    return rng_range(r, 16385, 256 << 10);
}

static void check_free(struct left *b, int id)
{
    size_t bad = pattern_check(b->p, b->n, b->seed);
    CHECK(bad == (size_t)-1, "thread %d: block of %zu bytes left by another thread is corrupted at offset %zu",
          id, b->n, bad);
    free(b->p);
}

static void *thread_main(void *vp)
{
    int id = (int)(intptr_t)vp;
    rng_t r;
    rng_seed(&r, (uint64_t)id * 2654435761u + 17);

    /* Free what earlier threads left. */
    struct left take[LEAVE];
    int ntake = 0;
    pthread_mutex_lock(&pool_lock);
    while (ntake < LEAVE && pool_count > 0)
        take[ntake++] = pool[--pool_count];
    pthread_mutex_unlock(&pool_lock);

    struct left b[PER_THREAD];
    for (int i = 0; i < PER_THREAD; i++) {
        b[i].n = size_for(&r);
        b[i].seed = ((uint64_t)id << 20) | (uint64_t)i;
        b[i].p = (i % 7 == 0) ? calloc(1, b[i].n) : malloc(b[i].n);
        CHECK(b[i].p != NULL, "thread %d: allocating %zu bytes returned NULL", id, b[i].n);
        if (i % 7 == 0)
            CHECK(b[i].p[0] == 0 && b[i].p[b[i].n - 1] == 0, "thread %d: calloc(1, %zu) not zeroed", id, b[i].n);
        pattern_fill(b[i].p, b[i].n, b[i].seed);
        if (i == PER_THREAD / 2)
            for (int j = 0; j < ntake; j++)
                check_free(&take[j], id);
    }
    /* Free all but LEAVE, in a shuffled order. */
    for (int i = PER_THREAD - 1; i > 0; i--) {
        int j = (int)(rng_next(&r) % (uint64_t)(i + 1));
        struct left t = b[i];
        b[i] = b[j];
        b[j] = t;
    }
    for (int i = LEAVE; i < PER_THREAD; i++)
        check_free(&b[i], id);
    int kept = 0;
    pthread_mutex_lock(&pool_lock);
    while (kept < LEAVE && pool_count < POOL_CAP)
        pool[pool_count++] = b[kept++];
    pthread_mutex_unlock(&pool_lock);
    for (int i = kept; i < LEAVE; i++)
        check_free(&b[i], id);
    return NULL;
}

int main(void)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 << 10);

    size_t baseline = 0, peak = 0;
    int started = 0;
    while (started < NTHREADS) {
        pthread_t t[CONCURRENT];
        int n = 0;
        for (; n < CONCURRENT && started < NTHREADS; n++, started++) {
            int rc = pthread_create(&t[n], &attr, thread_main, (void *)(intptr_t)started);
            CHECK(rc == 0, "pthread_create #%d failed: %d", started, rc);
        }
        for (int i = 0; i < n; i++)
            pthread_join(t[i], NULL);
        size_t rss = rss_bytes();
        if (rss > peak)
            peak = rss;
        if (baseline == 0 && started >= BASELINE_AFTER)
            baseline = rss;
    }
    size_t final_rss = rss_bytes();
    printf("threads: %d threads; RSS after %d: %.1f MiB, peak %.1f MiB, at the end: %.1f MiB\n", NTHREADS,
           BASELINE_AFTER, baseline / 1048576.0, peak / 1048576.0, final_rss / 1048576.0);
    CHECK(baseline != 0, "could not read the resident set size from /proc/self/statm");
    CHECK(final_rss <= baseline + MAX_GROWTH,
          "RSS grew from %.1f MiB (after %d threads) to %.1f MiB (after %d threads): more than %zu MiB; "
          "memory held for exited threads is not being reused",
          baseline / 1048576.0, BASELINE_AFTER, final_rss / 1048576.0, NTHREADS, MAX_GROWTH >> 20);

    /* Free what is still in the pool, from the main thread. */
    for (int i = 0; i < pool_count; i++)
        check_free(&pool[i], -1);
    pool_count = 0;
    printf("threads: all checks passed\n");
    return 0;
}
