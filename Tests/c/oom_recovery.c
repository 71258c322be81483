/*
 * oom_recovery.c — threads that run into an address-space limit, free half of
 * what they hold, and must then allocate again.
 *
 * Sixteen threads allocate blocks of mixed sizes (8 B to 8 MiB, a quarter of them
 * aligned to 64 B to 2 MiB) under RLIMIT_AS set
 * 192 MiB above the process's size, until allocations keep failing (each failure
 * must be NULL with ENOMEM). Each then frees every other block it holds and makes
 * 100 allocations of 1 to 100,000 bytes, freeing each: with half the memory free,
 * every one must succeed. Freed blocks sit in the threads' caches and freed spans
 * in stashes kept for reuse; when the system refuses a mapping the allocator
 * gives those back and tries again. Two rounds; every block's contents checked.
 */
#define _GNU_SOURCE
#define TEST_NAME "oom_recovery"
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "testutil.h"

#define THREADS 16
#define MAX_BLOCKS 100000
#define ROUNDS 2

struct held {
    unsigned char *block;
    size_t size;
};

static pthread_barrier_t step;
static struct held *holdings[THREADS];

static uint64_t next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static size_t pick_size(uint64_t *s)
{
    uint64_t r = next_random(s) % 1000;
    uint64_t v = next_random(s);
    if (r < 600) return 8 + v % 256;
    if (r < 900) return 8 + v % 4096;
    if (r < 990) return 8 + v % 65536;
    if (r < 998) return 8 + v % (1 << 20);
    return 8 + v % (8 << 20);
}

static unsigned char mark(const unsigned char *p, size_t n) { return (unsigned char)(((uintptr_t)p >> 3) + n); }

static void check(const struct held *h)
{
    unsigned char v = mark(h->block, h->size);
    CHECK(h->block[0] == v && h->block[h->size - 1] == v, "block %p of %zu bytes changed", (void *)h->block, h->size);
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    uint64_t s = 0x9E3779B97F4A7C15ull * (uint64_t)(id + 1);
    struct held *h = holdings[id];
    for (int round = 0; round < ROUNDS; round++) {
        pthread_barrier_wait(&step); /* the limit is set */
        int count = 0, failures = 0;
        while (failures < 30 && count < MAX_BLOCKS) {
            size_t n = pick_size(&s);
            errno = 0;
            unsigned char *p = NULL;
            if (next_random(&s) % 4 == 0) {
                /* Aligned blocks too: 64 B to 2 MiB. */
                int rc = posix_memalign((void **)&p, (size_t)64 << (next_random(&s) % 16), n);
                CHECK(rc == 0 || rc == ENOMEM, "posix_memalign failed with %d, not ENOMEM", rc);
                if (rc != 0) errno = ENOMEM;
            } else {
                p = malloc(n);
            }
            if (p == NULL) {
                CHECK(errno == ENOMEM, "malloc(%zu) failed with errno %d, not ENOMEM", n, errno);
                failures++;
                continue;
            }
            failures = 0;   /* until 30 in a row fail: the limit is reached for every size */
            p[0] = p[n - 1] = mark(p, n);
            h[count].block = p;
            h[count].size = n;
            count++;
        }
        pthread_barrier_wait(&step); /* every thread is at the limit */
        int kept = 0;
        for (int i = 0; i < count; i++) {
            check(&h[i]);
            if (i & 1) free(h[i].block); else h[kept++] = h[i];
        }
        pthread_barrier_wait(&step); /* every thread freed half */
        for (int k = 0; k < 100; k++) {
            size_t n = 1 + next_random(&s) % 100000;
            unsigned char *p = malloc(n);
            CHECK(p != NULL, "thread %d, round %d: malloc(%zu) failed after half of %d blocks were freed (errno %d)",
                  id, round, n, count, errno);
            memset(p, 7, n);
            free(p);
        }
        for (int i = 0; i < kept; i++) {
            check(&h[i]);
            free(h[i].block);
        }
        pthread_barrier_wait(&step); /* done: the limit is lifted */
    }
    return NULL;
}

int main(void)
{
    pthread_t t[THREADS];
    struct rlimit original;
    CHECK(getrlimit(RLIMIT_AS, &original) == 0, "getrlimit failed");
    shed_address_space_reservations();
    CHECK(pthread_barrier_init(&step, NULL, THREADS + 1) == 0, "pthread_barrier_init failed");
    for (int i = 0; i < THREADS; i++) {
        holdings[i] = calloc(MAX_BLOCKS, sizeof(struct held));
        CHECK(holdings[i] != NULL, "calloc failed");
    }
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i) == 0, "pthread_create failed");
    for (int round = 0; round < ROUNDS; round++) {
        struct rlimit limited = { (rlim_t)(address_space_kib() + 192 * 1024) * 1024, original.rlim_max };
        CHECK(setrlimit(RLIMIT_AS, &limited) == 0, "setrlimit failed");
        pthread_barrier_wait(&step);
        pthread_barrier_wait(&step);
        pthread_barrier_wait(&step);
        pthread_barrier_wait(&step);
        CHECK(setrlimit(RLIMIT_AS, &original) == 0, "setrlimit failed");
    }
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    printf("oom_recovery: %d rounds of %d threads at an address-space limit, allocating again after freeing half\n",
           ROUNDS, THREADS);
    return 0;
}
