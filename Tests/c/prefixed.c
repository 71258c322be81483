/*
 * prefixed.c — the swiftmalloc_* functions declared in include/swiftmalloc.h,
 * called by name.
 *
 * The declarations are made weak here so that one source serves both ways the
 * test runner builds it: linked against libswiftmalloc.so (the symbols bind at
 * link time) and preloaded (they bind at load time to the preloaded library).
 * When no SwiftMalloc is present at all the test has nothing to check and exits
 * 0 with a note.
 */
#define _GNU_SOURCE
#define TEST_NAME "prefixed"
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "swiftmalloc.h"
#include "testutil.h"

#pragma weak swiftmalloc_malloc
#pragma weak swiftmalloc_free
#pragma weak swiftmalloc_calloc
#pragma weak swiftmalloc_realloc
#pragma weak swiftmalloc_reallocarray
#pragma weak swiftmalloc_posix_memalign
#pragma weak swiftmalloc_aligned_alloc
#pragma weak swiftmalloc_memalign
#pragma weak swiftmalloc_valloc
#pragma weak swiftmalloc_pvalloc
#pragma weak swiftmalloc_usable_size
#pragma weak swiftmalloc_free_sized
#pragma weak swiftmalloc_free_aligned_sized
#pragma weak swiftmalloc_trim
#pragma weak swiftmalloc_malloc_stats
#pragma weak swiftmalloc_mallopt
#pragma weak swiftmalloc_stats_print

#if SWIFTMALLOC_VERSION != SWIFTMALLOC_VERSION_MAJOR * 10000 + SWIFTMALLOC_VERSION_MINOR * 100 + SWIFTMALLOC_VERSION_PATCH
#error "SWIFTMALLOC_VERSION does not match its parts"
#endif

struct sym { const char *name; void *addr; };

