/*
 * api.c — the C allocation API, call by call, with its edge cases and errno:
 * malloc, free, calloc, realloc, reallocarray, posix_memalign, aligned_alloc,
 * memalign, valloc, pvalloc, malloc_usable_size, mallinfo2, malloc_trim, mallopt,
 * malloc_stats and malloc_info, all with glibc's semantics; and glibc's own names
 * for them (__libc_malloc, ...), which must reach the same allocator.
 */
#define _GNU_SOURCE
#define TEST_NAME "api"
#include <errno.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

static size_t page_size;

/* Sizes used by several checks: small, medium, large, with odd neighbours. */
static const size_t kSizes[] = {
    1, 2, 3, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 48, 63, 64, 65, 96, 100, 127, 128,
    129, 200, 255, 256, 257, 500, 511, 512, 513, 1000, 1023, 1024, 1025, 2000, 2047,
    2048, 2049, 3000, 4095, 4096, 4097, 8191, 8192, 8193, 12000, 16383, 16384,
    16385, 20480, 32767, 32768, 32769, 65535, 65536, 65537, 100000, 131071, 131072,
    131073, 200000, 262143, 262144, 262145, 500000, 1048575, 1048576, 1048577,
    2000000, 2097152, 3000000, 4194303, 4194304, 4194305, 6000000, 8388608,
};
#define NSIZES (sizeof kSizes / sizeof kSizes[0])

static void check_all_zero(const unsigned char *p, size_t n, const char *what, size_t size)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            FAIL("%s(%zu): byte %zu is 0x%02x, expected 0", what, size, i, p[i]);
}

static void check_writable(void *p, size_t n, uint64_t seed, const char *what, size_t size)
{
    pattern_fill(p, n, seed);
    size_t bad = pattern_check(p, n, seed);
    if (bad != (size_t)-1)
        FAIL("%s(%zu) = %p: byte %zu did not keep what was written", what, size, p, bad);
}

static void test_malloc_zero(void)
{
    enum { N = 64 };
    void *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = malloc(opaque_size(0));
        CHECK(p[i] != NULL, "malloc(0) #%d returned NULL", i);
        for (int j = 0; j < i; j++)
            CHECK(p[i] != p[j], "malloc(0) returned %p twice while both are live", p[i]);
    }
    for (int i = 0; i < N; i++)
        free(p[i]);
    /* free(NULL) does nothing */
    free(NULL);
    free(opaque_ptr(NULL));
}

static void test_malloc_too_big(void)
{
    static const size_t huge[] = {
        SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 4096, SIZE_MAX - 65536,
        (size_t)PTRDIFF_MAX + 1, (size_t)PTRDIFF_MAX + 4096, SIZE_MAX / 2 + 12345,
        (size_t)PTRDIFF_MAX, (size_t)PTRDIFF_MAX - 4096,
    };
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        errno = 0;
        void *p = malloc(opaque_size(huge[i]));
        CHECK(p == NULL, "malloc(%zu) returned %p, expected NULL", huge[i], p);
        CHECK(errno == ENOMEM, "malloc(%zu): errno %d, expected ENOMEM", huge[i], errno);
    }
    /* The allocator still works afterwards. */
    void *p = malloc(100);
    CHECK(p != NULL, "malloc(100) after failed huge requests returned NULL");
    memset(p, 1, 100);
    free(p);
}

static void test_calloc(void)
{
    static const size_t bad[][2] = {
        { SIZE_MAX / 2 + 1, 2 }, { 2, SIZE_MAX / 2 + 1 }, { SIZE_MAX, SIZE_MAX },
        { SIZE_MAX, 2 }, { (size_t)1 << 32, (size_t)1 << 32 }, { 65537, (size_t)1 << 48 },
        { SIZE_MAX / 3 + 1, 3 }, { (size_t)PTRDIFF_MAX, 2 }, { 1, SIZE_MAX },
        { (size_t)PTRDIFF_MAX + 1, 1 }, { 1, (size_t)PTRDIFF_MAX + 1 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        void *p = calloc(opaque_size(bad[i][0]), opaque_size(bad[i][1]));
        CHECK(p == NULL, "calloc(%zu, %zu) returned %p, expected NULL", bad[i][0], bad[i][1], p);
        CHECK(errno == ENOMEM, "calloc(%zu, %zu): errno %d, expected ENOMEM", bad[i][0], bad[i][1], errno);
    }

    /* calloc(0, n) and calloc(n, 0) behave like malloc(0). */
    void *z1 = calloc(opaque_size(0), 16), *z2 = calloc(16, opaque_size(0));
    CHECK(z1 != NULL && z2 != NULL && z1 != z2, "calloc with a zero count/size: %p %p", z1, z2);
    free(z1);
    free(z2);

    /* Fresh calloc memory is zero. */
    for (size_t i = 0; i < NSIZES; i++) {
        size_t n = kSizes[i];
        unsigned char *p = calloc(1, n);
        CHECK(p != NULL, "calloc(1, %zu) returned NULL", n);
        check_all_zero(p, n, "calloc", n);
        free(p);
    }

    /* calloc of recently freed, dirtied memory is zero as well: dirty blocks of
     * each size, free them, and calloc the same size (several times, so that
     * the blocks come back from the allocator's caches). */
    for (size_t i = 0; i < NSIZES; i++) {
        size_t n = kSizes[i];
        enum { K = 8 };
        void *d[K];
        int k = n >= 1048576 ? 2 : K;
        for (int j = 0; j < k; j++) {
            d[j] = malloc(n);
            CHECK(d[j] != NULL, "malloc(%zu) returned NULL", n);
            memset(d[j], 0xAA, n);
        }
        for (int j = 0; j < k; j++)
            free(d[j]);
        for (int j = 0; j < k; j++) {
            d[j] = calloc(1, n);
            CHECK(d[j] != NULL, "calloc(1, %zu) returned NULL", n);
            check_all_zero(d[j], n, "calloc after free of dirty memory", n);
            memset(d[j], 0xAA, n);
        }
        for (int j = 0; j < k; j++)
            free(d[j]);
        /* Same total split as count * size. */
        unsigned char *p = calloc(n, 1);
        CHECK(p != NULL, "calloc(%zu, 1) returned NULL", n);
        check_all_zero(p, n, "calloc(n,1) after free of dirty memory", n);
        free(p);
    }

    /* Large 1–8 MiB explicitly, with count*size split. */
    for (size_t mib = 1; mib <= 8; mib++) {
        size_t n = mib << 20;
        void *d = malloc(n);
        CHECK(d != NULL, "malloc(%zu) returned NULL", n);
        memset(d, 0xAA, n);
        free(d);
        unsigned char *p = calloc(mib << 10, 1024);
        CHECK(p != NULL, "calloc(%zu, 1024) returned NULL", mib << 10);
        check_all_zero(p, n, "calloc (large, after dirty free)", n);
        memset(p, 0x55, n);
        free(p);
    }

    /* Many small dirty blocks, then calloc the same sizes. */
    enum { M = 2000 };
    static void *blk[M];
    rng_t r;
    rng_seed(&r, 7);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < M; i++) {
            size_t n = rng_range(&r, 1, 600);
            blk[i] = malloc(n);
            CHECK(blk[i] != NULL, "malloc(%zu) returned NULL", n);
            memset(blk[i], 0xAA, n);
        }
        for (int i = 0; i < M; i++)
            free(blk[i]);
        for (int i = 0; i < M; i++) {
            size_t n = rng_range(&r, 1, 600);
            blk[i] = calloc(n, 1);
            CHECK(blk[i] != NULL, "calloc(%zu, 1) returned NULL", n);
            check_all_zero(blk[i], n, "calloc (small, after dirty free)", n);
            memset(blk[i], 0xAA, n);
        }
        for (int i = 0; i < M; i++)
            free(blk[i]);
    }
}

