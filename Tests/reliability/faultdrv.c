/*
 * faultdrv.c — a fixed sequence of mixed allocations, run with failmap.so making
 * chosen mmap/mremap calls fail (see run-faults.sh):
 *
 *   LD_PRELOAD="failmap.so libswiftmalloc.so" FAILMAP_AT=N faultdrv
 *
 * Every allocation must either succeed with a usable, correctly aligned block or
 * fail cleanly: NULL (posix_memalign: the error number) with errno ENOMEM, and a
 * failed realloc must leave its block intact. Every block that was handed out
 * keeps its contents until it is freed. After the sequence, injection is switched
 * off (failmap_set_enabled(0)) and a recovery sequence must succeed entirely: the
 * allocator works again after the failure point.
 *
 * Output: one line "faultdrv: ok: CALLS calls, FAILED failed cleanly, recovery ok"
 * and exit status 0; on a failed check, a line "faultdrv: FAILED: ..." and status 1.
 * With no injection (FAILMAP_* unset) no call may fail.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void failmap_set_enabled(int on) __attribute__((weak));
long failmap_failed(void) __attribute__((weak));

__attribute__((format(printf, 1, 2), noreturn)) static void fail(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    /* write(2), not stdio: stdio may need memory we could not get */
    ssize_t w = write(2, "faultdrv: FAILED: ", 18);
    w = write(2, buf, n > 0 && (size_t)n < sizeof buf ? (size_t)n : strlen(buf));
    w = write(2, "\n", 1);
    (void)w;
    _exit(1);
}

static inline uint64_t pat(uint64_t seed, size_t i)
{
    uint64_t x = seed ^ (i * 0x9E3779B97F4A7C15ull);
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    return x ^ (x >> 29);
}

static void words(unsigned char *p, size_t n, size_t from, size_t to, uint64_t seed, int check, const char *what)
{
    for (size_t w = from; w < to; w++) {
        uint64_t v = pat(seed, w);
        if (check) {
            uint64_t got;
            memcpy(&got, p + w * 8, 8);
            if (got != v) fail("%s: block %p of %zu bytes corrupted at offset %zu", what, (void *)p, n, w * 8);
        } else {
            memcpy(p + w * 8, &v, 8);
        }
    }
}

/* The pattern of a block of n bytes, on [0, limit): every 8-byte word up to
 * 64 KiB; above, the first and last 8 KiB and one word every 64 KiB (huge
 * blocks stay mostly untouched), and the tail bytes. */
static void pattern_limit(unsigned char *p, size_t n, size_t limit, uint64_t seed, int check, const char *what)
{
    size_t nw = n / 8, lw = (limit < n ? limit : n) / 8;
#define CLIP(x) ((x) < lw ? (x) : lw)
    if (n <= (64u << 10)) {
        words(p, n, 0, lw, seed, check, what);
    } else {
        words(p, n, 0, CLIP(1024), seed, check, what);
        for (size_t w = 8192; w + 1024 < nw; w += 8192) words(p, n, CLIP(w), CLIP(w + 1), seed, check, what);
        words(p, n, CLIP(nw - 1024), lw, seed, check, what);
    }
#undef CLIP
    for (size_t i = nw * 8; i < n && i < limit; i++) {
        unsigned char v = (unsigned char)(seed >> (8 * (i & 7)));
        if (check && p[i] != v) fail("%s: block %p of %zu bytes corrupted at tail offset %zu", what, (void *)p, n, i);
        if (!check) p[i] = v;
    }
}

static void pattern(unsigned char *p, size_t n, uint64_t seed, int check, const char *what)
{
    pattern_limit(p, n, n, seed, check, what);
}

typedef struct { unsigned char *p; size_t size; uint64_t seed; } blk_t;
#define MAXB 2048
static blk_t blocks[MAXB];
static int nblocks;
static long ncalls, nfailed;

