/*
 * address_space_return.c — under an address-space limit (RLIMIT_AS, ulimit -v),
 * memory the program freed must give its address space back, not only its
 * pages: the program's own mappings and new threads' stacks count against the
 * same limit.
 *
 * With a limit 512 MiB above the process's size, the test allocates about 400 MiB
 * in blocks of 64 KiB to 1 MiB, frees them all, and waits (up to 10 s) for the
 * background purger to give the freed chunks back; then the program's own mmap of
 * 300 MiB and a new thread must succeed. The freed pages stayed mapped before
 * (purged, not unmapped): the mmap failed with ENOMEM.
 */
#define _GNU_SOURCE
#define TEST_NAME "address_space_return"
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

#include "testutil.h"

#define BLOCKS 1200

static void *thread_body(void *arg) { return arg; }

int main(void)
{
    shed_address_space_reservations();
    struct rlimit original;
    CHECK(getrlimit(RLIMIT_AS, &original) == 0, "getrlimit failed");
    long base = address_space_kib();
    struct rlimit limited = { (rlim_t)(base + 512 * 1024) * 1024, original.rlim_max };
    CHECK(setrlimit(RLIMIT_AS, &limited) == 0, "setrlimit failed");

    static void *blocks[BLOCKS];
    rng_t r;
    rng_seed(&r, 11);
    size_t total = 0;
    int n = 0;
    while (n < BLOCKS && total < ((size_t)400 << 20)) {
        size_t size = rng_range(&r, 64 << 10, 1 << 20);
        blocks[n] = malloc(size);
        CHECK(blocks[n] != NULL, "malloc(%zu) failed with %zu MiB allocated under a limit 512 MiB above the start",
              size, total >> 20);
        memset(blocks[n], 1, size);
        total += size;
        n++;
    }
    long peak = address_space_kib();
    for (int i = 0; i < n; i++) free(blocks[i]);

    long now = address_space_kib();
    for (int waited = 0; waited < 100 && now > base + 100 * 1024; waited++) {
        struct timespec ts = { 0, 100 * 1000 * 1000 };
        nanosleep(&ts, NULL);
        now = address_space_kib();
    }
    CHECK(now <= base + 100 * 1024, "address space still %ld KiB 10 s after freeing everything (%ld at the start, %ld at the peak)",
          now, base, peak);

    void *m = mmap(NULL, (size_t)300 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED, "the program's own mmap of 300 MiB failed after freeing 400 MiB (errno %d)", errno);
    munmap(m, (size_t)300 << 20);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, thread_body, NULL) == 0, "pthread_create failed after freeing 400 MiB");
    pthread_join(t, NULL);

    void *again = malloc(1 << 20);
    CHECK(again != NULL, "malloc(1 MiB) failed after the chunks went back");
    free(again);
    printf("address_space_return: %ld KiB at the start, %ld at the peak, %ld after freeing\n", base, peak, now);
    return 0;
}