static void test_realloc(void)
{
    /* realloc(NULL, n) is malloc(n). */
    for (size_t i = 0; i < NSIZES; i += 3) {
        size_t n = kSizes[i];
        void *p = realloc(NULL, n);
        CHECK(p != NULL, "realloc(NULL, %zu) returned NULL", n);
        CHECK(malloc_usable_size(p) >= n, "realloc(NULL, %zu): usable size %zu", n, malloc_usable_size(p));
        check_writable(p, n, n, "realloc(NULL, n)", n);
        free(p);
    }
    void *z = realloc(NULL, opaque_size(0));
    CHECK(z != NULL, "realloc(NULL, 0) returned NULL (expected malloc(0))");
    free(z);

    /* realloc(p, 0) frees p and returns NULL. */
    for (size_t i = 0; i < NSIZES; i += 2) {
        void *p = malloc(kSizes[i]);
        CHECK(p != NULL, "malloc(%zu) returned NULL", kSizes[i]);
        memset(p, 3, kSizes[i]);
        void *q = realloc(p, opaque_size(0));
        CHECK(q == NULL, "realloc(p [%zu bytes], 0) returned %p, expected NULL", kSizes[i], q);
    }

    /* Huge growth fails with ENOMEM and leaves the block intact. */
    static const size_t huge[] = {
        SIZE_MAX, SIZE_MAX - 1, (size_t)PTRDIFF_MAX + 1, SIZE_MAX - 100000,
    };
    static const size_t start[] = { 1, 40, 3000, 70000, 300000, 5000000 };
    for (size_t s = 0; s < sizeof start / sizeof start[0]; s++) {
        size_t n = start[s];
        void *p = malloc(n);
        CHECK(p != NULL, "malloc(%zu) returned NULL", n);
        pattern_fill(p, n, 1000 + s);
        for (size_t h = 0; h < sizeof huge / sizeof huge[0]; h++) {
            errno = 0;
            void *q = realloc(p, opaque_size(huge[h]));
            CHECK(q == NULL, "realloc(%zu -> %zu) returned %p, expected NULL", n, huge[h], q);
            CHECK(errno == ENOMEM, "realloc(%zu -> %zu): errno %d, expected ENOMEM", n, huge[h], errno);
            size_t bad = pattern_check(p, n, 1000 + s);
            CHECK(bad == (size_t)-1, "failed realloc(%zu -> %zu) changed byte %zu of the old block", n, huge[h], bad);
        }
        void *q = realloc(p, n + 1);
        CHECK(q != NULL, "realloc(%zu -> %zu) after failed growth returned NULL", n, n + 1);
        size_t bad = pattern_check(q, n, 1000 + s);
        CHECK(bad == (size_t)-1, "realloc(%zu -> %zu) lost byte %zu", n, n + 1, bad);
        free(q);
    }

    /* Grow then shrink through every size: contents preserved, every time. */
    {
        size_t n = 0;
        unsigned char *p = NULL;
        uint64_t seed = 77;
        for (int dir = 0; dir < 2; dir++) {
            for (size_t k = 0; k < NSIZES; k++) {
                size_t i = dir == 0 ? k : NSIZES - 1 - k;
                size_t m = kSizes[i];
                if (m > 4194305)
                    continue;
                unsigned char *q = realloc(p, m);
                CHECK(q != NULL, "realloc(%p, %zu) returned NULL", (void *)p, m);
                size_t keep = n < m ? n : m;
                size_t bad = pattern_check(q, keep, seed);
                CHECK(bad == (size_t)-1, "realloc %zu -> %zu: byte %zu not preserved", n, m, bad);
                CHECK(malloc_usable_size(q) >= m, "realloc to %zu: usable size %zu", m, malloc_usable_size(q));
                if (m > keep)
                    pattern_fill_range(q, keep, m, seed);
                p = q;
                n = m;
            }
        }
        free(p);
    }

    /* Jumps between small and large in both directions. */
    static const size_t pairs[][2] = {
        { 1, 4194304 }, { 4194304, 1 }, { 16, 1048576 }, { 1048576, 16 }, { 100, 70000 },
        { 70000, 100 }, { 3000, 300000 }, { 300000, 3000 }, { 262144, 262145 },
        { 262145, 262144 }, { 4194304, 4194200 }, { 2097152, 4194304 }, { 4194304, 2097152 },
        { 24, 32 }, { 32, 24 }, { 512, 4096 }, { 4096, 512 }, { 65536, 65537 },
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        size_t a = pairs[i][0], b = pairs[i][1];
        void *p = malloc(a);
        CHECK(p != NULL, "malloc(%zu) returned NULL", a);
        pattern_fill(p, a, 500 + i);
        void *q = realloc(p, b);
        CHECK(q != NULL, "realloc(%zu -> %zu) returned NULL", a, b);
        size_t keep = a < b ? a : b;
        size_t bad = pattern_check(q, keep, 500 + i);
        CHECK(bad == (size_t)-1, "realloc %zu -> %zu: byte %zu not preserved", a, b, bad);
        memset(q, 0x5A, b);
        free(q);
    }

    /* A random walk with other blocks live around it. */
    {
        rng_t r;
        rng_seed(&r, 4242);
        enum { N = 64 };
        void *blk[N] = { 0 };
        size_t sz[N] = { 0 };
        for (int step = 0; step < 6000; step++) {
            int i = (int)(rng_next(&r) % N);
            size_t m;
            uint64_t kind = rng_next(&r) % 100;
            if (kind < 70)
                m = rng_range(&r, 1, 1024);
            else if (kind < 95)
                m = rng_range(&r, 1025, 65536);
            else
                m = rng_range(&r, 65537, 4 << 20);
            size_t bad = pattern_check(blk[i], sz[i], (uint64_t)i * 7919);
            CHECK(bad == (size_t)-1, "random realloc walk: block %d (%zu bytes) lost byte %zu", i, sz[i], bad);
            void *q = realloc(blk[i], m);
            CHECK(q != NULL, "realloc(%zu -> %zu) returned NULL", sz[i], m);
            size_t keep = sz[i] < m ? sz[i] : m;
            bad = pattern_check(q, keep, (uint64_t)i * 7919);
            CHECK(bad == (size_t)-1, "realloc %zu -> %zu: byte %zu not preserved", sz[i], m, bad);
            if (m > keep)
                pattern_fill_range(q, keep, m, (uint64_t)i * 7919);
            blk[i] = q;
            sz[i] = m;
        }
        for (int i = 0; i < N; i++) {
            size_t bad = pattern_check(blk[i], sz[i], (uint64_t)i * 7919);
            CHECK(bad == (size_t)-1, "random realloc walk: block %d lost byte %zu at the end", i, bad);
            free(blk[i]);
        }
    }

    /* Growing in place many times by one byte. */
    {
        unsigned char *p = NULL;
        for (size_t n = 1; n <= 5000; n++) {
            unsigned char *q = realloc(p, n);
            CHECK(q != NULL, "realloc(%zu) returned NULL", n);
            q[n - 1] = (unsigned char)n;
            if (n > 1)
                CHECK(q[n - 2] == (unsigned char)(n - 1), "byte-by-byte realloc to %zu lost the last byte", n);
            if (n > 1 && (n % 97) == 0)
                for (size_t i = 0; i < n; i++)
                    CHECK(q[i] == (unsigned char)(i + 1), "byte-by-byte realloc to %zu: byte %zu is %u", n, i, q[i]);
            p = q;
        }
        free(p);
    }
}

