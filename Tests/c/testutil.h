/*
 * testutil.h — small helpers shared by the C tests in Tests/c/.
 *
 * Every test is a self-checking program: on the first failed check it prints one
 * diagnostic line naming the test, the source line and what was expected, and
 * exits with status 1. Exit status 0 means every check passed.
 */
#ifndef SWIFTMALLOC_TESTUTIL_H
#define SWIFTMALLOC_TESTUTIL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef TEST_NAME
#define TEST_NAME "test"
#endif

__attribute__((format(printf, 2, 3), noreturn, unused)) static void
test_fail_at(int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: FAILED at line %d: ", TEST_NAME, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(NULL);
    exit(1);
}

#define FAIL(...) test_fail_at(__LINE__, __VA_ARGS__)
/* CHECK(condition, printf-style description of what went wrong) */
#define CHECK(cond, ...)               \
    do {                               \
        if (!(cond))                   \
            test_fail_at(__LINE__, __VA_ARGS__); \
    } while (0)

/* Hides a pointer from the optimizer, so that allocation calls whose result is
 * otherwise unused (or freed at once) are really made. */
static inline void *opaque_ptr(void *p)
{
    __asm__ volatile("" : "+r"(p) : : "memory");
    return p;
}

static inline size_t opaque_size(size_t n)
{
    __asm__ volatile("" : "+r"(n));
    return n;
}

/* For a test that sets an address-space limit relative to the process's size:
 * the library reserves its flat page map (32 GiB of address space) at start-up
 * and gives the reservation back at the first allocation a limit refuses. This
 * lets that happen first (a limit at the current size, one allocation that needs
 * a new mapping), so that the size then measured is the one the limit applies to. */
#include <sys/resource.h>

/* The process's address space in KiB (/proc/self/statm's size), 0 if unknown. */
static inline long address_space_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0;
    if (f != NULL) {
        if (fscanf(f, "%ld", &pages) != 1) pages = 0;
        fclose(f);
    }
    return pages * 4;
}

static inline void shed_address_space_reservations(void)
{
    struct rlimit original, now;
    long kib = address_space_kib();
    if (kib <= 0 || getrlimit(RLIMIT_AS, &original) != 0) return;
    now.rlim_cur = (rlim_t)kib * 1024;
    now.rlim_max = original.rlim_max;
    if (now.rlim_cur > original.rlim_cur || setrlimit(RLIMIT_AS, &now) != 0) return;
    free(opaque_ptr(malloc(opaque_size(64 << 20))));
    setrlimit(RLIMIT_AS, &original);
}

/* xorshift64* — deterministic, seeded per test / per thread. */
typedef struct { uint64_t s; } rng_t;

static inline void rng_seed(rng_t *r, uint64_t seed)
{
    r->s = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    if (r->s == 0)
        r->s = 1;
}

static inline uint64_t rng_next(rng_t *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [lo, hi]. */
static inline size_t rng_range(rng_t *r, size_t lo, size_t hi)
{
    return lo + (size_t)(rng_next(r) % (uint64_t)(hi - lo + 1));
}

/* Roughly log-uniform in [lo, hi] (lo >= 1). */
static inline size_t rng_log_range(rng_t *r, size_t lo, size_t hi)
{
    size_t top = lo;
    int steps = 0;
    while (top < hi && steps < 63) {
        top <<= 1;
        steps++;
    }
    int k = steps ? (int)(rng_next(r) % (uint64_t)(steps + 1)) : 0;
    size_t a = lo << k;
    size_t b = (a << 1) - 1;
    if (b > hi || b < a)
        b = hi;
    if (a > hi)
        a = hi;
    return rng_range(r, a, b);
}

/* Position-dependent byte pattern keyed by a 64-bit seed: two live blocks with
 * different seeds have different contents, so an overlap shows up as a
 * mismatch when the older block is checked. */
static inline uint64_t pattern_word(uint64_t seed, size_t word_index)
{
    uint64_t x = seed ^ ((uint64_t)word_index * 0x9E3779B97F4A7C15ull);
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    return x;
}

static inline void pattern_fill_range(unsigned char *p, size_t from, size_t to, uint64_t seed)
{
    size_t i = from;
    while (i < to && (i & 7)) {
        p[i] = (unsigned char)(pattern_word(seed, i >> 3) >> ((i & 7) * 8));
        i++;
    }
    for (; i + 8 <= to; i += 8) {
        uint64_t w = pattern_word(seed, i >> 3);
        memcpy(p + i, &w, 8);
    }
    for (; i < to; i++)
        p[i] = (unsigned char)(pattern_word(seed, i >> 3) >> ((i & 7) * 8));
}

static inline void pattern_fill(void *p, size_t n, uint64_t seed)
{
    pattern_fill_range((unsigned char *)p, 0, n, seed);
}

/* Returns the offset of the first byte that does not match, or (size_t)-1. */
static inline size_t pattern_check(const void *vp, size_t n, uint64_t seed)
{
    const unsigned char *p = (const unsigned char *)vp;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w = pattern_word(seed, i >> 3), got;
        memcpy(&got, p + i, 8);
        if (got != w)
            break;
    }
    for (; i < n; i++)
        if (p[i] != (unsigned char)(pattern_word(seed, i >> 3) >> ((i & 7) * 8)))
            return i;
    return (size_t)-1;
}

