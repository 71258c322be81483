/*
 * fuzz_alloc.c — coverage-guided fuzzing of SwiftMalloc against a shadow model.
 *
 * The fuzz input is a program of allocator operations (malloc, calloc, realloc,
 * reallocarray, aligned_alloc, posix_memalign, memalign, valloc, pvalloc, free,
 * free_sized, free_aligned_sized, malloc_usable_size, malloc_trim, mallopt,
 * mallinfo2), with sizes decoded from the input (0 .. a few MiB, biased to small,
 * plus class and page boundaries and absurd sizes that must fail), blocks handed
 * to a second thread that checks and frees them (cross-thread frees), blocks
 * allocated by that thread and freed here, and short-lived threads that free
 * blocks and exit.
 *
 * The shadow model remembers, for every live block, its requested size, its
 * usable size, its alignment and a 64-bit seed; the block holds a
 * position-dependent pattern derived from the seed (every byte up to 64 KiB; for
 * larger blocks the first and last 8 KiB and one word per page), and the bytes
 * between the requested and the usable size hold a seed-derived filler. Checked:
 *   - contents intact before every free and realloc (so an overlap or a stray
 *     write by the allocator shows up as a mismatch);
 *   - a new block does not overlap any live block;
 *   - alignment (16 bytes from 16 bytes on, the requested alignment), and
 *     malloc_usable_size >= size, unchanged while the block lives;
 *   - calloc memory reads as zero; realloc keeps the prefix;
 *   - errors as glibc's: NULL + ENOMEM for sizes above PTRDIFF_MAX and for
 *     count x size overflow, EINVAL for bad alignments (posix_memalign leaves
 *     *memptr alone), realloc(p, 0) frees p and returns NULL, a failed realloc
 *     leaves the block intact.
 * A failed check prints one line naming the operation and aborts, so libFuzzer
 * saves the input.
 *
 * The allocator is reached through its swiftmalloc_* entry points, from a
 * dlopen(RTLD_NOW | RTLD_LOCAL) of the library named by SWIFTMALLOC_FUZZ_LIB, so
 * the fuzzer's own runtime keeps using glibc's malloc.
 *
 * Builds:
 *   clang -fsanitize=fuzzer fuzz_alloc.c -lpthread -ldl        (libFuzzer)
 *   cc -DFUZZ_STANDALONE fuzz_alloc.c -lpthread -ldl           (no libFuzzer: replays
 *       files and directories given as arguments, then -random=N inputs from a
 *       seeded generator, -seed=S, for at most -max_total_time=T seconds)
 *
 * Environment: SWIFTMALLOC_FUZZ_LIB (required), FUZZ_TRACE=1 (print every
 * operation on stderr), FUZZ_KEEP_HEAP=1 (do not trim the heap between inputs,
 * so state carries over from one input to the next).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TEST_NAME "fuzz_alloc"
#include "../c/testutil.h" /* pattern_word: the same contents as the C tests */

/* ---- The allocator under test ----------------------------------------------- */

static struct {
    void *(*malloc)(size_t);
    void (*free)(void *);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void *(*reallocarray)(void *, size_t, size_t);
    int (*posix_memalign)(void **, size_t, size_t);
    void *(*aligned_alloc)(size_t, size_t);
    void *(*memalign)(size_t, size_t);
    void *(*valloc)(size_t);
    void *(*pvalloc)(size_t);
    void (*free_sized)(void *, size_t);
    void (*free_aligned_sized)(void *, size_t, size_t);
    size_t (*usable_size)(void *);
    int (*trim)(size_t);
    struct mallinfo2 (*mallinfo2)(void);
    int (*mallopt)(int, int);
} A;

static int trace;
static int keep_heap;
static int skip_known; /* FUZZ_SKIP_KNOWN=1: steer around the findings listed in docs/RELIABILITY.md */
static unsigned long op_counter; /* operations in this input, for messages */

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "fuzz_alloc: CHECK FAILED at operation %lu: ", op_counter);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    abort();
}