static void test_reallocarray(void)
{
    errno = 0;
    void *p = reallocarray(NULL, opaque_size(SIZE_MAX / 2 + 1), 2);
    CHECK(p == NULL && errno == ENOMEM, "reallocarray(NULL, SIZE_MAX/2+1, 2): %p errno %d", p, errno);

    void *b = reallocarray(NULL, 10, 10);
    CHECK(b != NULL, "reallocarray(NULL, 10, 10) returned NULL");
    pattern_fill(b, 100, 9);
    static const size_t bad[][2] = {
        { SIZE_MAX / 2 + 1, 2 }, { 2, SIZE_MAX / 2 + 1 }, { SIZE_MAX, SIZE_MAX },
        { (size_t)1 << 33, (size_t)1 << 33 }, { (size_t)PTRDIFF_MAX, 2 }, { (size_t)PTRDIFF_MAX + 1, 1 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        void *q = reallocarray(b, opaque_size(bad[i][0]), opaque_size(bad[i][1]));
        CHECK(q == NULL, "reallocarray(p, %zu, %zu) returned %p, expected NULL", bad[i][0], bad[i][1], q);
        CHECK(errno == ENOMEM, "reallocarray(p, %zu, %zu): errno %d, expected ENOMEM", bad[i][0], bad[i][1], errno);
        CHECK(pattern_check(b, 100, 9) == (size_t)-1, "failed reallocarray changed the old block");
    }
    void *q = reallocarray(b, 1000, 100);
    CHECK(q != NULL, "reallocarray(p, 1000, 100) returned NULL");
    CHECK(pattern_check(q, 100, 9) == (size_t)-1, "reallocarray(p, 1000, 100) lost contents");
    memset(q, 1, 100000);
    q = reallocarray(q, 3, 5);
    CHECK(q != NULL, "reallocarray(p, 3, 5) returned NULL");
    free(q);
}

static void test_posix_memalign(void)
{
    static const size_t bad_align[] = { 0, 1, 2, 3, 4, 5, 6, 7, 12, 24, 48, 96, 100, 4097, 65535, (size_t)3 << 20, SIZE_MAX };
    for (size_t i = 0; i < sizeof bad_align / sizeof bad_align[0]; i++) {
        void *sentinel = (void *)(uintptr_t)0xdeadbeefcafe0ull;
        void *mp = sentinel;
        int rc = posix_memalign(&mp, opaque_size(bad_align[i]), 64);
        CHECK(rc == EINVAL, "posix_memalign(alignment %zu) returned %d, expected EINVAL", bad_align[i], rc);
        CHECK(mp == sentinel, "posix_memalign(alignment %zu) changed *memptr to %p", bad_align[i], mp);
    }
    /* Too big: ENOMEM, *memptr untouched. */
    {
        void *sentinel = (void *)(uintptr_t)0x1234560ull;
        void *mp = sentinel;
        /* Called through a pointer: the compiler takes posix_memalign to leave errno as it was. */
        int (*volatile memalign_call)(void **, size_t, size_t) = posix_memalign;
        errno = 0;
        int rc = memalign_call(&mp, 64, opaque_size(SIZE_MAX - 10));
        CHECK(rc == ENOMEM, "posix_memalign(64, SIZE_MAX-10) returned %d, expected ENOMEM", rc);
        CHECK(mp == sentinel, "failed posix_memalign changed *memptr to %p", mp);
        /* glibc leaves ENOMEM in errno too (POSIX asks only for the result). */
        CHECK(errno == ENOMEM, "failed posix_memalign left errno %d, glibc's is ENOMEM", errno);
        mp = sentinel;
        rc = posix_memalign(&mp, 4096, opaque_size((size_t)PTRDIFF_MAX + 1));
        CHECK(rc == ENOMEM, "posix_memalign(4096, PTRDIFF_MAX+1) returned %d, expected ENOMEM", rc);
        CHECK(mp == sentinel, "failed posix_memalign changed *memptr to %p", mp);
    }

    for (size_t align = sizeof(void *); align <= ((size_t)1 << 22); align <<= 1) {
        size_t sizes[] = { 0, 1, align - 1, align, align + 1, 3 * align, 100, 5000 };
        void *keep[sizeof sizes / sizeof sizes[0]];
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            size_t n = sizes[s];
            void *mp = NULL;
            int rc = posix_memalign(&mp, align, n);
            CHECK(rc == 0, "posix_memalign(align %zu, size %zu) returned %d", align, n, rc);
            CHECK(mp != NULL, "posix_memalign(align %zu, size %zu) gave NULL", align, n);
            CHECK(is_aligned(mp, align), "posix_memalign(align %zu, size %zu) gave %p", align, n, mp);
            CHECK(malloc_usable_size(mp) >= n, "posix_memalign(%zu, %zu): usable size %zu", align, n, malloc_usable_size(mp));
            check_writable(mp, n, align ^ n, "posix_memalign", n);
            keep[s] = mp;
        }
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            size_t bad = pattern_check(keep[s], sizes[s], align ^ sizes[s]);
            CHECK(bad == (size_t)-1, "posix_memalign(%zu, %zu) block lost byte %zu while others were live", align, sizes[s], bad);
            free(keep[s]);
        }
    }

    /* Many aligned blocks live at once, freed in an interleaved order. */
    {
        enum { N = 300 };
        void *b[N];
        size_t al[N], sz[N];
        rng_t r;
        rng_seed(&r, 99);
        for (int i = 0; i < N; i++) {
            al[i] = (size_t)1 << rng_range(&r, 3, 16);
            sz[i] = rng_range(&r, 1, 3000);
            int rc = posix_memalign(&b[i], al[i], sz[i]);
            CHECK(rc == 0 && is_aligned(b[i], al[i]), "posix_memalign(%zu, %zu): rc %d %p", al[i], sz[i], rc, b[i]);
            pattern_fill(b[i], sz[i], (uint64_t)i + 1);
        }
        for (int pass = 0; pass < 2; pass++)
            for (int i = pass; i < N; i += 2) {
                CHECK(pattern_check(b[i], sz[i], (uint64_t)i + 1) == (size_t)-1,
                      "aligned block %d (align %zu size %zu) corrupted", i, al[i], sz[i]);
                free(b[i]);
            }
    }
}