/* Blocks that describe themselves, for tests that pass blocks between threads:
 * word 0 holds the block's size (low 16 bits) and a 48-bit pattern seed, the
 * bytes after it the pattern. Sizes from 16 to 65535. */
static inline uint64_t *tagged_block_new(rng_t *r, size_t lo, size_t hi)
{
    size_t n = rng_range(r, lo, hi);
    uint64_t seed = rng_next(r) & 0xffffffffffffull;
    uint64_t *p = (uint64_t *)malloc(n);
    CHECK(p != NULL, "malloc(%zu) returned NULL", n);
    p[0] = (uint64_t)n | (seed << 16);
    pattern_fill(p + 1, n - 8, seed);
    return p;
}

/* Checks a tagged block's pattern, then frees it. */
static inline void tagged_block_free(uint64_t *q)
{
    size_t m = (size_t)(q[0] & 0xffff);
    size_t bad = pattern_check(q + 1, m - 8, q[0] >> 16);
    CHECK(bad == (size_t)-1, "block %p of %zu bytes corrupted at byte %zu", (void *)q, m, bad);
    free(q);
}

/* `steps` times: puts a new tagged block of lo..hi bytes into a random one of the
 * `n` shared slots, and checks and frees the block it replaces (usually one that
 * another thread allocated). */
static inline void swap_tagged_blocks(_Atomic(uintptr_t) *slots, size_t n, long steps, uint64_t seed,
                                      size_t lo, size_t hi)
{
    rng_t r;
    rng_seed(&r, seed);
    for (long i = 0; i < steps; i++) {
        uint64_t *p = tagged_block_new(&r, lo, hi);
        uintptr_t old = atomic_exchange(&slots[rng_next(&r) % n], (uintptr_t)p);
        if (old != 0) tagged_block_free((uint64_t *)old);
    }
}

/* Runs this test's own executable again as `EXE child`, with the settings in
 * `env` ("NAME=VALUE" strings, NULL-terminated) added to its environment, and
 * collects what it writes to descriptor `fd` (1 or 2) into `out` (NUL-terminated;
 * the first `size` - 1 bytes, the rest is read and dropped). Returns its wait
 * status. */