#define TRACE(...) \
    do { if (trace) { fprintf(stderr, "op %lu: ", op_counter); fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

static void *must_sym(void *h, const char *name)
{
    void *f = dlsym(h, name);
    if (f == NULL) {
        fprintf(stderr, "fuzz_alloc: %s is not exported by the library: %s\n", name, dlerror());
        exit(2);
    }
    return f;
}

static void load_allocator(void)
{
    const char *path = getenv("SWIFTMALLOC_FUZZ_LIB");
    if (path == NULL || *path == 0) {
        fprintf(stderr, "fuzz_alloc: set SWIFTMALLOC_FUZZ_LIB to the path of libswiftmalloc.so\n");
        exit(2);
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        fprintf(stderr, "fuzz_alloc: dlopen(%s): %s\n", path, dlerror());
        exit(2);
    }
    A.malloc = must_sym(h, "swiftmalloc_malloc");
    A.free = must_sym(h, "swiftmalloc_free");
    A.calloc = must_sym(h, "swiftmalloc_calloc");
    A.realloc = must_sym(h, "swiftmalloc_realloc");
    A.reallocarray = must_sym(h, "swiftmalloc_reallocarray");
    A.posix_memalign = must_sym(h, "swiftmalloc_posix_memalign");
    A.aligned_alloc = must_sym(h, "swiftmalloc_aligned_alloc");
    A.memalign = must_sym(h, "swiftmalloc_memalign");
    A.valloc = must_sym(h, "swiftmalloc_valloc");
    A.pvalloc = must_sym(h, "swiftmalloc_pvalloc");
    A.free_sized = must_sym(h, "swiftmalloc_free_sized");
    A.free_aligned_sized = must_sym(h, "swiftmalloc_free_aligned_sized");
    A.usable_size = must_sym(h, "swiftmalloc_usable_size");
    A.trim = must_sym(h, "swiftmalloc_trim");
    A.mallinfo2 = must_sym(h, "swiftmalloc_mallinfo2");
    A.mallopt = must_sym(h, "swiftmalloc_mallopt");
    /* The glibc malloc of this process must not have been replaced: the harness
     * is meant to run the allocator side by side with the system one. */
    if ((void *)A.malloc == (void *)malloc) {
        fprintf(stderr, "fuzz_alloc: swiftmalloc_malloc is this process's malloc; do not preload the library\n");
        exit(2);
    }
    trace = getenv("FUZZ_TRACE") && *getenv("FUZZ_TRACE") && *getenv("FUZZ_TRACE") != '0';
    keep_heap = getenv("FUZZ_KEEP_HEAP") && *getenv("FUZZ_KEEP_HEAP") && *getenv("FUZZ_KEEP_HEAP") != '0';
    skip_known = getenv("FUZZ_SKIP_KNOWN") && *getenv("FUZZ_SKIP_KNOWN") && *getenv("FUZZ_SKIP_KNOWN") != '0';
}

/* ---- Feedback beyond the harness's own edges --------------------------------- */
/* The library is not instrumented in the usual build, so the harness reports what
 * the allocator did (operation x size bucket x outcome) as extra features. */
#ifndef FUZZ_STANDALONE
#define NFEATURES 8192
__attribute__((section("__libfuzzer_extra_counters"), used)) static uint8_t extra_counters[NFEATURES];
static void feature(unsigned op, unsigned a, unsigned b)
{
    uint32_t h = (op * 0x9E3779B1u) ^ (a * 0x85EBCA77u) ^ (b * 0xC2B2AE3Du);
    h ^= h >> 15;
    uint8_t *c = &extra_counters[h % NFEATURES];
    if (*c < 255) (*c)++;
}
#else
static void feature(unsigned op, unsigned a, unsigned b) { (void)op; (void)a; (void)b; }
#endif

static unsigned log2_bucket(size_t n)
{
    if (n < 128) return (unsigned)(n / 16); /* 0..7: one per 16-byte class */
    return 8 + (63 - (unsigned)__builtin_clzll(n)) * 4 + (unsigned)((n >> (62 - __builtin_clzll(n))) & 3);
}

static unsigned ptr_align_bucket(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    return a == 0 ? 0 : (unsigned)__builtin_ctzll(a) > 22 ? 22 : (unsigned)__builtin_ctzll(a);
}

/* ---- Contents: pattern and filler --------------------------------------------- */

#define FULL_LIMIT (64u << 10) /* blocks up to this size carry the pattern everywhere */
#define EDGE (8u << 10)        /* larger ones: first and last EDGE bytes ... */
#define SLACK_MAX (64u << 10)  /* filler written into at most this much slack */

/* Fills (check == 0) or checks (check != 0) the pattern on [from, to); returns the
 * first bad offset or SIZE_MAX. */
static size_t pattern_range(unsigned char *p, size_t from, size_t to, uint64_t seed, int check)
{
    size_t i = from;
    while (i < to && (i & 7)) {
        unsigned char b = (unsigned char)(pattern_word(seed, i >> 3) >> ((i & 7) * 8));
        if (check) { if (p[i] != b) return i; } else p[i] = b;
        i++;
    }
    if (check) {
        for (; i + 8 <= to; i += 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (w != pattern_word(seed, i >> 3)) {
                for (size_t k = 0; k < 8; k++)
                    if (p[i + k] != (unsigned char)(pattern_word(seed, i >> 3) >> (k * 8))) return i + k;
            }
        }
    } else {
        for (; i + 8 <= to; i += 8) {
            uint64_t w = pattern_word(seed, i >> 3);
            memcpy(p + i, &w, 8);
        }
    }
    for (; i < to; i++) {
        unsigned char b = (unsigned char)(pattern_word(seed, i >> 3) >> ((i & 7) * 8));
        if (check) { if (p[i] != b) return i; } else p[i] = b;
    }
    return SIZE_MAX;
}

/* The pattern of a block of `size` bytes, restricted to [0, limit): every byte of
 * a block up to FULL_LIMIT; for larger ones the first and last EDGE bytes and one
 * word per 4 KiB page in between (at an offset that varies from page to page). */
static size_t pattern_block(unsigned char *p, size_t size, size_t limit, uint64_t seed, int check)
{
    if (limit > size) limit = size;
    if (size <= FULL_LIMIT) return pattern_range(p, 0, limit, seed, check);
    size_t bad = pattern_range(p, 0, limit < EDGE ? limit : EDGE, seed, check);
    if (bad != SIZE_MAX) return bad;
    for (size_t page = EDGE / 4096; page * 4096 + 4096 <= size - EDGE; page++) {
        size_t off = page * 4096 + ((page * 13 * 8 + (seed & 0xff8)) & 4088);
        if (off + 8 > limit) break;
        bad = pattern_range(p, off, off + 8, seed, check);
        if (bad != SIZE_MAX) return bad;
    }
    size_t tail = size - EDGE;
    if (tail < limit) return pattern_range(p, tail, limit, seed, check);
    return SIZE_MAX;
}

static inline unsigned char filler(uint64_t seed) { return (unsigned char)(0xA5 ^ (seed >> 56)); }

/* Checks that [0, limit) reads as zero, on the same positions the pattern uses
 * (every byte up to 1 MiB). */
static size_t zero_check(const unsigned char *p, size_t size)
{
    size_t full = size <= (1u << 20) ? size : EDGE;
    for (size_t i = 0; i < full; i++)
        if (p[i]) return i;
    if (full == size) return SIZE_MAX;
    for (size_t off = EDGE; off < size - EDGE; off += 4096 - 8)
        if (p[off]) return off;
    for (size_t i = size - EDGE; i < size; i++)
        if (p[i]) return i;
    return SIZE_MAX;
}

/* ---- The shadow model ----------------------------------------------------------- */

typedef struct {
    unsigned char *p;
    size_t size;    /* requested */
    size_t usable;  /* malloc_usable_size when it was allocated */
    size_t align;   /* alignment asked for (0: none) */
    uint64_t seed;
} block_t;

#define NSLOTS 64
static block_t slots[NSLOTS];
static uint64_t seed_counter = 0x1234;

static uint64_t next_seed(void)
{
    seed_counter += 0x9E3779B97F4A7C15ull;
    uint64_t s = seed_counter;
    s ^= s >> 33;
    s *= 0xFF51AFD7ED558CCDull;
    s ^= s >> 33;
    return s | 1;
}

static void fill_block(const block_t *b)
{
    pattern_block(b->p, b->size, b->size, b->seed, 0);
    size_t end = b->usable < b->size + SLACK_MAX ? b->usable : b->size + SLACK_MAX;
    if (end > b->size) memset(b->p + b->size, filler(b->seed), end - b->size);
}

static void verify_block(const block_t *b, const char *when)
{
    size_t bad = pattern_block(b->p, b->size, b->size, b->seed, 1);
    if (bad != SIZE_MAX)
        die("%s: block %p (size %zu, usable %zu, align %zu) corrupted at offset %zu", when, (void *)b->p, b->size,
            b->usable, b->align, bad);
    size_t end = b->usable < b->size + SLACK_MAX ? b->usable : b->size + SLACK_MAX;
    for (size_t i = b->size; i < end; i++)
        if (b->p[i] != filler(b->seed))
            die("%s: block %p (size %zu, usable %zu): usable byte at offset %zu was overwritten", when, (void *)b->p,
                b->size, b->usable, i);
}

/* ---- The second thread: frees what it is handed, allocates on request ------------ */

enum { CMD_FREE, CMD_ALLOC, CMD_TRIM };
typedef struct {
    int kind;
    block_t b;     /* FREE: the block; ALLOC: size and seed in, block out */
    int variant;   /* FREE: which free call */
} cmd_t;

#define QCAP 32
static struct {
    pthread_mutex_t lock;
    pthread_cond_t nonempty, changed;
    cmd_t q[QCAP];
    unsigned head, count, pending; /* pending: posted and not finished */
    block_t current;               /* the block being checked by the worker (p NULL if none) */
    block_t reply;
} W = { .lock = PTHREAD_MUTEX_INITIALIZER, .nonempty = PTHREAD_COND_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER };

static void free_block(const block_t *b, int variant)
{
    switch (variant % 3) {
    case 0: A.free(b->p); break;
    case 1: A.free_sized(b->p, b->size); break;
    default:
        if (b->align) A.free_aligned_sized(b->p, b->align, b->size);
        else A.free(b->p);
        break;
    }
}

static void *worker_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&W.lock);
    for (;;) {
        while (W.count == 0) pthread_cond_wait(&W.nonempty, &W.lock);
        cmd_t c = W.q[W.head];
        W.head = (W.head + 1) % QCAP;
        W.count--;
        if (c.kind == CMD_FREE) W.current = c.b;
        pthread_cond_broadcast(&W.changed);
        pthread_mutex_unlock(&W.lock);
        if (c.kind == CMD_FREE) {
            verify_block(&c.b, "cross-thread free");
            pthread_mutex_lock(&W.lock);
            W.current.p = NULL; /* before the free: the address may come back at once */
            pthread_mutex_unlock(&W.lock);
            free_block(&c.b, c.variant);
        } else if (c.kind == CMD_ALLOC) {
            block_t b = c.b;
            b.p = A.malloc(b.size);
            if (b.p != NULL) {
                b.usable = A.usable_size(b.p);
                if (b.usable < b.size) die("worker malloc(%zu): usable size %zu", b.size, b.usable);
                fill_block(&b);
            }
            pthread_mutex_lock(&W.lock);
            W.reply = b;
            pthread_mutex_unlock(&W.lock);
        } else {
            A.trim(0);
        }
        pthread_mutex_lock(&W.lock);
        W.pending--;
        pthread_cond_broadcast(&W.changed);
    }
    return NULL;
}