static void test_aligned_alloc_memalign(void)
{
    for (size_t align = 1; align <= ((size_t)1 << 20); align <<= 1) {
        size_t sizes[] = { align, 2 * align, 1, 100 };
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            size_t n = sizes[s];
            void *p = aligned_alloc(align, n);
            CHECK(p != NULL && is_aligned(p, align), "aligned_alloc(%zu, %zu) gave %p", align, n, p);
            check_writable(p, n, 3, "aligned_alloc", n);
            free(p);
            p = memalign(align, n);
            CHECK(p != NULL && is_aligned(p, align), "memalign(%zu, %zu) gave %p", align, n, p);
            check_writable(p, n, 4, "memalign", n);
            free(p);
        }
    }
    /* As in glibc 2.36: an alignment that is not a power of two is rounded up to
     * the next power of two. */
    static const size_t odd[][2] = { { 24, 32 }, { 48, 64 }, { 100, 128 }, { 3, 4 }, { 12, 16 },
                                     { 4097, 8192 }, { 40000, 65536 }, { 96, 128 } };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        size_t a = odd[i][0], want = odd[i][1];
        void *p = aligned_alloc(opaque_size(a), 200);
        CHECK(p != NULL, "aligned_alloc(%zu, 200) returned NULL (glibc rounds the alignment up)", a);
        CHECK(is_aligned(p, want), "aligned_alloc(%zu, 200) gave %p, not %zu-aligned", a, p, want);
        check_writable(p, 200, 5, "aligned_alloc", 200);
        free(p);
        p = memalign(opaque_size(a), 200);
        CHECK(p != NULL, "memalign(%zu, 200) returned NULL", a);
        CHECK(is_aligned(p, want), "memalign(%zu, 200) gave %p, not %zu-aligned", a, p, want);
        free(p);
    }
    /* aligned_alloc(0, n) works like malloc in glibc 2.36. */
    void *p = aligned_alloc(opaque_size(0), 32);
    CHECK(p != NULL, "aligned_alloc(0, 32) returned NULL");
    free(p);
    errno = 0;
    p = aligned_alloc(64, opaque_size(SIZE_MAX - 100));
    CHECK(p == NULL && errno == ENOMEM, "aligned_alloc(64, SIZE_MAX-100): %p errno %d", p, errno);
    errno = 0;
    p = memalign(4096, opaque_size((size_t)PTRDIFF_MAX + 1));
    CHECK(p == NULL && errno == ENOMEM, "memalign(4096, PTRDIFF_MAX+1): %p errno %d", p, errno);
}

