/*
 * late_free.c — malloc and free from many threads after their thread caches are
 * gone: in TLS destructors, which glibc runs after the allocator's own thread-exit
 * hook may have flushed and retired the thread's cache.
 *
 * Such calls find the shared static empty cache instead of a cache of their own.
 * Its bins must stay unusable however many threads race through them at once:
 * a block that landed in one would be handed to two threads. Every block is
 * filled with its owner's pattern and checked before it is freed, and the blocks
 * live at the same time must all be distinct.
 */
#define TEST_NAME "late_free"
#include "testutil.h"

#include <pthread.h>

#define THREADS 16
#define ROUNDS 20
#define BLOCKS 200

static pthread_key_t key;

static void fill(unsigned char *p, size_t n, unsigned tag) {
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(tag + i);
}

static int intact(const unsigned char *p, size_t n, unsigned tag) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(tag + i)) return 0;
    return 1;
}

/* Runs after the thread's cache was torn down: allocate, check, free, many times. */
static void late_work(void *arg) {
    unsigned tag = (unsigned)(uintptr_t)arg;
    unsigned char *held[BLOCKS];
    for (int i = 0; i < BLOCKS; i++) {
        size_t n = (i & 1) ? 16 + (size_t)(i % 24) * 8 : 1100 + (size_t)(i % 7) * 500;
        held[i] = malloc(n);
        CHECK(held[i] != NULL, "malloc(%zu) failed in a TLS destructor", n);
        fill(held[i], n, tag + (unsigned)i);
    }
    for (int i = 0; i < BLOCKS; i++) {
        size_t n = (i & 1) ? 16 + (size_t)(i % 24) * 8 : 1100 + (size_t)(i % 7) * 500;
        CHECK(intact(held[i], n, tag + (unsigned)i), "thread %u: block %d was overwritten", tag, i);
        free(held[i]);
    }
}

static void *thread_main(void *arg) {
    /* A cache of its own first, so there is one to tear down. */
    void *warm = malloc(64);
    free(warm);
    pthread_setspecific(key, arg);
    return NULL;
}

int main(void) {
    CHECK(pthread_key_create(&key, late_work) == 0, "pthread_key_create");
    for (int round = 0; round < ROUNDS; round++) {
        pthread_t t[THREADS];
        for (int i = 0; i < THREADS; i++)
            CHECK(pthread_create(&t[i], NULL, thread_main, (void *)(uintptr_t)(1000u * (unsigned)(round * THREADS + i + 1))) == 0,
                  "pthread_create");
        for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    }
    /* The main thread's cache still works, and hands out distinct blocks. */
    unsigned char *a[BLOCKS];
    for (int i = 0; i < BLOCKS; i++) {
        a[i] = malloc(48);
        fill(a[i], 48, (unsigned)i);
    }
    for (int i = 0; i < BLOCKS; i++) {
        CHECK(intact(a[i], 48, (unsigned)i), "block %d shared with another", i);
        free(a[i]);
    }
    printf("late_free: %d threads x %d rounds, %d blocks each after their caches were gone\n", THREADS, ROUNDS, BLOCKS);
    return 0;
}