static void post(const cmd_t *c)
{
    pthread_mutex_lock(&W.lock);
    while (W.count == QCAP) pthread_cond_wait(&W.changed, &W.lock);
    W.q[(W.head + W.count) % QCAP] = *c;
    W.count++;
    W.pending++;
    pthread_cond_signal(&W.nonempty);
    pthread_mutex_unlock(&W.lock);
}

static void drain(void)
{
    pthread_mutex_lock(&W.lock);
    while (W.pending != 0) pthread_cond_wait(&W.changed, &W.lock);
    pthread_mutex_unlock(&W.lock);
}

/* ---- Checks on a fresh block ----------------------------------------------------- */

static int overlaps(uintptr_t a, size_t an, uintptr_t b, size_t bn)
{
    if (an == 0) an = 1;
    if (bn == 0) bn = 1;
    return a < b + bn && b < a + an;
}

static void check_no_overlap(const block_t *nb, int except_slot)
{
    uintptr_t a = (uintptr_t)nb->p;
    for (int i = 0; i < NSLOTS; i++) {
        if (i == except_slot || slots[i].p == NULL) continue;
        if (overlaps(a, nb->usable, (uintptr_t)slots[i].p, slots[i].usable))
            die("new block %p (size %zu, usable %zu) overlaps live block %p (size %zu, usable %zu)", (void *)nb->p,
                nb->size, nb->usable, (void *)slots[i].p, slots[i].size, slots[i].usable);
    }
    pthread_mutex_lock(&W.lock);
    for (unsigned k = 0; k < W.count; k++) {
        const cmd_t *c = &W.q[(W.head + k) % QCAP];
        if (c->kind == CMD_FREE && overlaps(a, nb->usable, (uintptr_t)c->b.p, c->b.usable))
            die("new block %p (size %zu, usable %zu) overlaps block %p (size %zu) queued for a cross-thread free",
                (void *)nb->p, nb->size, nb->usable, (void *)c->b.p, c->b.size);
    }
    if (W.current.p && overlaps(a, nb->usable, (uintptr_t)W.current.p, W.current.usable))
        die("new block %p (size %zu) overlaps block %p (size %zu) being freed by the other thread", (void *)nb->p,
            nb->size, (void *)W.current.p, W.current.size);
    pthread_mutex_unlock(&W.lock);
}

