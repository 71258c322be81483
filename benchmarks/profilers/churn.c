/* churn: an allocation-heavy C program for measuring heap profilers.
 *
 *     churn [MILLIONS [any]]   (default 10: ten million malloc+free pairs)
 *
 * Every allocation goes through an 8-deep call chain (churn_loop -> level1 ->
 * ... -> level7 -> malloc). Levels 1-6 each call the next level from one of two
 * call sites, picked by a bit of a pseudo-random number, so the program has
 * 2^6 = 64 distinct allocation stacks. Sizes are mixed, 8 B to 32 KiB (70%
 * 8-128 B, 20% 129 B-1 KiB, 8% 1-4 KiB, 2% 4-32 KiB), on a grid of 176
 * sizes; with "any", every byte count (about 32 k sizes, so several hundred
 * thousand distinct size+stack pairs). A table of 65,536 slots
 * holds the live set: each step frees the block in a random slot and puts a
 * new one there, so about 65 k blocks (~50 MB requested) stay live and the
 * rest is churn.
 *
 * At exit the table is freed, and three functions leak a known amount that a
 * leak report must show exactly (the block contents are never read):
 *
 *     leak_config_entries   1000 x malloc(100)     = 100,000 bytes
 *     leak_name_table       3000 x calloc(1, 40)   = 120,000 bytes
 *     leak_big_buffers         3 x malloc(300000)  = 900,000 bytes
 *
 * stdout gets one checksum line (deterministic); it allocates stdio's own
 * buffer, which is not one of the three sites.
 *
 * CHURN_PAD=N (a control for profiler overhead): after each free the loop
 * also runs N rounds of six independent register increments, about 9N
 * instructions that touch no memory. They show what a few hundred cheap
 * instructions per pair cost this loop on a given machine, where the block
 * reads of successive steps otherwise overlap.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 65536u

#define NOINLINE __attribute__((noinline))
/* Keeps the call in front of it from becoming a tail call (so every level
 * keeps its frame) and keeps the two call sites of a level from being merged. */
#define KEEP(p, tag) __asm__ volatile("# " tag : : "r"(p) : "memory")

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static inline uint64_t rng(void) {
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

/* Sizes on a grid, as structs and rounded buffers are: 176 distinct sizes
 * (8-128 step 8, 144-1024 step 16, 1088-4096 step 64, 4608-32768 step 512).
 * With "any" (any_size = 1) every byte count in the range is used instead. */
static int any_size;

static inline size_t pick_size(uint64_t r) {
    unsigned bucket = (unsigned)(r % 100);
    uint64_t v = r >> 8;
    if (any_size) {
        if (bucket < 70) return 8 + (size_t)(v % 121);     /* 8 .. 128 */
        if (bucket < 90) return 129 + (size_t)(v % 896);   /* 129 .. 1024 */
        if (bucket < 98) return 1025 + (size_t)(v % 3072); /* 1025 .. 4096 */
        return 4097 + (size_t)(v % 28672);                 /* 4097 .. 32768 */
    }
    if (bucket < 70) return 8 + 8 * (size_t)(v % 16);        /* 8 .. 128 */
    if (bucket < 90) return 144 + 16 * (size_t)(v % 56);     /* 144 .. 1024 */
    if (bucket < 98) return 1088 + 64 * (size_t)(v % 48);    /* 1088 .. 4096 */
    return 4608 + 512 * (size_t)(v % 56);                    /* 4608 .. 32768 */
}

NOINLINE static void *level7(size_t size, uint64_t r) {
    char *p = malloc(size);
    if (!p) abort();
    p[0] = (char)r; /* touch it, as a program would */
    KEEP(p, "l7");
    return p;
}

#define LEVEL(n, next, bit)                                                   \
    NOINLINE static void *level##n(size_t size, uint64_t r) {                 \
        void *p;                                                              \
        if (r & (1ull << (bit))) {                                            \
            p = next(size, r);                                                \
            KEEP(p, "l" #n "a");                                              \
        } else {                                                              \
            p = next(size, r);                                                \
            KEEP(p, "l" #n "b");                                              \
        }                                                                     \
        return p;                                                             \
    }

LEVEL(6, level7, 40)
LEVEL(5, level6, 41)
LEVEL(4, level5, 42)
LEVEL(3, level4, 43)
LEVEL(2, level3, 44)
LEVEL(1, level2, 45)

static unsigned pad_rounds;

static inline void pad(void) {
    uint64_t a = 0, b = 0, c = 0, d = 0, e = 0, f = 0;
    for (unsigned k = 0; k < pad_rounds; k++) {
        a++, b++, c++, d++, e++, f++;
        __asm__ volatile("" : "+r"(a), "+r"(b), "+r"(c), "+r"(d), "+r"(e), "+r"(f));
    }
}

NOINLINE static uint64_t churn_loop(void **slots, uint64_t steps) {
    uint64_t sum = 0;
    for (uint64_t i = 0; i < steps; i++) {
        uint64_t r = rng();
        uint32_t s = (uint32_t)(r >> 48) & (SLOTS - 1);
        if (slots[s]) {
            sum += (unsigned char)*(char *)slots[s];
            free(slots[s]);
        }
        if (pad_rounds) pad();
        slots[s] = level1(pick_size(r), r);
        KEEP(slots[s], "loop");
    }
    return sum;
}

/* The leaks. Each keeps its blocks in a local array that is dropped. */
NOINLINE static void leak_config_entries(void) {
    for (int i = 0; i < 1000; i++) {
        char *p = malloc(100);
        if (!p) abort();
        memset(p, 'c', 100);
        KEEP(p, "leak1");
    }
}

NOINLINE static void leak_name_table(void) {
    for (int i = 0; i < 3000; i++) {
        char *p = calloc(1, 40);
        if (!p) abort();
        KEEP(p, "leak2");
    }
}

NOINLINE static void leak_big_buffers(void) {
    for (int i = 0; i < 3; i++) {
        char *p = malloc(300000);
        if (!p) abort();
        memset(p, 'b', 300000);
        KEEP(p, "leak3");
    }
}

int main(int argc, char **argv) {
    double millions = argc > 1 ? atof(argv[1]) : 10.0;
    any_size = argc > 2 && strcmp(argv[2], "any") == 0;
    const char *pad_env = getenv("CHURN_PAD");
    pad_rounds = pad_env ? (unsigned)atoi(pad_env) : 0;
    uint64_t steps = (uint64_t)(millions * 1e6);
    void **slots = calloc(SLOTS, sizeof(void *));
    if (!slots) abort();
    uint64_t sum = churn_loop(slots, steps);
    for (uint32_t s = 0; s < SLOTS; s++) free(slots[s]);
    free(slots);
    leak_config_entries();
    leak_name_table();
    leak_big_buffers();
    printf("churn: %llu steps, checksum %llu\n", (unsigned long long)steps, (unsigned long long)sum);
    return 0;
}
