/*
 * stress.c — random malloc / calloc / posix_memalign / realloc / free over a
 * shared table of blocks, first with one thread, then with eight.
 *
 * Every live block carries a byte pattern derived from its own unique seed; the
 * pattern is verified before every realloc and free, and after every realloc
 * for the bytes that must be preserved. Since no two live blocks share a seed,
 * two live blocks that overlap corrupt each other's pattern and are caught.
 * With eight threads any thread may realloc or free a block another thread
 * allocated (the table is shared, each slot under its own lock), so blocks
 * constantly cross threads.
 *
 * Sizes are weighted toward small blocks (1–1024 bytes), with some medium
 * (1 KiB–64 KiB) and a few large ones (64 KiB–4 MiB).
 */
#define _GNU_SOURCE
#define TEST_NAME "stress"
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define NSLOTS 8192

struct slot {
    pthread_mutex_t lock;
    unsigned char *ptr;
    size_t size;
    uint64_t seed;
    size_t align; /* alignment asked for, 0 for plain malloc */
};

static struct slot slots[NSLOTS];
static atomic_uint_fast64_t next_seed = 1;
static atomic_ullong total_ops;
static double deadline;

static size_t pick_size(rng_t *r)
{
    uint64_t k = rng_next(r) % 1000;
    if (k < 850)
        return rng_range(r, 1, 1024);
    if (k < 995)
        return rng_log_range(r, 1025, 65536);
    return rng_log_range(r, 65537, (size_t)4 << 20);
}

static void verify(struct slot *s, int thread, const char *when)
{
    if (!s->ptr)
        return;
    size_t bad = pattern_check(s->ptr, s->size, s->seed);
    if (bad != (size_t)-1)
        FAIL("thread %d, %s: block %p (%zu bytes, seed %llu) has a wrong byte at offset %zu "
             "(overlap with another live block or corruption)",
             thread, when, (void *)s->ptr, s->size, (unsigned long long)s->seed, bad);
    if (s->align)
        CHECK(is_aligned(s->ptr, s->align), "block %p lost its %zu alignment", (void *)s->ptr, s->align);
}

static void new_block(struct slot *s, rng_t *r, int thread)
{
    size_t n = pick_size(r);
    uint64_t kind = rng_next(r) % 100;
    unsigned char *p;
    s->align = 0;
    if (kind < 10) {
        p = calloc(1, n);
        CHECK(p != NULL, "thread %d: calloc(1, %zu) returned NULL", thread, n);
        size_t step = n > 4096 ? 61 : 1;
        for (size_t i = 0; i < n; i += step)
            CHECK(p[i] == 0, "thread %d: calloc(1, %zu) = %p: byte %zu is 0x%02x", thread, n, (void *)p, i, p[i]);
        CHECK(p[n - 1] == 0, "thread %d: calloc(1, %zu): last byte not zero", thread, n);
    } else if (kind < 15) {
        size_t a = (size_t)1 << rng_range(r, 3, 13);
        void *vp = NULL;
        int rc = posix_memalign(&vp, a, n);
        CHECK(rc == 0 && vp != NULL, "thread %d: posix_memalign(%zu, %zu) failed: %d", thread, a, n, rc);
        p = vp;
        s->align = a;
        CHECK(is_aligned(p, a), "thread %d: posix_memalign(%zu, %zu) = %p is misaligned", thread, a, n, (void *)p);
    } else {
        p = malloc(n);
        CHECK(p != NULL, "thread %d: malloc(%zu) returned NULL", thread, n);
    }
    if (n >= 16 && !s->align)
        CHECK(is_aligned(p, 16), "thread %d: malloc(%zu) = %p is not 16-byte aligned", thread, n, (void *)p);
    CHECK(malloc_usable_size(p) >= n, "thread %d: usable size %zu < %zu", thread, malloc_usable_size(p), n);
    s->seed = atomic_fetch_add(&next_seed, 1);
    s->ptr = p;
    s->size = n;
    pattern_fill(p, n, s->seed);
}

static void op(struct slot *s, rng_t *r, int thread)
{
    if (!s->ptr) {
        new_block(s, r, thread);
        return;
    }
    verify(s, thread, "before realloc/free");
    uint64_t k = rng_next(r) % 100;
    if (k < 30) {
        size_t n = (rng_next(r) & 1) ? pick_size(r) : s->size + rng_range(r, 0, 64) - (s->size > 64 ? 32 : 0);
        if (n == 0)
            n = 1;
        unsigned char *q = realloc(s->ptr, n);
        CHECK(q != NULL, "thread %d: realloc(%zu -> %zu) returned NULL", thread, s->size, n);
        size_t keep = s->size < n ? s->size : n;
        size_t bad = pattern_check(q, keep, s->seed);
        CHECK(bad == (size_t)-1, "thread %d: realloc(%zu -> %zu) = %p: byte %zu not preserved",
              thread, s->size, n, (void *)q, bad);
        if (n >= 16)
            CHECK(is_aligned(q, 16), "thread %d: realloc(.., %zu) = %p is not 16-byte aligned", thread, n, (void *)q);
        if (n > keep)
            pattern_fill_range(q, keep, n, s->seed);
        s->ptr = q;
        s->size = n;
        s->align = 0; /* realloc keeps only the default alignment */
    } else {
        free(s->ptr);
        s->ptr = NULL;
        s->size = 0;
    }
}

struct worker_arg {
    int id;
    long ops;
};

static void *worker(void *vp)
{
    struct worker_arg *a = vp;
    rng_t r;
    rng_seed(&r, 1000 + (uint64_t)a->id);
    long done = 0;
    for (; done < a->ops; done++) {
        if ((done & 1023) == 0 && now_seconds() > deadline)
            break;
        struct slot *s = &slots[rng_next(&r) % NSLOTS];
        pthread_mutex_lock(&s->lock);
        op(s, &r, a->id);
        pthread_mutex_unlock(&s->lock);
    }
    atomic_fetch_add(&total_ops, (unsigned long long)done);
    return NULL;
}

static void run(int nthreads, long ops_per_thread, double seconds)
{
    pthread_t t[64];
    struct worker_arg args[64];
    deadline = now_seconds() + seconds;
    atomic_store(&total_ops, 0);
    for (int i = 0; i < nthreads; i++) {
        args[i].id = i;
        args[i].ops = ops_per_thread;
        int rc = pthread_create(&t[i], NULL, worker, &args[i]);
        CHECK(rc == 0, "pthread_create failed: %d", rc);
    }
    for (int i = 0; i < nthreads; i++)
        pthread_join(t[i], NULL);
    /* Verify everything still live, free half of it (the other half stays for
     * the next round, where other threads will free it). */
    size_t live = 0;
    for (int i = 0; i < NSLOTS; i++) {
        verify(&slots[i], -1, "after the round");
        if (slots[i].ptr) {
            live++;
            if (i & 1) {
                free(slots[i].ptr);
                slots[i].ptr = NULL;
                slots[i].size = 0;
            }
        }
    }
    printf("stress: %d thread(s): %llu operations, %zu blocks live at the end\n", nthreads,
           (unsigned long long)atomic_load(&total_ops), live);
}

int main(void)
{
    for (int i = 0; i < NSLOTS; i++)
        pthread_mutex_init(&slots[i].lock, NULL);
    run(1, 300000, 8.0);
    run(8, 60000, 10.0);
    run(2, 100000, 5.0);
    for (int i = 0; i < NSLOTS; i++) {
        verify(&slots[i], -1, "at the end");
        free(slots[i].ptr);
    }
    printf("stress: all checks passed\n");
    return 0;
}