static inline int run_self_child(char *const env[], int fd, char *out, size_t size)
{
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    CHECK(len > 0, "readlink /proc/self/exe failed");
    self[len] = 0;
    int p[2];
    CHECK(pipe(p) == 0, "pipe failed");
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork failed");
    if (pid == 0) {
        dup2(p[1], fd);
        close(p[0]);
        for (size_t i = 0; env[i] != NULL; i++) putenv(env[i]);
        execl(self, self, "child", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    size_t got = 0;
    char chunk[4096];
    ssize_t k;
    while ((k = read(p[0], chunk, sizeof chunk)) > 0) {
        size_t keep = (size_t)k < size - 1 - got ? (size_t)k : size - 1 - got;
        memcpy(out + got, chunk, keep);
        got += keep;
    }
    out[got] = 0;
    close(p[0]);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid failed");
    return status;
}

/* Checks and frees the blocks left in the `n` slots. */
static inline void free_tagged_slots(_Atomic(uintptr_t) *slots, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uintptr_t q = atomic_exchange(&slots[i], (uintptr_t)0);
        if (q != 0) tagged_block_free((uint64_t *)q);
    }
}

/* Resident set size in bytes, from /proc/self/statm. */
static inline size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

static inline double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline int is_aligned(const void *p, size_t a)
{
    return ((uintptr_t)p & (a - 1)) == 0;
}

/* One byte in every 4 KiB page of [p, p+n), each derived from `tag` and its page:
 * enough to fault every page in and to see whether a page was moved or replaced. */
static inline void page_fill(unsigned char *p, size_t n, unsigned char tag)
{
    for (size_t i = 0; i < n; i += 4096)
        p[i] = (unsigned char)(tag + i / 4096);
}

/* The offset of the first page byte of [p, p+n) that page_fill did not leave, or n. */
static inline size_t page_check(const unsigned char *p, size_t n, unsigned char tag)
{
    for (size_t i = 0; i < n; i += 4096)
        if (p[i] != (unsigned char)(tag + i / 4096))
            return i;
    return n;
}

#ifdef _GNU_SOURCE
#include <dlfcn.h>
/* Whether the malloc this process calls is SwiftMalloc's (preloaded or linked). */
static inline int malloc_is_swiftmalloc(void)
{
    Dl_info info;
    void *f = dlsym(RTLD_DEFAULT, "malloc");
    return f != NULL && dladdr(f, &info) != 0 && info.dli_fname != NULL &&
           strstr(info.dli_fname, "swiftmalloc") != NULL;
}

#include <sys/mman.h>
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif
/* Whether this kernel moves anonymous pages with mremap(MREMAP_DONTUNMAP), as the
 * page heap does under new large blocks (Linux 5.7 and later). */
static inline int kernel_moves_pages(void)
{
    size_t len = 4 * 4096;
    char *a = mmap(NULL, 2 * len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a == MAP_FAILED) return 0;
    memset(a, 7, len);
    void *q = mremap(a, len, len, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, a + len);
    int ok = q != MAP_FAILED && a[len] == 7 && a[0] == 0;
    munmap(a, 2 * len);
    return ok;
}

/* For the tests of moving pages under large blocks: whether they can run here
 * (SwiftMalloc's malloc, a kernel that moves pages); says why when not. */
static inline int page_moves_testable(void)
{
    if (!malloc_is_swiftmalloc()) {
        printf("%s: skipped (malloc is not SwiftMalloc's)\n", TEST_NAME);
        return 0;
    }
    if (!kernel_moves_pages()) {
        printf("%s: skipped (the kernel has no MREMAP_DONTUNMAP for anonymous memory)\n", TEST_NAME);
        return 0;
    }
    return 1;
}
#endif

/* Re-executes the test with SWIFTMALLOC_BACKGROUND=0 unless it is already set, so
 * no purger thread runs (or maps its stack) between the test's steps. */
static inline void run_without_purger(char **argv)
{
    const char *bg = getenv("SWIFTMALLOC_BACKGROUND");
    if (bg == NULL || bg[0] != '0') {
        setenv("SWIFTMALLOC_BACKGROUND", "0", 1);
        execv("/proc/self/exe", argv);
        FAIL("cannot re-execute itself");
    }
}

/* Whether the tests that count on the background purger apply: malloc is
 * SwiftMalloc's and SWIFTMALLOC_BACKGROUND=0 does not turn the purger off (without
 * it the page heap keeps only a small reserve of freed pages). Prints why not. */
static inline int purger_testable(void)
{
    if (!malloc_is_swiftmalloc()) {
        printf("%s: skipped (malloc is not SwiftMalloc's)\n", TEST_NAME);
        return 0;
    }
    const char *bg = getenv("SWIFTMALLOC_BACKGROUND");
    if (bg != NULL && bg[0] == '0') {
        printf("%s: skipped (no background purger)\n", TEST_NAME);
        return 0;
    }
    return 1;
}

#include <sys/resource.h>
/* Minor page faults of this process so far. */
static inline long minor_faults(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

#endif /* SWIFTMALLOC_TESTUTIL_H */