/* Natural alignment every block must have: 16 from 16 bytes on, else 8 from 8. */
static size_t natural_align(size_t size) { return size >= 16 ? 16 : size >= 8 ? 8 : 1; }

/* Takes a successful allocation into the model (into slot s, whose previous block
 * the caller has already released). */
static void adopt(int s, unsigned char *p, size_t size, size_t align, int zeroed, const char *what)
{
    if (p == NULL) die("%s(%zu) returned NULL", what, size);
    size_t need = align > natural_align(size) ? align : natural_align(size);
    if ((uintptr_t)p % need)
        die("%s(size %zu, align %zu) returned %p, not aligned to %zu", what, size, align, (void *)p, need);
    block_t b = { p, size, A.usable_size(p), align, next_seed() };
    if (b.usable < size) die("%s(%zu) returned %p with usable size %zu", what, size, (void *)p, b.usable);
    check_no_overlap(&b, -1);
    if (zeroed) {
        size_t bad = zero_check(p, size);
        if (bad != SIZE_MAX) die("%s(%zu) = %p: byte %zu is not zero", what, size, (void *)p, bad);
    }
    fill_block(&b);
    slots[s] = b;
    feature(1, log2_bucket(size), ptr_align_bucket(p));
    feature(2, log2_bucket(size), log2_bucket(b.usable - size));
}

static void release_slot(int s, int variant)
{
    block_t *b = &slots[s];
    if (b->p == NULL) return;
    verify_block(b, "free");
    size_t u = A.usable_size(b->p);
    if (u != b->usable) die("usable size of %p changed from %zu to %zu", (void *)b->p, b->usable, u);
    TRACE("free %p size %zu (variant %d)", (void *)b->p, b->size, variant % 3);
    free_block(b, variant);
    b->p = NULL;
}

/* ---- Decoding the input -------------------------------------------------------------- */

typedef struct { const uint8_t *d; size_t n, i; } reader_t;

static uint8_t r8(reader_t *r) { return r->i < r->n ? r->d[r->i++] : 0; }
static uint32_t r16(reader_t *r) { uint32_t a = r8(r); return a | (uint32_t)r8(r) << 8; }
static uint32_t r24(reader_t *r) { uint32_t a = r16(r); return a | (uint32_t)r8(r) << 16; }

static size_t special_sizes[256];
static size_t nspecial;

static void init_special_sizes(void)
{
    static const size_t fixed[] = { 0, 1, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 48, 63, 64, 65, 80, 96, 112, 127, 128, 129 };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) special_sizes[nspecial++] = fixed[i];
    /* Around every class (four per doubling from 128 B to 1 KiB, eight from there
     * to 32 KiB), pages, and the small/large/huge boundaries. */
    for (size_t p = 128; p <= (32u << 10); p <<= 1) {
        size_t per = p < 1024 ? 4 : 8;
        for (size_t q = per; q < 2 * per; q++) {
            size_t c = p * q / per;
            special_sizes[nspecial++] = c;
            special_sizes[nspecial++] = c + 1;
        }
    }
    static const size_t more[] = { 4095, 4097, 8191, 12288, 32767, 32769, 36864, 40960, 65535, 65536, 65537,
                                   131071, 262145, (1u << 20) - 1, 1u << 20, (1u << 20) + 1, (2u << 20) - 4096,
                                   2u << 20, (4u << 20) - 1, 4u << 20, (4u << 20) + 4096 };
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) special_sizes[nspecial++] = more[i];
}

/* A size biased to small: 3/8 up to 128 B, 1/8 up to 1 KiB, 1/8 up to 32 KiB,
 * 1/16 large up to 1 MiB, 1/32 large up to 256 KiB, 1/32 up to 4 MiB, 1/4 a
 * boundary value (class edges, pages, 32 KiB, 1-4 MiB). */
static size_t take_size(reader_t *r)
{
    uint8_t c = r8(r);
    switch (c >> 4) {
    case 0: case 1: case 2: case 3: case 4: case 5: return r8(r) % 129;
    case 6: case 7: return r16(r) % 1025;
    case 8: case 9: return r16(r) % 32769;
    case 10: return 32768 + r24(r) % (1u << 20);
    case 11: return (c & 1) ? r24(r) % (4u << 20) + 1 : 32768 + r24(r) % (224u << 10);
    default: return special_sizes[r8(r) % nspecial];
    }
}

/* An alignment: mostly a power of two up to 1 MiB, sometimes not a power of two,
 * zero, a very large one, or an absurd one. */
static size_t take_align(reader_t *r)
{
    uint8_t c = r8(r);
    if (c < 180) return (size_t)1 << (c % 21);
    if (c < 200) { size_t a = (size_t)1 << (c % 16); return a + 1 + r8(r) % a; }
    if (c < 210) return 0;
    if (c < 225) return (size_t)1 << (21 + c % 4);
    static const size_t absurd[] = { (size_t)1 << 63, ((size_t)1 << 63) + 1, SIZE_MAX, (size_t)1 << 62,
                                     (size_t)1 << 40, 24, 48, 4, 2, 3 };
    return absurd[c % (sizeof absurd / sizeof absurd[0])];
}

static const size_t absurd_sizes[] = { (size_t)PTRDIFF_MAX + 1, SIZE_MAX, SIZE_MAX - 15, SIZE_MAX - 4095,
                                       SIZE_MAX - 65535, (size_t)1 << 63, (size_t)1 << 62, (size_t)PTRDIFF_MAX,
                                       (size_t)PTRDIFF_MAX - 4095, (size_t)1 << 47, (size_t)1 << 46 };

static int is_pow2(size_t a) { return a && !(a & (a - 1)); }
static size_t round_pow2(size_t a)
{
    if (a <= 1) return 1;
    return is_pow2(a) ? a : (size_t)1 << (64 - __builtin_clzll(a));
}