static void test_valloc_pvalloc(void)
{
    static const size_t sizes[] = { 0, 1, 100, 4095, 4096, 4097, 10000, 65536, 100000, 1 << 20, (1 << 22) + 3 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        void *p = valloc(n);
        CHECK(p != NULL && is_aligned(p, page_size), "valloc(%zu) gave %p", n, p);
        CHECK(malloc_usable_size(p) >= n, "valloc(%zu): usable size %zu", n, malloc_usable_size(p));
        check_writable(p, n, 6, "valloc", n);
        void *q = pvalloc(n);
        size_t rounded = (n + page_size - 1) & ~(page_size - 1);
        CHECK(q != NULL && is_aligned(q, page_size), "pvalloc(%zu) gave %p", n, q);
        CHECK(malloc_usable_size(q) >= rounded, "pvalloc(%zu): usable size %zu, expected >= %zu", n, malloc_usable_size(q), rounded);
        check_writable(q, rounded, 7, "pvalloc", n);
        CHECK(pattern_check(p, n, 6) == (size_t)-1, "valloc(%zu) block changed by writing the pvalloc block", n);
        free(p);
        free(q);
    }
    static const size_t k[] = { 0, 1, 100, 4095, 4096, 8191, 65536, 1 << 20 };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        errno = 0;
        void *p = pvalloc(opaque_size(SIZE_MAX - k[i]));
        CHECK(p == NULL && errno == ENOMEM, "pvalloc(SIZE_MAX - %zu): %p errno %d, expected NULL/ENOMEM", k[i], p, errno);
        errno = 0;
        p = valloc(opaque_size(SIZE_MAX - k[i]));
        CHECK(p == NULL && errno == ENOMEM, "valloc(SIZE_MAX - %zu): %p errno %d, expected NULL/ENOMEM", k[i], p, errno);
    }
}

/* Memory that comes back to the allocator by other routes than a plain free —
 * the tail cut off by a shrinking realloc, split or merged free spans — is
 * still zeroed by calloc. */
static void test_calloc_after_reshaping(void)
{
    rng_t r;
    rng_seed(&r, 555);
    for (int round = 0; round < 6; round++) {
        enum { N = 12 };
        unsigned char *b[N];
        size_t sz[N];
        for (int i = 0; i < N; i++) {
            sz[i] = rng_log_range(&r, 4096, 6 << 20);
            b[i] = malloc(sz[i]);
            CHECK(b[i] != NULL, "malloc(%zu) returned NULL", sz[i]);
            memset(b[i], 0xAA, sz[i]);
        }
        /* Shrink half of them in place (or not), dirtying what is left. */
        for (int i = 0; i < N; i += 2) {
            size_t m = sz[i] / (size_t)rng_range(&r, 2, 9) + 1;
            unsigned char *q = realloc(b[i], m);
            CHECK(q != NULL, "realloc(%zu -> %zu) returned NULL", sz[i], m);
            for (size_t j = 0; j < m; j += 512)
                CHECK(q[j] == 0xAA, "realloc(%zu -> %zu) lost byte %zu", sz[i], m, j);
            b[i] = q;
            sz[i] = m;
        }
        /* Free the others in a mixed order. */
        for (int i = 1; i < N; i += 2)
            if ((i / 2) % 2 == round % 2)
                free(b[i]);
        for (int i = 1; i < N; i += 2)
            if ((i / 2) % 2 != round % 2)
                free(b[i]);
        /* calloc sizes unrelated to the freed ones: they reuse pieces. */
        enum { M = 24 };
        unsigned char *c[M];
        size_t cs[M];
        for (int i = 0; i < M; i++) {
            cs[i] = rng_log_range(&r, 1024, 4 << 20);
            c[i] = calloc(cs[i], 1);
            CHECK(c[i] != NULL, "calloc(%zu, 1) returned NULL", cs[i]);
            check_all_zero(c[i], cs[i], "calloc after realloc shrink / mixed frees", cs[i]);
            memset(c[i], 0xAA, cs[i]);
        }
        for (int i = 0; i < M; i++)
            free(c[i]);
        for (int i = 0; i < N; i += 2)
            free(b[i]);
    }
}

/* realloc of blocks that came from the aligned allocation calls. */
static void test_realloc_aligned(void)
{
    static const size_t aligns[] = { 32, 64, 256, 4096, 65536, 1 << 21 };
    static const size_t sizes[] = { 1, 100, 5000, 70000, 1 << 20 };
    static const size_t targets[] = { 8, 64, 3000, 100000, 3 << 20 };
    for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++)
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
                void *p = NULL;
                int rc = posix_memalign(&p, aligns[a], sizes[s]);
                CHECK(rc == 0 && is_aligned(p, aligns[a]), "posix_memalign(%zu, %zu): %d %p", aligns[a], sizes[s], rc, p);
                uint64_t seed = a * 100 + s * 10 + t;
                pattern_fill(p, sizes[s], seed);
                void *q = realloc(p, targets[t]);
                CHECK(q != NULL, "realloc(aligned(%zu) block of %zu, %zu) returned NULL", aligns[a], sizes[s], targets[t]);
                size_t keep = sizes[s] < targets[t] ? sizes[s] : targets[t];
                size_t bad = pattern_check(q, keep, seed);
                CHECK(bad == (size_t)-1, "realloc(aligned(%zu) block of %zu, %zu): byte %zu not preserved",
                      aligns[a], sizes[s], targets[t], bad);
                CHECK(malloc_usable_size(q) >= targets[t], "realloc of aligned block: usable size %zu < %zu",
                      malloc_usable_size(q), targets[t]);
                if (targets[t] >= 16)
                    CHECK(is_aligned(q, 16), "realloc(.., %zu) = %p is not 16-byte aligned", targets[t], q);
                memset(q, 0x77, targets[t]);
                free(q);
            }
    /* Alignments well above the page size and the largest size class. */
    for (size_t a = (size_t)1 << 23; a <= ((size_t)1 << 26); a <<= 1) {
        void *p = aligned_alloc(a, 100);
        CHECK(p != NULL && is_aligned(p, a), "aligned_alloc(%zu, 100) gave %p", a, p);
        memset(p, 1, 100);
        void *q = memalign(a, a + 1);
        CHECK(q != NULL && is_aligned(q, a), "memalign(%zu, %zu) gave %p", a, a + 1, q);
        memset(q, 2, 4096);
        free(p);
        free(q);
    }
}

