/*
 * calloc_threshold — calloc returns zeroed memory while another thread moves
 * the mapping threshold (mallopt M_MMAP_THRESHOLD).
 *
 *     calloc_threshold
 *
 * Two threads fill blocks of 33 KiB to 2 MiB with a pattern, free them, and
 * calloc blocks of the same sizes, checking every byte is zero, while a third
 * thread sets the threshold to 64 KiB, 1 MiB and 64 MiB in turn about every
 * 100 µs, for about 1.5 s. calloc used to skip zeroing when the threshold, read
 * after the block was placed, said the block was a fresh mapping: with the
 * threshold lowered meanwhile, a block from reused pages came back dirty.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static atomic_int stop;
static atomic_long dirty, callocs;

static uint64_t next_random(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void *worker(void *arg)
{
    uint64_t s = (uintptr_t)arg;
    void *kept[6] = {0};
    while (!atomic_load(&stop)) {
        int k = (int)(next_random(&s) % 6);
        free(kept[k]);
        size_t n = 33000 + next_random(&s) % (2 << 20);
        if (next_random(&s) % 2) {
            kept[k] = malloc(n);
            if (kept[k] == NULL) exit(2);
            memset(kept[k], 0xA5, n);
        } else {
            unsigned char *p = calloc(1, n);
            if (p == NULL) exit(2);
            atomic_fetch_add(&callocs, 1);
            for (size_t i = 0; i < n; i += 64)
                if (p[i] != 0 || p[n - 1] != 0) {
                    if (atomic_fetch_add(&dirty, 1) == 0) fprintf(stderr, "calloc(1, %zu) not zeroed at %zu\n", n, i);
                    break;
                }
            memset(p, 0x5A, n);
            kept[k] = p;
        }
    }
    for (int k = 0; k < 6; k++) free(kept[k]);
    return NULL;
}

static void *threshold_mover(void *arg)
{
    (void)arg;
    static const int values[] = {64 << 10, 1 << 20, 64 << 20};
    for (unsigned i = 0; !atomic_load(&stop); i++) {
        mallopt(M_MMAP_THRESHOLD, values[i % 3]);
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

int main(void)
{
    pthread_t w[2], m;
    for (long i = 0; i < 2; i++)
        if (pthread_create(&w[i], NULL, worker, (void *)(uintptr_t)(i * 7919 + 1)) != 0) return 1;
    if (pthread_create(&m, NULL, threshold_mover, NULL) != 0) return 1;
    struct timespec run = {1, 500000000};
    nanosleep(&run, NULL);
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++) pthread_join(w[i], NULL);
    pthread_join(m, NULL);
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    printf("%ld callocs, %ld not zeroed\n", atomic_load(&callocs), atomic_load(&dirty));
    return atomic_load(&dirty) != 0;
}