/* A request that may fail (an absurd size) and succeeded anyway: the block must
 * be usable at both ends; it is then freed. */
static void touch_and_free(void *p, size_t size, const char *what)
{
    size_t u = A.usable_size(p);
    if (u < size) die("%s(%zu) = %p: usable size %zu", what, size, p, u);
    if (size) {
        ((volatile unsigned char *)p)[0] = 1;
        ((volatile unsigned char *)p)[size - 1] = 2;
    }
    A.free(p);
}

static void expect_fail(void *p, int err, int want, size_t size, const char *what)
{
    if (p != NULL) die("%s(%zu) succeeded (%p), expected failure with errno %d", what, size, p, want);
    if (err != want) die("%s(%zu) failed with errno %d, expected %d", what, size, err, want);
}

/* ---- Operations ----------------------------------------------------------------------- */

static size_t model_live_bytes(void)
{
    size_t t = 0;
    for (int i = 0; i < NSLOTS; i++)
        if (slots[i].p) t += slots[i].size;
    return t;
}

static void op_realloc(int s, size_t n)
{
    block_t *b = &slots[s];
    if (b->p == NULL) {
        errno = 0;
        unsigned char *q = A.realloc(NULL, n);
        TRACE("realloc(NULL, %zu) = %p", n, (void *)q);
        adopt(s, q, n, 0, 0, "realloc(NULL)");
        return;
    }
    verify_block(b, "before realloc");
    block_t old = *b;
    errno = 0;
    unsigned char *q = A.realloc(b->p, n);
    int err = errno;
    TRACE("realloc(%p size %zu, %zu) = %p", (void *)old.p, old.size, n, (void *)q);
    if (n == 0) {
        if (q != NULL) die("realloc(%p, 0) returned %p, expected NULL (the block freed)", (void *)old.p, (void *)q);
        b->p = NULL;
        feature(3, 0, 0);
        return;
    }
    if (q == NULL) die("realloc(%p size %zu, %zu) failed (errno %d)", (void *)old.p, old.size, n, err);
    b->p = NULL; /* the old block is gone either way */
    block_t nb = { q, n, A.usable_size(q), 0, old.seed };
    if (nb.usable < n) die("realloc(%p, %zu) = %p with usable size %zu", (void *)old.p, n, (void *)q, nb.usable);
    if ((uintptr_t)q % natural_align(n)) die("realloc(%zu) = %p is misaligned", n, (void *)q);
    check_no_overlap(&nb, s);
    size_t keep = old.size < n ? old.size : n;
    /* The old block's pattern, as far as it was written, on the kept prefix. */
    size_t bad = pattern_block(q, old.size, keep, old.seed, 1);
    if (bad != SIZE_MAX)
        die("realloc(%p size %zu, %zu) = %p lost the contents at offset %zu", (void *)old.p, old.size, n, (void *)q,
            bad);
    fill_block(&nb);
    *b = nb;
    feature(3, log2_bucket(old.size) * 64 + log2_bucket(n), (q == old.p) + 2 * (n > old.size));
}

static void op_absurd(reader_t *r, int s)
{
    size_t n = absurd_sizes[r8(r) % (sizeof absurd_sizes / sizeof absurd_sizes[0])];
    int must_fail = n > (size_t)PTRDIFF_MAX;
    unsigned which = r8(r) % 9;
    void *p;
    int err;
    TRACE("absurd size %zu, call %u", n, which);
    errno = 0;
    switch (which) {
    case 0: p = A.malloc(n); err = errno; break;
    case 1: p = A.calloc(1, n); err = errno; break;
    case 2: p = A.aligned_alloc(64, n); err = errno; break;
    case 3: p = A.valloc(n); err = errno; break;
    case 4: p = A.pvalloc(n); err = errno; must_fail |= n > SIZE_MAX - 8192; break;
    case 5: {
        void *out = (void *)0x5151;
        err = A.posix_memalign(&out, 4096, n);
        p = err ? NULL : out;
        if (err && out != (void *)0x5151) die("posix_memalign(%zu) failed and changed *memptr", n);
        if (!err && p == NULL) die("posix_memalign(%zu) returned 0 and NULL", n);
        if (must_fail && !err) die("posix_memalign(%zu) succeeded", n);
        if (err && err != ENOMEM) die("posix_memalign(%zu) returned %d, expected ENOMEM", n, err);
        if (p) touch_and_free(p, n, "posix_memalign");
        return;
    }
    case 6: { /* calloc whose product overflows */
        size_t m = 2 + r8(r);
        size_t cnt = SIZE_MAX / m + 1 + r8(r);
        p = A.calloc(cnt, m);
        expect_fail(p, errno, ENOMEM, cnt, "calloc (overflowing product)");
        return;
    }
    default: { /* realloc / reallocarray of a live block: must fail and leave it */
        block_t *b = &slots[s];
        if (b->p == NULL) return;
        verify_block(b, "before a failing realloc");
        /* Finding 1 (docs/RELIABILITY.md): realloc of a huge block to a size within
         * a page of PTRDIFF_MAX traps. */
        if (skip_known && which == 7 && n <= (size_t)PTRDIFF_MAX && n > (size_t)PTRDIFF_MAX - 4095) {
            n = (size_t)PTRDIFF_MAX + 1;
            must_fail = 1;
        }
        size_t count = n / 2 + 1;
        if (which == 8) { /* reallocarray(count, 3): the product decides */
            size_t product;
            must_fail = __builtin_mul_overflow(count, (size_t)3, &product) || product > (size_t)PTRDIFF_MAX;
            if (skip_known && !must_fail && product > (size_t)PTRDIFF_MAX - 4095) return;
            if (!must_fail) n = product;
        }
        if (which == 7) p = A.realloc(b->p, n);
        else p = A.reallocarray(b->p, count, 3);
        err = errno;
        if (must_fail) {
            expect_fail(p, err, ENOMEM, n, which == 7 ? "realloc" : "reallocarray");
        } else if (p != NULL) {
            /* A 64 TiB realloc may succeed under overcommit: the block moved. */
            size_t bad = pattern_block(p, b->size, b->size, b->seed, 1);
            if (bad != SIZE_MAX) die("realloc to %zu lost the contents at %zu", n, bad);
            touch_and_free(p, n, "realloc");
            b->p = NULL;
            return;
        } else if (err != ENOMEM) {
            die("realloc(%zu) failed with errno %d", n, err);
        }
        verify_block(b, "after a failed realloc");
        feature(4, which, 0);
        return;
    }
    }
    if (must_fail || p == NULL) expect_fail(p, err, ENOMEM, n, "allocation of an absurd size");
    else touch_and_free(p, n, "allocation of a very large size");
    feature(4, which, must_fail);
}