static void test_usable_size_and_alignment(void)
{
    CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) = %zu", malloc_usable_size(NULL));

    /* Every size up to 2048, then samples up to 70000, then large ones; eight
     * live blocks per size so that different slots of a size class are seen. */
    size_t n = 1;
    while (n <= (size_t)64 << 20) {
        enum { K = 8 };
        void *b[K];
        int k = n > ((size_t)1 << 20) ? 2 : K;
        for (int j = 0; j < k; j++) {
            b[j] = malloc(n);
            CHECK(b[j] != NULL, "malloc(%zu) returned NULL", n);
            size_t want = 16;
            while (want > n)
                want >>= 1;
            CHECK(is_aligned(b[j], want), "malloc(%zu) = %p is not %zu-byte aligned", n, b[j], want);
            size_t u = malloc_usable_size(b[j]);
            CHECK(u >= n, "malloc_usable_size(malloc(%zu)) = %zu", n, u);
            /* Writable up to the usable size (touch first/last pages fully for big ones). */
            if (u <= 65536) {
                pattern_fill(b[j], u, n * 8 + (size_t)j);
            } else {
                memset(b[j], 0x11, 4096);
                memset((char *)b[j] + u - 4096, 0x22, 4096);
            }
        }
        for (int j = 0; j < k; j++) {
            size_t u = malloc_usable_size(b[j]);
            if (u <= 65536) {
                size_t bad = pattern_check(b[j], u, n * 8 + (size_t)j);
                CHECK(bad == (size_t)-1, "malloc(%zu) block %d: byte %zu of %zu usable bytes changed", n, j, bad, u);
            } else {
                CHECK(((unsigned char *)b[j])[0] == 0x11 && ((unsigned char *)b[j])[u - 1] == 0x22,
                      "malloc(%zu) block %d: first/last usable byte changed", n, j);
            }
        }
        for (int j = 0; j < k; j++)
            free(b[j]);
        if (n < 2048)
            n += 1;
        else if (n < 70000)
            n += 97;
        else
            n = n * 5 / 4 + 4093;
    }

    /* The size classes are tight: up to 2048 bytes the usable size never falls as
     * the request grows, and a request of exactly a usable size gets that size
     * (a size mapped to too large a class fails one of the two). */
    size_t prev = 0;
    for (size_t m = 0; m <= 2048; m++) {
        void *p = malloc(m);
        CHECK(p != NULL, "malloc(%zu) returned NULL", m);
        size_t u = malloc_usable_size(p);
        free(p);
        CHECK(u >= prev, "malloc_usable_size(malloc(%zu)) = %zu, less than for %zu bytes (%zu)", m, u, m - 1, prev);
        void *q = malloc(u);
        CHECK(q != NULL, "malloc(%zu) returned NULL", u);
        CHECK(malloc_usable_size(q) == u, "malloc(%zu) has usable size %zu, malloc(%zu) %zu", m, u, u,
              malloc_usable_size(q));
        free(q);
        prev = u;
    }

    /* usable size of realloc'ed and calloc'ed blocks */
    for (size_t i = 0; i < NSIZES; i++) {
        void *p = calloc(1, kSizes[i]);
        CHECK(p && malloc_usable_size(p) >= kSizes[i], "calloc(1, %zu): usable size %zu", kSizes[i], malloc_usable_size(p));
        free(p);
    }
}

static void test_mallinfo_trim_opt(void)
{
    struct mallinfo2 before = mallinfo2();
    enum { N = 10240, SZ = 1024 }; /* 10 MiB in 1 KiB blocks */
    static void *b[N];
    for (int i = 0; i < N; i++) {
        b[i] = malloc(SZ);
        CHECK(b[i] != NULL, "malloc(%d) returned NULL", SZ);
        memset(b[i], 0x33, SZ);
    }
    struct mallinfo2 live = mallinfo2();
    CHECK(live.arena != 0, "mallinfo2().arena is 0 with 10 MiB live");
    CHECK(live.uordblks != 0, "mallinfo2().uordblks is 0 with 10 MiB live");
    size_t want = (size_t)N * SZ * 9 / 10;
    CHECK(live.uordblks >= before.uordblks + want,
          "mallinfo2().uordblks grew from %zu to %zu with 10 MiB newly live (expected growth >= %zu)",
          before.uordblks, live.uordblks, want);
    for (int i = 0; i < N; i++)
        free(b[i]);
    struct mallinfo2 after = mallinfo2();
    size_t grown = live.uordblks - before.uordblks;
    CHECK(after.uordblks + grown / 2 <= live.uordblks,
          "mallinfo2().uordblks did not drop after freeing 10 MiB: before %zu, live %zu, after %zu",
          before.uordblks, live.uordblks, after.uordblks);

    int t = malloc_trim(0);
    CHECK(t == 0 || t == 1, "malloc_trim(0) returned %d", t);
    t = malloc_trim(1 << 20);
    CHECK(t == 0 || t == 1, "malloc_trim(1 MiB) returned %d", t);

    /* As glibc: a negative threshold is taken as a huge one (-1: never trim, no
     * block with a mapping of its own), and every other parameter is accepted. */
    CHECK(mallopt(M_TRIM_THRESHOLD, -1) == 1, "mallopt(M_TRIM_THRESHOLD, -1) refused (glibc accepts it)");
    CHECK(mallopt(M_MMAP_THRESHOLD, -1) == 1, "mallopt(M_MMAP_THRESHOLD, -1) refused (glibc accepts it)");
    {
        void *big = malloc(opaque_size(100 << 20));
        CHECK(big != NULL, "malloc(100 MiB) failed with M_MMAP_THRESHOLD at -1");
        memset(big, 1, 100 << 20);
        free(big);
    }
    CHECK(mallopt(M_TOP_PAD, 1 << 16) == 1 && mallopt(M_PERTURB, 0) == 1 && mallopt(12345, 1) == 1,
          "mallopt refused a parameter glibc accepts");

    int o = mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    CHECK(o == 1, "mallopt(M_MMAP_THRESHOLD, 256 KiB) returned %d", o);
    o = mallopt(M_TRIM_THRESHOLD, 1 << 20);
    CHECK(o == 1, "mallopt(M_TRIM_THRESHOLD, 1 MiB) returned %d", o);

    /* Still allocating normally afterwards, around the new threshold. */
    static const size_t around[] = { 200000, 262143, 262144, 262145, 300000 };
    for (size_t i = 0; i < sizeof around / sizeof around[0]; i++) {
        void *p = malloc(around[i]);
        CHECK(p != NULL, "malloc(%zu) after mallopt returned NULL", around[i]);
        check_writable(p, around[i], 8, "malloc after mallopt", around[i]);
        free(p);
    }

    malloc_stats(); /* prints to stderr; must not crash */
}