int main(void)
{
    struct sym syms[] = {
        { "swiftmalloc_malloc", (void *)swiftmalloc_malloc },
        { "swiftmalloc_free", (void *)swiftmalloc_free },
        { "swiftmalloc_calloc", (void *)swiftmalloc_calloc },
        { "swiftmalloc_realloc", (void *)swiftmalloc_realloc },
        { "swiftmalloc_reallocarray", (void *)swiftmalloc_reallocarray },
        { "swiftmalloc_posix_memalign", (void *)swiftmalloc_posix_memalign },
        { "swiftmalloc_aligned_alloc", (void *)swiftmalloc_aligned_alloc },
        { "swiftmalloc_memalign", (void *)swiftmalloc_memalign },
        { "swiftmalloc_valloc", (void *)swiftmalloc_valloc },
        { "swiftmalloc_pvalloc", (void *)swiftmalloc_pvalloc },
        { "swiftmalloc_usable_size", (void *)swiftmalloc_usable_size },
        { "swiftmalloc_free_sized", (void *)swiftmalloc_free_sized },
        { "swiftmalloc_free_aligned_sized", (void *)swiftmalloc_free_aligned_sized },
        { "swiftmalloc_trim", (void *)swiftmalloc_trim },
        { "swiftmalloc_malloc_stats", (void *)swiftmalloc_malloc_stats },
        { "swiftmalloc_mallopt", (void *)swiftmalloc_mallopt },
        { "swiftmalloc_stats_print", (void *)swiftmalloc_stats_print },
    };
    const size_t nsyms = sizeof syms / sizeof syms[0];

    if (dlsym(RTLD_DEFAULT, "swiftmalloc_malloc") == NULL && syms[0].addr == NULL) {
        printf("prefixed: SwiftMalloc is not loaded in this process; nothing to check\n");
        return 0;
    }
    for (size_t i = 0; i < nsyms; i++) {
        void *d = dlsym(RTLD_DEFAULT, syms[i].name);
        CHECK(syms[i].addr != NULL, "%s is not defined by the loaded library", syms[i].name);
        CHECK(d != NULL, "dlsym(RTLD_DEFAULT, \"%s\") found nothing", syms[i].name);
    }

    /* The standard names are SwiftMalloc's too (the library replaces them). */
    static const char *const std_names[] = {
        "malloc", "free", "calloc", "realloc", "reallocarray", "posix_memalign",
        "aligned_alloc", "memalign", "valloc", "pvalloc", "malloc_usable_size",
        "malloc_trim", "mallinfo2", "mallopt", "malloc_stats",
    };
    for (size_t i = 0; i < sizeof std_names / sizeof std_names[0]; i++) {
        void *f = dlsym(RTLD_DEFAULT, std_names[i]);
        Dl_info info;
        CHECK(f != NULL, "dlsym(RTLD_DEFAULT, \"%s\") found nothing", std_names[i]);
        CHECK(dladdr(f, &info) != 0 && info.dli_fname != NULL, "dladdr(%s) failed", std_names[i]);
        CHECK(strstr(info.dli_fname, "swiftmalloc") != NULL,
              "%s resolves to %s, not to libswiftmalloc", std_names[i], info.dli_fname);
    }

    /* malloc / free / usable_size */
    for (size_t n = 0; n <= 70000; n = n < 1100 ? n + 1 : n * 2) {
        unsigned char *p = swiftmalloc_malloc(n);
        CHECK(p != NULL, "swiftmalloc_malloc(%zu) returned NULL", n);
        if (n >= 16)
            CHECK(is_aligned(p, 16), "swiftmalloc_malloc(%zu) = %p is not 16-byte aligned", n, (void *)p);
        size_t u = swiftmalloc_usable_size(p);
        CHECK(u >= n, "swiftmalloc_usable_size(swiftmalloc_malloc(%zu)) = %zu", n, u);
        pattern_fill(p, u, n);
        CHECK(pattern_check(p, u, n) == (size_t)-1, "swiftmalloc_malloc(%zu) block not writable", n);
        swiftmalloc_free(p);
    }
    CHECK(swiftmalloc_usable_size(NULL) == 0, "swiftmalloc_usable_size(NULL) != 0");
    swiftmalloc_free(NULL);
    errno = 0;
    void *p = swiftmalloc_malloc(opaque_size(SIZE_MAX));
    CHECK(p == NULL && errno == ENOMEM, "swiftmalloc_malloc(SIZE_MAX): %p errno %d", p, errno);
    errno = 0;
    p = swiftmalloc_malloc(opaque_size((size_t)PTRDIFF_MAX + 1));
    CHECK(p == NULL && errno == ENOMEM, "swiftmalloc_malloc(PTRDIFF_MAX+1): %p errno %d", p, errno);

    /* calloc */
    errno = 0;
    p = swiftmalloc_calloc(opaque_size(SIZE_MAX / 2 + 1), 2);
    CHECK(p == NULL && errno == ENOMEM, "swiftmalloc_calloc overflow: %p errno %d", p, errno);
    for (size_t n = 1; n <= ((size_t)4 << 20); n = n * 3 + 1) {
        unsigned char *d = swiftmalloc_malloc(n);
        CHECK(d != NULL, "swiftmalloc_malloc(%zu) returned NULL", n);
        memset(d, 0xAA, n);
        swiftmalloc_free(d);
        unsigned char *c = swiftmalloc_calloc(n, 1);
        CHECK(c != NULL, "swiftmalloc_calloc(%zu, 1) returned NULL", n);
        for (size_t i = 0; i < n; i++)
            CHECK(c[i] == 0, "swiftmalloc_calloc(%zu, 1): byte %zu is 0x%02x", n, i, c[i]);
        swiftmalloc_free(c);
    }

    /* realloc / reallocarray */
    {
        unsigned char *r = swiftmalloc_realloc(NULL, 10);
        CHECK(r != NULL, "swiftmalloc_realloc(NULL, 10) returned NULL");
        pattern_fill(r, 10, 1);
        size_t n = 10;
        static const size_t steps[] = { 100, 5000, 70000, 1 << 20, 3 << 20, 300000, 2000, 17, 1 };
        for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
            unsigned char *q = swiftmalloc_realloc(r, steps[i]);
            CHECK(q != NULL, "swiftmalloc_realloc(%zu -> %zu) returned NULL", n, steps[i]);
            size_t keep = n < steps[i] ? n : steps[i];
            CHECK(pattern_check(q, keep, 1) == (size_t)-1, "swiftmalloc_realloc(%zu -> %zu) lost contents", n, steps[i]);
            if (steps[i] > keep)
                pattern_fill_range(q, keep, steps[i], 1);
            r = q;
            n = steps[i];
        }
        errno = 0;
        void *q = swiftmalloc_realloc(r, opaque_size(SIZE_MAX - 1));
        CHECK(q == NULL && errno == ENOMEM, "swiftmalloc_realloc(p, SIZE_MAX-1): %p errno %d", q, errno);
        CHECK(pattern_check(r, n, 1) == (size_t)-1, "failed swiftmalloc_realloc changed the block");
        errno = 0;
        q = swiftmalloc_reallocarray(r, opaque_size(SIZE_MAX / 4 + 1), 4);
        CHECK(q == NULL && errno == ENOMEM, "swiftmalloc_reallocarray overflow: %p errno %d", q, errno);
        q = swiftmalloc_reallocarray(r, 100, 10);
        CHECK(q != NULL, "swiftmalloc_reallocarray(p, 100, 10) returned NULL");
        CHECK(pattern_check(q, n, 1) == (size_t)-1, "swiftmalloc_reallocarray lost contents");
        q = swiftmalloc_realloc(q, opaque_size(0));
        CHECK(q == NULL, "swiftmalloc_realloc(p, 0) returned %p, expected NULL", q);
    }

    /* aligned allocation */
    {
        void *sentinel = (void *)(uintptr_t)0xabcdef0ull, *mp = sentinel;
        int rc = swiftmalloc_posix_memalign(&mp, opaque_size(24), 10);
        CHECK(rc == EINVAL && mp == sentinel, "swiftmalloc_posix_memalign(24): rc %d memptr %p", rc, mp);
        rc = swiftmalloc_posix_memalign(&mp, opaque_size(0), 10);
        CHECK(rc == EINVAL && mp == sentinel, "swiftmalloc_posix_memalign(0): rc %d memptr %p", rc, mp);
        rc = swiftmalloc_posix_memalign(&mp, opaque_size(4), 10);
        CHECK(rc == EINVAL && mp == sentinel, "swiftmalloc_posix_memalign(4): rc %d memptr %p", rc, mp);
        size_t pg = (size_t)sysconf(_SC_PAGESIZE);
        for (size_t a = 8; a <= ((size_t)1 << 21); a <<= 1) {
            rc = swiftmalloc_posix_memalign(&mp, a, a + 1);
            CHECK(rc == 0 && is_aligned(mp, a), "swiftmalloc_posix_memalign(%zu): rc %d %p", a, rc, mp);
            memset(mp, 1, a + 1);
            swiftmalloc_free(mp);
            void *q = swiftmalloc_aligned_alloc(a, 3 * a);
            CHECK(q != NULL && is_aligned(q, a), "swiftmalloc_aligned_alloc(%zu): %p", a, q);
            memset(q, 2, 3 * a);
            /* free_aligned_sized with the alignment and size it was made with */
            swiftmalloc_free_aligned_sized(q, a, 3 * a);
            q = swiftmalloc_memalign(a, 100);
            CHECK(q != NULL && is_aligned(q, a), "swiftmalloc_memalign(%zu): %p", a, q);
            swiftmalloc_free(q);
        }
        void *q = swiftmalloc_aligned_alloc(opaque_size(48), 100);
        CHECK(q != NULL && is_aligned(q, 64), "swiftmalloc_aligned_alloc(48, 100): %p (expected 64-aligned)", q);
        swiftmalloc_free(q);
        q = swiftmalloc_valloc(5000);
        CHECK(q != NULL && is_aligned(q, pg), "swiftmalloc_valloc(5000): %p", q);
        memset(q, 3, 5000);
        swiftmalloc_free(q);
        q = swiftmalloc_pvalloc(5000);
        CHECK(q != NULL && is_aligned(q, pg), "swiftmalloc_pvalloc(5000): %p", q);
        CHECK(swiftmalloc_usable_size(q) >= 2 * pg, "swiftmalloc_pvalloc(5000): usable size %zu", swiftmalloc_usable_size(q));
        memset(q, 3, 2 * pg);
        swiftmalloc_free(q);
        errno = 0;
        q = swiftmalloc_pvalloc(opaque_size(SIZE_MAX - 10));
        CHECK(q == NULL && errno == ENOMEM, "swiftmalloc_pvalloc(SIZE_MAX-10): %p errno %d", q, errno);
    }

    /* free_sized with the size asked for, across the size range */
    for (size_t n = 1; n <= ((size_t)8 << 20); n = n * 2 + 3) {
        void *q = swiftmalloc_malloc(n);
        CHECK(q != NULL, "swiftmalloc_malloc(%zu) returned NULL", n);
        memset(q, 4, n);
        swiftmalloc_free_sized(q, n);
        q = swiftmalloc_calloc(1, n);
        CHECK(q != NULL, "swiftmalloc_calloc(1, %zu) returned NULL", n);
        swiftmalloc_free_sized(q, n);
    }

    /* The prefixed and standard names are one allocator. */
    {
        void *a = malloc(300);
        CHECK(a != NULL, "malloc(300) returned NULL");
        CHECK(swiftmalloc_usable_size(a) >= 300, "swiftmalloc_usable_size(malloc(300)) = %zu", swiftmalloc_usable_size(a));
        swiftmalloc_free(a);
        a = swiftmalloc_malloc(300);
        CHECK(a != NULL, "swiftmalloc_malloc(300) returned NULL");
        CHECK(malloc_usable_size(a) >= 300, "malloc_usable_size(swiftmalloc_malloc(300)) = %zu", malloc_usable_size(a));
        a = realloc(a, 100000);
        CHECK(a != NULL, "realloc(swiftmalloc_malloc block, 100000) returned NULL");
        free(a);
    }

    /* trim, mallopt, stats */
    {
        enum { N = 4000 };
        static void *b[N];
        for (int i = 0; i < N; i++) {
            b[i] = swiftmalloc_malloc(1000);
            CHECK(b[i] != NULL, "swiftmalloc_malloc(1000) returned NULL");
            memset(b[i], 5, 1000);
        }
        for (int i = 0; i < N; i++)
            swiftmalloc_free(b[i]);
        int t = swiftmalloc_trim(0);
        CHECK(t == 0 || t == 1, "swiftmalloc_trim(0) returned %d", t);
        int o = swiftmalloc_mallopt(M_MMAP_THRESHOLD, 256 * 1024);
        CHECK(o == 1, "swiftmalloc_mallopt(M_MMAP_THRESHOLD) returned %d", o);
        o = swiftmalloc_mallopt(M_TRIM_THRESHOLD, 1 << 20);
        CHECK(o == 1, "swiftmalloc_mallopt(M_TRIM_THRESHOLD) returned %d", o);
        o = swiftmalloc_mallopt(12345, 1);
        CHECK(o == 1, "swiftmalloc_mallopt(12345 /* unknown */) returned %d, expected 1 (glibc accepts any parameter)", o);
        void *keep = swiftmalloc_malloc(777);
        CHECK(keep != NULL, "swiftmalloc_malloc(777) returned NULL");
        swiftmalloc_malloc_stats();
        swiftmalloc_stats_print();
        swiftmalloc_free(keep);
        swiftmalloc_stats_print();
    }

    printf("prefixed: all checks passed (SwiftMalloc %d.%d.%d)\n", SWIFTMALLOC_VERSION_MAJOR,
           SWIFTMALLOC_VERSION_MINOR, SWIFTMALLOC_VERSION_PATCH);
    return 0;
}