static void op_aligned(reader_t *r, int s, unsigned kind)
{
    size_t a = take_align(r);
    size_t n = take_size(r);
    release_slot(s, r8(r));
    errno = 0;
    void *p;
    if (kind == 0) {
        void *out = (void *)0x4242;
        int rc = A.posix_memalign(&out, a, n);
        TRACE("posix_memalign(%zu, %zu) = %d %p", a, n, rc, out);
        int valid = is_pow2(a) && a % sizeof(void *) == 0;
        if (!valid) {
            if (rc != EINVAL) die("posix_memalign(align %zu, %zu) returned %d, expected EINVAL", a, n, rc);
            if (out != (void *)0x4242) die("posix_memalign(align %zu) failed and changed *memptr", a);
            feature(5, 0, 0);
            return;
        }
        if (rc == ENOMEM && a >= ((size_t)1 << 40)) {
            if (out != (void *)0x4242) die("posix_memalign(align %zu) failed and changed *memptr", a);
            return;
        }
        if (rc != 0) die("posix_memalign(align %zu, size %zu) returned %d", a, n, rc);
        adopt(s, out, n, a, 0, "posix_memalign");
        feature(5, log2_bucket(a), log2_bucket(n));
        return;
    }
    p = kind == 1 ? A.aligned_alloc(a, n) : A.memalign(a, n);
    int err = errno;
    const char *name = kind == 1 ? "aligned_alloc" : "memalign";
    TRACE("%s(%zu, %zu) = %p", name, a, n, p);
    if (a > ((size_t)1 << 63)) {
        expect_fail(p, err, EINVAL, n, name);
        return;
    }
    size_t eff = round_pow2(a);
    if (p == NULL && err == ENOMEM && eff >= ((size_t)1 << 40)) return;
    if (p == NULL) die("%s(align %zu, size %zu) failed with errno %d", name, a, n, err);
    adopt(s, p, n, eff, 0, name);
    feature(6 + kind, log2_bucket(eff), log2_bucket(n));
}

typedef struct {
    block_t to_free[8];
    int nfree;
    size_t alloc_size[8];
    block_t made[8];
    int nalloc;
} thread_job_t;

static void *short_thread(void *arg)
{
    thread_job_t *j = arg;
    for (int i = 0; i < j->nfree; i++) {
        verify_block(&j->to_free[i], "free in a short-lived thread");
        free_block(&j->to_free[i], i);
    }
    /* Churn a little, then leave some blocks to the main thread. */
    for (int i = 0; i < j->nalloc; i++) {
        void *t = A.malloc(j->alloc_size[i] / 2 + 1);
        if (t == NULL) die("malloc in a short-lived thread failed");
        memset(t, 0x33, j->alloc_size[i] / 2 + 1);
        block_t b = { A.malloc(j->alloc_size[i]), j->alloc_size[i], 0, 0, 0 };
        A.free(t);
        if (b.p == NULL) die("malloc(%zu) in a short-lived thread failed", b.size);
        b.usable = A.usable_size(b.p);
        j->made[i] = b;
    }
    return NULL;
}

static void op_thread(reader_t *r)
{
    thread_job_t j;
    memset(&j, 0, sizeof j);
    unsigned nf = r8(r) % 9, na = r8(r) % 9;
    for (unsigned k = 0; k < nf; k++) {
        int s = r8(r) % NSLOTS;
        if (slots[s].p == NULL) continue;
        j.to_free[j.nfree++] = slots[s];
        slots[s].p = NULL;
    }
    for (unsigned k = 0; k < na; k++) j.alloc_size[j.nalloc++] = take_size(r);
    TRACE("short-lived thread: frees %d, allocates %d", j.nfree, j.nalloc);
    pthread_t t;
    if (pthread_create(&t, NULL, short_thread, &j) != 0) {
        /* No thread: do the work here. */
        short_thread(&j);
    } else {
        pthread_join(t, NULL);
    }
    for (int k = 0; k < j.nalloc; k++) {
        int s = r8(r) % NSLOTS;
        release_slot(s, k);
        block_t b = j.made[k];
        if (b.usable < b.size) die("block from a finished thread: usable %zu < size %zu", b.usable, b.size);
        if ((uintptr_t)b.p % natural_align(b.size)) die("block from a finished thread is misaligned");
        b.seed = next_seed();
        check_no_overlap(&b, -1);
        fill_block(&b);
        slots[s] = b;
    }
    feature(8, (unsigned)j.nfree, (unsigned)j.nalloc);
}

