/* Shared helpers for the benchmark workloads: a deterministic PRNG, argument
 * parsing, accounting of requested bytes, and /proc/self/status readers.
 *
 * Every workload takes the same arguments:
 *     prog [SCALE] [THREADS]
 * SCALE multiplies the amount of work (1.0 = the default size, about a second
 * with glibc); THREADS sets the thread count of the threaded workloads.
 *
 * Results are printed as "key=value" lines on stdout; the runner reads them.
 * requested_bytes_peak is the largest number of bytes the program asked for
 * and still held at one time, so requested ÷ peak RSS is the utilization.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* xorshift64*: deterministic, seeded per thread. */
typedef struct { uint64_t s; } rng_t;

static inline void rng_seed(rng_t *r, uint64_t seed) {
    r->s = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    if (r->s == 0) r->s = 1;
}

static inline uint64_t rng_next(rng_t *r) {
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [lo, hi]. */
static inline uint64_t rng_range(rng_t *r, uint64_t lo, uint64_t hi) {
    return lo + (rng_next(r) >> 11) % (hi - lo + 1);
}

static double arg_scale(int argc, char **argv) {
    if (argc > 1) {
        double s = atof(argv[1]);
        if (s > 0) return s;
    }
    return 1.0;
}

static int arg_threads(int argc, char **argv, int def) {
    if (argc > 2) {
        int t = atoi(argv[2]);
        if (t > 0) return t;
    }
    return def;
}

/* Scaled count, at least `min`. */
static long scaled(double scale, long base, long min) {
    long n = (long)(base * scale);
    return n < min ? min : n;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "malloc(%zu) failed\n", n);
        exit(2);
    }
    return p;
}

/* ---- requested-bytes accounting ------------------------------------------
 * Single-threaded: req_add / req_sub keep an exact peak.
 * Multi-threaded: each thread owns a padded slot that it alone writes (it may
 * go negative when the thread frees blocks other threads allocated); every
 * REQ_SAMPLE operations a thread sums all slots and raises the shared peak.
 * The peak is therefore sampled, close to but never above the true one. */

static int64_t req_cur, req_peak;

static inline void req_add(size_t n) {
    req_cur += (int64_t)n;
    if (req_cur > req_peak) req_peak = req_cur;
}

static inline void req_sub(size_t n) { req_cur -= (int64_t)n; }

#define REQ_MAX_THREADS 1024
#define REQ_SAMPLE 256

typedef struct {
    _Atomic int64_t cur;
    char pad[64 - sizeof(int64_t)];
} req_slot_t;

static req_slot_t req_slots[REQ_MAX_THREADS];
static _Atomic int64_t req_mt_peak;
static int req_nslots;

static void req_mt_init(int nthreads) {
    req_nslots = nthreads < REQ_MAX_THREADS ? nthreads : REQ_MAX_THREADS;
}

static inline void req_mt_add(int slot, int64_t n) {
    atomic_store_explicit(&req_slots[slot].cur,
                          atomic_load_explicit(&req_slots[slot].cur, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static void req_mt_sample(void) {
    int64_t sum = 0;
    for (int i = 0; i < req_nslots; i++)
        sum += atomic_load_explicit(&req_slots[i].cur, memory_order_relaxed);
    int64_t old = atomic_load_explicit(&req_mt_peak, memory_order_relaxed);
    while (sum > old &&
           !atomic_compare_exchange_weak_explicit(&req_mt_peak, &old, sum, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

/* ---- /proc/self/status ---------------------------------------------------
 * Read with open/read into a stack buffer, so measuring allocates nothing. */
static long proc_status_kib(const char *field) {
    char buf[8192];
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    size_t flen = strlen(field);
    for (char *p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p) {
        if (strncmp(p, field, flen) == 0 && p[flen] == ':') return atol(p + flen + 1);
    }
    return -1;
}

/* Prevents the compiler from removing stores to a block. */
static inline void escape(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

#endif
