/*
 * late_address_limit.c — a program that limits its own address space after
 * start-up (setrlimit(RLIMIT_AS), as scripts do to cap their memory, or
 * `prlimit --as` from outside) must go on allocating up to that limit.
 *
 * The library reserves its flat page map at start-up unless such a limit is
 * already set; a limit set later below the size of the reservation refused every
 * new mapping. The test allocates blocks of every kind first (small, mixed-span
 * sizes, large, huge), then sets the limit to 1 GiB, and checks that: blocks of
 * every size, 64 MiB included, can be allocated again; the address space is then
 * under the limit; the old blocks keep their contents and can be grown and
 * freed; four threads allocate and free each other's blocks under the limit;
 * the program's own mmap still gets memory; free(NULL) still returns.
 */
#define _GNU_SOURCE
#define TEST_NAME "late_address_limit"
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "testutil.h"

#define LIMIT ((rlim_t)1 << 30)
#define OLD 64
#define THREADS 4
#define PER_THREAD 2000

static const size_t sizes[] = { 16, 100, 300, 700, 1500, 3000, 20000, 100000, 1 << 20, 5 << 20, 64 << 20 };
#define NSIZES (sizeof sizes / sizeof *sizes)

static unsigned char mark(const void *p, size_t n) { return (unsigned char)(((uintptr_t)p >> 4) ^ n); }

static void fill(unsigned char *p, size_t n) { memset(p, mark(p, n), n < 4096 ? n : 4096); p[n - 1] = mark(p, n); }

static void verify(const unsigned char *p, size_t n, unsigned char v)
{
    for (size_t i = 0; i < (n < 4096 ? n : 4096); i++)
        CHECK(p[i] == v, "block %p of %zu bytes changed at %zu", (const void *)p, n, i);
    CHECK(p[n - 1] == v, "block %p of %zu bytes changed at its end", (const void *)p, n);
}

static unsigned char *volatile exchange[THREADS][PER_THREAD];
static size_t exchange_size[THREADS][PER_THREAD];
static pthread_barrier_t made;

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    uint64_t s = 0x9E3779B97F4A7C15ull * (uint64_t)(id + 1);
    for (int i = 0; i < PER_THREAD; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        size_t n = 8 + s % (i % 50 == 0 ? 200000 : 2048);
        unsigned char *p = malloc(n);
        CHECK(p != NULL, "thread %d: malloc(%zu) failed under the limit (errno %d)", id, n, errno);
        fill(p, n);
        exchange[id][i] = p;
        exchange_size[id][i] = n;
    }
    pthread_barrier_wait(&made);
    /* Free the next thread's blocks. */
    int other = (id + 1) % THREADS;
    for (int i = 0; i < PER_THREAD; i++) {
        unsigned char *p = exchange[other][i];
        size_t n = exchange_size[other][i];
        verify(p, n, mark(p, n));
        free(p);
    }
    return NULL;
}

int main(void)
{
    unsigned char *old[OLD];
    size_t old_size[OLD];
    for (int i = 0; i < OLD; i++) {
        old_size[i] = sizes[i % NSIZES];
        old[i] = malloc(old_size[i]);
        CHECK(old[i] != NULL, "malloc(%zu) failed before the limit", old_size[i]);
        fill(old[i], old_size[i]);
    }

    long before = address_space_kib();
    struct rlimit limited = { LIMIT, LIMIT };
    CHECK(setrlimit(RLIMIT_AS, &limited) == 0, "setrlimit(RLIMIT_AS, 1 GiB) failed");

    for (size_t k = 0; k < NSIZES; k++) {
        errno = 0;
        unsigned char *p = malloc(sizes[k]);
        CHECK(p != NULL, "malloc(%zu) failed under a 1 GiB limit set after start-up (errno %d; address space %ld KiB before)",
              sizes[k], errno, before);
        fill(p, sizes[k]);
        verify(p, sizes[k], mark(p, sizes[k]));
        free(p);
    }
    long after = address_space_kib();
    CHECK(after < (long)(LIMIT >> 10), "address space %ld KiB, above the limit of %ld KiB", after, (long)(LIMIT >> 10));

    for (int i = 0; i < OLD; i++) {
        verify(old[i], old_size[i], mark(old[i], old_size[i]));
        if (i % 2 == 0) {
            free(old[i]);
            continue;
        }
        size_t n = old_size[i] < (8 << 20) ? old_size[i] * 2 : old_size[i] / 2;
        unsigned char v = mark(old[i], old_size[i]);
        size_t keep = n < old_size[i] ? n : old_size[i];
        unsigned char *q = realloc(old[i], n);
        CHECK(q != NULL, "realloc(%zu -> %zu) failed under the limit", old_size[i], n);
        CHECK(q[0] == v && q[keep - 1] == v, "realloc(%zu -> %zu) lost the block's contents", old_size[i], n);
        free(q);
    }

    pthread_t t[THREADS];
    CHECK(pthread_barrier_init(&made, NULL, THREADS) == 0, "pthread_barrier_init failed");
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i) == 0, "pthread_create failed under the limit");
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);

    void *m = mmap(NULL, 256 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED, "the program's own mmap of 256 MiB failed under the limit");
    munmap(m, 256 << 20);
    free(NULL);

    printf("late_address_limit: address space %ld KiB before a 1 GiB limit, %ld KiB after allocating under it\n", before,
           after);
    return 0;
}
