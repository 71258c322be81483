/*
 * cancel.c — threads cancelled (deferred cancellation, the default) while they
 * allocate and free blocks of every size, from small blocks to 2 MiB ones (whose
 * placement reads /proc, as profiling's stack walks may: cancellation points
 * inside the allocator).
 *
 * Each round starts eight threads that keep up to 64 blocks each, every block
 * filled with a pattern checked before it is freed; a cleanup handler frees a
 * cancelled thread's blocks. After a random 0-3 ms main cancels them all, joins
 * them (each must end cancelled), then allocates itself. A thread cancelled inside
 * the allocator while it held a lock would leave every other thread waiting on it:
 * an alarm ends a round that takes over 30 seconds as a failure.
 */
#define _GNU_SOURCE
#define TEST_NAME "cancel"
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define THREADS 8
#define KEEP 64
#define ROUNDS 120

struct owned {
    unsigned char *block[KEEP];
    size_t size[KEEP];
    int count;
};

static uint64_t next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static size_t pick_size(uint64_t *s)
{
    uint64_t r = next_random(s);
    switch (r % 8) {
    case 0: return (size_t)(256 << 10) + (size_t)(r >> 8) % (size_t)(1792 << 10); /* 256 KiB - 2 MiB */
    case 1: return (size_t)(32 << 10) + (size_t)(r >> 8) % (size_t)(224 << 10);  /* 32 - 256 KiB */
    case 2: return 1024 + (size_t)(r >> 8) % 31744;
    default: return 1 + (size_t)(r >> 8) % 1024;
    }
}

static unsigned char pattern(const unsigned char *p, size_t size) { return (unsigned char)(((uintptr_t)p >> 4) ^ size); }

static void fill(unsigned char *p, size_t size)
{
    unsigned char v = pattern(p, size);
    p[0] = v;
    p[size / 2] = v;
    p[size - 1] = v;
}

static void check_and_free(unsigned char *p, size_t size)
{
    unsigned char v = pattern(p, size);
    CHECK(p[0] == v && p[size / 2] == v && p[size - 1] == v, "block %p of %zu bytes changed while owned", (void *)p, size);
    free(p);
}

static void release_owned(void *arg)
{
    struct owned *o = arg;
    for (int i = 0; i < o->count; i++) check_and_free(o->block[i], o->size[i]);
    o->count = 0;
    free(o);
}

static void *worker(void *arg)
{
    uint64_t s = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1;
    struct owned *o = calloc(1, sizeof *o);
    CHECK(o != NULL, "calloc failed");
    pthread_cleanup_push(release_owned, o);
    for (;;) {
        if (o->count < KEEP) {
            size_t n = pick_size(&s);
            unsigned char *p = next_random(&s) % 4 == 0 ? realloc(malloc(16), n) : malloc(n);
            CHECK(p != NULL, "allocation of %zu bytes failed", n);
            fill(p, n);
            o->block[o->count] = p;
            o->size[o->count] = n;
            o->count++;
        } else {
            int i = (int)(next_random(&s) % KEEP);
            unsigned char *p = o->block[i];
            size_t n = o->size[i];
            o->count--;
            o->block[i] = o->block[o->count];
            o->size[i] = o->size[o->count];
            check_and_free(p, n);
        }
        if (next_random(&s) % 64 == 0) pthread_testcancel();
    }
    pthread_cleanup_pop(1);
    return NULL;
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char message[] = "cancel: FAILED: a round took over 30 s (a cancelled thread left a lock held?)\n";
    (void)!write(2, message, sizeof message - 1);
    _exit(1);
}

int main(void)
{
    signal(SIGALRM, on_alarm);
    uint64_t s = 12345;
    for (int round = 0; round < ROUNDS; round++) {
        pthread_t t[THREADS];
        alarm(30);
        for (int i = 0; i < THREADS; i++)
            CHECK(pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(round * THREADS + i + 1)) == 0,
                  "pthread_create failed");
        struct timespec pause = { 0, (long)(next_random(&s) % 3000000) };
        nanosleep(&pause, NULL);
        for (int i = 0; i < THREADS; i++) pthread_cancel(t[i]);
        for (int i = 0; i < THREADS; i++) {
            void *result = NULL;
            CHECK(pthread_join(t[i], &result) == 0, "pthread_join failed");
            CHECK(result == PTHREAD_CANCELED, "thread %d of round %d was not cancelled", i, round);
        }
        void *p = malloc(1000), *q = malloc(3 << 20);
        CHECK(p != NULL && q != NULL, "allocation after round %d failed", round);
        memset(q, 1, 3 << 20);
        free(p);
        free(q);
        alarm(0);
    }
    printf("cancel: %d rounds of %d threads cancelled while allocating\n", ROUNDS, THREADS);
    return 0;
}