static void add(void *p, size_t n, size_t align, const char *what)
{
    size_t need = align > 16 ? align : (n >= 16 ? 16 : 1);
    if ((uintptr_t)p % need) fail("%s(%zu) = %p is not aligned to %zu", what, n, p, need);
    if (malloc_usable_size(p) < n) fail("%s(%zu) = %p: usable size %zu", what, n, p, malloc_usable_size(p));
    if (nblocks == MAXB) fail("too many blocks");
    blk_t b = { p, n, 0x5EED0000ull + (uint64_t)nblocks * 7919 };
    pattern(b.p, n, b.seed, 0, what);
    blocks[nblocks++] = b;
}

/* The outcome of one allocation call: NULL must come with ENOMEM. */
static int outcome(void *p, int err, size_t n, const char *what)
{
    ncalls++;
    if (p != NULL) return 1;
    if (err != ENOMEM) fail("%s(%zu) returned NULL with errno %d, not ENOMEM", what, n, err);
    nfailed++;
    return 0;
}

static void do_malloc(size_t n)
{
    errno = 0;
    void *p = malloc(n);
    if (outcome(p, errno, n, "malloc")) add(p, n, 0, "malloc");
}

static void do_calloc(size_t n)
{
    errno = 0;
    unsigned char *p = calloc(n / 8 + 1, 8);
    size_t total = (n / 8 + 1) * 8;
    if (!outcome(p, errno, total, "calloc")) return;
    for (size_t i = 0; i < total; i += (i < 65536 ? 1 : 4093))
        if (p[i]) fail("calloc(%zu) = %p: byte %zu not zero", total, (void *)p, i);
    if (p[total - 1]) fail("calloc(%zu): last byte not zero", total);
    add(p, total, 0, "calloc");
}

static void do_aligned(size_t align, size_t n, int kind)
{
    void *p = NULL;
    errno = 0;
    if (kind == 0) {
        void *out = (void *)0x77;
        int rc = posix_memalign(&out, align, n);
        if (rc != 0 && out != (void *)0x77) fail("posix_memalign failed and changed *memptr");
        if (rc != 0 && rc != ENOMEM) fail("posix_memalign(%zu, %zu) returned %d", align, n, rc);
        p = rc ? NULL : out;
        errno = rc ? rc : 0;
    } else {
        p = aligned_alloc(align, n);
    }
    if (outcome(p, errno, n, kind ? "aligned_alloc" : "posix_memalign")) add(p, n, align, "aligned");
}

/* realloc of block k to n; on failure the block must be intact. */
static void do_realloc(int k, size_t n)
{
    blk_t *b = &blocks[k];
    if (b->p == NULL) return;
    pattern(b->p, b->size, b->seed, 1, "before realloc");
    errno = 0;
    unsigned char *q = realloc(b->p, n);
    if (!outcome(q, errno, n, "realloc")) {
        pattern(b->p, b->size, b->seed, 1, "after a failed realloc");
        return;
    }
    /* The kept prefix: the old block's pattern, as far as the new size goes. */
    pattern_limit(q, b->size, n, b->seed, 1, "after realloc");
    b->p = q;
    b->size = n;
    pattern(q, n, b->seed, 0, "realloc");
}

typedef struct { blk_t made[200]; int n; } thread_out_t;

static void *thread_main(void *arg)
{
    thread_out_t *o = arg;
    for (int i = 0; i < 200; i++) {
        size_t n = 16 + (size_t)(i * 37) % 3000;
        errno = 0;
        unsigned char *p = malloc(n);
        ncalls++; /* racy with nothing: the main thread waits in join */
        if (p == NULL) {
            if (errno != ENOMEM) fail("malloc(%zu) in a thread: NULL with errno %d", n, errno);
            nfailed++;
            continue;
        }
        blk_t b = { p, n, 0xABCD0000ull + (uint64_t)i };
        pattern(p, n, b.seed, 0, "thread malloc");
        o->made[o->n++] = b;
    }
    return NULL;
}