/* Many blocks of one size at once (fills spans and pages), freed in some order. */
static void op_burst(reader_t *r)
{
    static block_t burst[256];
    unsigned count = 1 + r8(r) % 256;
    size_t n = take_size(r);
    if (n > (256u << 10)) n = n % (256u << 10);
    if ((size_t)count * n > (4u << 20)) count = (unsigned)((4u << 20) / n); /* at most 4 MiB a burst */
    unsigned order = r8(r);
    TRACE("burst of %u x %zu, order %u", count, n, order);
    for (unsigned i = 0; i < count; i++) {
        unsigned char *p = A.malloc(n);
        if (p == NULL) die("burst malloc(%zu) #%u failed", n, i);
        block_t b = { p, n, A.usable_size(p), 0, next_seed() };
        if (b.usable < n) die("burst malloc(%zu) usable %zu", n, b.usable);
        if ((uintptr_t)p % natural_align(n)) die("burst malloc(%zu) = %p misaligned", n, (void *)p);
        for (unsigned k = 0; k < i; k++)
            if (overlaps((uintptr_t)p, b.usable, (uintptr_t)burst[k].p, burst[k].usable))
                die("burst: malloc(%zu) = %p overlaps %p", n, (void *)p, (void *)burst[k].p);
        if (i % 16 == 0) check_no_overlap(&b, -1);
        fill_block(&b);
        burst[i] = b;
    }
    for (unsigned i = 0; i < count; i++) {
        unsigned k;
        switch (order % 4) {
        case 0: k = i; break;                                   /* FIFO */
        case 1: k = count - 1 - i; break;                       /* LIFO */
        case 2: k = i < (count + 1) / 2 ? 2 * i : 2 * (i - (count + 1) / 2) + 1; break; /* evens, then odds */
        default: k = (i * 7919u) % count; if (count % 7919u == 0) k = i; break;          /* scattered */
        }
        if (k >= count) k = i;
        block_t *b = &burst[k];
        if (b->p == NULL) continue;
        if ((order & 4) && (i & 3) == 0) {
            cmd_t c = { CMD_FREE, *b, (int)i };
            post(&c);
        } else {
            verify_block(b, "burst free");
            free_block(b, (int)i);
        }
        b->p = NULL;
    }
    for (unsigned i = 0; i < count; i++)
        if (burst[i].p) {
            verify_block(&burst[i], "burst free");
            A.free(burst[i].p);
            burst[i].p = NULL;
        }
    feature(9, log2_bucket(n), order % 8);
}

static const int mmap_thresholds[] = { 64 << 20, 256 << 10, 1 << 20, 2 << 20 };
static const int trim_thresholds[] = { 4 << 20, 0, 64 << 10, 16 << 20 };

static void op_tune(reader_t *r)
{
    uint8_t c = r8(r);
    switch (c % 4) {
    case 0:
        if (A.mallopt(M_MMAP_THRESHOLD, mmap_thresholds[(c >> 2) % 4]) != 1) die("mallopt(M_MMAP_THRESHOLD) failed");
        TRACE("mallopt(M_MMAP_THRESHOLD, %d)", mmap_thresholds[(c >> 2) % 4]);
        break;
    case 1:
        if (A.mallopt(M_TRIM_THRESHOLD, trim_thresholds[(c >> 2) % 4]) != 1) die("mallopt(M_TRIM_THRESHOLD) failed");
        TRACE("mallopt(M_TRIM_THRESHOLD, %d)", trim_thresholds[(c >> 2) % 4]);
        break;
    case 2:
        TRACE("malloc_trim(0)");
        A.trim(0);
        break;
    default: {
        cmd_t cmd = { .kind = CMD_TRIM };
        TRACE("malloc_trim(0) in the other thread");
        post(&cmd);
        break;
    }
    }
    feature(10, c % 16, 0);
}

static void op_inspect(reader_t *r)
{
    uint8_t c = r8(r);
    switch (c % 3) {
    case 0: /* every live block intact, usable sizes unchanged */
        for (int i = 0; i < NSLOTS; i++)
            if (slots[i].p) {
                verify_block(&slots[i], "check of all live blocks");
                size_t u = A.usable_size(slots[i].p);
                if (u != slots[i].usable)
                    die("usable size of %p changed from %zu to %zu", (void *)slots[i].p, slots[i].usable, u);
            }
        break;
    case 1: { /* mallinfo2: the blocks the model holds are counted as in use */
        drain();
        struct mallinfo2 m = A.mallinfo2();
        size_t live = model_live_bytes();
        if (m.uordblks < live) die("mallinfo2: uordblks %zu < %zu bytes the program holds", m.uordblks, live);
        if (m.arena == 0 && live > 0 && m.hblkhd < live) die("mallinfo2: arena 0 with %zu bytes live", live);
        feature(11, log2_bucket(m.arena) , log2_bucket(m.keepcost));
        break;
    }
    default:
        if (A.usable_size(NULL) != 0) die("malloc_usable_size(NULL) != 0");
        A.free(NULL);
        A.free_sized(NULL, 0);
        break;
    }
}