/* malloc_info: glibc's XML document, with the freed blocks listed by size. */
static void test_malloc_info(void)
{
    /* Every other block is freed, so the freed ones stay free blocks of their
     * class (in a thread cache or in a span that is still in use) in every mode. */
    enum { N = 400, BIG = 3 << 20 };
    static void *b[N];
    for (int i = 0; i < N; i++) {
        b[i] = malloc(100);
        CHECK(b[i] != NULL, "malloc(100) returned NULL");
        memset(b[i], 0x44, 100);
    }
    char *big = malloc(BIG);
    CHECK(big != NULL, "malloc(%d) returned NULL", BIG);
    memset(big, 0x55, BIG);
    for (int i = 0; i < N; i += 2)
        free(b[i]);

    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    CHECK(m != NULL, "open_memstream failed");
    int rc = malloc_info(0, m);
    fclose(m);
    CHECK(rc == 0, "malloc_info(0, stream) returned %d", rc);
    const char *head = "<malloc version=\"1\">\n", *tail = "</malloc>\n";
    CHECK(len > strlen(head) + strlen(tail) && strncmp(text, head, strlen(head)) == 0 &&
          strcmp(text + len - strlen(tail), tail) == 0,
          "malloc_info: not a <malloc version=\"1\"> document (%zu bytes): %.200s", len, text);

    size_t near100 = 0, sizes = 0;
    unsigned long long current = 0, mmapped = 0;
    for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        size_t from, to, total, count;
        unsigned long long v, c;
        if (sscanf(line, " <size from=\"%zu\" to=\"%zu\" total=\"%zu\" count=\"%zu\"/>", &from, &to, &total, &count) == 4) {
            sizes++;
            CHECK(from <= to && count > 0 && total >= count * from,
                  "malloc_info: inconsistent <size from=%zu to=%zu total=%zu count=%zu>", from, to, total, count);
            if (from <= 100 && 100 <= to)
                near100 += count;
        } else if (sscanf(line, "<system type=\"current\" size=\"%llu\"/>", &v) == 1) {
            current = v; /* the last one: the whole process */
        } else if (sscanf(line, "<total type=\"mmap\" count=\"%llu\" size=\"%llu\"/>", &c, &v) == 2) {
            mmapped = v;
        }
    }
    CHECK(sizes > 0, "malloc_info: no <size> element after freeing %d blocks", N / 2);
    /* Under the sampling profiler a sampled block lives in a span kept for sampled
     * blocks, which the freed one may leave empty and give back: at the tests'
     * rate (one sample per 4096 bytes) about ten of these 400 blocks are sampled,
     * and the check allows forty. */
    size_t want = N / 2;
    if (getenv("SWIFTMALLOC_PROFILE_SAMPLE") != NULL) want -= N / 10;
    CHECK(near100 >= want, "malloc_info: %zu free blocks listed around 100 bytes after freeing %d", near100, N / 2);
    CHECK(current + mmapped >= BIG, "malloc_info: system bytes %llu (+ %llu mapped apart) with %d live", current, mmapped, BIG);

    rc = malloc_info(1, stdout);
    CHECK(rc != 0, "malloc_info(1, stdout) returned 0 (options must be 0)");
    free(text);
    free(big);
    for (int i = 1; i < N; i += 2)
        free(b[i]);
}

/* glibc's own names for its allocator, which some programs call directly; glibc
 * exports them but no header declares them. */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

/* Blocks from the __libc_ names and from the standard names are one allocator's:
 * each is freed or grown through the other. */
static void test_libc_names(void)
{
    char *p = __libc_malloc(100);
    CHECK(p != NULL, "__libc_malloc(100) returned NULL");
    memset(p, 0x5a, 100);
    CHECK(malloc_usable_size(p) >= 100, "malloc_usable_size(__libc_malloc(100)) = %zu", malloc_usable_size(p));
    p = realloc(p, 3000);
    CHECK(p != NULL && p[0] == 0x5a && p[99] == 0x5a, "realloc of a __libc_malloc block lost its bytes");
    free(p);

    char *q = malloc(200);
    CHECK(q != NULL, "malloc(200) returned NULL");
    memset(q, 0x33, 200);
    q = __libc_realloc(q, 70000);
    CHECK(q != NULL && q[0] == 0x33 && q[199] == 0x33, "__libc_realloc of a malloc block lost its bytes");
    __libc_free(q);

    unsigned char *z = __libc_calloc(100, 10);
    CHECK(z != NULL, "__libc_calloc(100, 10) returned NULL");
    check_all_zero(z, 1000, "__libc_calloc", 1000);
    free(z);

    void *a = __libc_memalign(4096, 100);
    CHECK(a != NULL && ((uintptr_t)a & 4095) == 0, "__libc_memalign(4096, 100) returned %p", a);
    free(a);
    void *v = __libc_valloc(10);
    CHECK(v != NULL && ((uintptr_t)v % page_size) == 0, "__libc_valloc(10) returned %p", v);
    __libc_free(v);
    void *pv = __libc_pvalloc(10);
    CHECK(pv != NULL && ((uintptr_t)pv % page_size) == 0 && malloc_usable_size(pv) >= page_size,
          "__libc_pvalloc(10) returned %p (%zu usable)", pv, malloc_usable_size(pv));
    free(pv);
    if (malloc_is_swiftmalloc()) {
        Dl_info info;
        CHECK(dladdr((void *)__libc_malloc, &info) != 0 && info.dli_fname != NULL &&
                  strstr(info.dli_fname, "swiftmalloc") != NULL,
              "__libc_malloc is not SwiftMalloc's (it comes from %s)", info.dli_fname ? info.dli_fname : "?");
    }
}