static void run_thread(void)
{
    static thread_out_t out;
    out.n = 0;
    pthread_t t;
    if (pthread_create(&t, NULL, thread_main, &out) != 0) return; /* no thread: not the allocator's doing */
    pthread_join(t, NULL);
    for (int i = 0; i < out.n; i++) {
        if (nblocks == MAXB) fail("too many blocks");
        blocks[nblocks++] = out.made[i];
    }
}

static void verify_all(const char *when)
{
    for (int i = 0; i < nblocks; i++)
        if (blocks[i].p) pattern(blocks[i].p, blocks[i].size, blocks[i].seed, 1, when);
}

static void free_some(int step, int phase)
{
    for (int i = phase; i < nblocks; i += step)
        if (blocks[i].p) {
            pattern(blocks[i].p, blocks[i].size, blocks[i].seed, 1, "before free");
            free(blocks[i].p);
            blocks[i].p = NULL;
        }
}

static void sequence(void)
{
    /* Small blocks across the classes. */
    for (int i = 0; i < 600; i++) do_malloc((size_t)(1 + (i * 53) % 32768 / (i % 3 == 0 ? 1 : 64)));
    /* Large blocks. */
    for (int i = 0; i < 12; i++) do_malloc((size_t)(40u << 10) * (size_t)(1 + i * 6));
    /* Huge blocks: their own mappings. */
    do_malloc(65u << 20);
    do_malloc(80u << 20);
    /* calloc, small and large. */
    for (int i = 0; i < 40; i++) do_calloc((size_t)(i * 977) % (300u << 10));
    /* Aligned, up to 2 MiB alignments. */
    for (int i = 0; i < 24; i++) do_aligned((size_t)1 << (4 + i % 18), 100 + (size_t)i * 9000, i & 1);
    /* A second thread: a new thread cache, blocks that outlive the thread. */
    run_thread();
    /* realloc growth chains: small -> large -> huge (mremap) and back. */
    int base = nblocks;
    do_malloc(24);
    do_malloc(5000);
    static const size_t steps[] = { 100, 3000, 40000, 1u << 20, 66u << 20, 70u << 20, 90u << 20, 2u << 20, 500 };
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        do_realloc(base, steps[s]);
        do_realloc(base + 1, steps[(s + 3) % 9]);
    }
    /* Free half, allocate again into the holes, free a third. */
    free_some(2, 0);
    for (int i = 0; i < 300; i++) do_malloc((size_t)(8 + (i * 131) % 9000));
    do_malloc(70u << 20);
    free_some(3, 1);
    malloc_trim(0);
    for (int i = 0; i < 100; i++) do_malloc((size_t)(64u << 10) + (size_t)i * 4096);
    verify_all("end of the sequence");
}

int main(void)
{
    sequence();
    long injected = failmap_failed ? failmap_failed() : 0;
    /* Recovery: no more injected failures; everything must now succeed. */
    if (failmap_set_enabled) failmap_set_enabled(0);
    long failed_before = nfailed;
    free_some(1, 0);
    nblocks = 0;
    for (int i = 0; i < 200; i++) do_malloc((size_t)(1 + (i * 211) % 20000));
    do_malloc(1u << 20);
    do_malloc(65u << 20);
    do_calloc(200u << 10);
    do_aligned(1u << 16, 100000, 0);
    do_aligned(1u << 21, 3u << 20, 1);
    do_malloc(1000);
    do_realloc(nblocks - 1, 70u << 20);
    do_realloc(nblocks - 1, 100);
    run_thread();
    if (nfailed != failed_before)
        fail("%ld allocations failed after injection was switched off", nfailed - failed_before);
    verify_all("end of recovery");
    free_some(1, 0);
    printf("faultdrv: ok: %ld calls, %ld failed cleanly, %ld mappings refused, recovery ok\n", ncalls, failed_before,
           injected);
    return 0;
}