static void run_input(const uint8_t *data, size_t size)
{
    reader_t r = { data, size, 0 };
    op_counter = 0;
    A.mallopt(M_MMAP_THRESHOLD, 64 << 20);
    A.mallopt(M_TRIM_THRESHOLD, 4 << 20);
    while (r.i < r.n && op_counter < 4000) {
        op_counter++;
        uint8_t op = r8(&r) % 32;
        int s = r8(&r) % NSLOTS;
        switch (op) {
        case 0: case 1: case 2: case 3: case 4: case 5: case 6: {
            size_t n = take_size(&r);
            release_slot(s, op);
            errno = 0;
            void *p = A.malloc(n);
            TRACE("malloc(%zu) = %p", n, p);
            adopt(s, p, n, 0, 0, "malloc");
            break;
        }
        case 7: case 8: {
            size_t n = take_size(&r);
            size_t cnt = 1 + r8(&r) % 16;
            size_t each = n / cnt;
            release_slot(s, op);
            errno = 0;
            void *p = A.calloc(cnt, each);
            TRACE("calloc(%zu, %zu) = %p", cnt, each, p);
            adopt(s, p, cnt * each, 0, 1, "calloc");
            break;
        }
        case 9: case 10: case 11:
            op_realloc(s, take_size(&r));
            break;
        case 12: op_aligned(&r, s, 0); break;
        case 13: op_aligned(&r, s, 1); break;
        case 14: op_aligned(&r, s, 2); break;
        case 15: {
            size_t n = take_size(&r);
            int pv = r8(&r) & 1;
            release_slot(s, op);
            errno = 0;
            void *p = pv ? A.pvalloc(n) : A.valloc(n);
            TRACE("%s(%zu) = %p", pv ? "pvalloc" : "valloc", n, p);
            if (pv) {
                size_t rounded = n == 0 ? 4096 : (n + 4095) & ~(size_t)4095;
                adopt(s, p, rounded, 4096, 0, "pvalloc");
            } else {
                adopt(s, p, n, 4096, 0, "valloc");
            }
            break;
        }
        case 16: case 17: case 18: case 19: case 20: case 21:
            release_slot(s, r8(&r));
            break;
        case 22: case 23:
            if (slots[s].p) {
                cmd_t c = { CMD_FREE, slots[s], r8(&r) };
                TRACE("hand %p (size %zu) to the other thread", (void *)slots[s].p, slots[s].size);
                slots[s].p = NULL;
                post(&c);
            }
            break;
        case 24: {
            cmd_t c = { .kind = CMD_ALLOC };
            c.b.size = take_size(&r);
            c.b.seed = next_seed();
            release_slot(s, op);
            post(&c);
            drain();
            pthread_mutex_lock(&W.lock);
            block_t b = W.reply;
            pthread_mutex_unlock(&W.lock);
            TRACE("malloc(%zu) in the other thread = %p", b.size, (void *)b.p);
            if (b.p == NULL) die("malloc(%zu) in the other thread failed", c.b.size);
            if ((uintptr_t)b.p % natural_align(b.size)) die("malloc(%zu) in the other thread misaligned", b.size);
            check_no_overlap(&b, -1);
            verify_block(&b, "block from the other thread");
            slots[s] = b;
            break;
        }
        case 25: drain(); break;
        case 26: {
            size_t n = take_size(&r);
            size_t m = 1 + r8(&r) % 8;
            if (slots[s].p == NULL) break;
            verify_block(&slots[s], "before reallocarray");
            block_t old = slots[s];
            errno = 0;
            unsigned char *q = A.reallocarray(old.p, n / m + 1, m);
            size_t nn = (n / m + 1) * m;
            TRACE("reallocarray(%p, %zu, %zu) = %p", (void *)old.p, n / m + 1, m, (void *)q);
            if (q == NULL) die("reallocarray(%zu x %zu) failed (errno %d)", n / m + 1, m, errno);
            block_t nb = { q, nn, A.usable_size(q), 0, old.seed };
            if (nb.usable < nn) die("reallocarray: usable %zu < %zu", nb.usable, nn);
            slots[s].p = NULL;
            check_no_overlap(&nb, -1);
            size_t bad = pattern_block(q, old.size, old.size < nn ? old.size : nn, old.seed, 1);
            if (bad != SIZE_MAX) die("reallocarray lost the contents at offset %zu", bad);
            fill_block(&nb);
            slots[s] = nb;
            break;
        }
        case 27: op_absurd(&r, s); break;
        case 28: op_tune(&r); break;
        case 29: op_inspect(&r); break;
        case 30: op_thread(&r); break;
        default: op_burst(&r); break;
        }
    }
    /* End of the input: everything goes back (checked), and unless FUZZ_KEEP_HEAP
     * is set the heap is trimmed so the next input starts from a similar state. */
    drain();
    for (int i = 0; i < NSLOTS; i++) release_slot(i, i);
    if (!keep_heap) {
        cmd_t c = { .kind = CMD_TRIM };
        post(&c);
        drain();
        A.trim(0);
    }
}

static void setup(void)
{
    static int done;
    if (done) return;
    done = 1;
    load_allocator();
    init_special_sizes();
    pthread_t t;
    if (pthread_create(&t, NULL, worker_main, NULL) != 0) {
        fprintf(stderr, "fuzz_alloc: cannot start the second thread\n");
        exit(2);
    }
    pthread_detach(t);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setup();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    run_input(data, size);
    return 0;
}

#ifdef FUZZ_STANDALONE
/* A driver for builds without libFuzzer: replays the files and directories named
 * on the command line, then runs random inputs. Options as libFuzzer's:
 * -runs=N (random inputs, default 0 when files are given, else unlimited),
 * -seed=S, -max_total_time=T (seconds), -max_len=L. */
static unsigned long replayed;

static void replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) return;
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    run_input(buf, n);
    replayed++;
}

static void replay_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) { fprintf(stderr, "fuzz_alloc: %s: no such file\n", path); exit(2); }
    if (!S_ISDIR(st.st_mode)) { replay_file(path); return; }
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", path, e->d_name);
        replay_file(full);
    }
    if (d) closedir(d);
}

int main(int argc, char **argv)
{
    long runs = -1, max_time = 0, max_len = 4096;
    unsigned long long seed = (unsigned long long)time(NULL);
    int files = 0;
    setup();
    for (int i = 1; i < argc; i++) {
        if (sscanf(argv[i], "-runs=%ld", &runs) == 1) continue;
        if (sscanf(argv[i], "-seed=%llu", &seed) == 1) continue;
        if (sscanf(argv[i], "-max_total_time=%ld", &max_time) == 1) continue;
        if (sscanf(argv[i], "-max_len=%ld", &max_len) == 1) continue;
        if (argv[i][0] == '-') continue; /* other libFuzzer options: ignored */
        replay_path(argv[i]);
        files++;
    }
    if (runs < 0) runs = files ? 0 : LONG_MAX;
    printf("fuzz_alloc: replayed %lu inputs; random inputs from seed %llu\n", replayed, seed);
    time_t start = time(NULL);
    static uint8_t buf[1 << 16];
    if (max_len > (long)sizeof buf) max_len = sizeof buf;
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    long done = 0;
    for (; done < runs; done++) {
        if (max_time && time(NULL) - start >= max_time) break;
        size_t n = 1 + (size_t)(x % (uint64_t)max_len);
        for (size_t k = 0; k < n; k++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            buf[k] = (uint8_t)(x >> 24);
        }
        run_input(buf, n);
    }
    printf("fuzz_alloc: %ld random inputs done in %lds, no failure\n", done, (long)(time(NULL) - start));
    return 0;
}
#endif