/* errno is left alone by calls that succeed, even where the allocator tried
 * something that failed on the way: a huge block's growth where it lies (blocked
 * here by a page mapped right after it) before moving it, and a first stack
 * capture by libunwind in profiling mode (each call below is a new stack). */
__attribute__((noinline)) static void *errno_site_a(size_t n) { return malloc(n); }
__attribute__((noinline)) static void *errno_site_b(size_t n) { return calloc(1, n); }

/* The program's first allocations (run first in main). */
static void test_errno_first_calls(void)
{
    for (int i = 0; i < 2; i++) {
        errno = 12345;
        void *p = i == 0 ? errno_site_a(100 + (size_t)i) : errno_site_b(200);
        CHECK(p != NULL && errno == 12345, "allocation %d at a new call site: errno %d, expected 12345", i, errno);
        free(p);
    }
}

static void test_errno_kept(void)
{
    size_t old = (size_t)64 << 20, grown = (size_t)128 << 20;
    char *p = malloc(old);
    CHECK(p != NULL, "malloc(64 MiB) returned NULL");
    memset(p, 0x5a, old);
    size_t usable = malloc_usable_size(p);
    /* A page right after the block's mapping, so it cannot grow where it is. */
    char *end = p + ((usable + page_size - 1) / page_size) * page_size;
    void *guard = mmap(end, page_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    errno = 12345;
    char *q = realloc(p, grown);
    CHECK(q != NULL, "realloc(64 MiB -> 128 MiB) returned NULL");
    CHECK(errno == 12345, "realloc(64 MiB -> 128 MiB) succeeded but set errno to %d", errno);
    CHECK(q[0] == 0x5a && q[old - 1] == 0x5a, "realloc(64 MiB -> 128 MiB) lost the block's bytes");
    free(q);
    if (guard != MAP_FAILED) munmap(guard, page_size);

    /* mallopt(M_MXFAST) within glibc's range only; malloc_info's EINVAL leaves errno. */
    CHECK(mallopt(M_MXFAST, 64) == 1, "mallopt(M_MXFAST, 64) refused");
    CHECK(mallopt(M_MXFAST, 1 << 20) == 0, "mallopt(M_MXFAST, 1 MiB) accepted (glibc refuses above 160)");
    CHECK(mallopt(M_MXFAST, -1) == 0, "mallopt(M_MXFAST, -1) accepted");
    errno = 12345;
    CHECK(malloc_info(1, stdout) == EINVAL && errno == 12345, "malloc_info(1, stdout): errno %d", errno);
}

/* Under the kernel's default overcommit policy a request far beyond memory and
 * swap fails at once, as glibc's does, rather than succeeding and ending the
 * program when it touches the pages. */
static void test_beyond_memory(void)
{
    FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
    int policy = -1;
    if (f != NULL) {
        if (fscanf(f, "%d", &policy) != 1) policy = -1;
        fclose(f);
    }
    struct sysinfo si;
    if (policy != 0 || sysinfo(&si) != 0) {
        printf("api: overcommit policy %d: requests beyond memory not checked\n", policy);
        return;
    }
    unsigned long long memory = ((unsigned long long)si.totalram + si.totalswap) * si.mem_unit;
    size_t beyond = (size_t)(memory * 4 < (1ull << 44) ? memory * 4 : 1ull << 44);
    if (beyond < memory + (1ull << 30)) return;
    errno = 0;
    void *p = malloc(beyond);
    CHECK(p == NULL && errno == ENOMEM, "malloc(%zu) with %llu bytes of memory and swap: %p errno %d", beyond, memory, p, errno);
    errno = 0;
    p = calloc(1, beyond);
    CHECK(p == NULL && errno == ENOMEM, "calloc(1, %zu): %p errno %d", beyond, p, errno);
    errno = 0;
    p = aligned_alloc((size_t)1 << 30, beyond);
    CHECK(p == NULL && errno == ENOMEM, "aligned_alloc(1 GiB, %zu): %p errno %d", beyond, p, errno);
    /* The allocator still works afterwards. */
    p = malloc((size_t)8 << 20);
    CHECK(p != NULL, "malloc(8 MiB) after refused requests returned NULL");
    memset(p, 1, (size_t)8 << 20);
    free(p);
}

int main(void)
{
    /* The program's first allocation, from main itself (a stack whose first walk
     * libunwind does, in profiling mode). */
    errno = 12345;
    void *volatile first = malloc(100);
    int first_errno = errno;
    free(first);
    CHECK(first != NULL && first_errno == 12345, "the first malloc: errno %d, expected 12345", first_errno);
    test_errno_first_calls();
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    test_malloc_zero();
    test_malloc_too_big();
    test_calloc();
    test_calloc_after_reshaping();
    test_realloc();
    test_realloc_aligned();
    test_reallocarray();
    test_posix_memalign();
    test_aligned_alloc_memalign();
    test_valloc_pvalloc();
    test_usable_size_and_alignment();
    test_mallinfo_trim_opt();
    test_malloc_info();
    test_libc_names();
    test_errno_kept();
    test_beyond_memory();
    printf("api: all checks passed\n");
    return 0;
}
